//! [`LazyFrame`]: a lazy, Polars-shaped DataFrame over a DataFusion logical plan.
//!
//! Transformations build a plan and never fail on the spot: like Polars, the first error of a
//! chain is kept and returned by the action (`collect`, `count`, `write_*`, ...), so chains
//! need no `?` at every step. Actions run under the session's memory limit and spill.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, UInt64Array};
use arrow::datatypes::SchemaRef;
use datafusion::common::{Column, JoinType as DfJoinType, TableReference};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::arrow::ArrowFormatFactory;
use datafusion::datasource::file_format::csv::CsvFormatFactory;
use datafusion::datasource::file_format::format_as_file_type;
use datafusion::datasource::file_format::parquet::ParquetFormatFactory;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::utils::find_aggregate_exprs;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, SortExpr};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::exec::{Query, QueryMetrics};
use crate::expr::{IntoExpr, output_name};
use crate::session::Session;
use crate::source::FileFormat;
use crate::table::Table;

const LEFT: &str = "__spillframe_left";
const RIGHT: &str = "__spillframe_right";
/// Suffix added to a right-hand column whose name clashes with a left-hand one after a join.
pub const JOIN_SUFFIX: &str = "_right";

/// A lazy DataFrame. Cheap to clone.
#[derive(Clone)]
pub struct LazyFrame {
    session: Session,
    df: Result<DataFrame>,
    /// Files this frame reads, to name them in errors.
    sources: Arc<Vec<PathBuf>>,
}

/// Kinds of join, with Polars' names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    /// Rows with a match on both sides.
    Inner,
    /// All left rows; right columns null where there is no match.
    Left,
    /// All right rows; left columns null where there is no match.
    Right,
    /// All rows of both sides.
    Full,
    /// Left rows that have a match (left columns only).
    Semi,
    /// Left rows that have no match (left columns only).
    Anti,
    /// Every pair of rows.
    Cross,
}

/// Sort options shaped after Polars' `SortMultipleOptions`. By default every key sorts
/// ascending with nulls first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SortMultipleOptions {
    descending: Vec<bool>,
    nulls_last: Vec<bool>,
}

impl SortMultipleOptions {
    /// Default options: ascending, nulls first.
    pub fn new() -> Self {
        Self::default()
    }
    /// The same direction for every key.
    pub fn with_order_descending(mut self, descending: bool) -> Self {
        self.descending = vec![descending];
        self
    }
    /// One direction per key.
    pub fn with_order_descending_multi(
        mut self,
        descending: impl IntoIterator<Item = bool>,
    ) -> Self {
        self.descending = descending.into_iter().collect();
        self
    }
    /// The same null placement for every key.
    pub fn with_nulls_last(mut self, nulls_last: bool) -> Self {
        self.nulls_last = vec![nulls_last];
        self
    }
    /// One null placement per key.
    pub fn with_nulls_last_multi(mut self, nulls_last: impl IntoIterator<Item = bool>) -> Self {
        self.nulls_last = nulls_last.into_iter().collect();
        self
    }

    fn flag(v: &[bool], i: usize, n: usize, what: &str) -> Result<bool> {
        match v.len() {
            0 => Ok(false),
            1 => Ok(v[0]),
            len if len == n => Ok(v[i]),
            len => Err(Error::InvalidArgument(format!(
                "sort has {n} keys but {len} {what} flags were given"
            ))),
        }
    }
}

/// A grouping waiting for its aggregations; see [`LazyFrame::group_by`].
#[derive(Clone)]
pub struct LazyGroupBy {
    frame: LazyFrame,
    keys: Vec<Expr>,
}

impl LazyGroupBy {
    /// Aggregates each group. The result has the key columns, then one column per aggregation.
    pub fn agg(self, aggs: impl IntoIterator<Item = Expr>) -> LazyFrame {
        let keys = self.keys;
        let aggs: Vec<Expr> = aggs.into_iter().collect();
        self.frame.map(|df| Ok(df.aggregate(keys, aggs)?))
    }
}

/// Iterates over a query's result batch by batch, computing them as it goes.
pub struct BatchIter {
    session: Session,
    stream: SendableRecordBatchStream,
}

impl BatchIter {
    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.stream.schema()
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        let stream = &mut self.stream;
        self.session
            .block_on(stream.next())
            .map(|r| r.map_err(Error::from))
    }
}

