//! Block nested-loop joins: cross joins and joins on conditions with no equality.
//!
//! DataFusion's `CrossJoinExec` and `NestedLoopJoinExec` hold their whole left (build) side in
//! memory. (`NestedLoopJoinExec` has a memory-limited fallback in DataFusion 55, but it fails
//! with an internal error when the first left batch is refused, and its own documentation says
//! it gives duplicate rows for left-preserving joins over several right partitions.)
//!
//! [`ChunkedNestedLoopExec`] needs neither side whole in memory:
//!
//! 1. It streams its right input once into the [partition store](spillframe_spill::store),
//!    and its left input into *chunks*: store partitions of at most a bucket's share of memory.
//!    The store evicts what does not fit to spill files.
//! 2. Each output partition takes every `P`-th chunk and runs DataFusion's own join with that
//!    chunk as the left side and the stored right side, re-read from the store for every chunk.
//!
//! That is only correct when each left row's output depends on that row and the whole right
//! side: inner and cross joins, and left outer, semi, anti and mark joins. [`plan`] brings
//! every other join type to that form: right-side joins swap their inputs, and a full join is
//! a left join of the left chunks plus a right anti join (as a left anti join of the right
//! chunks), with nulls in place of the left columns.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::JoinType;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions, reset_plan_states,
};
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use spillframe_spill::PartitionId;
use tokio::sync::OnceCell;

use super::{
    Created, OutOfCoreContext, RunError, compact_views, external, make_room, once_shared,
    project_columns, send_all,
};
use crate::stored::{StoreScanExec, StoredPartitions};

/// Replaces a nested-loop join whose left side may not fit in memory with chunked execution.
/// See the [module documentation](self).
/// `plan` is `join` itself.
pub(crate) fn plan(
    plan: &Arc<dyn ExecutionPlan>,
    join: &NestedLoopJoinExec,
    ctx: &Arc<OutOfCoreContext>,
) -> Result<Arc<dyn ExecutionPlan>> {
    match join.join_type() {
        JoinType::Inner
        | JoinType::Left
        | JoinType::LeftSemi
        | JoinType::LeftAnti
        | JoinType::LeftMark => Ok(Arc::new(ChunkedNestedLoopExec::new(Arc::clone(plan), ctx)?)),
        JoinType::Right | JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
            // The swapped join is a left-side join, maybe under a projection that restores the
            // column order.
            let swapped = join.swap_inputs()?;
            if swapped.is::<NestedLoopJoinExec>() {
                return Ok(Arc::new(ChunkedNestedLoopExec::new(swapped, ctx)?));
            }
            let inner = Arc::clone(swapped.children()[0]);
            let chunked: Arc<dyn ExecutionPlan> = Arc::new(ChunkedNestedLoopExec::new(inner, ctx)?);
            with_children(swapped, vec![chunked])
        }
        JoinType::Full => full(join, ctx),
    }
}

/// A full join as (left join of the left chunks) ∪ (right rows no left row matches, with null
/// left columns).
fn full(join: &NestedLoopJoinExec, ctx: &Arc<OutOfCoreContext>) -> Result<Arc<dyn ExecutionPlan>> {
    let (left, right) = (join.left(), join.right());
    let matched = NestedLoopJoinExec::try_new(
        Arc::clone(left),
        Arc::clone(right),
        join.filter().cloned(),
        &JoinType::Left,
        None,
    )?;
    // The inputs run a second time, as independent copies of their plans.
    let unmatched = NestedLoopJoinExec::try_new(
        reset_plan_states(Arc::clone(right))?,
        reset_plan_states(Arc::clone(left))?,
        join.filter().map(JoinFilter::swap),
        &JoinType::LeftAnti,
        None,
    )?;
    let full_schema = matched.schema();
    let left_width = left.schema().fields().len();
    let unmatched: Arc<dyn ExecutionPlan> =
        Arc::new(ChunkedNestedLoopExec::new(Arc::new(unmatched), ctx)?);
    let exprs = full_schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let expr: Arc<dyn PhysicalExpr> = if i < left_width {
                Arc::new(Literal::new(ScalarValue::try_from(f.data_type())?))
            } else {
                Arc::new(Column::new(f.name(), i - left_width))
            };
            Ok(ProjectionExpr::new(expr, f.name().clone()))
        })
        .collect::<Result<Vec<_>>>()?;
    let padded: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(exprs, unmatched)?);
    let matched: Arc<dyn ExecutionPlan> =
        Arc::new(ChunkedNestedLoopExec::new(Arc::new(matched), ctx)?);
    let union = UnionExec::try_new(vec![matched, padded])?;
    match join.projection() {
        None => Ok(union),
        Some(indices) => project_columns(union, indices),
    }
}

