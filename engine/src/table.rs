//! [`Table`]: an owned, collected result that prints nicely, and the [`df!`](crate::df) macro.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, UInt32Array, UInt64Array,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::frame::LazyFrame;
use crate::session::Session;

/// Rows printed by `Display`; longer tables show their first and last rows.
const PRINT_ROWS: usize = 15;

/// An owned table of Arrow batches: the result of [`LazyFrame::collect`].
#[derive(Debug, Clone)]
pub struct Table {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl Table {
    /// A table from batches that share `schema`.
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Table { schema, batches }
    }

    /// A table from named columns of equal length.
    pub fn from_columns(columns: Vec<(String, ArrayRef)>) -> Result<Table> {
        if columns.is_empty() {
            return Err(Error::InvalidArgument(
                "a table needs at least one column".into(),
            ));
        }
        let len = columns[0].1.len();
        for (name, c) in &columns {
            if c.len() != len {
                return Err(Error::InvalidArgument(format!(
                    "column '{name}' has {} values but column '{}' has {len}",
                    c.len(),
                    columns[0].0
                )));
            }
        }
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, c)| Field::new(n, c.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, c)| c).collect(),
        )?;
        Ok(Table {
            schema,
            batches: vec![batch],
        })
    }

    /// The schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The batches.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The batches, by value.
    pub fn into_batches(self) -> Vec<RecordBatch> {
        self.batches
    }

    /// The batches, with one empty batch when there are none (so the schema travels).
    pub(crate) fn into_batches_nonempty(self) -> Vec<RecordBatch> {
        if self.batches.is_empty() {
            vec![RecordBatch::new_empty(self.schema)]
        } else {
            self.batches
        }
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// Number of rows (same as [`height`](Self::height)).
    pub fn num_rows(&self) -> usize {
        self.height()
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.schema.fields().len()
    }

    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.height(), self.width())
    }

    /// Column names in order.
    pub fn column_names(&self) -> Vec<&str> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect()
    }

    /// All rows in one batch.
    pub fn to_batch(&self) -> Result<RecordBatch> {
        Ok(concat_batches(&self.schema, &self.batches)?)
    }

    /// One column, all rows, as one array.
    pub fn column(&self, name: &str) -> Result<ArrayRef> {
        let idx = self
            .schema
            .index_of(name)
            .map_err(|_| Error::ColumnNotFound {
                column: name.to_string(),
                available: self.column_names().join(", "),
            })?;
        Ok(self.to_batch()?.column(idx).clone())
    }

    /// A lazy frame over this table, in `session`.
    pub fn lazy(self, session: &Session) -> Result<LazyFrame> {
        session.from_table(self)
    }
}

impl Table {
    /// The table as text: shape, then the rows, or the first and last of them when there are
    /// more than `max_rows`.
    pub fn format(&self, max_rows: usize) -> String {
        let rows = self.height();
        let mut out = format!("shape: ({rows}, {})\n", self.width());
        let truncated = rows > max_rows;
        let (head, tail) = if truncated {
            let head = max_rows.div_ceil(3) * 2;
            (head.min(max_rows), max_rows.saturating_sub(head))
        } else {
            (rows, 0)
        };
        let shown: Vec<RecordBatch> = if !truncated {
            if self.batches.is_empty() {
                vec![RecordBatch::new_empty(self.schema.clone())]
            } else {
                self.batches.clone()
            }
        } else {
            match self.to_batch() {
                Ok(all) => vec![all.slice(0, head), all.slice(rows - tail, tail)],
                Err(e) => return format!("{out}<cannot print: {e}>\n"),
            }
        };
        let text = match arrow::util::pretty::pretty_format_batches(&shown) {
            Ok(t) => t.to_string(),
            Err(e) => return format!("{out}<cannot print: {e}>\n"),
        };
        if truncated {
            // The header is 3 lines (border, names, border), then the head rows.
            let lines: Vec<&str> = text.lines().collect();
            let split = (3 + head).min(lines.len());
            for l in &lines[..split] {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str(&format!("… {} more rows …\n", rows - head - tail));
            for l in &lines[split..] {
                out.push_str(l);
                out.push('\n');
            }
        } else {
            out.push_str(&text);
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(PRINT_ROWS))
    }
}

/// Values that make a column: `Vec`s and arrays of numbers, booleans and strings, with or
/// without `Option` for nulls, or an Arrow array.
pub trait IntoColumn {
    /// The column as an Arrow array.
    fn into_column(self) -> ArrayRef;
}

/// An element type that can fill a column.
pub trait ColumnValue: Sized {
    /// Builds the array.
    fn to_array(values: Vec<Self>) -> ArrayRef;
}

macro_rules! column_value {
    ($t:ty => $arr:ty) => {
        impl ColumnValue for $t {
            fn to_array(values: Vec<Self>) -> ArrayRef {
                Arc::new(<$arr>::from(values))
            }
        }
        impl ColumnValue for Option<$t> {
            fn to_array(values: Vec<Self>) -> ArrayRef {
                Arc::new(<$arr>::from(values))
            }
        }
    };
}
column_value!(i32 => Int32Array);
column_value!(i64 => Int64Array);
column_value!(u32 => UInt32Array);
column_value!(u64 => UInt64Array);
column_value!(f32 => Float32Array);
column_value!(f64 => Float64Array);
column_value!(bool => BooleanArray);
column_value!(&str => StringArray);
column_value!(String => StringArray);

impl<T: ColumnValue> IntoColumn for Vec<T> {
    fn into_column(self) -> ArrayRef {
        T::to_array(self)
    }
}
impl<T: ColumnValue, const N: usize> IntoColumn for [T; N] {
    fn into_column(self) -> ArrayRef {
        T::to_array(Vec::from(self))
    }
}
impl<T: ColumnValue + Clone> IntoColumn for &[T] {
    fn into_column(self) -> ArrayRef {
        T::to_array(self.to_vec())
    }
}
impl IntoColumn for ArrayRef {
    fn into_column(self) -> ArrayRef {
        self
    }
}

/// Builds a [`Table`] from named columns, like Polars' `df!`.
///
/// ```
/// use spillframe_engine::df;
/// let t = df!("k" => ["a", "b"], "v" => [1i64, 2])?;
/// assert_eq!(t.shape(), (2, 2));
/// # Ok::<(), spillframe_engine::Error>(())
/// ```
#[macro_export]
macro_rules! df {
    ($($name:expr => $values:expr),+ $(,)?) => {
        $crate::Table::from_columns(vec![
            $((::std::string::ToString::to_string(&$name), $crate::table::IntoColumn::into_column($values))),+
        ])
    };
}
