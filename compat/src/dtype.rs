//! pandas dtype names for Arrow types, and the Arrow types `astype` targets.

use arrow::datatypes::{DataType, TimeUnit};

use crate::error::{Result, invalid};

/// The name pandas gives the dtype a column of this Arrow type would have after
/// `pd.read_parquet` (strings are `object`, as in pandas 2).
pub fn pandas_dtype(dt: &DataType) -> String {
    match dt {
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "float16".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Boolean => "bool".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "object".into(),
        DataType::Timestamp(unit, None) => format!("datetime64[{}]", unit_name(unit)),
        DataType::Timestamp(unit, Some(tz)) => format!("datetime64[{}, {tz}]", unit_name(unit)),
        DataType::Dictionary(_, _) => "category".into(),
        other => format!("object ({other})"),
    }
}

fn unit_name(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// The Arrow type for a pandas dtype name given to `astype`.
pub fn arrow_type(name: &str) -> Result<DataType> {
    Ok(match name {
        "int64" | "int" | "Int64" => DataType::Int64,
        "int32" | "Int32" => DataType::Int32,
        "int16" => DataType::Int16,
        "int8" => DataType::Int8,
        "float64" | "float" | "Float64" => DataType::Float64,
        "float32" => DataType::Float32,
        "bool" | "boolean" => DataType::Boolean,
        "str" | "string" | "object" => DataType::Utf8,
        "datetime64[ns]" | "datetime64" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        other => {
            return Err(invalid(
                "astype",
                format!(
                    "unknown dtype '{other}' (known: int64, int32, int16, int8, float64, \
                     float32, bool, str, object, datetime64[ns])"
                ),
            ));
        }
    })
}

/// Whether values of this type are numbers (pandas' `number` in `select_dtypes`).
pub fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric()
}

/// Whether values of this type are floating point (where NaN counts as missing).
pub fn is_float(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}

/// Whether values of this type are strings.
pub fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}