impl std::fmt::Debug for LazyFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.df {
            Ok(df) => write!(f, "LazyFrame(\n{})", df.logical_plan().display_indent()),
            Err(e) => write!(f, "LazyFrame(error: {e})"),
        }
    }
}

impl LazyFrame {
    pub(crate) fn from_result(
        session: Session,
        df: Result<DataFrame>,
        sources: Vec<PathBuf>,
    ) -> Self {
        LazyFrame {
            session,
            df,
            sources: Arc::new(sources),
        }
    }

    /// A frame over a DataFusion DataFrame built in this session's context (for layers that
    /// build plans with DataFusion's own API, such as the pandas-style compat layer).
    pub fn from_datafusion(session: &Session, df: DataFrame) -> Self {
        LazyFrame::from_result(session.clone(), Ok(df), Vec::new())
    }

    /// The files this frame reads (named in errors).
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// Applies a plan transformation, keeping the first error.
    fn map(self, f: impl FnOnce(DataFrame) -> Result<DataFrame>) -> LazyFrame {
        let df = self.df.and_then(f);
        LazyFrame {
            session: self.session,
            df,
            sources: self.sources,
        }
    }

    /// Combines with another frame, keeping the first error of either.
    fn map2(
        self,
        other: LazyFrame,
        f: impl FnOnce(DataFrame, DataFrame) -> Result<DataFrame>,
    ) -> LazyFrame {
        let mut sources = self.sources.to_vec();
        sources.extend(other.sources.iter().cloned());
        let df = match (self.df, other.df) {
            (Ok(a), Ok(b)) => f(a, b),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        LazyFrame {
            session: self.session,
            df,
            sources: Arc::new(sources),
        }
    }

    /// The session this frame belongs to.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The DataFusion DataFrame behind this frame (or the error of the chain so far).
    pub fn datafusion_frame(&self) -> Result<DataFrame> {
        self.df.clone()
    }

    /// The output schema.
    pub fn schema(&self) -> Result<SchemaRef> {
        let df = self.df.as_ref().map_err(Clone::clone)?;
        Ok(Arc::new(df.schema().as_arrow().clone()))
    }

    /// The output column names.
    pub fn columns(&self) -> Result<Vec<String>> {
        Ok(self
            .schema()?
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect())
    }

    // ----- transformations -------------------------------------------------------------

    /// Keeps the given columns or expressions. When the expressions are aggregations
    /// (`col("v").sum()`), the result is one row, as in Polars.
    pub fn select<E: IntoExpr>(self, exprs: impl IntoIterator<Item = E>) -> LazyFrame {
        let exprs: Vec<Expr> = exprs.into_iter().map(IntoExpr::into_expr).collect();
        self.map(|df| {
            if find_aggregate_exprs(exprs.iter()).is_empty() {
                Ok(df.select(exprs)?)
            } else {
                Ok(df.aggregate(vec![], exprs)?)
            }
        })
    }

    /// Keeps the rows where `predicate` is true.
    pub fn filter(self, predicate: Expr) -> LazyFrame {
        self.map(|df| Ok(df.filter(predicate)?))
    }

    /// Adds a column, or replaces the one with the same name. The name is the expression's
    /// alias (`col("a").mean().alias("m")`) or its column name.
    pub fn with_column(self, expr: Expr) -> LazyFrame {
        self.with_columns([expr])
    }

    /// Adds or replaces several columns. All expressions see the input columns (not each
    /// other's results), as in Polars.
    pub fn with_columns(self, exprs: impl IntoIterator<Item = Expr>) -> LazyFrame {
        let exprs: Vec<Expr> = exprs.into_iter().collect();
        self.map(|df| {
            let mut new: Vec<(String, Expr)> = Vec::new();
            for e in exprs {
                let name = output_name(&e);
                let e = e.unalias().alias(&name);
                match new.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = e,
                    None => new.push((name, e)),
                }
            }
            let mut projection: Vec<Expr> = Vec::new();
            for (qualifier, field) in df.schema().iter() {
                match new.iter().position(|(n, _)| n == field.name()) {
                    Some(i) => projection.push(new.remove(i).1),
                    None => projection.push(field_expr(qualifier, field.name())),
                }
            }
            projection.extend(new.into_iter().map(|(_, e)| e));
            Ok(df.select(projection)?)
        })
    }

