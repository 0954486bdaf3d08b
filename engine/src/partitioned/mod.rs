//! Partitioned execution: the out-of-core path for operators DataFusion 55 cannot spill.
//!
//! DataFusion's hash join holds its whole build side in memory, its window operators buffer
//! whole partitions without spilling, and holistic aggregates (median, count distinct, ...)
//! keep every value of every group. Each of these only needs *rows with equal keys together*.
//! So [`PartitionedExec`] runs them the way a grace hash join does:
//!
//! 1. **Partition.** Every input is streamed once; each row is routed by a hash of its keys to
//!    one of `n` buckets, and buckets are appended to the [partition store](spillframe_spill::store),
//!    which keeps them in memory while they fit and evicts the least recently used to spill
//!    files when they do not. All inputs' partitions are read concurrently.
//! 2. **Process bucket by bucket.** Each output partition takes every `P`-th bucket. A bucket
//!    whose sized input (the join's build side, the aggregate's or window's input) fits its
//!    share of memory is handed to the ordinary DataFusion operator (a [`BucketOperator`]
//!    builds it over [`StoreScanExec`](crate::stored::StoreScanExec)s of the bucket), and its
//!    results are streamed out. Its partitions are then removed from the store.
//! 3. **Split what is too big.** A bucket over its share, or one whose operator still runs out
//!    of memory before producing a row, is re-partitioned with a different hash seed into
//!    sub-buckets, recursively. A bucket that does not split (one key holds all its rows) runs
//!    as it is: there is no smaller unit of work.
//!
//! The [`rule`] decides where this is used, from size estimates against the memory limit.
//!
//! **Lineage.** On a cluster, buckets can be evicted to peers, and a peer can be lost. A
//! bucket is the rows of its input that its *routing path* sends there (one (seed, count,
//! index) step per depth), so it is made again by running the whole input once more and
//! keeping those rows ([`RoutedLineage`]). Inputs that do not give the same rows twice (a
//! limit, a top-k) give no lineage; their buckets are replicated as the cluster asks.

pub(crate) mod aggregate;
pub(crate) mod global_median;
pub(crate) mod join;
pub(crate) mod nested_loop;
pub mod rule;
pub(crate) mod whole_window;
pub(crate) mod window;

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use spillframe_spill::{PartitionId, PartitionStore};
use tokio::sync::OnceCell;

use crate::stored::{Lineage, StoreScanExec, StoredPartitions, reproducible};

/// How deep buckets are re-partitioned before one is run as it is.
const MAX_DEPTH: u32 = 6;
/// Seeds of the routing hash, one per depth, so that a split redistributes a bucket's rows.
const SEED_BASE: u64 = 0x5f3c_9d1e_a7b2_4861;

/// What partitioned execution needs from the session.
#[derive(Debug, Clone)]
pub struct OutOfCoreContext {
    /// Where buckets live.
    pub store: PartitionStore,
    /// The session's memory limit in bytes.
    pub memory_limit: u64,
    /// Rows per batch.
    pub batch_size: usize,
    /// Output partitions of a partitioned operator (buckets are processed this many at once).
    pub target_partitions: usize,
    /// Forces partitioned execution even when estimates say the in-memory path fits (tests,
    /// benchmarks).
    pub force: bool,
    /// Operators of the plan that hold memory at once with a partitioned operator's bucket
    /// (a sort above a join, say), counting itself: each bucket's budget is divided by it.
    /// Set per plan by the [rule](rule::OutOfCoreRule); 1 in the session's context.
    pub sharers: usize,
}

impl OutOfCoreContext {
    /// Bytes of a bucket's sized input that one output partition may process at once: the
    /// operator's hash table or sort needs two to three times the raw data.
    fn bucket_budget(&self) -> u64 {
        self.bucket_budget_under(self.memory_limit)
    }

