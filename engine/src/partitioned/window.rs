//! Window functions over one bucket: the bucket is sorted by the window's partition and order
//! keys (DataFusion's sort spills), then the original window operator runs over it.
//!
//! Every row of a window partition shares its PARTITION BY keys, so each window partition lies
//! whole in one bucket and the operator only ever buffers that bucket's partitions.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::physical_expr::window::WindowExpr;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};

use super::BucketOperator;

/// A chain of window operators with the same PARTITION BY keys, applied in order to each
/// bucket (each after a sort by its own keys and ORDER BY).
#[derive(Debug, Clone)]
pub(crate) struct WindowOperator {
    steps: Vec<Step>,
}

/// One operator of the chain: a window (`exprs` non-empty, sorted for first) or a projection
/// between windows.
#[derive(Debug, Clone)]
struct Step {
    template: Arc<dyn ExecutionPlan>,
    exprs: Vec<Arc<dyn WindowExpr>>,
}

impl WindowOperator {
    /// For a window operator with PARTITION BY keys; `None` for anything else.
    pub(crate) fn new(plan: &Arc<dyn ExecutionPlan>) -> Option<Self> {
        let exprs = if let Some(w) = plan.downcast_ref::<BoundedWindowAggExec>() {
            w.window_expr().to_vec()
        } else if let Some(w) = plan.downcast_ref::<WindowAggExec>() {
            w.window_expr().to_vec()
        } else {
            return None;
        };
        if exprs.first()?.partition_by().is_empty() {
            return None;
        }
        Some(WindowOperator {
            steps: vec![Step {
                template: Arc::clone(plan),
                exprs,
            }],
        })
    }

    /// The PARTITION BY expressions (of the first window).
    pub(crate) fn keys(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        self.steps[0].exprs[0].partition_by().to_vec()
    }

    /// The first window's input.
    pub(crate) fn input(&self) -> Arc<dyn ExecutionPlan> {
        Arc::clone(self.steps[0].template.children()[0])
    }

    /// This chain followed by `between` (projections that sit between two windows) and then
    /// `next`, when `next` partitions by the same keys.
    pub(crate) fn then(
        &self,
        between: &[Arc<dyn ExecutionPlan>],
        next: &WindowOperator,
    ) -> Option<WindowOperator> {
        let text = |k: Vec<Arc<dyn PhysicalExpr>>| -> Vec<String> {
            k.iter().map(|e| e.to_string()).collect()
        };
        if text(self.keys()) != text(next.keys()) {
            return None;
        }
        let mut steps = self.steps.clone();
        steps.extend(between.iter().map(|p| Step {
            template: Arc::clone(p),
            exprs: Vec::new(),
        }));
        steps.extend(next.steps.iter().cloned());
        Some(WindowOperator { steps })
    }
}

impl Step {
    fn ordering(&self) -> Result<LexOrdering> {
        let mut keys: Vec<PhysicalSortExpr> = self.exprs[0]
            .partition_by()
            .iter()
            .cloned()
            .map(PhysicalSortExpr::new_default)
            .collect();
        keys.extend(self.exprs[0].order_by().iter().cloned());
        LexOrdering::new(keys)
            .ok_or_else(|| DataFusionError::Internal("window without sort keys".into()))
    }
}

impl BucketOperator for WindowOperator {
    fn describe(&self) -> String {
        let names: Vec<&str> = self
            .steps
            .iter()
            .flat_map(|s| s.exprs.iter().map(|e| e.name()))
            .collect();
        let keys: Vec<String> = self.keys().iter().map(|k| k.to_string()).collect();
        format!(
            "Window(partition by [{}], {} functions: [{}])",
            keys.join(", "),
            names.len(),
            names.join(", ")
        )
    }

    fn schema(&self) -> SchemaRef {
        self.steps[self.steps.len() - 1].template.schema()
    }

    fn plan(&self, mut inputs: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let mut plan = inputs.swap_remove(0);
        for step in &self.steps {
            // Windows that share the keys often share a prefix of the order too: sort only when
            // the input is not already in the order this step needs.
            let input: Arc<dyn ExecutionPlan> = if step.exprs.is_empty() {
                plan
            } else {
                let ordering = step.ordering()?;
                if plan
                    .properties()
                    .equivalence_properties()
                    .ordering_satisfy(ordering.clone())?
                {
                    plan
                } else {
                    Arc::new(SortExec::new(ordering, plan))
                }
            };
            plan = Arc::clone(&step.template).replace_children(
                vec![input],
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
            )?;
        }
        Ok(plan)
    }

    fn as_window(&self) -> Option<&WindowOperator> {
        Some(self)
    }
}