    /// Renames columns: `existing[i]` becomes `new[i]`. Every name must exist.
    pub fn rename<A: AsRef<str>, B: AsRef<str>>(
        self,
        existing: impl IntoIterator<Item = A>,
        new: impl IntoIterator<Item = B>,
    ) -> LazyFrame {
        let existing: Vec<String> = existing
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        let new: Vec<String> = new.into_iter().map(|s| s.as_ref().to_string()).collect();
        self.map(|df| {
            if existing.len() != new.len() {
                return Err(Error::InvalidArgument(format!(
                    "rename got {} existing names but {} new names",
                    existing.len(),
                    new.len()
                )));
            }
            check_columns(&df, &existing)?;
            let map: HashMap<&str, &str> = existing
                .iter()
                .map(String::as_str)
                .zip(new.iter().map(String::as_str))
                .collect();
            let projection: Vec<Expr> = df
                .schema()
                .iter()
                .map(|(q, f)| {
                    let e = field_expr(q, f.name());
                    match map.get(f.name().as_str()) {
                        Some(to) => e.alias(*to),
                        None => e,
                    }
                })
                .collect();
            Ok(df.select(projection)?)
        })
    }

    /// Removes columns. Every name must exist.
    pub fn drop<S: AsRef<str>>(self, columns: impl IntoIterator<Item = S>) -> LazyFrame {
        let columns: Vec<String> = columns
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        self.map(|df| {
            check_columns(&df, &columns)?;
            let projection: Vec<Expr> = df
                .schema()
                .iter()
                .filter(|(_, f)| !columns.contains(f.name()))
                .map(|(q, f)| field_expr(q, f.name()))
                .collect();
            Ok(df.select(projection)?)
        })
    }

    /// Groups by keys; finish with [`LazyGroupBy::agg`].
    pub fn group_by<E: IntoExpr>(self, keys: impl IntoIterator<Item = E>) -> LazyGroupBy {
        LazyGroupBy {
            frame: self,
            keys: keys.into_iter().map(IntoExpr::into_expr).collect(),
        }
    }

    /// Joins with `other` on `left_on[i] == right_on[i]`.
    ///
    /// Output columns: the left columns, then the right ones. Key columns appear once, under
    /// their left names (for a right join they hold the right keys; for a full join the
    /// non-null one of the two). A right column whose name clashes with a left one gets the
    /// suffix [`JOIN_SUFFIX`]. Semi and anti joins return the left columns only.
    pub fn join<L: IntoExpr, R: IntoExpr>(
        self,
        other: LazyFrame,
        left_on: impl IntoIterator<Item = L>,
        right_on: impl IntoIterator<Item = R>,
        how: JoinType,
    ) -> LazyFrame {
        let left_on: Vec<Expr> = left_on.into_iter().map(IntoExpr::into_expr).collect();
        let right_on: Vec<Expr> = right_on.into_iter().map(IntoExpr::into_expr).collect();
        self.map2(other, |l, r| join_frames(l, r, &left_on, &right_on, how))
    }

    /// Inner join on columns with the same names on both sides... or different names.
    pub fn inner_join<L: IntoExpr, R: IntoExpr>(
        self,
        other: LazyFrame,
        left_on: impl IntoIterator<Item = L>,
        right_on: impl IntoIterator<Item = R>,
    ) -> LazyFrame {
        self.join(other, left_on, right_on, JoinType::Inner)
    }

    /// Left join.
    pub fn left_join<L: IntoExpr, R: IntoExpr>(
        self,
        other: LazyFrame,
        left_on: impl IntoIterator<Item = L>,
        right_on: impl IntoIterator<Item = R>,
    ) -> LazyFrame {
        self.join(other, left_on, right_on, JoinType::Left)
    }

    /// Cartesian product.
    pub fn cross_join(self, other: LazyFrame) -> LazyFrame {
        self.join(
            other,
            Vec::<Expr>::new(),
            Vec::<Expr>::new(),
            JoinType::Cross,
        )
    }

    /// Sorts by one or more keys.
    pub fn sort<E: IntoExpr>(
        self,
        by: impl IntoIterator<Item = E>,
        options: SortMultipleOptions,
    ) -> LazyFrame {
        let by: Vec<Expr> = by.into_iter().map(IntoExpr::into_expr).collect();
        self.map(|df| {
            if by.is_empty() {
                return Err(Error::InvalidArgument("sort needs at least one key".into()));
            }
            let n = by.len();
            let mut keys = Vec::with_capacity(n);
            for (i, e) in by.into_iter().enumerate() {
                let desc = SortMultipleOptions::flag(&options.descending, i, n, "descending")?;
                let nulls_last =
                    SortMultipleOptions::flag(&options.nulls_last, i, n, "nulls_last")?;
                keys.push(SortExpr::new(e, !desc, !nulls_last));
            }
            Ok(df.sort(keys)?)
        })
    }

