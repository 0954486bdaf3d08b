//! Plans over the partition store: [`StoredTable`] (a `TableProvider`) and [`StoreScanExec`]
//! (its scan), so that DataFusion reads stored partitions wherever they are: in memory, or
//! mapped from spill files.
//!
//! A [`StoredPartitions`] set owns its partitions: they are removed from the store (memory
//! released, files deleted) when the last table, frame or plan holding the set is dropped.
//!
//! **Lineage.** When the session has a cluster, partitions can live on peers, and a peer can
//! be lost. A set then remembers how each partition was made (a [`Lineage`]): a set made by
//! [`materialize`] holds output partition `p` of a physical plan (whose leaves are source
//! files or other stored sets); a bucket of [partitioned execution](crate::partitioned)
//! holds the rows of a plan that its routing sends there. A scan that finds a partition lost
//! makes it again, stores the result in place of the lost one, and reads on (at most
//! [`RemoteTier::retries`] times). Plans that are not reproducible (a round-robin
//! repartition read partition by partition, a limit) give no lineage; their partitions are
//! replicated as the cluster asks, like data from memory.
//!
//! [`RemoteTier::retries`]: spillframe_spill::RemoteTier::retries

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::SortOptions;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session as CatalogSession;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Statistics, project_schema};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt as _;
use spillframe_spill::{PartitionId, PartitionStore};

/// How a stored partition is made again when its copies are lost with a peer.
pub(crate) trait Lineage: fmt::Debug + Send + Sync {
    /// The partition's rows, made again from where they came from.
    fn replay(&self) -> datafusion::common::Result<SendableRecordBatchStream>;
}

/// A partition that was output partition `partition` of `plan`.
struct PlanLineage {
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    partition: usize,
}

impl fmt::Debug for PlanLineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partition {} of {}", self.partition, self.plan.name())
    }
}

impl Lineage for PlanLineage {
    fn replay(&self) -> datafusion::common::Result<SendableRecordBatchStream> {
        // A fresh instance: operators such as a repartition run each partition only once.
        let plan =
            datafusion::physical_plan::execution_plan::reset_plan_states(Arc::clone(&self.plan))?;
        plan.execute(self.partition, Arc::clone(&self.task))
    }
}

/// A set of stored partitions with one schema, grouped into the partitions a scan outputs.
/// Removes them from the store when dropped.
pub struct StoredPartitions {
    store: PartitionStore,
    schema: SchemaRef,
    /// `groups[i]` lists the store partitions read, in order, by output partition `i`.
    groups: Vec<Vec<PartitionId>>,
    /// Whether dropping the set removes the partitions.
    owned: bool,
    /// Columns every scan partition is sorted by (ascending, nulls last), when known.
    ordering: Vec<String>,
    /// How to rebuild partitions that are lost with a peer.
    lineage: HashMap<PartitionId, Arc<dyn Lineage>>,
    /// Held while a lost partition is rebuilt, so that two readers do not both rebuild it.
    rebuilding: tokio::sync::Mutex<()>,
}

impl StoredPartitions {
    /// Takes ownership of `groups` (store partitions of `schema`).
    pub fn new(store: PartitionStore, schema: SchemaRef, groups: Vec<Vec<PartitionId>>) -> Self {
        StoredPartitions {
            store,
            schema,
            groups,
            owned: true,
            ordering: Vec::new(),
            lineage: HashMap::new(),
            rebuilding: tokio::sync::Mutex::new(()),
        }
    }

    /// Declares that the batches of each group, read in order, are sorted by `columns`
    /// (ascending, nulls last). Scans then report that order, so a sort on it becomes a
    /// streaming merge of the scan partitions.
    pub fn with_ordering(mut self, columns: Vec<String>) -> Self {
        self.ordering = columns;
        self
    }

    /// Refers to `groups` without owning them: dropping the set leaves them in the store.
    pub fn borrowed(
        store: PartitionStore,
        schema: SchemaRef,
        groups: Vec<Vec<PartitionId>>,
    ) -> Self {
        StoredPartitions {
            store,
            schema,
            groups,
            owned: false,
            ordering: Vec::new(),
            lineage: HashMap::new(),
            rebuilding: tokio::sync::Mutex::new(()),
        }
    }

