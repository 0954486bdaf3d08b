//! Aggregate window functions over the whole input, such as `sum(x) OVER ()`.
//!
//! With no PARTITION BY and a frame of every row, DataFusion's `WindowAggExec` buffers its whole
//! input: the value of each function is known only after the last row. But that value is the
//! same for every row. So the window becomes a cross join: its build side is the one row of an
//! ordinary aggregate over a second run of the input (constant memory for `sum`, `count`,
//! `min`, `avg`, ...), and its other side streams the input again, each row getting the totals.
//! Reading the input twice costs time; holding it does not fit.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::window::PlainAggregateWindowExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::joins::CrossJoinExec;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::windows::WindowAggExec;

/// The streaming form of `plan` when it is a `WindowAggExec` whose every function is an
/// aggregate over all rows; `None` otherwise.
pub(crate) fn rewrite(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(window) = plan.downcast_ref::<WindowAggExec>() else {
        return Ok(None);
    };
    let mut aggregates: Vec<Arc<AggregateFunctionExpr>> = Vec::new();
    for expr in window.window_expr() {
        let frame = expr.get_window_frame();
        if !expr.partition_by().is_empty()
            || !frame.start_bound.is_unbounded()
            || !frame.end_bound.is_unbounded()
        {
            return Ok(None);
        }
        let Some(agg) = expr.as_any().downcast_ref::<PlainAggregateWindowExpr>() else {
            return Ok(None);
        };
        // `f(x) FILTER (WHERE p) OVER ()`: DataFusion 55 keeps the filter in a private field
        // of the window expression (its `Debug` output is the only way to see it), so such a
        // window is left to DataFusion's buffering operator rather than lose its filter.
        if has_filter(agg) {
            return Ok(None);
        }
        aggregates.push(Arc::new(agg.get_aggregate_expr().clone()));
    }
    if aggregates.is_empty() {
        return Ok(None);
    }
    let input = window.input();
    // The aggregate reads its own copy of the input plan.
    let copy = reset_plan_states(Arc::clone(input))?;
    let filters = vec![None; aggregates.len()];
    let totals: Arc<dyn ExecutionPlan> = Arc::new(AggregateExec::try_new(
        AggregateMode::Single,
        PhysicalGroupBy::new_single(vec![]),
        aggregates,
        filters,
        Arc::clone(&copy),
        copy.schema(),
    )?);
    let n_totals = totals.schema().fields().len();
    let joined: Arc<dyn ExecutionPlan> = Arc::new(CrossJoinExec::new(totals, Arc::clone(input)));
    // Back to the window's columns: the input's, then one per function.
    let out = window.schema();
    let n_input = input.schema().fields().len();
    let exprs = out
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let at = if i < n_input {
                n_totals + i
            } else {
                i - n_input
            };
            let col: Arc<dyn PhysicalExpr> = Arc::new(Column::new(f.name(), at));
            ProjectionExpr::new(col, f.name().clone())
        })
        .collect::<Vec<_>>();
    Ok(Some(Arc::new(ProjectionExec::try_new(exprs, joined)?)))
}

/// Whether a window aggregate has a `FILTER (WHERE ...)` clause. The field is the last one of
/// the derived `Debug` output; anything but `filter: None` there counts as a filter, so a
/// change of that output makes the rewrite more cautious, never wrong.
fn has_filter(expr: &PlainAggregateWindowExpr) -> bool {
    !format!("{expr:?}").ends_with("filter: None }")
}