    /// The first `n` rows.
    pub fn limit(self, n: usize) -> LazyFrame {
        self.map(|df| Ok(df.limit(0, Some(n))?))
    }

    /// The first `n` rows (same as [`limit`](Self::limit)).
    pub fn head(self, n: usize) -> LazyFrame {
        self.limit(n)
    }

    /// `len` rows starting at `offset`.
    pub fn slice(self, offset: usize, len: usize) -> LazyFrame {
        self.map(|df| Ok(df.limit(offset, Some(len))?))
    }

    /// Distinct rows; with `subset`, one (arbitrary) row per distinct combination of those
    /// columns, as Polars' `unique(subset, UniqueKeepStrategy::Any)`.
    pub fn unique<S: AsRef<str>>(self, subset: Option<Vec<S>>) -> LazyFrame {
        let subset: Option<Vec<String>> =
            subset.map(|v| v.iter().map(|s| s.as_ref().to_string()).collect());
        self.map(|df| match subset {
            None => Ok(df.distinct()?),
            Some(cols) => {
                check_columns(&df, &cols)?;
                let on: Vec<Expr> = cols.iter().map(crate::expr::col).collect();
                let all: Vec<Expr> = df
                    .schema()
                    .iter()
                    .map(|(q, f)| field_expr(q, f.name()))
                    .collect();
                Ok(df.distinct_on(on, all, None)?)
            }
        })
    }

    /// Distinct rows (same as `unique(None)`).
    pub fn distinct(self) -> LazyFrame {
        self.unique::<&str>(None)
    }

    /// Appends the rows of `other`, which must have the same column names in the same order.
    pub fn union(self, other: LazyFrame) -> LazyFrame {
        self.map2(other, |a, b| {
            let an: Vec<&String> = a.schema().fields().iter().map(|f| f.name()).collect();
            let bn: Vec<&String> = b.schema().fields().iter().map(|f| f.name()).collect();
            if an != bn {
                return Err(Error::InvalidArgument(format!(
                    "union needs the same columns in the same order; left has [{}], right has [{}]",
                    join_names(&an),
                    join_names(&bn)
                )));
            }
            Ok(a.union(b)?)
        })
    }

    /// Summary statistics of every column (count, null_count, mean, std, min, max, median).
    pub fn describe(&self) -> Result<Table> {
        let df = self.datafusion_frame()?;
        let described = self.session.block_on(df.describe())?;
        LazyFrame::from_result(self.session.clone(), Ok(described), self.sources.to_vec()).collect()
    }

    /// The plan as text. With `analyze`, runs the query and shows each operator's metrics
    /// followed by the query's summary line.
    pub fn explain(&self, analyze: bool) -> Result<String> {
        let df = self.datafusion_frame()?;
        let logical = df.logical_plan().display_indent().to_string();
        let query = self.query()?;
        if analyze {
            let (_, metrics) = query.run()?;
            Ok(format!(
                "== Physical plan with metrics ==\n{}\n== Summary ==\n{metrics}\n",
                query.display_plan(true)
            ))
        } else {
            Ok(format!(
                "== Logical plan ==\n{logical}\n\n== Physical plan ==\n{}",
                query.display_plan(false)
            ))
        }
    }

    // ----- actions ---------------------------------------------------------------------

    /// Plans the query without running it; the [`Query`] reports progress while it runs.
    pub fn query(&self) -> Result<Query> {
        let df = self.datafusion_frame()?;
        let task_ctx = Arc::new(df.task_ctx());
        let plan = self
            .session
            .block_on(async move { df.create_physical_plan().await })?;
        Ok(Query::new(
            self.session.clone(),
            plan,
            task_ctx,
            self.sources.to_vec(),
        ))
    }

    /// Runs the query and returns the result.
    pub fn collect(&self) -> Result<Table> {
        Ok(self.collect_with_metrics()?.0)
    }

    /// Runs the query and returns the result with the query's metrics.
    pub fn collect_with_metrics(&self) -> Result<(Table, QueryMetrics)> {
        let schema = self.schema()?;
        let (batches, metrics) = self.query()?.run()?;
        Ok((Table::new(schema, batches), metrics))
    }

