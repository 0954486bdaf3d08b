//! Reductions and statistics: `sum` … `var` over frames, `agg`, `describe`, `quantile`,
//! `corr`, `cov`, and numpy-style rounding and clipping.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::logical_expr::{Expr, SortExpr, when};
use datafusion::prelude::lit;
use datafusion::scalar::ScalarValue;
use spillframe_engine::Session;

use crate::dtype;
use crate::error::{Result, invalid};
use crate::frame::{DataFrame, c, missing};
use std::ops::Not;

use arrow::array::Array;

use crate::window::CastExt;

/// Variance with `ddof` delta degrees of freedom.
pub(crate) fn var_expr(v: Expr, ddof: u32) -> Expr {
    let v = v.cast_to_f64();
    match ddof {
        0 => agg::var_pop(v),
        1 => agg::var_sample(v),
        d => {
            let n = agg::count(v.clone()).cast_to_f64();
            agg::var_pop(v) * n.clone() / (n - lit(d as f64))
        }
    }
}

/// Standard deviation with `ddof` delta degrees of freedom.
pub(crate) fn std_expr(v: Expr, ddof: u32) -> Expr {
    datafusion::prelude::sqrt(var_expr(v, ddof))
}

/// The `q` quantile with linear interpolation (pandas' default).
pub(crate) fn quantile_expr(v: Expr, q: f64) -> Expr {
    datafusion::functions_aggregate::percentile_cont::percentile_cont(
        SortExpr::new(v.cast_to_f64(), true, false),
        lit(q),
    )
}

/// The pair with each side missing where the other is (pandas' pairwise-complete rows).
pub(crate) fn pairwise(x: Expr, y: Expr) -> Result<(Expr, Expr)> {
    let both = x.clone().is_not_null().and(y.clone().is_not_null());
    let x2 = when(both.clone(), x.cast_to_f64()).otherwise(lit(ScalarValue::Float64(None)))?;
    let y2 = when(both, y.cast_to_f64()).otherwise(lit(ScalarValue::Float64(None)))?;
    Ok((x2, y2))
}

/// Rounds to `decimals` places with halves to even, as numpy does.
pub(crate) fn round_half_even(e: Expr, dt: &DataType, decimals: i32) -> Result<Expr> {
    if !dtype::is_float(dt) {
        return Ok(e);
    }
    let scale = 10f64.powi(decimals);
    let y = e * lit(scale);
    let r = datafusion::prelude::round(vec![y.clone()]);
    let frac = datafusion::prelude::abs(y.clone() - datafusion::prelude::trunc(vec![y.clone()]));
    let even = lit(2.0) * datafusion::prelude::round(vec![y / lit(2.0)]);
    Ok(when(frac.eq(lit(0.5)), even).otherwise(r)? / lit(scale))
}

/// Limits `e` to `[lower, upper]`, keeping missing values missing.
pub(crate) fn clip_expr(
    e: Expr,
    lower: Option<ScalarValue>,
    upper: Option<ScalarValue>,
) -> Result<Expr> {
    let mut out = e.clone();
    if let Some(u) = upper {
        out = when(out.clone().gt(lit(u.clone())), lit(u)).otherwise(out)?;
    }
    if let Some(l) = lower {
        out = when(out.clone().lt(lit(l.clone())), lit(l)).otherwise(out)?;
    }
    Ok(when(e.is_null(), lit(ScalarValue::Null)).otherwise(out)?)
}

/// The common type pandas would give a column holding all of `types`.
fn common_type(types: &[DataType]) -> DataType {
    if types.iter().all(|t| t.is_integer()) {
        DataType::Int64
    } else if types.iter().all(|t| t.is_numeric()) {
        DataType::Float64
    } else if types.iter().all(|t| t == &types[0]) {
        types[0].clone()
    } else {
        DataType::Utf8
    }
}

/// A two-column frame (`column`, `value_name`) from one row of per-column results.
pub(crate) fn long_table(
    session: &Session,
    names: &[String],
    row: &RecordBatch,
    value_name: &str,
) -> Result<DataFrame> {
    let types: Vec<DataType> = row
        .columns()
        .iter()
        .map(|a| a.data_type().clone())
        .collect();
    let to = common_type(&types);
    let values: Vec<ArrayRef> = row
        .columns()
        .iter()
        .map(|a| cast(a, &to))
        .collect::<std::result::Result<_, _>>()?;
    let refs: Vec<&dyn Array> = values.iter().map(|a| a.as_ref()).collect();
    let value = arrow::compute::concat(&refs)?;
    let column: ArrayRef = Arc::new(StringArray::from_iter_values(names.iter()));
    DataFrame::from_columns(session, vec![("column", column), (value_name, value)])
}