    /// One set owning every partition of the owned `sets` (which must have `schema`), read
    /// in order by at most `max_groups` scan partitions: consecutive groups are joined, so
    /// the order of the partitions is kept. (More scan partitions than the session's target
    /// would give each operator above, a sort say, more memory-holding instances than the
    /// memory limit was divided for.)
    pub fn combine(
        store: PartitionStore,
        schema: SchemaRef,
        sets: Vec<StoredPartitions>,
        max_groups: usize,
    ) -> Self {
        let mut all = Vec::new();
        let mut lineage = HashMap::new();
        for mut set in sets {
            set.owned = false;
            all.append(&mut set.groups);
            lineage.extend(std::mem::take(&mut set.lineage));
        }
        let per = all.len().div_ceil(max_groups.max(1)).max(1);
        let groups = all.chunks(per).map(|c| c.concat()).collect();
        let mut combined = StoredPartitions::new(store, schema, groups);
        combined.lineage = lineage;
        combined
    }

    /// Declares how partition `id` of the set is made again if it is lost with a peer.
    pub(crate) fn with_lineage(mut self, id: PartitionId, lineage: Arc<dyn Lineage>) -> Self {
        self.lineage.insert(id, lineage);
        self
    }

    /// The partition store holding the set.
    pub fn store(&self) -> &PartitionStore {
        &self.store
    }

    /// Whether a lost partition can be rebuilt.
    pub fn has_lineage(&self, id: PartitionId) -> bool {
        self.lineage.contains_key(&id)
    }

    /// Reads a partition; if it was lost with a peer, rebuilds it from its lineage first.
    pub(crate) async fn read_or_rebuild(
        &self,
        id: PartitionId,
    ) -> datafusion::common::Result<Vec<RecordBatch>> {
        self.with_rebuild(id, || std::future::ready(self.store.read(id)))
            .await
    }

    /// Runs `op` on a partition; if it fails because the partition was lost with a peer and
    /// the partition has lineage, rebuilds it and tries again (a bounded number of times).
    pub(crate) async fn with_rebuild<T, F>(
        &self,
        id: PartitionId,
        op: impl Fn() -> F,
    ) -> datafusion::common::Result<T>
    where
        F: Future<Output = spillframe_spill::Result<T>>,
    {
        let retries = self.store.remote().map_or(0, |r| r.retries());
        let mut rebuilt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e @ spillframe_spill::Error::PeerLost { .. }) => {
                    let Some(lineage) = self.lineage.get(&id) else {
                        return Err(external(e));
                    };
                    if rebuilt >= retries {
                        return Err(DataFusionError::Execution(format!(
                            "gave up after rebuilding partition {id} {rebuilt} times (setting `retries` in cluster.toml): {e}"
                        )));
                    }
                    let _guard = self.rebuilding.lock().await;
                    // Another reader may have rebuilt it while this one waited.
                    match op().await {
                        Ok(v) => return Ok(v),
                        Err(spillframe_spill::Error::PeerLost { .. }) => {}
                        Err(e) => return Err(external(e)),
                    }
                    tracing::warn!(partition = id.0, reason = %e, "rebuilding a lost partition from its lineage");
                    self.rebuild(id, lineage).await?;
                    rebuilt += 1;
                }
                Err(e) => return Err(external(e)),
            }
        }
    }

    /// Runs the blocking store call `f` (a request to a peer) on tokio's blocking threads,
    /// so that the runtime's workers go on with other partitions meanwhile.
    pub(crate) async fn off_runtime<T: Send + 'static>(
        f: impl FnOnce() -> spillframe_spill::Result<T> + Send + 'static,
    ) -> spillframe_spill::Result<T> {
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(spillframe_spill::Error::Remote(
                    spillframe_spill::RemoteError {
                        peer: None,
                        reason: "the session's runtime stopped during a request to a peer".into(),
                        lost: false,
                    },
                )),
            },
        }
    }

    async fn rebuild(
        &self,
        id: PartitionId,
        lineage: &Arc<dyn Lineage>,
    ) -> datafusion::common::Result<()> {
        self.store.reset(id).map_err(external)?;
        let mut stream = lineage.replay()?;
        while let Some(batch) = stream.next().await {
            self.store.append(id, batch?).map_err(external)?;
        }
        self.store.seal(id).map_err(external)
    }

    /// The schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The store partitions, by output partition.
    pub fn groups(&self) -> &[Vec<PartitionId>] {
        &self.groups
    }

    /// Rows and bytes (memory plus disk) stored.
    pub fn size(&self) -> (u64, u64) {
        let mut rows = 0;
        let mut bytes = 0;
        for id in self.groups.iter().flatten() {
            if let Ok(info) = self.store.info(*id) {
                rows += info.rows;
                bytes += info.memory_bytes + info.disk_bytes;
            }
        }
        (rows, bytes)
    }

    fn statistics(&self) -> Statistics {
        let (rows, bytes) = self.size();
        Statistics::new_unknown(&self.schema)
            .with_num_rows(Precision::Exact(rows as usize))
            .with_total_byte_size(Precision::Inexact(bytes as usize))
    }
}