    /// Async form of [`collect`](Self::collect).
    pub async fn collect_async(&self) -> Result<Table> {
        let schema = self.schema()?;
        let df = self.datafusion_frame()?;
        let task_ctx = Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        let query = Query::new(self.session.clone(), plan, task_ctx, self.sources.to_vec());
        let (batches, _) = query.run_async().await?;
        Ok(Table::new(schema, batches))
    }

    /// Runs the frame now and keeps its result in the session's partition store (in memory
    /// while it fits, evicted to spill files when memory is short); returns a frame over the
    /// stored result, so later queries do not recompute it. The stored partitions are freed
    /// when the returned frame and every frame derived from it are dropped.
    pub fn cache(&self) -> Result<LazyFrame> {
        let query = self.query()?;
        let plan = Arc::clone(query.plan());
        let task = query.task_context();
        let store = self.session.store().clone();
        let parts = self
            .session
            .block_on(
                async move { crate::stored::materialize(&store, plan, task, "cache()").await },
            )
            .map_err(Error::from)?;
        self.session.frame_over_stored(parts, self.sources.to_vec())
    }

    /// The same as [`cache`](Self::cache) (the name Spark and Dask use).
    pub fn persist(&self) -> Result<LazyFrame> {
        self.cache()
    }

    /// Number of rows.
    pub fn count(&self) -> Result<usize> {
        let df = self.datafusion_frame()?;
        self.session
            .block_on(async move { df.count().await })
            .map_err(|e| self.read_error(e))
    }

    /// The result as an iterator of batches, computed as they are consumed.
    pub fn stream(&self) -> Result<BatchIter> {
        Ok(BatchIter {
            session: self.session.clone(),
            stream: self.stream_async_inner()?,
        })
    }

    /// The result as an async stream of batches.
    pub async fn stream_async(&self) -> Result<SendableRecordBatchStream> {
        let df = self.datafusion_frame()?;
        Ok(df.execute_stream().await?)
    }

    fn stream_async_inner(&self) -> Result<SendableRecordBatchStream> {
        let df = self.datafusion_frame()?;
        self.session
            .block_on(async move { df.execute_stream().await })
            .map_err(Error::from)
    }

    /// Writes the result to one Parquet file.
    pub fn write_parquet(&self, path: impl AsRef<Path>) -> Result<QueryMetrics> {
        self.write(FileFormat::Parquet, path.as_ref())
    }

    /// Writes the result to one CSV file with a header row.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<QueryMetrics> {
        self.write(FileFormat::Csv, path.as_ref())
    }

    /// Writes the result to one Arrow IPC file.
    pub fn write_ipc(&self, path: impl AsRef<Path>) -> Result<QueryMetrics> {
        self.write(FileFormat::Ipc, path.as_ref())
    }

    /// Writes in `format`; the planned write can be watched through [`Query::progress`].
    ///
    /// The output goes to a hidden staging file beside `path`, moved over `path` only when
    /// the run succeeds: a failed or interrupted write leaves an existing file as it was.
    pub fn write_query(&self, format: FileFormat, path: &Path) -> Result<Query> {
        let df = self.datafusion_frame()?;
        let file_type = match format {
            FileFormat::Parquet => format_as_file_type(Arc::new(ParquetFormatFactory::new())),
            FileFormat::Csv => format_as_file_type(Arc::new(CsvFormatFactory::new())),
            FileFormat::Ipc => format_as_file_type(Arc::new(ArrowFormatFactory)),
            FileFormat::Json => {
                return Err(Error::InvalidArgument(
                    "writing JSON is not supported; write Parquet, CSV or Arrow IPC".into(),
                ));
            }
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("cannot create output directory", parent, e))?;
        }
        let target = std::path::absolute(path)
            .map_err(|e| Error::io("cannot resolve output path", path, e))?;
        let staged = crate::output::StagedOutput::create(&target)?;
        let mut options = HashMap::new();
        options.insert("single_file_output".to_string(), "true".to_string());
        let (state, plan) = df.into_parts();
        let plan = LogicalPlanBuilder::copy_to(
            plan,
            staged.staging().to_string_lossy().into_owned(),
            file_type,
            options,
            vec![],
        )?
        .build()?;
        let write = LazyFrame::from_result(
            self.session.clone(),
            Ok(DataFrame::new(state, plan)),
            self.sources.to_vec(),
        );
        Ok(write.query()?.with_output(staged))
    }

    fn write(&self, format: FileFormat, path: &Path) -> Result<QueryMetrics> {
        let query = self.write_query(format, path)?;
        let (batches, mut metrics) = query.run()?;
        metrics.rows = rows_written_by(&batches);
        Ok(metrics)
    }

    fn read_error(&self, e: datafusion::error::DataFusionError) -> Error {
        if self.sources.is_empty() {
            Error::from(e)
        } else {
            crate::source::with_file_context(e, &self.sources)
        }
    }
}