/// One aggregation by pandas name over a column.
pub(crate) fn named_agg(func: &str, v: Expr, dt: &DataType) -> Result<Expr> {
    let present = when(missing(v.clone(), dt), lit(ScalarValue::Null)).otherwise(v.clone())?;
    Ok(match func {
        "sum" => {
            let zero = ScalarValue::new_zero(dt).unwrap_or(ScalarValue::Int64(Some(0)));
            datafusion::prelude::coalesce(vec![agg::sum(v), lit(zero)])
        }
        "mean" => agg::avg(v.cast_to_f64()),
        "median" => agg::median(v.cast_to_f64()),
        "min" => agg::min(v),
        "max" => agg::max(v),
        "count" => agg::count(present),
        "size" => agg::count(lit(1)),
        "std" => std_expr(v, 1),
        "var" => var_expr(v, 1),
        "prod" => crate::functions::product(v),
        // -0.0 and 0.0 are one value to pandas.
        "nunique" => agg::count_distinct(crate::frame::zero_signed(present, dt)),
        "any" => datafusion::prelude::coalesce(vec![agg::bool_or(v), lit(false)]),
        "all" => datafusion::prelude::coalesce(vec![agg::bool_and(v), lit(true)]),
        other => {
            return Err(invalid(
                "agg",
                format!(
                    "unknown aggregation '{other}' (known: sum, mean, median, min, max, count, \
                     size, std, var, prod, nunique, any, all)"
                ),
            ));
        }
    })
}

impl DataFrame {
    /// Exact quantiles of a column with linear interpolation, out of core: the present values
    /// are sorted (spilling if need be) and only the rows at the needed ranks come back.
    /// `percentile_cont` would hold every value in memory instead.
    pub(crate) fn exact_quantiles(&self, column: &str, qs: &[f64]) -> Result<Vec<Option<f64>>> {
        use arrow::array::{AsArray, Int64Array};
        use arrow::datatypes::{Float64Type, Int64Type};
        for q in qs {
            if !(0.0..=1.0).contains(q) {
                return Err(invalid(
                    "quantile",
                    format!("q must be between 0 and 1, not {q}"),
                ));
            }
        }
        let dt = self.dtype_of("quantile", column)?;
        let present = self.filter_expr(missing(c(column), &dt).not())?;
        let n = present.run_one_row(vec![agg::count(lit(1)).alias("n")])?;
        let n = n
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(|a| a.value(0))
            .unwrap_or(0);
        if n == 0 {
            return Ok(vec![None; qs.len()]);
        }
        let mut ranks: Vec<i64> = Vec::new();
        for q in qs {
            let h = (n - 1) as f64 * q;
            ranks.push(h.floor() as i64 + 1);
            ranks.push(h.ceil() as i64 + 1);
        }
        ranks.sort_unstable();
        ranks.dedup();
        let v = c(column).cast_to_f64();
        let rn =
            crate::window::row_number(&[], &[SortExpr::new(v.clone(), true, false)])?.cast_to_i64();
        let df = present
            .df
            .clone()
            .select(vec![v.alias("__v"), rn.alias("__rn")])?
            .filter(c("__rn").in_list(ranks.iter().map(|r| lit(*r)).collect(), false))?;
        let table = crate::frame::run(&spillframe_engine::LazyFrame::from_datafusion(
            &self.session,
            df,
        ))?;
        let b = table.to_batch()?;
        let (vals, rns) = (
            b.column(0).as_primitive::<Float64Type>(),
            b.column(1).as_primitive::<Int64Type>(),
        );
        let at = |r: i64| -> Option<f64> {
            (0..b.num_rows())
                .find(|&i| rns.value(i) == r)
                .map(|i| vals.value(i))
        };
        Ok(qs
            .iter()
            .map(|q| {
                let h = (n - 1) as f64 * q;
                let (lo, hi) = (at(h.floor() as i64 + 1)?, at(h.ceil() as i64 + 1)?);
                Some(lo + (hi - lo) * (h - h.floor()))
            })
            .collect())
    }

    fn reduce_each(
        &self,
        op: &'static str,
        f: impl Fn(Expr, &DataType) -> Result<Expr>,
    ) -> Result<DataFrame> {
        let cols = self.columns();
        let mut aggs = Vec::new();
        for n in &cols {
            let dt = self.dtype_of(op, n)?;
            aggs.push(f(c(n), &dt)?.alias(n.as_str()));
        }
        let row = self.run_one_row(aggs)?;
        long_table(&self.session, &cols, &row, "value")
    }

