//! Partition-local work runs where the partition lives.
//!
//! [`FragmentRule`] runs last among the physical optimizer rules of a session with a cluster.
//! It grows a [`FragmentExec`] upwards from each [`StoreScanExec`] over the operators that
//! work on each stored partition alone (filter, projection, partial aggregation). A
//! `FragmentExec` keeps the scan's partitioning: its output partition `i` is the fragment's
//! output over each stored partition of group `i`, in order, each computed where that
//! partition lives.

use std::fmt;
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode as _, TreeNodeRecursion};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt as _, TryStreamExt as _};
use spillframe_spill::PartitionId;

use crate::remote::codec::encode_fragment;
use crate::stored::{StoreScanExec, StoredPartitions};

/// Wraps partition-local operators over stored partitions in [`FragmentExec`]s, when the
/// store has a remote tier.
#[derive(Debug, Default)]
pub struct FragmentRule;

impl FragmentRule {
    /// Whether `node` works on each input partition alone, batch by batch.
    fn partition_local(node: &Arc<dyn ExecutionPlan>) -> bool {
        node.is::<FilterExec>()
            || node.is::<ProjectionExec>()
            || node
                .downcast_ref::<AggregateExec>()
                .is_some_and(|a| *a.mode() == AggregateMode::Partial)
    }
}

impl PhysicalOptimizerRule for FragmentRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if !Self::partition_local(&node) || node.children().len() != 1 {
                return Ok(Transformed::no(node));
            }
            let child = Arc::clone(node.children()[0]);
            let (below, parts, projection) =
                if let Some(scan) = child.downcast_ref::<StoreScanExec>() {
                    (
                        Arc::clone(&child),
                        Arc::clone(scan.parts()),
                        scan.projection().map(<[usize]>::to_vec),
                    )
                } else if let Some(f) = child.downcast_ref::<FragmentExec>() {
                    (
                        Arc::clone(&f.fragment),
                        Arc::clone(&f.parts),
                        f.projection.clone(),
                    )
                } else {
                    return Ok(Transformed::no(node));
                };
            if parts.store().remote().is_none() {
                return Ok(Transformed::no(node));
            }
            let fragment = crate::partitioned::nested_loop::with_children(node, vec![below])?;
            Ok(Transformed::yes(Arc::new(FragmentExec::new(
                fragment, parts, projection,
            ))))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "remote_fragments"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Runs a fragment (partition-local operators over a [`StoreScanExec`]) over each stored
/// partition where it lives: on the peer that holds it, or here.
pub struct FragmentExec {
    fragment: Arc<dyn ExecutionPlan>,
    parts: Arc<StoredPartitions>,
    projection: Option<Vec<usize>>,
    /// The fragment as sent to peers, encoded once.
    encoded: OnceLock<Result<Arc<Vec<u8>>, String>>,
    props: Arc<PlanProperties>,
}

impl fmt::Debug for FragmentExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FragmentExec")
            .field("fragment", &self.fragment.name())
            .finish()
    }
}

impl FragmentExec {
    fn new(
        fragment: Arc<dyn ExecutionPlan>,
        parts: Arc<StoredPartitions>,
        projection: Option<Vec<usize>>,
    ) -> Self {
        let props = Arc::clone(fragment.properties());
        FragmentExec {
            fragment,
            parts,
            projection,
            encoded: OnceLock::new(),
            props,
        }
    }

    /// The fragment run over each partition.
    pub fn fragment(&self) -> &Arc<dyn ExecutionPlan> {
        &self.fragment
    }

    fn encoded(&self) -> datafusion::common::Result<Arc<Vec<u8>>> {
        self.encoded
            .get_or_init(|| {
                encode_fragment(&self.fragment)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(datafusion::common::DataFusionError::Execution)
    }

    /// The fragment over partition `id` alone, run here.
    fn local(
        &self,
        id: PartitionId,
        task: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let parts = Arc::clone(&self.parts);
        let projection = self.projection.clone();
        let plan = Arc::clone(&self.fragment)
            .transform_up(|node| {
                if node.is::<StoreScanExec>() {
                    let scan = StoreScanExec::single(Arc::clone(&parts), projection.clone(), id)?;
                    Ok(Transformed::new(
                        Arc::new(scan) as Arc<dyn ExecutionPlan>,
                        true,
                        TreeNodeRecursion::Jump,
                    ))
                } else {
                    Ok(Transformed::no(node))
                }
            })?
            .data;
        plan.execute(0, task)
    }
}

/// What running a fragment over one partition gave.
enum Ran {
    /// The peer holding the partition ran it; here is its output.
    Remote(Vec<RecordBatch>),
    /// The partition is (partly) here: run it locally.
    Local,
}

impl DisplayAs for FragmentExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let plan = datafusion::physical_plan::displayable(self.fragment.as_ref()).indent(false);
        match t {
            DisplayFormatType::TreeRender => write!(f, "fragment"),
            _ => write!(
                f,
                "FragmentExec: runs where each partition lives: [{}]",
                plan.to_string().trim().replace('\n', " <- ")
            ),
        }
    }
}

impl ExecutionPlan for FragmentExec {
    fn name(&self) -> &str {
        "FragmentExec"
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
        context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let ids = self
            .parts
            .groups()
            .get(partition)
            .cloned()
            .unwrap_or_default();
        let schema = self.schema();
        let this = Arc::new(FragmentExec {
            fragment: Arc::clone(&self.fragment),
            parts: Arc::clone(&self.parts),
            projection: self.projection.clone(),
            encoded: self.encoded.clone(),
            props: Arc::clone(&self.props),
        });
        let out_schema = Arc::clone(&schema);
        let stream = futures::stream::iter(ids)
            .then(move |id| {
                let this = Arc::clone(&this);
                let task = Arc::clone(&context);
                let schema = Arc::clone(&out_schema);
                async move {
                    let store = this.parts.store().clone();
                    let ran = this
                        .parts
                        .with_rebuild(id, || {
                            if store.remote_copies(id)?.is_none() {
                                return Ok(Ran::Local);
                            }
                            let fragment = this.encoded().map_err(|e| {
                                spillframe_spill::Error::Remote(spillframe_spill::RemoteError {
                                    peer: None,
                                    reason: e.to_string(),
                                    lost: false,
                                })
                            })?;
                            store.run_remote(id, &fragment).map(Ran::Remote)
                        })
                        .await?;
                    match ran {
                        Ran::Remote(batches) => {
                            Ok(Box::pin(MemoryStream::try_new(batches, schema, None)?)
                                as SendableRecordBatchStream)
                        }
                        Ran::Local => this.local(id, task),
                    }
                }
            })
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