/// Stacks frames vertically (all must have the same columns), like Polars' `concat`.
pub fn concat(frames: impl IntoIterator<Item = LazyFrame>) -> Result<LazyFrame> {
    let mut it = frames.into_iter();
    let first = it
        .next()
        .ok_or_else(|| Error::InvalidArgument("concat needs at least one frame".into()))?;
    Ok(it.fold(first, LazyFrame::union))
}

/// The rows a write query reports (its single `count` output column).
pub fn rows_written_by(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
        .flat_map(|a| (0..a.len()).map(move |i| a.value(i)))
        .sum()
}

fn field_expr(qualifier: Option<&TableReference>, name: &str) -> Expr {
    Expr::Column(Column::new(qualifier.cloned(), name))
}

fn join_names(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_columns(df: &DataFrame, names: &[String]) -> Result<()> {
    for n in names {
        if df.schema().fields().iter().all(|f| f.name() != n) {
            return Err(Error::ColumnNotFound {
                column: n.clone(),
                available: df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

fn key_names(df: &DataFrame, keys: &[Expr], side: &str) -> Result<Vec<String>> {
    let names = keys
        .iter()
        .map(|k| match k {
            Expr::Column(c) => Ok(c.name.clone()),
            other => Err(Error::InvalidArgument(format!(
                "{side} join key '{other}' is not a column; add it with with_column first"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    check_columns(df, &names)?;
    Ok(names)
}

fn join_frames(
    left: DataFrame,
    right: DataFrame,
    left_on: &[Expr],
    right_on: &[Expr],
    how: JoinType,
) -> Result<DataFrame> {
    let lk = key_names(&left, left_on, "left")?;
    let rk = key_names(&right, right_on, "right")?;
    if lk.len() != rk.len() {
        return Err(Error::InvalidArgument(format!(
            "join has {} left keys but {} right keys",
            lk.len(),
            rk.len()
        )));
    }
    if how != JoinType::Cross && lk.is_empty() {
        return Err(Error::InvalidArgument(
            "join needs at least one key (use cross_join for a cartesian product)".into(),
        ));
    }
    let left_names: Vec<String> = left
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let right_names: Vec<String> = right
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let left = left.alias(LEFT)?;
    let right = right.alias(RIGHT)?;
    let l = |n: &str| Expr::Column(Column::new(Some(LEFT), n));
    let r = |n: &str| Expr::Column(Column::new(Some(RIGHT), n));

    let joined = if how == JoinType::Cross {
        let (state, lp) = left.into_parts();
        let (_, rp) = right.into_parts();
        DataFrame::new(state, LogicalPlanBuilder::from(lp).cross_join(rp)?.build()?)
    } else {
        let jt = match how {
            JoinType::Inner => DfJoinType::Inner,
            JoinType::Left => DfJoinType::Left,
            JoinType::Right => DfJoinType::Right,
            JoinType::Full => DfJoinType::Full,
            JoinType::Semi => DfJoinType::LeftSemi,
            JoinType::Anti => DfJoinType::LeftAnti,
            JoinType::Cross => DfJoinType::Inner,
        };
        let lk_ref: Vec<&str> = lk.iter().map(String::as_str).collect();
        let rk_ref: Vec<&str> = rk.iter().map(String::as_str).collect();
        left.join(right, jt, &lk_ref, &rk_ref, None)?
    };

    let mut projection: Vec<Expr> = Vec::new();
    for name in &left_names {
        let e = match lk.iter().position(|k| k == name) {
            Some(i) if how == JoinType::Right => r(&rk[i]),
            Some(i) if how == JoinType::Full => {
                datafusion::functions::core::expr_fn::coalesce(vec![l(name), r(&rk[i])])
            }
            _ => l(name),
        };
        projection.push(e.alias(name));
    }
    if !matches!(how, JoinType::Semi | JoinType::Anti) {
        for name in &right_names {
            if how != JoinType::Cross && rk.contains(name) {
                continue;
            }
            let out = if left_names.contains(name) {
                format!("{name}{JOIN_SUFFIX}")
            } else {
                name.clone()
            };
            projection.push(r(name).alias(out));
        }
    }
    Ok(joined.select(projection)?)
}