    /// [`bucket_budget`](Self::bucket_budget) under the pool a task runs with, when that pool
    /// is smaller than the session's limit: a fragment on a peer runs under the peer's pool,
    /// and a `SET datafusion.runtime.memory_limit` on the bare DataFusion context puts
    /// DataFusion's own pool in place of the governor.
    fn task_bucket_budget(&self, task: &TaskContext) -> u64 {
        match task.memory_pool().memory_limit() {
            MemoryLimit::Finite(pool) if (pool as u64) < self.memory_limit => {
                self.bucket_budget_under(pool as u64)
            }
            _ => self.bucket_budget(),
        }
    }

    fn bucket_budget_under(&self, limit: u64) -> u64 {
        let ways = 3 * self.target_partitions.max(1) as u64 * self.sharers.max(1) as u64;
        (limit / ways).max(64 << 10)
    }

    /// Bytes of routed rows one input stream may buffer before appending them to the store.
    fn routing_budget(&self) -> usize {
        (self.memory_limit / (8 * self.target_partitions.max(1) as u64)).clamp(256 << 10, 16 << 20)
            as usize
    }
}

/// Builds the DataFusion operator that processes one bucket.
pub(crate) trait BucketOperator: fmt::Debug + Send + Sync {
    /// A short description for `explain`.
    fn describe(&self) -> String;
    /// The operator's output schema.
    fn schema(&self) -> SchemaRef;
    /// The input whose size decides whether a bucket fits (the join's build side).
    fn sized_input(&self) -> usize {
        0
    }
    /// The plan over one bucket; `inputs` are single-partition scans of the bucket.
    fn plan(&self, inputs: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>>;
    /// A plan for a bucket over its budget that cannot be split further, when the operator
    /// has one that needs less memory than [`plan`](Self::plan)'s.
    fn plan_oversized(
        &self,
        _inputs: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        None
    }
    /// The operator as a window chain, so that the rule can extend it.
    fn as_window(&self) -> Option<&window::WindowOperator> {
        None
    }
}

/// The buckets of a run, made once by whichever output partition starts first.
type SharedBuckets = std::result::Result<Arc<Vec<Bucket>>, Arc<DataFusionError>>;

/// One bucket: a store partition per input.
#[derive(Debug, Clone)]
struct Bucket {
    parts: Vec<PartitionId>,
    depth: u32,
    /// How rows were routed here, one step per depth (`depth + 1` steps).
    path: Vec<Route>,
}

/// One routing step: the rows whose key hash under `seed`, modulo `n`, is `bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    seed: u64,
    n: usize,
    bucket: usize,
}

/// The routing hash's seed at `depth`.
fn seed_at(depth: u32) -> u64 {
    SEED_BASE.wrapping_add(u64::from(depth).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A bucket's lineage: every output partition of `input`, run again, filtered to the rows
/// that `path` routes to the bucket.
struct RoutedLineage {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    path: Vec<Route>,
    task: Arc<TaskContext>,
}

impl fmt::Debug for RoutedLineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rows of {} routed by {:?}", self.input.name(), self.path)
    }
}

impl Lineage for RoutedLineage {
    fn replay(&self) -> Result<SendableRecordBatchStream> {
        // A fresh instance: operators such as a repartition run each partition only once.
        let input =
            datafusion::physical_plan::execution_plan::reset_plan_states(Arc::clone(&self.input))?;
        // All partitions at once: one read at a time could stall a repartition below.
        let streams = (0..input.output_partitioning().partition_count())
            .map(|p| input.execute(p, Arc::clone(&self.task)))
            .collect::<Result<Vec<_>>>()?;
        let keys = self.keys.clone();
        let path = self.path.clone();
        let rows = futures::stream::select_all(streams).filter_map(move |batch| {
            std::future::ready(
                batch
                    .and_then(|b| keep_routed(&b, &keys, &path))
                    .transpose(),
            )
        });
        Ok(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(input.schema(), rows),
        ))
    }
}

