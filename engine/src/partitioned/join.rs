//! The hash join over one bucket: DataFusion's [`HashJoinExec`] with the bucket's build side
//! collected in memory.

use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode, SortMergeJoinExec};

use datafusion::physical_plan::sorts::sort::SortExec;

use super::{BucketOperator, project_columns};

/// Runs the original join, unchanged but for its inputs, on each pair of buckets. Rows with
/// equal keys share a bucket, so every join type (inner, outer, semi, anti, mark) gives the
/// same rows as the unpartitioned join: a row unmatched in its bucket is unmatched everywhere.
#[derive(Debug)]
pub(crate) struct JoinOperator {
    template: HashJoinExec,
}

impl JoinOperator {
    pub(crate) fn new(template: &HashJoinExec) -> Result<Self> {
        Ok(JoinOperator {
            template: template.builder().reset_state().build()?,
        })
    }
}

impl BucketOperator for JoinOperator {
    fn describe(&self) -> String {
        let on: Vec<String> = self
            .template
            .on()
            .iter()
            .map(|(l, r)| format!("{l} = {r}"))
            .collect();
        format!(
            "HashJoin({}, on=[{}])",
            self.template.join_type(),
            on.join(", ")
        )
    }

    fn schema(&self) -> SchemaRef {
        self.template.schema()
    }

    /// A bucket too big for a hash table that does not split (one key holds most of its
    /// build side) is joined by sorting both sides (DataFusion's sort spills) and merging them;
    /// the merge join spills the rows of one key when they do not fit.
    fn plan_oversized(
        &self,
        inputs: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Option<Result<Arc<dyn ExecutionPlan>>> {
        let [left, right] = <[Arc<dyn ExecutionPlan>; 2]>::try_from(inputs).ok()?;
        let on = self.template.on().to_vec();
        let options = SortOptions::default();
        let sorted = |input: Arc<dyn ExecutionPlan>, keys: Vec<Arc<dyn PhysicalExpr>>| {
            let ordering =
                LexOrdering::new(keys.into_iter().map(|k| PhysicalSortExpr::new(k, options)))?;
            Some(Arc::new(SortExec::new(ordering, input)) as Arc<dyn ExecutionPlan>)
        };
        let left = sorted(left, on.iter().map(|(l, _)| Arc::clone(l)).collect())?;
        let right = sorted(right, on.iter().map(|(_, r)| Arc::clone(r)).collect())?;
        let join = SortMergeJoinExec::try_new(
            left,
            right,
            on.clone(),
            self.template.filter().cloned(),
            *self.template.join_type(),
            vec![options; on.len()],
            self.template.null_equality(),
        );
        // Join types the merge join does not support keep the hash join.
        let join: Arc<dyn ExecutionPlan> = Arc::new(join.ok()?);
        Some(match &self.template.projection {
            None => Ok(join),
            Some(indices) => project_columns(join, indices),
        })
    }

    fn plan(&self, inputs: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.template
            .builder()
            .with_new_children(inputs)?
            .with_partition_mode(PartitionMode::CollectLeft)
            .recompute_properties()
            .reset_state()
            .build_exec()
    }
}
