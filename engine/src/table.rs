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
        let mut preview = Preview::new(self.schema.clone(), max_rows);
        for b in &self.batches {
            if let Err(e) = preview.push(b.clone()) {
                return format!("<cannot print: {e}>\n");
            }
        }
        preview.format()
    }
}

/// The printable part of a result that streams past: its first and last rows and its row
/// count, so that printing a result of any size holds at most `max_rows` rows.
/// [`Table::format`] prints the same way.
#[derive(Debug)]
pub struct Preview {
    schema: SchemaRef,
    head_limit: usize,
    tail_limit: usize,
    head: Vec<RecordBatch>,
    head_rows: usize,
    /// The last rows seen after the head, compacted (copied out of their source batches, so
    /// that a kept row does not keep its whole batch alive).
    tail: std::collections::VecDeque<RecordBatch>,
    tail_rows: usize,
    rows: u64,
}

impl Preview {
    /// An empty preview of a result with `schema` that shows at most `max_rows` rows: the
    /// first two thirds and the last third of a longer result.
    pub fn new(schema: SchemaRef, max_rows: usize) -> Preview {
        let head_limit = (max_rows.div_ceil(3) * 2).min(max_rows);
        Preview {
            schema,
            head_limit,
            tail_limit: max_rows - head_limit,
            head: Vec::new(),
            head_rows: 0,
            tail: Default::default(),
            tail_rows: 0,
            rows: 0,
        }
    }

    /// Takes the next batch of the result: keeps what may be shown and counts the rest.
    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        self.rows += n as u64;
        let to_head = (self.head_limit - self.head_rows).min(n);
        if to_head > 0 {
            self.head.push(compact(&batch.slice(0, to_head))?);
            self.head_rows += to_head;
        }
        let rest = n - to_head;
        if rest == 0 || self.tail_limit == 0 {
            return Ok(());
        }
        let keep = rest.min(self.tail_limit);
        self.tail.push_back(compact(&batch.slice(n - keep, keep))?);
        self.tail_rows += keep;
        while let Some(front) = self.tail.front() {
            let excess = self.tail_rows.saturating_sub(self.tail_limit);
            if excess == 0 {
                break;
            }
            let front_rows = front.num_rows();
            if front_rows <= excess {
                self.tail.pop_front();
                self.tail_rows -= front_rows;
            } else {
                let trimmed = compact(&front.slice(excess, front_rows - excess))?;
                self.tail[0] = trimmed;
                self.tail_rows -= excess;
            }
        }
        Ok(())
    }

    /// Rows seen so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The preview as text: shape, then the rows, with a marker where rows were left out.
    pub fn format(&self) -> String {
        let mut out = format!("shape: ({}, {})\n", self.rows, self.schema.fields().len());
        let shown_rows = (self.head_rows + self.tail_rows) as u64;
        let left_out = self.rows - shown_rows;
        let mut shown: Vec<RecordBatch> = self.head.iter().chain(&self.tail).cloned().collect();
        if shown.is_empty() {
            shown.push(RecordBatch::new_empty(self.schema.clone()));
        }
        let text = match arrow::util::pretty::pretty_format_batches(&shown) {
            Ok(t) => t.to_string(),
            Err(e) => return format!("{out}<cannot print: {e}>\n"),
        };
        if left_out == 0 {
            out.push_str(&text);
            out.push('\n');
            return out;
        }
        // The header is 3 lines (border, names, border), then the head rows.
        let lines: Vec<&str> = text.lines().collect();
        let split = (3 + self.head_rows).min(lines.len());
        for l in &lines[..split] {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str(&format!("… {left_out} more rows …\n"));
        for l in &lines[split..] {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// A copy of `batch` that owns only its own rows: `take` copies values out of shared
/// buffers, and string and binary views are garbage-collected, since their `take` keeps the
/// source's data buffers.
fn compact(batch: &RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{Array, AsArray, UInt32Array};
    use arrow::datatypes::DataType;
    let indices = UInt32Array::from_iter_values(0..batch.num_rows() as u32);
    let taken = arrow::compute::take_record_batch(batch, &indices)?;
    let columns = taken
        .columns()
        .iter()
        .map(|c| -> ArrayRef {
            match c.data_type() {
                DataType::Utf8View => Arc::new(c.as_string_view().gc()),
                DataType::BinaryView => Arc::new(c.as_binary_view().gc()),
                _ => c.clone(),
            }
        })
        .collect();
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(taken.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        taken.schema(),
        columns,
        &options,
    )?)
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
