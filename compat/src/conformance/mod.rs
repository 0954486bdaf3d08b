//! Conformance against pandas: the cases, their inputs, and the comparison.
//!
//! A case is a spillframe spelling of a pandas operation ([`cases::CASES`]). Its input
//! fixtures and the answer pandas gave are files in `fixtures/compat/`, written by
//! `fixtures/compat/make_cases.py` (the pandas spelling of the same case id) with a pinned
//! pandas. [`compare`] checks names, dtype kinds and values: floats within a relative
//! tolerance, missing values (null or NaN) equal to each other and to nothing else.

pub mod cases;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::scalar::ScalarValue;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use spillframe_engine::{Session, Table};

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::series::Series;

/// The inputs every case can use (`fixtures/compat/inputs`).
pub struct Inputs {
    /// The session the cases run in.
    pub session: Session,
    /// The input directory.
    pub dir: PathBuf,
    /// 1000 rows of mixed types with missing values.
    pub sales: DataFrame,
    /// The left side of the merge cases.
    pub left: DataFrame,
    /// The right side of the merge cases.
    pub right: DataFrame,
    /// Eight rows with many missing values.
    pub small: DataFrame,
}

impl Inputs {
    /// Reads the inputs from `dir` into `session`.
    pub fn load(session: &Session, dir: &Path) -> Result<Inputs> {
        let read = |n: &str| crate::io::read_parquet(session, dir.join(format!("{n}.parquet")));
        Ok(Inputs {
            session: session.clone(),
            dir: dir.to_path_buf(),
            sales: read("sales")?,
            left: read("left")?,
            right: read("right")?,
            small: read("small")?,
        })
    }
}

/// One conformance case.
pub struct Case {
    /// The id, shared with the pandas script and the expected file's name.
    pub id: &'static str,
    /// The registry entries it proves (`DataFrame.head`, `Series.str.lower`, ...).
    pub covers: &'static [&'static str],
    /// The spillframe spelling.
    pub run: fn(&Inputs) -> Result<Table>,
}

/// The result of a frame-valued case.
pub fn frame(df: DataFrame) -> Result<Table> {
    df.to_table()
}

/// The result of a Series-valued case.
pub fn series(s: Series) -> Result<Table> {
    s.to_table()
}

/// The result of a scalar-valued case: one row, column `value`.
pub fn scalar(v: ScalarValue) -> Result<Table> {
    Ok(Table::from_columns(vec![("value".into(), v.to_array()?)])?)
}

/// A one-row table of named scalars.
pub fn row(values: Vec<(&str, ScalarValue)>) -> Result<Table> {
    let cols = values
        .into_iter()
        .map(|(n, v)| Ok((n.to_string(), v.to_array()?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Table::from_columns(cols)?)
}

/// Reads an expected answer written by pandas.
pub fn read_expected(path: &Path) -> Result<RecordBatch> {
    let at = |e: &dyn std::fmt::Display| {
        crate::error::invalid("conformance", format!("{}: {e}", path.display()))
    };
    let file = File::open(path).map_err(|e| at(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| at(&e))?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

/// The kind of a type, as pandas' dtypes group them.
fn kind(dt: &DataType) -> &'static str {
    match dt {
        t if t.is_integer() => "int",
        t if t.is_floating() => "float",
        DataType::Boolean => "bool",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Dictionary(_, v) => kind(v),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => "datetime",
        DataType::Null => "null",
        _ => "other",
    }
}

fn is_missing(a: &ArrayRef, i: usize) -> bool {
    if a.is_null(i) {
        return true;
    }
    match a.data_type() {
        DataType::Float64 => a
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .is_some_and(|f| f.value(i).is_nan()),
        _ => false,
    }
}

/// Normalises a column for value comparison: numbers to float64 (or int64), strings to
/// utf8, times to nanoseconds.
fn normal(a: &ArrayRef) -> Result<ArrayRef> {
    let to = match kind(a.data_type()) {
        "int" => DataType::Int64,
        "float" => DataType::Float64,
        "string" => DataType::Utf8,
        "datetime" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        _ => return Ok(Arc::clone(a)),
    };
    Ok(cast(a, &to)?)
}

/// Compares an actual result with pandas' answer; the error says where they differ.
pub fn compare(actual: &Table, expected: &RecordBatch) -> std::result::Result<(), String> {
    let act = actual.to_batch().map_err(|e| e.to_string())?;
    let an: Vec<String> = act
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let en: Vec<String> = expected
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if an != en {
        return Err(format!("columns differ: got {an:?}, pandas has {en:?}"));
    }
    if act.num_rows() != expected.num_rows() {
        return Err(format!(
            "row counts differ: got {}, pandas has {}",
            act.num_rows(),
            expected.num_rows()
        ));
    }
    for (j, name) in en.iter().enumerate() {
        let a = act.column(j);
        let e = expected.column(j);
        let (ka, ke) = (kind(a.data_type()), kind(e.data_type()));
        // pandas turns an integer column with missing values into float64 (a data-dependent
        // type); spillframe keeps nullable integers. A column of only missing values may
        // have any type on either side.
        let allowed = ka == ke
            || (ka == "int" && ke == "float" && a.null_count() > 0)
            || e.null_count() == e.len()
            || a.null_count() == a.len();
        if !allowed {
            return Err(format!(
                "column '{name}': got type {} ({ka}), pandas has {} ({ke})",
                a.data_type(),
                e.data_type()
            ));
        }
        let a = normal(a).map_err(|x| x.to_string())?;
        let e = normal(e).map_err(|x| x.to_string())?;
        let (a, e) = if kind(a.data_type()) != kind(e.data_type()) {
            (
                cast(&a, &DataType::Float64).map_err(|x| x.to_string())?,
                cast(&e, &DataType::Float64).map_err(|x| x.to_string())?,
            )
        } else {
            (a, e)
        };
        for i in 0..a.len() {
            let (ma, me) = (is_missing(&a, i), is_missing(&e, i));
            if ma || me {
                if ma != me {
                    return Err(format!(
                        "column '{name}' row {i}: got {}, pandas has {}",
                        show(&a, i),
                        show(&e, i)
                    ));
                }
                continue;
            }
            let same = match (a.data_type(), e.data_type()) {
                (DataType::Float64, DataType::Float64) => {
                    let x = a
                        .as_any()
                        .downcast_ref::<arrow::array::Float64Array>()
                        .map(|v| v.value(i));
                    let y = e
                        .as_any()
                        .downcast_ref::<arrow::array::Float64Array>()
                        .map(|v| v.value(i));
                    match (x, y) {
                        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                        _ => false,
                    }
                }
                _ => {
                    ScalarValue::try_from_array(&a, i).ok()
                        == ScalarValue::try_from_array(&e, i).ok()
                }
            };
            if !same {
                return Err(format!(
                    "column '{name}' row {i}: got {}, pandas has {}",
                    show(&a, i),
                    show(&e, i)
                ));
            }
        }
    }
    Ok(())
}

fn show(a: &ArrayRef, i: usize) -> String {
    ScalarValue::try_from_array(a, i)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Runs one case and compares it with pandas' answer in `expected_dir`.
pub fn check(case: &Case, inputs: &Inputs, expected_dir: &Path) -> std::result::Result<(), String> {
    let expected = read_expected(&expected_dir.join(format!("{}.parquet", case.id)))
        .map_err(|e| e.to_string())?;
    let actual = (case.run)(inputs).map_err(|e: Error| format!("error: {e}"))?;
    compare(&actual, &expected)
}
