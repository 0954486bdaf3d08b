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
use arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode as _, TreeNodeRecursion};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::scalar_subquery::ScalarSubqueryExpr;
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
use spillframe_spill::{PartitionId, RemoteWork};

use crate::remote::codec::encode_fragment;
use crate::stored::{StoreScanExec, StoredPartitions};

/// Wraps partition-local operators over stored partitions in [`FragmentExec`]s, when the
/// store has a remote tier.
#[derive(Debug, Default)]
pub struct FragmentRule;

impl FragmentRule {
    /// Whether `node` works on each input partition alone, batch by batch, and can travel
    /// alone: an expression that reads a scalar subquery's result needs the subquery's
    /// `ScalarSubqueryExec` around it, which stays on the driver.
    fn partition_local(node: &Arc<dyn ExecutionPlan>) -> bool {
        let exprs: Vec<Arc<dyn PhysicalExpr>> = if let Some(f) = node.downcast_ref::<FilterExec>() {
            vec![Arc::clone(f.predicate())]
        } else if let Some(p) = node.downcast_ref::<ProjectionExec>() {
            p.expr().iter().map(|e| Arc::clone(&e.expr)).collect()
        } else if let Some(a) = node
            .downcast_ref::<AggregateExec>()
            .filter(|a| *a.mode() == AggregateMode::Partial)
        {
            let mut v: Vec<_> = a
                .group_expr()
                .expr()
                .iter()
                .map(|(e, _)| Arc::clone(e))
                .collect();
            v.extend(a.aggr_expr().iter().flat_map(|f| f.expressions()));
            v.extend(a.filter_expr().iter().flatten().cloned());
            v
        } else {
            return false;
        };
        !exprs.iter().any(|e| {
            e.exists(|x| Ok(x.is::<ScalarSubqueryExpr>()))
                .unwrap_or(true)
        })
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
                        Arc::clone(&f.shared.plan),
                        Arc::clone(&f.shared.parts),
                        f.shared.projection.clone(),
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
    shared: Arc<Fragment>,
    props: Arc<PlanProperties>,
}

/// What every output partition's stream of a [`FragmentExec`] needs.
struct Fragment {
    plan: Arc<dyn ExecutionPlan>,
    parts: Arc<StoredPartitions>,
    projection: Option<Vec<usize>>,
    /// The fragment as sent to peers, encoded once; `None` if it cannot be encoded (then every
    /// partition runs it here).
    encoded: OnceLock<Option<Arc<Vec<u8>>>>,
}

impl fmt::Debug for FragmentExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FragmentExec")
            .field("fragment", &self.shared.plan.name())
            .finish()
    }
}

impl FragmentExec {
    fn new(
        plan: Arc<dyn ExecutionPlan>,
        parts: Arc<StoredPartitions>,
        projection: Option<Vec<usize>>,
    ) -> Self {
        let props = Arc::clone(plan.properties());
        FragmentExec {
            shared: Arc::new(Fragment {
                plan,
                parts,
                projection,
                encoded: OnceLock::new(),
            }),
            props,
        }
    }

    /// The fragment run over each partition.
    pub fn fragment(&self) -> &Arc<dyn ExecutionPlan> {
        &self.shared.plan
    }
}

impl Fragment {
    fn encoded(&self) -> Option<Arc<Vec<u8>>> {
        self.encoded
            .get_or_init(|| match encode_fragment(&self.plan) {
                Ok(bytes) => Some(Arc::new(bytes)),
                Err(e) => {
                    tracing::debug!("the fragment runs on the driver: it cannot be sent: {e}");
                    None
                }
            })
            .clone()
    }

    /// Runs the fragment over partition `id`: on the peer holding it when it is wholly
    /// remote (and the fragment could be encoded), otherwise here. A partition lost with its
    /// peer is rebuilt first.
    async fn run(
        &self,
        id: PartitionId,
        schema: SchemaRef,
        task: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let store = self.parts.store();
        let ran = match self.encoded() {
            None => Ran::Local,
            Some(fragment) => {
                self.parts
                    .with_rebuild(id, || {
                        let store = store.clone();
                        let fragment = Arc::clone(&fragment);
                        async move {
                            if store.remote_copies(id)?.is_none() {
                                return Ok(Ran::Local);
                            }
                            StoredPartitions::off_runtime(move || {
                                store.run_remote(id, RemoteWork::Fragment(&fragment))
                            })
                            .await
                            .map(Ran::Remote)
                        }
                    })
                    .await?
            }
        };
        match ran {
            Ran::Remote(batches) => Ok(Box::pin(MemoryStream::try_new(batches, schema, None)?)),
            Ran::Local => self.local(id, task),
        }
    }

    /// The fragment over partition `id` alone, run here.
    fn local(
        &self,
        id: PartitionId,
        task: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let plan = Arc::clone(&self.plan)
            .transform_up(|node| {
                if node.is::<StoreScanExec>() {
                    let scan = StoreScanExec::single(
                        Arc::clone(&self.parts),
                        self.projection.clone(),
                        id,
                    )?;
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
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = datafusion::physical_plan::displayable(self.shared.plan.as_ref()).indent(false);
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
            .shared
            .parts
            .groups()
            .get(partition)
            .cloned()
            .unwrap_or_default();
        let schema = self.schema();
        let shared = Arc::clone(&self.shared);
        let out_schema = Arc::clone(&schema);
        let stream = futures::stream::iter(ids)
            .then(move |id| {
                let shared = Arc::clone(&shared);
                let schema = Arc::clone(&out_schema);
                let task = Arc::clone(&context);
                async move { shared.run(id, schema, task).await }
            })
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
