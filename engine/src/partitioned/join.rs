//! The hash join over one bucket: DataFusion's [`HashJoinExec`] with the bucket's build side
//! collected in memory.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};

use super::BucketOperator;

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