/// The rows of `batch` that every step of `path` routes on (None when there are none).
fn keep_routed(
    batch: &RecordBatch,
    keys: &[Arc<dyn PhysicalExpr>],
    path: &[Route],
) -> Result<Option<RecordBatch>> {
    let rows = batch.num_rows();
    let arrays = key_arrays(batch, keys)?;
    let mut keep = vec![true; rows];
    let mut hashes = Vec::new();
    for step in path {
        hash_rows(&arrays, step.seed, rows, &mut hashes)?;
        for (k, h) in keep.iter_mut().zip(&hashes) {
            *k &= bucket_of(*h, step.n) == step.bucket;
        }
    }
    let mask = arrow::array::BooleanArray::from(keep);
    let kept = arrow::compute::filter_record_batch(batch, &mask)?;
    (kept.num_rows() > 0)
        .then(|| compact_views(kept))
        .transpose()
}

/// The routing keys of `batch`'s rows.
fn key_arrays(batch: &RecordBatch, keys: &[Arc<dyn PhysicalExpr>]) -> Result<Vec<ArrayRef>> {
    keys.iter()
        .map(|k| {
            k.evaluate(batch)
                .and_then(|v| v.into_array(batch.num_rows()))
        })
        .collect()
}

/// Fills `hashes` with the routing hash (under `seed`) of each of `rows` rows of `keys`.
fn hash_rows(keys: &[ArrayRef], seed: u64, rows: usize, hashes: &mut Vec<u64>) -> Result<()> {
    hashes.clear();
    hashes.resize(rows, 0);
    create_hashes(keys, &RandomState::with_seed(seed), hashes)?;
    Ok(())
}

/// The bucket, of `n`, a routing hash sends its row to.
fn bucket_of(hash: u64, n: usize) -> usize {
    (hash % n as u64) as usize
}

/// Every store partition a [`PartitionedExec`] created, removed when the plan is dropped, so
/// that a query stopped early (a limit, a cancelled stream, an error) leaves nothing behind.
#[derive(Debug)]
struct Created {
    store: PartitionStore,
    ids: parking_lot::Mutex<Vec<PartitionId>>,
}

impl Created {
    /// A new store partition; `rebuildable` when the engine can make it again if it is lost
    /// (so the cluster keeps one copy, not the replicas data without lineage gets).
    fn create(&self, schema: SchemaRef, lineage: String, rebuildable: bool) -> Result<PartitionId> {
        let id = self.store.create(schema, Some(lineage));
        self.ids.lock().push(id);
        if rebuildable {
            self.store.mark_rebuildable(id).map_err(external)?;
        }
        Ok(id)
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        for id in self.ids.get_mut().drain(..) {
            self.store.remove(id);
        }
    }
}