/// `plan` over new inputs, as a new instance with its properties recomputed.
pub(crate) fn with_children(
    plan: Arc<dyn ExecutionPlan>,
    children: Vec<Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.replace_children(
        children,
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}

/// Cuts `batch` into row ranges of at most about `budget` bytes each. See [`cut_rows`].
fn split_to_budget(batch: RecordBatch, budget: u64) -> Result<Vec<RecordBatch>> {
    let batch = compact_views(batch)?;
    let size = batch.get_array_memory_size() as u64;
    if size <= budget {
        return Ok(vec![batch]);
    }
    cut_rows(&batch, size.div_ceil(budget.max(1)) as usize)
}

/// Cuts `batch` into `pieces` row ranges of nearly equal length (fewer when it has fewer
/// rows), each owning its memory: a slice would report, and keep alive, the whole batch's
/// buffers.
fn cut_rows(batch: &RecordBatch, pieces: usize) -> Result<Vec<RecordBatch>> {
    let rows = batch.num_rows();
    let per_piece = rows.div_ceil(pieces.clamp(1, rows.max(1))).max(1);
    (0..rows)
        .step_by(per_piece)
        .map(|start| {
            let slice = batch.slice(start, per_piece.min(rows - start));
            compact_views(concat_batches(&batch.schema(), [&slice])?)
        })
        .collect()
}

/// The store partitions a run reads: the left side's chunks and the right side's partitions.
#[derive(Debug)]
struct Stored {
    chunks: Vec<PartitionId>,
    right: Vec<PartitionId>,
    /// Output partitions still running; the last one removes the right side.
    running: AtomicUsize,
}

type SharedStored = std::result::Result<Arc<Stored>, Arc<DataFusionError>>;

/// A left-side nested-loop join (or cross join) run one left chunk at a time. See the
/// [module documentation](self).
#[derive(Debug)]
pub(crate) struct ChunkedNestedLoopExec {
    /// The join with the original inputs; each chunk runs a copy with new children.
    template: Arc<dyn ExecutionPlan>,
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    ctx: Arc<OutOfCoreContext>,
    shared: Arc<OnceCell<SharedStored>>,
    created: Arc<Created>,
    props: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl ChunkedNestedLoopExec {
    /// Chunks `template`'s left input; `template` must be a `NestedLoopJoinExec` or
    /// `CrossJoinExec` whose output rows depend on one left row each (see [`plan`]).
    pub(crate) fn new(
        template: Arc<dyn ExecutionPlan>,
        ctx: &Arc<OutOfCoreContext>,
    ) -> Result<Self> {
        let children = template.children();
        let [left, right] = children.as_slice() else {
            return Err(DataFusionError::Internal(format!(
                "a nested-loop join has two inputs, not {}",
                children.len()
            )));
        };
        let (left, right) = (Arc::clone(left), Arc::clone(right));
        let props = PlanProperties::new(
            EquivalenceProperties::new(template.schema()),
            Partitioning::UnknownPartitioning(ctx.target_partitions.max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(ChunkedNestedLoopExec {
            template,
            left,
            right,
            ctx: Arc::clone(ctx),
            shared: Arc::new(OnceCell::new()),
            created: Arc::new(Created {
                store: ctx.store.clone(),
                ids: Default::default(),
            }),
            props: Arc::new(props),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    fn describe(&self) -> String {
        match self.template.downcast_ref::<NestedLoopJoinExec>() {
            Some(j) => format!("NestedLoopJoin {}", j.join_type()),
            None => self.template.name().to_string(),
        }
    }
}

impl DisplayAs for ChunkedNestedLoopExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkedNestedLoopExec: {}", self.describe())?;
        if let Some(filter) = self
            .template
            .downcast_ref::<NestedLoopJoinExec>()
            .and_then(|j| j.filter())
        {
            write!(f, ", filter={}", filter.expression())?;
        }
        Ok(())
    }
}

impl ExecutionPlan for ChunkedNestedLoopExec {
    fn name(&self) -> &str {
        "ChunkedNestedLoopExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.template.apply_expressions(f)
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![true, true]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let template = with_children(Arc::clone(&self.template), children)?;
        Ok(Arc::new(ChunkedNestedLoopExec::new(template, &self.ctx)?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let outputs = self.props.output_partitioning().partition_count();
        let run = ChunkRun {
            template: Arc::clone(&self.template),
            left: Arc::clone(&self.left),
            right: Arc::clone(&self.right),
            ctx: Arc::clone(&self.ctx),
            created: Arc::clone(&self.created),
            task: context,
            chunks_run: MetricBuilder::new(&self.metrics).counter("chunks_run", partition),
            describe: self.describe(),
        };
        let shared = Arc::clone(&self.shared);
        let mut builder = RecordBatchReceiverStream::builder(self.schema(), 2);
        let tx = builder.tx();
        builder.spawn(async move {
            let stored = once_shared(&shared, || run.store_inputs(outputs)).await?;
            let mut pending: Vec<PartitionId> = stored
                .chunks
                .iter()
                .enumerate()
                .filter(|(i, _)| i % outputs == partition)
                .map(|(_, c)| *c)
                .rev()
                .collect();
            let mut result = Ok(());
            while let Some(chunk) = pending.pop() {
                match run.run_chunk(chunk, &stored.right, &tx).await {
                    Ok(halves) => pending.extend(halves.into_iter().rev()),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            for chunk in pending {
                run.ctx.store.remove(chunk);
            }
            if stored.running.fetch_sub(1, Ordering::AcqRel) == 1 {
                for id in &stored.right {
                    run.ctx.store.remove(*id);
                }
            }
            result
        });
        Ok(builder.build())
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// What one output partition's task needs.
struct ChunkRun {
    template: Arc<dyn ExecutionPlan>,
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    ctx: Arc<OutOfCoreContext>,
    created: Arc<Created>,
    task: Arc<TaskContext>,
    chunks_run: Count,
    describe: String,
}

impl ChunkRun {
    /// Streams the right input into one store partition per input partition and the left
    /// input into chunks.
    async fn store_inputs(&self, outputs: usize) -> Result<Stored> {
        let budget = self.ctx.task_bucket_budget(&self.task);
        let mut jobs = Vec::new();
        let mut right = Vec::new();
        for p in 0..self.right.output_partitioning().partition_count() {
            let id = self.created.create(
                self.right.schema(),
                format!("right input {p} of {}", self.describe),
                // Rows kept by arrival, not by a rule that running the input again repeats:
                // no lineage (replicated as the cluster asks).
                false,
            )?;
            right.push(id);
            let stream = self.right.execute(p, Arc::clone(&self.task))?;
            jobs.push(self.store_stream(stream, id, None));
        }
        for p in 0..self.left.output_partitioning().partition_count() {
            let id = self.new_chunk(p)?;
            let stream = self.left.execute(p, Arc::clone(&self.task))?;
            jobs.push(self.store_stream(stream, id, Some((p, budget))));
        }
        // The first results are the right side's (one partition each); chunks follow.
        let results = futures::future::try_join_all(jobs).await?;
        let chunks: Vec<PartitionId> = results.into_iter().skip(right.len()).flatten().collect();
        let stored = Stored {
            chunks: chunks
                .into_iter()
                .filter(|id| {
                    let empty = self
                        .ctx
                        .store
                        .info(*id)
                        .map(|i| i.rows == 0)
                        .unwrap_or(true);
                    if empty {
                        self.ctx.store.remove(*id);
                    }
                    !empty
                })
                .collect(),
            right,
            running: AtomicUsize::new(outputs),
        };
        tracing::debug!(
            chunks = stored.chunks.len(),
            budget,
            "nested-loop join inputs stored"
        );
        Ok(stored)
    }

    fn new_chunk(&self, input_partition: usize) -> Result<PartitionId> {
        self.created.create(
            self.left.schema(),
            format!(
                "left chunk of input partition {input_partition} of {}",
                self.describe
            ),
            false,
        )
    }

    /// Appends `stream` to the store partition `first`. With `chunking = Some((partition,
    /// budget))`, starts a new partition whenever the current one holds `budget` bytes.
    /// Returns the partitions written.
    async fn store_stream(
        &self,
        mut stream: SendableRecordBatchStream,
        first: PartitionId,
        chunking: Option<(usize, u64)>,
    ) -> Result<Vec<PartitionId>> {
        let mut ids = vec![first];
        let mut current = first;
        let mut held = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let pieces = match chunking {
                Some((_, budget)) => split_to_budget(batch, budget)?,
                // The store counts what a batch holds; a view column read from Parquet may
                // hold the strings of a whole page.
                None => vec![compact_views(batch)?],
            };
            for piece in pieces {
                let size = piece.get_array_memory_size() as u64;
                if let Some((partition, budget)) = chunking
                    && held > 0
                    && held + size > budget
                {
                    current = self.new_chunk(partition)?;
                    ids.push(current);
                    held = 0;
                }
                held += size;
                self.ctx.store.append(current, piece).map_err(external)?;
            }
        }
        Ok(ids)
    }

    /// Joins one left chunk with the whole stored right side, and removes the chunk. When the
    /// join runs out of memory before its first row, the chunk is cut in two instead and the
    /// halves are returned, to be run in its place.
    async fn run_chunk(
        &self,
        chunk: PartitionId,
        right: &[PartitionId],
        tx: &super::Tx,
    ) -> Result<Vec<PartitionId>> {
        let store = &self.ctx.store;
        let result = self.join_chunk(chunk, right, tx).await;
        let halves = match result {
            Ok(()) => {
                self.chunks_run.add(1);
                Ok(Vec::new())
            }
            Err(RunError::OutOfMemoryBeforeOutput(e)) => match self.halve(chunk) {
                Ok(Some(halves)) => Ok(halves),
                Ok(None) => Err(e),
                Err(split_error) => Err(split_error),
            },
            Err(RunError::Failed(e)) => Err(e),
        };
        store.remove(chunk);
        halves
    }

    async fn join_chunk(
        &self,
        chunk: PartitionId,
        right: &[PartitionId],
        tx: &super::Tx,
    ) -> std::result::Result<(), RunError> {
        let store = &self.ctx.store;
        let bytes = store
            .info(chunk)
            .map(|i| i.memory_bytes + i.disk_bytes)
            .map_err(|e| RunError::Failed(external(e)))?;
        make_room(&self.ctx, &self.task, bytes).map_err(RunError::Failed)?;
        let scan = |ids: Vec<PartitionId>, schema: SchemaRef| -> Result<Arc<dyn ExecutionPlan>> {
            let parts = StoredPartitions::borrowed(store.clone(), schema, vec![ids]);
            Ok(Arc::new(StoreScanExec::new(Arc::new(parts), None)?))
        };
        let plan = scan(vec![chunk], self.left.schema())
            .and_then(|left| Ok((left, scan(right.to_vec(), self.right.schema())?)))
            // A new join instance: none of the template's loaded state is shared.
            .and_then(|(left, right)| with_children(Arc::clone(&self.template), vec![left, right]))
            .map_err(RunError::Failed)?;
        send_all(&plan, &self.task, tx).await
    }

    /// Cuts a chunk's rows in two new chunks; `None` when it has a single row.
    fn halve(&self, chunk: PartitionId) -> Result<Option<Vec<PartitionId>>> {
        let store = &self.ctx.store;
        let batches = store.read(chunk).map_err(external)?;
        let schema = self.left.schema();
        let all = concat_batches(&schema, &batches)?;
        drop(batches);
        let rows = all.num_rows();
        if rows < 2 {
            return Ok(None);
        }
        let mut halves = Vec::new();
        for piece in cut_rows(&all, 2)? {
            let id = self.created.create(
                Arc::clone(&schema),
                format!("half of a left chunk of {}", self.describe),
                false,
            )?;
            halves.push(id);
            if let Err(e) = store.append(id, piece) {
                for h in &halves {
                    store.remove(*h);
                }
                return Err(external(e));
            }
        }
        tracing::debug!(
            rows,
            "a nested-loop chunk ran out of memory; split it in two"
        );
        Ok(Some(halves))
    }
}