impl Drop for StoredPartitions {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        for id in self.groups.iter().flatten() {
            self.store.remove(*id);
        }
    }
}

impl fmt::Debug for StoredPartitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredPartitions")
            .field("groups", &self.groups)
            .finish()
    }
}

/// A table whose data lives in the partition store.
#[derive(Debug, Clone)]
pub struct StoredTable {
    parts: Arc<StoredPartitions>,
}

impl StoredTable {
    /// A table over `parts`.
    pub fn new(parts: Arc<StoredPartitions>) -> Self {
        StoredTable { parts }
    }

    /// The stored partitions.
    pub fn partitions(&self) -> &Arc<StoredPartitions> {
        &self.parts
    }
}

#[async_trait]
impl TableProvider for StoredTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.parts.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(StoreScanExec::new(
            Arc::clone(&self.parts),
            projection.cloned(),
        )?))
    }

    fn statistics(&self) -> Option<Statistics> {
        Some(self.parts.statistics())
    }
}

/// Scans stored partitions: output partition `i` reads the store partitions of group `i`.
#[derive(Debug)]
pub struct StoreScanExec {
    parts: Arc<StoredPartitions>,
    projection: Option<Vec<usize>>,
    /// Scan only this partition of the set, as one output partition.
    only: Option<PartitionId>,
    props: Arc<PlanProperties>,
}

impl StoreScanExec {
    /// A scan of `parts`, keeping the columns in `projection` (all when `None`).
    pub fn new(
        parts: Arc<StoredPartitions>,
        projection: Option<Vec<usize>>,
    ) -> datafusion::common::Result<Self> {
        Self::build(parts, projection, None)
    }

    /// A scan of one partition of `parts`, with one output partition (lost partitions are
    /// still rebuilt from the set's lineage).
    pub fn single(
        parts: Arc<StoredPartitions>,
        projection: Option<Vec<usize>>,
        id: PartitionId,
    ) -> datafusion::common::Result<Self> {
        Self::build(parts, projection, Some(id))
    }

    /// The stored partitions scanned.
    pub fn parts(&self) -> &Arc<StoredPartitions> {
        &self.parts
    }

    /// The columns kept, when not all.
    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }

    fn build(
        parts: Arc<StoredPartitions>,
        projection: Option<Vec<usize>>,
        only: Option<PartitionId>,
    ) -> datafusion::common::Result<Self> {
        let schema = project_schema(&parts.schema, projection.as_ref())?;
        let mut eq = EquivalenceProperties::new(Arc::clone(&schema));
        // The declared order, as far as its columns survive the projection.
        let ordering: Vec<PhysicalSortExpr> = parts
            .ordering
            .iter()
            .map_while(|name| {
                let index = schema.index_of(name).ok()?;
                Some(PhysicalSortExpr::new(
                    Arc::new(Column::new(name, index)),
                    SortOptions {
                        descending: false,
                        nulls_first: false,
                    },
                ))
            })
            .collect();
        if !ordering.is_empty() {
            eq.add_ordering(ordering);
        }
        let outputs = if only.is_some() {
            1
        } else {
            parts.groups.len().max(1)
        };
        let props = PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(outputs),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(StoreScanExec {
            parts,
            projection,
            only,
            props: Arc::new(props),
        })
    }
}

impl DisplayAs for StoreScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rows, bytes) = self.parts.size();
        write!(
            f,
            "StoreScanExec: partitions={}, rows={rows}, bytes={}",
            self.parts.groups.iter().map(Vec::len).sum::<usize>(),
            bytesize::ByteSize(bytes)
        )
    }
}