/// The partitioned operator. See the [module documentation](self).
#[derive(Debug)]
pub struct PartitionedExec {
    inputs: Vec<Arc<dyn ExecutionPlan>>,
    keys: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    operator: Arc<dyn BucketOperator>,
    buckets: usize,
    ctx: Arc<OutOfCoreContext>,
    shared: Arc<OnceCell<SharedBuckets>>,
    created: Arc<Created>,
    props: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl PartitionedExec {
    /// Partitions `inputs` on `keys` (one list per input) into `buckets` buckets and runs
    /// `operator` on each.
    pub(crate) fn new(
        inputs: Vec<Arc<dyn ExecutionPlan>>,
        keys: Vec<Vec<Arc<dyn PhysicalExpr>>>,
        operator: Arc<dyn BucketOperator>,
        buckets: usize,
        ctx: Arc<OutOfCoreContext>,
    ) -> Self {
        let outputs = ctx.target_partitions.clamp(1, buckets.max(1));
        let props = PlanProperties::new(
            EquivalenceProperties::new(operator.schema()),
            Partitioning::UnknownPartitioning(outputs),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        let created = Arc::new(Created {
            store: ctx.store.clone(),
            ids: Default::default(),
        });
        PartitionedExec {
            inputs,
            keys,
            operator,
            buckets: buckets.max(1),
            ctx,
            shared: Arc::new(OnceCell::new()),
            created,
            props: Arc::new(props),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The number of buckets inputs are first split into.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    pub(crate) fn operator(&self) -> &Arc<dyn BucketOperator> {
        &self.operator
    }

    pub(crate) fn keys(&self) -> &[Vec<Arc<dyn PhysicalExpr>>] {
        &self.keys
    }

    pub(crate) fn inputs(&self) -> &[Arc<dyn ExecutionPlan>] {
        &self.inputs
    }
}

impl DisplayAs for PartitionedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PartitionedExec: {}, buckets={}",
            self.operator.describe(),
            self.buckets
        )
    }
}

impl ExecutionPlan for PartitionedExec {
    fn name(&self) -> &str {
        "PartitionedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inputs.iter().collect()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for e in self.keys.iter().flatten() {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![true; self.inputs.len()]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(PartitionedExec::new(
            children,
            self.keys.clone(),
            Arc::clone(&self.operator),
            self.buckets,
            Arc::clone(&self.ctx),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let outputs = self.props.output_partitioning().partition_count();
        // Lineage matters only where buckets can be lost: on peers.
        let rebuildable = self
            .inputs
            .iter()
            .map(|i| self.ctx.store.remote().is_some() && reproducible(i, false))
            .collect();
        let run = Run {
            rebuildable,
            inputs: self.inputs.clone(),
            keys: self.keys.clone(),
            operator: Arc::clone(&self.operator),
            ctx: Arc::clone(&self.ctx),
            created: Arc::clone(&self.created),
            task: context,
            metrics: RunMetrics::new(&self.metrics, partition),
        };
        let shared = Arc::clone(&self.shared);
        let buckets = self.buckets;
        let mut builder = RecordBatchReceiverStream::builder(self.operator.schema(), 2);
        let tx = builder.tx();
        builder.spawn(async move {
            let all = once_shared(&shared, || run.partition_inputs(buckets)).await?;
            let mine: Vec<Bucket> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| i % outputs == partition)
                .map(|(_, b)| b.clone())
                .collect();
            let mut pending = mine;
            while let Some(bucket) = pending.pop() {
                let split = run.run_bucket(bucket, &tx).await?;
                pending.extend(split);
            }
            Ok(())
        });
        Ok(builder.build())
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

struct RunMetrics {
    buckets_run: Count,
    splits: Count,
    rows_partitioned: Count,
    /// Buckets run with the operator's low-memory plan.
    oversized: Count,
}

impl RunMetrics {
    fn new(set: &ExecutionPlanMetricsSet, partition: usize) -> Self {
        RunMetrics {
            buckets_run: MetricBuilder::new(set).counter("buckets_run", partition),
            splits: MetricBuilder::new(set).counter("bucket_splits", partition),
            rows_partitioned: MetricBuilder::new(set).counter("rows_partitioned", partition),
            oversized: MetricBuilder::new(set).counter("oversized_buckets", partition),
        }
    }
}

/// Everything one output partition's task needs.
struct Run {
    /// Per input: whether its buckets can be made again from their lineage.
    rebuildable: Vec<bool>,
    inputs: Vec<Arc<dyn ExecutionPlan>>,
    keys: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    operator: Arc<dyn BucketOperator>,
    ctx: Arc<OutOfCoreContext>,
    created: Arc<Created>,
    task: Arc<TaskContext>,
    metrics: RunMetrics,
}

type Tx = tokio::sync::mpsc::Sender<Result<RecordBatch>>;

impl Run {
    fn store(&self) -> &PartitionStore {
        &self.ctx.store
    }

