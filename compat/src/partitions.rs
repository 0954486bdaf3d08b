//! `map_partitions` (Dask's name) and `pipe` on the pandas-style frame.
//!
//! `map_partitions` cuts the rows, in order, into contiguous partitions, runs a Rust function
//! on each through the engine's job machinery (on the worker pool, results in the partition
//! store), and concatenates the results in partition order, as Dask does. Each partition is
//! one Arrow batch of the frame's visible columns.
//!
//! How the order is kept: rows are numbered (`__sf_pos`) and given a partition number
//! (`__sf_chunk` = position / rows per partition); the job hash-partitions on the partition
//! number ([`MapJob::partition_by`](spillframe_engine::jobs::MapJob::partition_by)), which
//! sends each partition whole to one task, which sorts its rows by position and calls the
//! function once per partition. Each output row gets the partition number and its row number
//! within the output (`__sf_row`), and these are the result's order keys.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::logical_expr::SortExpr;
use datafusion::prelude::lit;
use spillframe_engine::LazyFrame;
use spillframe_engine::jobs::{FnError, Partition};

use crate::error::{Result, invalid};
use crate::frame::{DataFrame, c};
use crate::positioned::POS;

const CHUNK: &str = "__sf_chunk";
const ROW: &str = "__sf_row";

impl DataFrame {
    /// Calls `f` with the frame (pandas' `pipe`), for chains of user functions.
    pub fn pipe<T>(&self, f: impl FnOnce(&DataFrame) -> T) -> T {
        f(self)
    }

    /// Runs `f` on `npartitions` contiguous pieces of the rows, in order, and concatenates
    /// what it returns in that order (Dask's `map_partitions`). Each piece reaches `f` as one
    /// batch of the visible columns; `f` may change the rows and the columns, but every piece
    /// must give the same columns. A frame with no rows calls `f` once on an empty batch, so
    /// the result's columns are known.
    ///
    /// The pieces run in parallel on the session's worker pool, and the results are kept in
    /// the partition store (spilled when memory is short). The work runs now, not when the
    /// result is collected. A failure of `f` names the piece.
    pub fn map_partitions<F, E>(&self, npartitions: usize, f: F) -> Result<DataFrame>
    where
        F: Fn(RecordBatch) -> std::result::Result<RecordBatch, E> + Send + Sync + 'static,
        E: Into<FnError>,
    {
        if npartitions == 0 {
            return Err(invalid("map_partitions", "npartitions must be at least 1"));
        }
        let numbered = self.renumbered()?;
        let rows = numbered.len()?;
        let per = rows.div_ceil(npartitions).max(1) as i64;
        let visible = self.columns();
        let mut exprs: Vec<_> = visible.iter().map(|n| c(n)).collect();
        exprs.push(c(POS));
        exprs.push((c(POS) / lit(per)).alias(CHUNK));
        let df = numbered.df.clone().select(exprs)?;
        let pieces = Pieces {
            f,
            visible: (0..visible.len()).collect(),
            seen: parking_lot::Mutex::new(HashSet::new()),
        };
        let out = LazyFrame::from_datafusion(&self.session, df)
            .map_partitions(move |p: Partition| pieces.run(p))
            .partition_by(&[CHUNK], npartitions)
            // Each task handles its pieces in order and numbers their rows.
            .sorted_by(&[CHUNK, ROW])
            .name("map_partitions")
            .collect()?;
        Ok(DataFrame::wrap(
            &self.session,
            out.datafusion_frame()?,
            vec![
                SortExpr::new(c(CHUNK), true, false),
                SortExpr::new(c(ROW), true, false),
            ],
        ))
    }
}

/// The user function and what is needed to cut an engine partition into its pieces.
struct Pieces<F> {
    f: F,
    /// Indices of the visible columns (they come first).
    visible: Vec<usize>,
    /// Piece numbers already handled: a piece seen twice would mean a piece was split
    /// between partitions, which would break the order; that is an error, never a silent
    /// misorder.
    seen: parking_lot::Mutex<HashSet<i64>>,
}

impl<F, E> Pieces<F>
where
    F: Fn(RecordBatch) -> std::result::Result<RecordBatch, E>,
    E: Into<FnError>,
{
    fn run(&self, p: Partition) -> std::result::Result<Vec<RecordBatch>, FnError> {
        let all = p.concat()?;
        let pos = all.schema().index_of(POS)?;
        let chunk = all.schema().index_of(CHUNK)?;
        let order = arrow::compute::sort_to_indices(all.column(pos), None, None)?;
        let sorted = arrow::compute::take_record_batch(&all, &order)?;
        let ids = sorted.column(chunk).as_primitive::<Int64Type>().clone();
        if sorted.num_rows() == 0 {
            // No rows here: the function still says what its columns are.
            let out = (self.f)(sorted.project(&self.visible)?).map_err(Into::into)?;
            return Ok(vec![with_keys(out, 0)?]);
        }
        let mut out = Vec::new();
        let mut start = 0;
        while start < sorted.num_rows() {
            let id = ids.value(start);
            let end = (start..sorted.num_rows())
                .find(|&i| ids.value(i) != id)
                .unwrap_or(sorted.num_rows());
            if !self.seen.lock().insert(id) {
                return Err(format!("piece {id} was split between partitions").into());
            }
            let piece = sorted.slice(start, end - start).project(&self.visible)?;
            let result = (self.f)(piece)
                .map_err(Into::into)
                .map_err(|e| format!("piece {id}: {e}"))?;
            out.push(with_keys(result, id)?);
            start = end;
        }
        Ok(out)
    }
}

/// `batch` with the piece number and each row's number appended (hidden order keys).
fn with_keys(batch: RecordBatch, piece: i64) -> std::result::Result<RecordBatch, FnError> {
    if batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.name().starts_with("__sf_"))
    {
        return Err(
            "the function returned a column whose name starts with '__sf_' \
                    (reserved for spillframe's hidden columns)"
                .into(),
        );
    }
    let n = batch.num_rows() as i64;
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(CHUNK, DataType::Int64, false)));
    fields.push(Arc::new(Field::new(ROW, DataType::Int64, false)));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(vec![piece; n as usize])));
    columns.push(Arc::new(Int64Array::from_iter_values(0..n)));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
