//! Window expressions over a frame's row order: cumulative, shifted, rolling and ranked values.
//!
//! pandas computes these in row order. Here each is a DataFusion window function ordered by the
//! frame's order keys (which end with the unique position, so there are no ties), optionally
//! partitioned by group keys. DataFusion sorts the input (spilling if needed) and evaluates the
//! window streaming.

use std::sync::Arc;

use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::{
    AggregateUDF, Expr, ExprFunctionExt, SortExpr, WindowFrame, WindowFrameBound, WindowFrameUnits,
    WindowFunctionDefinition, when,
};
use datafusion::prelude::lit;
use datafusion::scalar::ScalarValue;

use crate::error::Result;

/// The frame a window aggregate covers, relative to the current row.
#[derive(Debug, Clone, Copy)]
pub enum Span {
    /// From the first row of the partition to the current row (cumulative).
    Running,
    /// The current row and the `n - 1` before it (rolling).
    Last(usize),
    /// The whole partition (transform).
    Whole,
}

impl Span {
    fn frame(self) -> WindowFrame {
        let unbounded = || WindowFrameBound::Preceding(ScalarValue::UInt64(None));
        match self {
            Span::Running => WindowFrame::new_bounds(
                WindowFrameUnits::Rows,
                unbounded(),
                WindowFrameBound::CurrentRow,
            ),
            Span::Last(n) => WindowFrame::new_bounds(
                WindowFrameUnits::Rows,
                WindowFrameBound::Preceding(ScalarValue::UInt64(Some(n.saturating_sub(1) as u64))),
                WindowFrameBound::CurrentRow,
            ),
            Span::Whole => WindowFrame::new_bounds(
                WindowFrameUnits::Rows,
                unbounded(),
                WindowFrameBound::Following(ScalarValue::UInt64(None)),
            ),
        }
    }
}

/// An aggregate function evaluated as a window over `span`.
pub fn aggregate(
    udaf: Arc<AggregateUDF>,
    args: Vec<Expr>,
    partition: &[Expr],
    order: &[SortExpr],
    span: Span,
) -> Result<Expr> {
    let w = Expr::WindowFunction(Box::new(WindowFunction {
        fun: WindowFunctionDefinition::AggregateUDF(udaf),
        params: WindowFunctionParams {
            args,
            partition_by: partition.to_vec(),
            order_by: order.to_vec(),
            window_frame: span.frame(),
            filter: None,
            null_treatment: None,
            distinct: false,
        },
    }));
    Ok(w)
}

/// `row_number()` (from 1) in `order` within `partition`.
pub fn row_number(partition: &[Expr], order: &[SortExpr]) -> Result<Expr> {
    Ok(datafusion::functions_window::expr_fn::row_number()
        .partition_by(partition.to_vec())
        .order_by(order.to_vec())
        .build()?)
}

/// The value `periods` rows earlier (later when negative), null past the edge.
pub fn shift(value: Expr, periods: i64, partition: &[Expr], order: &[SortExpr]) -> Result<Expr> {
    use datafusion::functions_window::expr_fn::{lag, lead};
    let f = if periods >= 0 {
        lag(value, Some(periods), None)
    } else {
        lead(value, Some(-periods), None)
    };
    Ok(f.partition_by(partition.to_vec())
        .order_by(order.to_vec())
        .build()?)
}

/// A cumulative aggregate that, as in pandas, is missing on rows whose own value is missing
/// (the running value carries past them).
pub fn cumulative(
    udaf: Arc<AggregateUDF>,
    value: Expr,
    partition: &[Expr],
    order: &[SortExpr],
) -> Result<Expr> {
    let running = aggregate(udaf, vec![value.clone()], partition, order, Span::Running)?;
    Ok(when(value.is_null(), lit(ScalarValue::Null)).otherwise(running)?)
}

/// A rolling aggregate over the last `window` rows, missing until `min_periods` values exist.
pub fn rolling(
    udaf: Arc<AggregateUDF>,
    value: Expr,
    window: usize,
    min_periods: usize,
    order: &[SortExpr],
) -> Result<Expr> {
    use datafusion::functions_aggregate::count::count_udaf;
    let agg = aggregate(udaf, vec![value.clone()], &[], order, Span::Last(window))?;
    let n = aggregate(count_udaf(), vec![value], &[], order, Span::Last(window))?;
    Ok(when(n.gt_eq(lit(min_periods as i64)), agg).otherwise(lit(ScalarValue::Null))?)
}

/// How `rank` numbers tied values (pandas' `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RankMethod {
    /// The mean of the ranks the tied values span.
    #[default]
    Average,
    /// The lowest rank of the tie.
    Min,
    /// The highest rank of the tie.
    Max,
    /// Ranks in row order within a tie.
    First,
    /// Like `Min`, but ranks increase by one between groups.
    Dense,
}

impl std::str::FromStr for RankMethod {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "average" => RankMethod::Average,
            "min" => RankMethod::Min,
            "max" => RankMethod::Max,
            "first" => RankMethod::First,
            "dense" => RankMethod::Dense,
            other => {
                return Err(crate::error::invalid(
                    "rank",
                    format!("method must be average, min, max, first or dense, not '{other}'"),
                ));
            }
        })
    }
}

/// pandas' `rank` (missing values keep a missing rank; the result is float64).
pub fn rank(
    value: Expr,
    method: RankMethod,
    ascending: bool,
    partition: &[Expr],
    order: &[SortExpr],
) -> Result<Expr> {
    use datafusion::functions_aggregate::count::count_udaf;
    use datafusion::functions_window::expr_fn::{dense_rank, rank as sql_rank};
    // Missing values form their own partition, so they never shift the others' ranks.
    let mut part = partition.to_vec();
    part.push(value.clone().is_null());
    let by = SortExpr::new(value.clone(), ascending, false);
    let mut tie_order = vec![by.clone()];
    tie_order.extend(order.iter().cloned());
    let min_rank = || -> Result<Expr> {
        Ok(sql_rank()
            .partition_by(part.clone())
            .order_by(vec![by.clone()])
            .build()?)
    };
    let f64 = |e: Expr| e.cast_to_f64();
    let r = match method {
        RankMethod::Min => f64(min_rank()?),
        RankMethod::Dense => f64(dense_rank()
            .partition_by(part.clone())
            .order_by(vec![by.clone()])
            .build()?),
        RankMethod::First => f64(row_number(&part, &tie_order)?),
        RankMethod::Max | RankMethod::Average => {
            let mut tie_part = part.clone();
            tie_part.push(value.clone());
            let ties = aggregate(count_udaf(), vec![lit(1)], &tie_part, &[], Span::Whole)?;
            let max = f64(min_rank()?) + f64(ties) - lit(1.0);
            if method == RankMethod::Max {
                max
            } else {
                (f64(min_rank()?) + max) / lit(2.0)
            }
        }
    };
    Ok(when(value.is_null(), lit(ScalarValue::Float64(None))).otherwise(r)?)
}

/// Casting helpers used across the crate.
pub trait CastExt {
    /// Casts to float64.
    fn cast_to_f64(self) -> Expr;
    /// Casts to int64.
    fn cast_to_i64(self) -> Expr;
}

impl CastExt for Expr {
    fn cast_to_f64(self) -> Expr {
        datafusion::logical_expr::cast(self, arrow::datatypes::DataType::Float64)
    }
    fn cast_to_i64(self) -> Expr {
        datafusion::logical_expr::cast(self, arrow::datatypes::DataType::Int64)
    }
}