    /// Streams every input into `n` buckets in the store.
    async fn partition_inputs(&self, n: usize) -> Result<Vec<Bucket>> {
        let ids: Vec<Vec<PartitionId>> = self
            .inputs
            .iter()
            .enumerate()
            .map(|(side, input)| {
                (0..n)
                    .map(|b| {
                        self.created.create(
                            input.schema(),
                            format!(
                                "bucket {b}/{n} of input {side} of {}",
                                self.operator.describe()
                            ),
                            self.rebuildable[side],
                        )
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        let router = Router {
            store: self.store().clone(),
            seed: seed_at(0),
            batch_size: self.ctx.batch_size,
            buffer_budget: self.ctx.routing_budget(),
        };
        let mut jobs = Vec::new();
        for (side, input) in self.inputs.iter().enumerate() {
            for p in 0..input.output_partitioning().partition_count() {
                let stream = input.execute(p, Arc::clone(&self.task))?;
                jobs.push(router.route_stream(
                    stream,
                    &self.keys[side],
                    &ids[side],
                    &self.task,
                    &self.metrics.rows_partitioned,
                ));
            }
        }
        let result = futures::future::try_join_all(jobs).await;
        let buckets: Vec<Bucket> = (0..n)
            .map(|b| Bucket {
                parts: ids.iter().map(|side| side[b]).collect(),
                depth: 0,
                path: vec![Route {
                    seed: seed_at(0),
                    n,
                    bucket: b,
                }],
            })
            .collect();
        if let Err(e) = result {
            for b in &buckets {
                self.remove(b);
            }
            return Err(e);
        }
        Ok(buckets)
    }

    /// The bucket's partition of input `side`, as a set that can rebuild it from its lineage
    /// (where it has one) if it was lost with a peer. Borrowed: the bucket may yet be split
    /// or retried.
    fn side_of(&self, bucket: &Bucket, side: usize) -> Result<StoredPartitions> {
        let id = bucket.parts[side];
        let schema = self.store().schema(id).map_err(external)?;
        let parts = StoredPartitions::borrowed(self.store().clone(), schema, vec![vec![id]]);
        Ok(match self.rebuildable[side] {
            true => parts.with_lineage(
                id,
                Arc::new(RoutedLineage {
                    input: Arc::clone(&self.inputs[side]),
                    keys: self.keys[side].clone(),
                    path: bucket.path.clone(),
                    task: Arc::clone(&self.task),
                }),
            ),
            false => parts,
        })
    }

    fn remove(&self, bucket: &Bucket) {
        for id in &bucket.parts {
            self.store().remove(*id);
        }
    }

    fn sized_bytes(&self, bucket: &Bucket) -> (u64, u64) {
        let id = bucket.parts[self.operator.sized_input().min(bucket.parts.len() - 1)];
        self.store()
            .info(id)
            .map(|i| (i.memory_bytes + i.disk_bytes, i.rows))
            .unwrap_or((0, 0))
    }

    /// Runs one bucket, or splits it; returns the sub-buckets still to run.
    async fn run_bucket(&self, bucket: Bucket, tx: &Tx) -> Result<Vec<Bucket>> {
        let (bytes, rows) = self.sized_bytes(&bucket);
        let budget = self.ctx.task_bucket_budget(&self.task);
        if bytes > budget
            && rows > 1
            && bucket.depth < MAX_DEPTH
            && let Some(split) = self.split(&bucket, bytes, budget).await?
        {
            return Ok(split);
        }
        make_room(&self.ctx, &self.task, bytes)?;
        if bytes > budget {
            tracing::debug!(
                bytes,
                budget,
                depth = bucket.depth,
                "bucket over its budget does not split"
            );
        }
        match self.process(&bucket, bytes > budget, tx).await {
            Ok(()) => {
                self.remove(&bucket);
                self.metrics.buckets_run.add(1);
                Ok(Vec::new())
            }
            Err(RunError::Failed(e)) => {
                self.remove(&bucket);
                Err(e)
            }
            Err(RunError::OutOfMemoryBeforeOutput(e)) => {
                // Nothing was emitted, so the bucket can be split and retried.
                if rows > 1 && bucket.depth < MAX_DEPTH {
                    let target = (bytes / 4).max(1);
                    if let Some(split) = self.split(&bucket, bytes, target).await? {
                        return Ok(split);
                    }
                }
                if let Err(RunError::Failed(e2) | RunError::OutOfMemoryBeforeOutput(e2)) =
                    self.process(&bucket, true, tx).await
                {
                    self.remove(&bucket);
                    return Err(if is_out_of_memory(&e2) { e } else { e2 });
                }
                self.remove(&bucket);
                self.metrics.buckets_run.add(1);
                Ok(Vec::new())
            }
        }
    }

    /// Re-partitions a bucket into sub-buckets. `None` when its keys do not split (every row
    /// of the sized input landed in one sub-bucket).
    async fn split(&self, bucket: &Bucket, bytes: u64, target: u64) -> Result<Option<Vec<Bucket>>> {
        let n = (bytes.div_ceil(target.max(1)) * 2)
            .next_power_of_two()
            .clamp(2, 256) as usize;
        let depth = bucket.depth + 1;
        let router = Router {
            store: self.store().clone(),
            seed: seed_at(depth),
            batch_size: self.ctx.batch_size,
            buffer_budget: self.ctx.routing_budget(),
        };
        let mut subs: Vec<Vec<PartitionId>> = Vec::new();
        for side in 0..bucket.parts.len() {
            let parent = self.side_of(bucket, side)?;
            let schema = Arc::clone(parent.schema());
            let ids: Vec<PartitionId> = (0..n)
                .map(|b| {
                    self.created.create(
                        Arc::clone(&schema),
                        format!("sub-bucket {b}/{n} (depth {depth}) of input {side}"),
                        self.rebuildable[side],
                    )
                })
                .collect::<Result<_>>()?;
            let batches = parent.read_or_rebuild(bucket.parts[side]).await?;
            let schema2 = Arc::clone(&schema);
            let stream: SendableRecordBatchStream = Box::pin(
                datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                    schema2,
                    futures::stream::iter(batches.into_iter().map(Ok)),
                ),
            );
            let routed = router
                .route_stream(
                    stream,
                    &self.keys[side],
                    &ids,
                    &self.task,
                    &self.metrics.rows_partitioned,
                )
                .await;
            subs.push(ids);
            if let Err(e) = routed {
                for id in subs.iter().flatten() {
                    self.store().remove(*id);
                }
                return Err(e);
            }
        }
        let sub_buckets: Vec<Bucket> = (0..n)
            .map(|b| Bucket {
                parts: subs.iter().map(|side| side[b]).collect(),
                depth,
                path: [
                    bucket.path.as_slice(),
                    &[Route {
                        seed: router.seed,
                        n,
                        bucket: b,
                    }],
                ]
                .concat(),
            })
            .collect();
        let sized = self.operator.sized_input().min(bucket.parts.len() - 1);
        let (_, parent_rows) = self.sized_bytes(bucket);
        let largest = sub_buckets
            .iter()
            .filter_map(|b| self.store().info(b.parts[sized]).ok())
            .map(|i| i.rows)
            .max()
            .unwrap_or(0);
        if largest == parent_rows {
            // One key holds every row: splitting cannot help.
            for b in &sub_buckets {
                self.remove(b);
            }
            tracing::debug!(
                rows = parent_rows,
                depth,
                "bucket does not split; running it whole"
            );
            return Ok(None);
        }
        self.remove(bucket);
        self.metrics.splits.add(1);
        tracing::debug!(bytes, subs = n, depth, "split an oversized bucket");
        Ok(Some(sub_buckets))
    }

    /// Runs the operator over one bucket; `oversized` asks for its low-memory plan, if it has
    /// one (otherwise the usual plan runs).
    async fn process(
        &self,
        bucket: &Bucket,
        oversized: bool,
        tx: &Tx,
    ) -> std::result::Result<(), RunError> {
        let mut scans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        for side in 0..bucket.parts.len() {
            let parts = self.side_of(bucket, side).map_err(RunError::Failed)?;
            scans.push(Arc::new(
                StoreScanExec::new(Arc::new(parts), None).map_err(RunError::Failed)?,
            ));
        }
        let plan = match oversized {
            true => match self.operator.plan_oversized(scans.clone()) {
                Some(plan) => {
                    self.metrics.oversized.add(1);
                    plan
                }
                None => self.operator.plan(scans),
            },
            false => self.operator.plan(scans),
        }
        .map_err(RunError::Failed)?;
        send_all(&plan, &self.task, tx).await
    }
}

/// The value in `cell`, made by `make` by whichever output partition gets there first; the
/// others wait for it and share it (or its error).
async fn once_shared<T, F, Fut>(
    cell: &OnceCell<std::result::Result<Arc<T>, Arc<DataFusionError>>>,
    make: F,
) -> Result<Arc<T>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    cell.get_or_init(|| async { make().await.map(Arc::new).map_err(Arc::new) })
        .await
        .clone()
        .map_err(DataFusionError::Shared)
}

/// `input`'s columns at `indices`, under their names.
fn project_columns(
    input: Arc<dyn ExecutionPlan>,
    indices: &[usize],
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = input.schema();
    let exprs = indices
        .iter()
        .map(|&i| {
            let name = schema.field(i).name();
            let col: Arc<dyn PhysicalExpr> = Arc::new(Column::new(name, i));
            ProjectionExpr::new(col, name.clone())
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(exprs, input)?))
}

/// Makes room in the pool for an operator over `bytes` of input by evicting stored partitions.
fn make_room(ctx: &OutOfCoreContext, task: &TaskContext, bytes: u64) -> Result<()> {
    let pool = task.memory_pool();
    // The operator's table or sort (about three times its input), plus room for a sort's
    // merge reservation and the operators above.
    let want = bytes
        .saturating_mul(3)
        .max(ctx.memory_limit / 4)
        .min(ctx.memory_limit / 2);
    let free = ctx.memory_limit.saturating_sub(pool.reserved() as u64);
    if free < want {
        let held = ctx.store.metrics().memory_bytes;
        ctx.store
            .shrink_to(held.saturating_sub(want - free))
            .map_err(external)?;
    }
    Ok(())
}

/// Runs every partition of `plan` and sends its batches to `tx`. An out-of-memory error before
/// the first row is told apart, so that the caller can retry with smaller pieces.
async fn send_all(
    plan: &Arc<dyn ExecutionPlan>,
    task: &Arc<TaskContext>,
    tx: &Tx,
) -> std::result::Result<(), RunError> {
    let mut emitted = false;
    for p in 0..plan.output_partitioning().partition_count() {
        let mut stream = plan
            .execute(p, Arc::clone(task))
            .map_err(RunError::Failed)?;
        while let Some(item) = stream.next().await {
            match item {
                Ok(batch) => {
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    emitted = true;
                    if tx.send(Ok(batch)).await.is_err() {
                        // The consumer is gone (query cancelled or limit reached).
                        return Ok(());
                    }
                }
                Err(e) if !emitted && is_out_of_memory(&e) => {
                    return Err(RunError::OutOfMemoryBeforeOutput(e));
                }
                Err(e) => return Err(RunError::Failed(e)),
            }
        }
    }
    Ok(())
}

enum RunError {
    Failed(DataFusionError),
    OutOfMemoryBeforeOutput(DataFusionError),
}

fn is_out_of_memory(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::ResourcesExhausted(_))
}

fn external(e: spillframe_spill::Error) -> DataFusionError {
    e.into_datafusion()
}

/// Rows gathered per bucket before they are appended to the store, with their sizes.
struct Pending {
    pieces: Vec<Vec<RecordBatch>>,
    rows: Vec<usize>,
    bytes: Vec<usize>,
    /// Bytes held over all buckets.
    held: usize,
}

impl Pending {
    fn new(n: usize) -> Self {
        Pending {
            pieces: vec![Vec::new(); n],
            rows: vec![0; n],
            bytes: vec![0; n],
            held: 0,
        }
    }