    fn reduce_named(&self, func: &'static str) -> Result<DataFrame> {
        self.reduce_each(func, |v, dt| named_agg(func, v, dt))
    }

    /// Column sums, as columns `column` and `value` (pandas' `sum()` with the index reset).
    pub fn sum(&self) -> Result<DataFrame> {
        self.reduce_named("sum")
    }

    /// Column means.
    pub fn mean(&self) -> Result<DataFrame> {
        self.reduce_named("mean")
    }

    /// Column medians.
    pub fn median(&self) -> Result<DataFrame> {
        self.reduce_named("median")
    }

    /// Column minimums.
    pub fn min(&self) -> Result<DataFrame> {
        self.reduce_named("min")
    }

    /// Column maximums.
    pub fn max(&self) -> Result<DataFrame> {
        self.reduce_named("max")
    }

    /// Present values per column.
    pub fn count(&self) -> Result<DataFrame> {
        self.reduce_named("count")
    }

    /// Column standard deviations with `ddof`.
    pub fn std(&self, ddof: u32) -> Result<DataFrame> {
        self.reduce_each("std", |v, _| Ok(std_expr(v, ddof)))
    }

    /// Column variances with `ddof`.
    pub fn var(&self, ddof: u32) -> Result<DataFrame> {
        self.reduce_each("var", |v, _| Ok(var_expr(v, ddof)))
    }

    /// Column `q` quantiles (linear interpolation), computed out of core.
    pub fn quantile(&self, q: f64) -> Result<DataFrame> {
        let cols = self.columns();
        let mut values = Vec::new();
        for n in &cols {
            values.push(self.exact_quantiles(n, &[q])?[0]);
        }
        let value: ArrayRef = Arc::new(arrow::array::Float64Array::from(values));
        let column: ArrayRef = Arc::new(StringArray::from_iter_values(cols.iter()));
        DataFrame::from_columns(&self.session, vec![("column", column), ("value", value)])
    }

    /// Several aggregations by pandas name: one row per function, the frame's columns
    /// (pandas' `agg([...])` with the index reset).
    pub fn agg(&self, funcs: &[&str]) -> Result<DataFrame> {
        let cols = self.columns();
        let mut aggs = Vec::new();
        for (i, f) in funcs.iter().enumerate() {
            for n in &cols {
                let dt = self.dtype_of("agg", n)?;
                aggs.push(named_agg(f, c(n), &dt)?.alias(format!("{i}_{n}")));
            }
        }
        let row = self.run_one_row(aggs)?;
        let mut out = Vec::new();
        for (j, n) in cols.iter().enumerate() {
            let parts: Vec<ArrayRef> = (0..funcs.len())
                .map(|i| Arc::clone(row.column(i * cols.len() + j)))
                .collect();
            let types: Vec<DataType> = parts.iter().map(|a| a.data_type().clone()).collect();
            let to = common_type(&types);
            let cast_parts: Vec<ArrayRef> = parts
                .iter()
                .map(|a| cast(a, &to))
                .collect::<std::result::Result<_, _>>()?;
            let refs: Vec<&dyn Array> = cast_parts.iter().map(|a| a.as_ref()).collect();
            out.push((n.as_str(), arrow::compute::concat(&refs)?));
        }
        DataFrame::from_columns(&self.session, out)
    }

