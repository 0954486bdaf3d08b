//! A grouped aggregate over one bucket, in DataFusion's single-stage mode.
//!
//! Used for *holistic* aggregates (median, percentiles, distinct counts, array and string
//! aggregation), whose per-group state grows with the group's rows. Each group lives in exactly
//! one bucket, so aggregating bucket by bucket keeps one bucket's groups in memory at a time.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::sorts::sort::SortExec;

use super::BucketOperator;

/// Aggregate functions whose state holds every value of a group.
const HOLISTIC: &[&str] = &[
    "median",
    "percentile_cont",
    "quantile_cont",
    "array_agg",
    "string_agg",
    "listagg",
    "mode",
];

/// True when `expr` keeps every value of its group.
pub(crate) fn is_holistic(expr: &AggregateFunctionExpr) -> bool {
    expr.is_distinct() || HOLISTIC.contains(&expr.fun().name().to_ascii_lowercase().as_str())
}

#[derive(Debug)]
pub(crate) struct AggregateOperator {
    group_by: Arc<PhysicalGroupBy>,
    aggr_expr: Vec<Arc<AggregateFunctionExpr>>,
    filter_expr: Vec<Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>>,
    input_schema: SchemaRef,
    schema: SchemaRef,
}

impl AggregateOperator {
    /// From the first-stage (or single-stage) aggregate of a plan; `None` when the single-stage
    /// form would not produce `expected` (so the rewrite is skipped).
    pub(crate) fn from_first_stage(first: &AggregateExec, expected: &SchemaRef) -> Option<Self> {
        let group_by = Arc::new(first.group_expr().clone());
        let single = AggregateExec::try_new(
            AggregateMode::Single,
            Arc::clone(&group_by),
            first.aggr_expr().to_vec(),
            first.filter_expr().to_vec(),
            Arc::clone(first.input()),
            first.input_schema(),
        )
        .ok()?;
        if single.schema().fields() != expected.fields() {
            return None;
        }
        Some(AggregateOperator {
            group_by,
            aggr_expr: first.aggr_expr().to_vec(),
            filter_expr: first.filter_expr().to_vec(),
            input_schema: first.input_schema(),
            schema: Arc::clone(expected),
        })
    }

    /// The grouping expressions, evaluated on the input.
    pub(crate) fn keys(&self) -> Vec<Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
        self.group_by
            .expr()
            .iter()
            .map(|(e, _)| Arc::clone(e))
            .collect()
    }
}

impl BucketOperator for AggregateOperator {
    fn describe(&self) -> String {
        let keys: Vec<String> = self
            .group_by
            .expr()
            .iter()
            .map(|(_, n)| n.clone())
            .collect();
        let aggs: Vec<&str> = self.aggr_expr.iter().map(|a| a.name()).collect();
        format!("Aggregate(by=[{}], [{}])", keys.join(", "), aggs.join(", "))
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn plan(&self, mut inputs: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = inputs.swap_remove(0);
        let single = |aggr_expr: Vec<Arc<AggregateFunctionExpr>>, input| {
            AggregateExec::try_new(
                AggregateMode::Single,
                Arc::clone(&self.group_by),
                aggr_expr,
                self.filter_expr.clone(),
                input,
                Arc::clone(&self.input_schema),
            )
        };
        let agg = single(self.aggr_expr.clone(), Arc::clone(&input))?;
        // This plan is built while the query runs, after DataFusion's sort enforcement, so an
        // order the aggregate needs (`nth_value(x, n ORDER BY y)`, `array_agg(x ORDER BY y)`)
        // is given here: the bucket is sorted, and the aggregate rebuilt over the sorted input
        // (with the expressions as the first build chose them, possibly reversed).
        if let Some(required) = agg.required_input_ordering().swap_remove(0) {
            let required = required.into_single();
            if !input
                .properties()
                .equivalence_properties()
                .ordering_satisfy_requirement(required.clone())?
            {
                let sorted = Arc::new(SortExec::new(LexOrdering::from(required), input));
                return Ok(Arc::new(single(agg.aggr_expr().to_vec(), sorted)?));
            }
        }
        Ok(Arc::new(agg))
    }
}