    /// Adds a piece to bucket `b`; returns the rows now pending there.
    fn push(&mut self, b: usize, piece: RecordBatch) -> usize {
        let size = piece.get_array_memory_size();
        self.rows[b] += piece.num_rows();
        self.bytes[b] += size;
        self.held += size;
        self.pieces[b].push(piece);
        self.rows[b]
    }

    /// Takes bucket `b`'s pieces, if it has any.
    fn take(&mut self, b: usize) -> Option<Vec<RecordBatch>> {
        self.rows[b] = 0;
        self.held -= std::mem::take(&mut self.bytes[b]);
        let pieces = std::mem::take(&mut self.pieces[b]);
        (!pieces.is_empty()).then_some(pieces)
    }
}

/// Copies the strings a view column's rows use out of the shared data buffers.
///
/// `take` on a string- or binary-view column (DataFusion reads Parquet strings as views) keeps
/// the source's whole data buffers alive: a bucket's piece would hold, count and spill every
/// string of the input batch.
fn compact_views(batch: RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;
    if !batch
        .columns()
        .iter()
        .any(|c| matches!(c.data_type(), DataType::Utf8View | DataType::BinaryView))
    {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(c),
        })
        .collect();
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Routes rows to buckets by a hash of their keys.
#[derive(Clone)]
struct Router {
    store: PartitionStore,
    seed: u64,
    batch_size: usize,
    /// Most bytes of pending pieces one routing task holds before it flushes them all.
    buffer_budget: usize,
}

impl Router {
    /// Drains `stream` into the store partitions `targets`, one per bucket. Small pieces are
    /// gathered per bucket (under a memory reservation) and appended a batch at a time.
    async fn route_stream(
        &self,
        mut stream: SendableRecordBatchStream,
        keys: &[Arc<dyn PhysicalExpr>],
        targets: &[PartitionId],
        task: &Arc<TaskContext>,
        rows_counter: &Count,
    ) -> Result<()> {
        let n = targets.len();
        let schema = stream.schema();
        // Not spillable in the pool's sense (that would shrink every sort's fair share): it
        // flushes to the store by itself when refused.
        let reservation =
            MemoryConsumer::new("PartitionedExec[routing]").register(task.memory_pool());
        // Rows gathered per bucket: compact copies (made with `take`), so each piece's
        // memory is its own and the reservation can follow flushes exactly.
        let mut pending = Pending::new(n);
        let mut hashes: Vec<u64> = Vec::new();
        let flush = |b: usize, pending: &mut Pending| match pending.take(b) {
            None => Ok::<(), DataFusionError>(()),
            Some(mut pieces) => {
                let batch = if pieces.len() == 1 {
                    pieces.swap_remove(0)
                } else {
                    concat_batches(&schema, &pieces)?
                };
                self.store.append(targets[b], batch).map_err(external)
            }
        };
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let rows = batch.num_rows();
            if rows == 0 {
                continue;
            }
            rows_counter.add(rows);
            let arrays = key_arrays(&batch, keys)?;
            hash_rows(&arrays, self.seed, rows, &mut hashes)?;
            // Counting sort of row indices by bucket.
            let mut counts = vec![0u32; n + 1];
            for h in &hashes {
                counts[bucket_of(*h, n) + 1] += 1;
            }
            for i in 1..=n {
                counts[i] += counts[i - 1];
            }
            let mut order = vec![0u32; rows];
            let mut next = counts.clone();
            for (row, h) in hashes.iter().enumerate() {
                let b = bucket_of(*h, n);
                order[next[b] as usize] = row as u32;
                next[b] += 1;
            }
            let order = UInt32Array::from(order);
            for b in 0..n {
                let (start, end) = (counts[b] as usize, counts[b + 1] as usize);
                if start == end {
                    continue;
                }
                let piece = if end - start == rows {
                    batch.clone()
                } else {
                    compact_views(take_record_batch(&batch, &order.slice(start, end - start))?)?
                };
                if pending.push(b, piece) >= self.batch_size {
                    flush(b, &mut pending)?;
                }
            }
            if pending.held > self.buffer_budget || reservation.try_resize(pending.held).is_err() {
                for b in 0..n {
                    flush(b, &mut pending)?;
                }
            }
            reservation.resize(pending.held);
        }
        for b in 0..n {
            flush(b, &mut pending)?;
        }
        reservation.resize(0);
        Ok(())
    }
}