    /// count, mean, std, min, 25%, 50%, 75%, max of each numeric column, as a `stat` column
    /// and one float64 column per numeric column (pandas' `describe()` with the index reset).
    pub fn describe(&self) -> Result<DataFrame> {
        let cols: Vec<String> = self
            .columns()
            .into_iter()
            .filter(|n| {
                self.dtype_of("describe", n)
                    .map(|t| dtype::is_numeric(&t))
                    .unwrap_or(false)
            })
            .collect();
        if cols.is_empty() {
            return Err(invalid("describe", "the frame has no numeric columns"));
        }
        let stats = ["count", "mean", "std", "min", "25%", "50%", "75%", "max"];
        let mut aggs = Vec::new();
        for n in &cols {
            let dt = self.dtype_of("describe", n)?;
            let v = c(n);
            let present =
                when(missing(v.clone(), &dt), lit(ScalarValue::Null)).otherwise(v.clone())?;
            aggs.extend([
                agg::count(present).cast_to_f64(),
                agg::avg(v.clone().cast_to_f64()),
                std_expr(v.clone(), 1),
                agg::min(v.clone()).cast_to_f64(),
                agg::max(v).cast_to_f64(),
            ]);
        }
        let aggs = aggs
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.alias(format!("s{i}")))
            .collect();
        let row = self.run_one_row(aggs)?;
        let mut out: Vec<(&str, ArrayRef)> = vec![(
            "stat",
            Arc::new(StringArray::from_iter_values(stats)) as ArrayRef,
        )];
        for (j, n) in cols.iter().enumerate() {
            let get = |i: usize| -> Option<f64> {
                let a = row.column(j * 5 + i);
                a.as_any()
                    .downcast_ref::<arrow::array::Float64Array>()
                    .and_then(|f| (!f.is_null(0)).then(|| f.value(0)))
            };
            let q = self.exact_quantiles(n, &[0.25, 0.5, 0.75])?;
            let values = vec![get(0), get(1), get(2), get(3), q[0], q[1], q[2], get(4)];
            out.push((
                n.as_str(),
                Arc::new(arrow::array::Float64Array::from(values)) as ArrayRef,
            ));
        }
        DataFrame::from_columns(&self.session, out)
    }

    fn pairwise_matrix(&self, op: &'static str, f: fn(Expr, Expr) -> Expr) -> Result<DataFrame> {
        let cols: Vec<String> = self
            .columns()
            .into_iter()
            .filter(|n| {
                self.dtype_of(op, n)
                    .map(|t| dtype::is_numeric(&t))
                    .unwrap_or(false)
            })
            .collect();
        let mut aggs = Vec::new();
        for a in &cols {
            for b in &cols {
                let (x, y) = pairwise(c(a), c(b))?;
                aggs.push(f(x, y).alias(format!("{a}|{b}")));
            }
        }
        let row = self.run_one_row(aggs)?;
        let mut out: Vec<(&str, ArrayRef)> = vec![(
            "column",
            Arc::new(StringArray::from_iter_values(cols.iter())) as ArrayRef,
        )];
        for (j, b) in cols.iter().enumerate() {
            let parts: Vec<&dyn Array> = (0..cols.len())
                .map(|i| row.column(i * cols.len() + j).as_ref())
                .collect();
            out.push((b.as_str(), arrow::compute::concat(&parts)?));
        }
        DataFrame::from_columns(&self.session, out)
    }

    /// Pearson correlations between numeric columns (pairwise-complete rows), with the
    /// column labels in a `column` column.
    pub fn corr(&self) -> Result<DataFrame> {
        self.pairwise_matrix("corr", agg::corr)
    }

    /// Sample covariances between numeric columns (pairwise-complete rows).
    pub fn cov(&self) -> Result<DataFrame> {
        self.pairwise_matrix("cov", agg::covar_samp)
    }

    /// Absolute values of numeric columns.
    pub fn abs(&self) -> Result<DataFrame> {
        self.map_numeric(|e, _| Ok(datafusion::prelude::abs(e)))
    }

    /// Rounds float columns to `decimals` places, halves to even.
    pub fn round(&self, decimals: i32) -> Result<DataFrame> {
        self.map_numeric(|e, dt| round_half_even(e, dt, decimals))
    }

    /// Limits numeric columns to `[lower, upper]`.
    pub fn clip(
        &self,
        lower: Option<ScalarValue>,
        upper: Option<ScalarValue>,
    ) -> Result<DataFrame> {
        self.map_numeric(|e, _| clip_expr(e, lower.clone(), upper.clone()))
    }

    /// Adds a scalar to every numeric column.
    pub fn add(&self, value: impl Into<ScalarValue>) -> Result<DataFrame> {
        let v = value.into();
        self.map_numeric(|e, _| Ok(e + lit(v.clone())))
    }

    /// Subtracts a scalar from every numeric column.
    pub fn sub(&self, value: impl Into<ScalarValue>) -> Result<DataFrame> {
        let v = value.into();
        self.map_numeric(|e, _| Ok(e - lit(v.clone())))
    }

    /// Multiplies every numeric column by a scalar.
    pub fn mul(&self, value: impl Into<ScalarValue>) -> Result<DataFrame> {
        let v = value.into();
        self.map_numeric(|e, _| Ok(e * lit(v.clone())))
    }

    /// Divides every numeric column by a scalar, in floating point.
    pub fn div(&self, value: impl Into<ScalarValue>) -> Result<DataFrame> {
        let v = value.into();
        self.map_numeric(|e, _| Ok(e.cast_to_f64() / lit(v.clone()).cast_to_f64()))
    }
}