impl ExecutionPlan for StoreScanExec {
    fn name(&self) -> &str {
        "StoreScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let ids = match self.only {
            Some(id) => vec![id],
            None => self
                .parts
                .groups
                .get(partition)
                .cloned()
                .unwrap_or_default(),
        };
        let parts = Arc::clone(&self.parts);
        let projection = self.projection.clone();
        let schema = self.schema();
        let stream = futures::stream::iter(ids)
            .then(move |id| {
                let parts = Arc::clone(&parts);
                let projection = projection.clone();
                async move { read_projected(&parts, id, projection.as_deref()).await }
            })
            .flat_map(|r: datafusion::common::Result<Vec<RecordBatch>>| {
                futures::stream::iter(match r {
                    Ok(batches) => batches.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> datafusion::common::Result<Arc<Statistics>> {
        if args.partition().is_some() {
            return Ok(Arc::new(Statistics::new_unknown(&self.schema())));
        }
        let stats = self.parts.statistics();
        Ok(Arc::new(match &self.projection {
            Some(p) => stats.project(Some(p)),
            None => stats,
        }))
    }
}

/// Runs every output partition of `plan` and stores its batches, one store partition per
/// output partition (so a scan of the result keeps the plan's parallelism).
pub async fn materialize(
    store: &PartitionStore,
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    lineage: &str,
) -> datafusion::common::Result<StoredPartitions> {
    use datafusion::physical_plan::ExecutionPlanProperties as _;
    let plan = spread_for_peers(store, plan, &task)?;
    let schema = plan.schema();
    let n = plan.output_partitioning().partition_count();
    let ids: Vec<PartitionId> = (0..n)
        .map(|p| {
            store.create(
                Arc::clone(&schema),
                Some(format!("{lineage}, partition {p}")),
            )
        })
        .collect();
    // Owned from here on: an error below removes every partition.
    let mut parts = StoredPartitions::new(
        store.clone(),
        Arc::clone(&schema),
        ids.iter().map(|id| vec![*id]).collect(),
    );
    // Lineage matters only where partitions can be lost: on peers.
    if store.remote().is_some() && reproducible(&plan, true) {
        for (p, id) in ids.iter().enumerate() {
            store.mark_rebuildable(*id).map_err(external)?;
            parts.lineage.insert(
                *id,
                Arc::new(PlanLineage {
                    plan: Arc::clone(&plan),
                    task: Arc::clone(&task),
                    partition: p,
                }),
            );
        }
    }
    let jobs = ids.iter().enumerate().map(|(p, id)| {
        let plan = Arc::clone(&plan);
        let task = Arc::clone(&task);
        async move {
            let mut stream = plan.execute(p, task)?;
            while let Some(batch) = stream.next().await {
                store.append(*id, batch?).map_err(external)?;
            }
            store.seal(*id).map_err(external)?;
            Ok::<(), DataFusionError>(())
        }
    });
    futures::future::try_join_all(jobs).await?;
    Ok(parts)
}

/// On a cluster that spreads partitions, a result is cut by a hash of all its columns into
/// the session's number of partitions, so that every peer gets a share however the input was
/// laid out (one Parquet row group is one partition otherwise), and each partition stays
/// reproducible on its own. Results with an order keep their partitions.
fn spread_for_peers(
    store: &PartitionStore,
    plan: Arc<dyn ExecutionPlan>,
    task: &TaskContext,
) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_plan::ExecutionPlanProperties as _;
    let spread = store
        .remote()
        .is_some_and(|r| r.policy() == spillframe_spill::RemotePolicy::Spread);
    let target = task.session_config().target_partitions();
    if !spread || plan.output_ordering().is_some() || plan.schema().fields().is_empty() {
        return Ok(plan);
    }
    let keys: Vec<Arc<dyn PhysicalExpr>> = plan
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>)
        .collect();
    Ok(Arc::new(RepartitionExec::try_new(
        plan,
        Partitioning::Hash(keys, target),
    )?))
}

/// Whether running `plan` again gives the same rows: in every output partition
/// (`by_partition`), or over all of them together. A limit or a top-k (anything with a
/// fetch) may keep other rows on another run, and a round-robin repartition deals rows to
/// partitions by arrival.
pub(crate) fn reproducible(plan: &Arc<dyn ExecutionPlan>, by_partition: bool) -> bool {
    let mut ok = true;
    let _ = plan.apply(|node| {
        let round_robin = node
            .downcast_ref::<RepartitionExec>()
            .is_some_and(|r| matches!(r.partitioning(), Partitioning::RoundRobinBatch(_)));
        if (by_partition && round_robin)
            || node.fetch().is_some()
            || node.is::<GlobalLimitExec>()
            || node.is::<LocalLimitExec>()
        {
            ok = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    ok
}

fn external(e: spillframe_spill::Error) -> DataFusionError {
    e.into_datafusion()
}

async fn read_projected(
    parts: &StoredPartitions,
    id: PartitionId,
    projection: Option<&[usize]>,
) -> datafusion::common::Result<Vec<RecordBatch>> {
    let batches = parts.read_or_rebuild(id).await?;
    match projection {
        None => Ok(batches),
        Some(p) => batches
            .iter()
            .map(|b| b.project(p).map_err(DataFusionError::from))
            .collect(),
    }
}
