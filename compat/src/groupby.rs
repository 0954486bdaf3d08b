//! pandas' `groupby`: aggregations (one row per group) and per-row group operations.
//!
//! Aggregations follow pandas' defaults: keys sorted (`sort=true`) or in order of first
//! appearance (`sort=false`), rows with a missing key dropped (`dropna=true`), and the keys
//! returned as columns (as `reset_index()` would). Per-row operations (`transform`, `cumsum`,
//! `shift`, `rank`, `head`, ...) keep the frame's rows and order and are window functions
//! partitioned by the keys.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::logical_expr::{AggregateUDF, Expr, ExprFunctionExt, SortExpr, when};
use datafusion::prelude::lit;
use datafusion::scalar::ScalarValue;

use crate::error::{Result, invalid};
use crate::frame::{DataFrame, c, missing};
use crate::positioned::POS;
use crate::series::Series;
use crate::stats::named_agg;
use crate::window::{self, CastExt, RankMethod, Span};

/// A grouping of a frame by key columns (pandas' `DataFrameGroupBy`).
#[derive(Debug, Clone)]
pub struct GroupBy {
    frame: DataFrame,
    keys: Vec<String>,
    sort: bool,
    dropna: bool,
    selection: Option<Vec<String>>,
}

impl DataFrame {
    /// Groups by key columns with pandas' defaults (`sort=True`, `dropna=True`).
    pub fn groupby(&self, keys: &[&str]) -> Result<GroupBy> {
        GroupBy::new(self, keys, true, true)
    }

    /// Groups by key columns with explicit `sort` and `dropna`.
    pub fn groupby_with(&self, keys: &[&str], sort: bool, dropna: bool) -> Result<GroupBy> {
        GroupBy::new(self, keys, sort, dropna)
    }

    /// A frame over `df` whose rows are ordered by `order` (numbered into `__sf_pos`).
    pub(crate) fn ordered_by(
        &self,
        df: datafusion::dataframe::DataFrame,
        order: Vec<SortExpr>,
    ) -> Result<DataFrame> {
        let tmp = DataFrame::wrap(&self.session, df, order);
        tmp.renumbered()
    }
}

fn window_udaf(func: &str) -> Result<Arc<AggregateUDF>> {
    use datafusion::functions_aggregate as fa;
    Ok(match func {
        "sum" => fa::sum::sum_udaf(),
        "mean" => fa::average::avg_udaf(),
        "min" => fa::min_max::min_udaf(),
        "max" => fa::min_max::max_udaf(),
        "count" | "size" => fa::count::count_udaf(),
        "std" => fa::stddev::stddev_udaf(),
        "var" => fa::variance::var_samp_udaf(),
        "median" => fa::median::median_udaf(),
        "prod" => crate::functions::product_udaf(),
        other => {
            return Err(invalid(
                "transform",
                format!(
                    "unknown function '{other}' (known: sum, mean, min, max, count, size, std, var, median, prod)"
                ),
            ));
        }
    })
}

impl GroupBy {
    pub(crate) fn new(frame: &DataFrame, keys: &[&str], sort: bool, dropna: bool) -> Result<Self> {
        frame.check_columns("groupby", keys)?;
        if keys.is_empty() {
            return Err(invalid("groupby", "at least one key column is needed"));
        }
        Ok(GroupBy {
            frame: frame.renumbered()?,
            keys: keys.iter().map(|s| s.to_string()).collect(),
            sort,
            dropna,
            selection: None,
        })
    }

    /// Restricts later operations to some columns (pandas' `groupby(...)[[...]]`).
    pub fn select(&self, columns: &[&str]) -> Result<GroupBy> {
        self.frame.check_columns("groupby", columns)?;
        let mut g = self.clone();
        g.selection = Some(columns.iter().map(|s| s.to_string()).collect());
        Ok(g)
    }

    fn value_columns(&self) -> Vec<String> {
        match &self.selection {
            Some(s) => s.clone(),
            None => self
                .frame
                .columns()
                .into_iter()
                .filter(|n| !self.keys.contains(n))
                .collect(),
        }
    }

    fn key_exprs(&self) -> Vec<Expr> {
        self.keys.iter().map(|k| c(k)).collect()
    }

    fn keys_present(&self) -> Expr {
        self.keys
            .iter()
            .map(|k| c(k).is_not_null())
            .reduce(|a, b| a.and(b))
            .unwrap_or(lit(true))
    }

    /// Groups with their aggregates: keys first, then `aggs`, in pandas' group order.
    pub(crate) fn aggregate(&self, aggs: Vec<Expr>) -> Result<DataFrame> {
        let mut input = self.frame.clone();
        if self.dropna {
            input = input.filter_expr(self.keys_present())?;
        }
        let mut aggs = aggs;
        aggs.push(agg::min(c(POS)).alias("__sf_first"));
        let df = input.df.clone().aggregate(self.key_exprs(), aggs)?;
        let order = if self.sort {
            self.keys
                .iter()
                .map(|k| SortExpr::new(c(k), true, false))
                .collect()
        } else {
            vec![SortExpr::new(c("__sf_first"), true, false)]
        };
        self.frame.ordered_by(df, order)
    }

    /// Named aggregations: `(output name, column, function)` (pandas' `agg(out=(col, fn))`).
    pub fn agg(&self, named: &[(&str, &str, &str)]) -> Result<DataFrame> {
        let mut aggs = Vec::new();
        for (out, col, func) in named {
            let dt = self.frame.dtype_of("agg", col)?;
            aggs.push(self.one(func, col, &dt)?.alias(*out));
        }
        self.aggregate(aggs)
    }

    fn one(&self, func: &str, col: &str, dt: &DataType) -> Result<Expr> {
        use datafusion::functions_aggregate::first_last::{first_value_udaf, last_value_udaf};
        use datafusion::logical_expr::expr::NullTreatment;
        let by_pos = vec![SortExpr::new(c(POS), true, false)];
        let present = when(missing(c(col), dt), lit(ScalarValue::Null)).otherwise(c(col))?;
        Ok(match func {
            "first" => first_value_udaf()
                .call(vec![present])
                .order_by(by_pos)
                .null_treatment(NullTreatment::IgnoreNulls)
                .build()?,
            "last" => last_value_udaf()
                .call(vec![present])
                .order_by(by_pos)
                .null_treatment(NullTreatment::IgnoreNulls)
                .build()?,
            f => named_agg(f, c(col), dt)?,
        })
    }

    fn each(&self, func: &str) -> Result<DataFrame> {
        let mut aggs = Vec::new();
        for col in self.value_columns() {
            let dt = self.frame.dtype_of("groupby", &col)?;
            aggs.push(self.one(func, &col, &dt)?.alias(col.as_str()));
        }
        self.aggregate(aggs)
    }

    /// Per-group sums.
    pub fn sum(&self) -> Result<DataFrame> {
        self.each("sum")
    }
    /// Per-group means.
    pub fn mean(&self) -> Result<DataFrame> {
        self.each("mean")
    }
    /// Per-group medians.
    pub fn median(&self) -> Result<DataFrame> {
        self.each("median")
    }
    /// Per-group minimums.
    pub fn min(&self) -> Result<DataFrame> {
        self.each("min")
    }
    /// Per-group maximums.
    pub fn max(&self) -> Result<DataFrame> {
        self.each("max")
    }
    /// Per-group counts of present values.
    pub fn count(&self) -> Result<DataFrame> {
        self.each("count")
    }
    /// Per-group products.
    pub fn prod(&self) -> Result<DataFrame> {
        self.each("prod")
    }
    /// Per-group first present values.
    pub fn first(&self) -> Result<DataFrame> {
        self.each("first")
    }
    /// Per-group last present values.
    pub fn last(&self) -> Result<DataFrame> {
        self.each("last")
    }
    /// Per-group numbers of distinct present values.
    pub fn nunique(&self) -> Result<DataFrame> {
        self.each("nunique")
    }
    /// Whether any value per group is true.
    pub fn any(&self) -> Result<DataFrame> {
        self.each("any")
    }
    /// Whether all values per group are true.
    pub fn all(&self) -> Result<DataFrame> {
        self.each("all")
    }

    /// Each value column aggregated by `f`, under its own name.
    fn each_with(&self, f: impl Fn(Expr) -> Expr) -> Result<DataFrame> {
        let aggs = self
            .value_columns()
            .iter()
            .map(|n| f(c(n)).alias(n.as_str()))
            .collect();
        self.aggregate(aggs)
    }

    /// Per-group standard deviations with `ddof`.
    pub fn std(&self, ddof: u32) -> Result<DataFrame> {
        self.each_with(|v| crate::stats::std_expr(v, ddof))
    }

    /// Per-group variances with `ddof`.
    pub fn var(&self, ddof: u32) -> Result<DataFrame> {
        self.each_with(|v| crate::stats::var_expr(v, ddof))
    }

    /// Per-group `q` quantiles (linear interpolation).
    pub fn quantile(&self, q: f64) -> Result<DataFrame> {
        self.each_with(|v| crate::stats::quantile_expr(v, q))
    }

    /// Rows per group, as a `size` column.
    pub fn size(&self) -> Result<DataFrame> {
        self.aggregate(vec![agg::count(lit(1)).alias("size")])
    }

    /// Counts of each key combination, most common first (pandas' `DataFrame.value_counts`).
    pub(crate) fn value_counts(&self) -> Result<DataFrame> {
        let counted = self.aggregate(vec![agg::count(lit(1)).alias("count")])?;
        counted.sort_values(&["count"], &[false])
    }

    // ----- per-row operations ------------------------------------------------------------

    /// Keeps the frame's rows; `f` gives each value column's new expression. Rows whose key
    /// is missing get missing values, as in pandas.
    fn per_row(&self, f: impl Fn(Expr, &DataType) -> Result<Expr>) -> Result<DataFrame> {
        let mut user = Vec::new();
        for n in self.value_columns() {
            let dt = self.frame.dtype_of("groupby", &n)?;
            let e = f(c(&n), &dt)?;
            let e = if self.dropna {
                when(self.keys_present(), e).otherwise(lit(ScalarValue::Null))?
            } else {
                e
            };
            user.push(e.alias(n.as_str()));
        }
        self.frame.project(user)
    }

    fn part(&self) -> Vec<Expr> {
        self.key_exprs()
    }

    /// Each row's group aggregate (pandas' `transform("mean")` and friends).
    pub fn transform(&self, func: &str) -> Result<DataFrame> {
        let udaf = window_udaf(func)?;
        let part = self.part();
        self.per_row(|v, dt| {
            let v = if matches!(func, "mean" | "std" | "var" | "median") {
                v.cast_to_f64()
            } else {
                v
            };
            let v = if func == "size" {
                lit(1)
            } else {
                when(missing(v.clone(), dt), lit(ScalarValue::Null)).otherwise(v)?
            };
            window::aggregate(udaf.clone(), vec![v], &part, &[], Span::Whole)
        })
    }

    fn cumulative(&self, func: &str) -> Result<DataFrame> {
        let udaf = window_udaf(func)?;
        let (part, order) = (self.part(), self.frame.order.clone());
        self.per_row(|v, _| window::cumulative(udaf.clone(), v, &part, &order))
    }

    /// Running sums within each group.
    pub fn cumsum(&self) -> Result<DataFrame> {
        self.cumulative("sum")
    }
    /// Running maximums within each group.
    pub fn cummax(&self) -> Result<DataFrame> {
        self.cumulative("max")
    }
    /// Running minimums within each group.
    pub fn cummin(&self) -> Result<DataFrame> {
        self.cumulative("min")
    }
    /// Running products within each group.
    pub fn cumprod(&self) -> Result<DataFrame> {
        self.cumulative("prod")
    }

    /// Ranks within each group (float64).
    pub fn rank(&self, method: RankMethod, ascending: bool) -> Result<DataFrame> {
        let (part, order) = (self.part(), self.frame.order.clone());
        self.per_row(|v, dt| {
            window::rank(
                crate::frame::zero_signed(v, dt),
                method,
                ascending,
                &part,
                &order,
            )
        })
    }

    /// Values `periods` rows earlier within each group (integers become float64).
    pub fn shift(&self, periods: i64) -> Result<DataFrame> {
        let (part, order) = (self.part(), self.frame.order.clone());
        self.per_row(|v, dt| {
            let v = if dt.is_integer() { v.cast_to_f64() } else { v };
            window::shift(v, periods, &part, &order)
        })
    }

    /// Differences from the value `periods` rows earlier within each group.
    pub fn diff(&self, periods: i64) -> Result<DataFrame> {
        let (part, order) = (self.part(), self.frame.order.clone());
        self.per_row(|v, _| {
            let v = v.cast_to_f64();
            Ok(v.clone() - window::shift(v, periods, &part, &order)?)
        })
    }

    fn present_rows(&self) -> Expr {
        if self.dropna {
            self.keys_present()
        } else {
            lit(true)
        }
    }

    /// Each row's number within its group, from 0.
    pub fn cumcount(&self) -> Result<Series> {
        let rn = window::row_number(&self.part(), &self.frame.order)?.cast_to_i64() - lit(1i64);
        let e = when(self.present_rows(), rn).otherwise(lit(ScalarValue::Int64(None)))?;
        Ok(Series::new(self.frame.clone(), e, "value"))
    }

    /// Each row's group number, in sorted key order, from 0.
    pub fn ngroup(&self) -> Result<Series> {
        use datafusion::functions_window::expr_fn::dense_rank;
        let order: Vec<SortExpr> = self
            .keys
            .iter()
            .map(|k| SortExpr::new(c(k), true, false))
            .collect();
        let g = dense_rank().order_by(order).build()?.cast_to_i64() - lit(1i64);
        let e = when(self.present_rows(), g).otherwise(lit(ScalarValue::Int64(None)))?;
        Ok(Series::new(self.frame.clone(), e, "value"))
    }

    fn nth_rows(&self, test: impl Fn(Expr) -> Expr, reverse: bool) -> Result<DataFrame> {
        let order: Vec<SortExpr> = if reverse {
            crate::frame::reversed(&self.frame.order)
        } else {
            self.frame.order.clone()
        };
        let rn = window::row_number(&self.part(), &order)?;
        self.frame.filter_expr(test(rn).and(self.present_rows()))
    }

    /// The first `n` rows of each group, in the frame's order.
    pub fn head(&self, n: usize) -> Result<DataFrame> {
        self.nth_rows(|rn| rn.lt_eq(lit(n as u64)), false)
    }

    /// The last `n` rows of each group, in the frame's order.
    pub fn tail(&self, n: usize) -> Result<DataFrame> {
        self.nth_rows(|rn| rn.lt_eq(lit(n as u64)), true)
    }

    /// The `n`th row (from 0) of each group.
    pub fn nth(&self, n: usize) -> Result<DataFrame> {
        self.nth_rows(|rn| rn.eq(lit(n as u64 + 1)), false)
    }
}

/// Counts of each distinct value of column `name` (pandas' `Series.value_counts`).
pub(crate) fn value_counts(
    frame: &DataFrame,
    name: &str,
    normalize: bool,
    sort: bool,
    ascending: bool,
    dropna: bool,
) -> Result<DataFrame> {
    let g = GroupBy::new(frame, &[name], false, dropna)?;
    let counted = g.aggregate(vec![agg::count(lit(1)).alias("count")])?;
    let out = if normalize {
        let total = window::aggregate(
            datafusion::functions_aggregate::sum::sum_udaf(),
            vec![c("count")],
            &[],
            &[],
            Span::Whole,
        )?;
        let p = (c("count").cast_to_f64() / total.cast_to_f64()).alias("proportion");
        counted.project(vec![c(name), p])?
    } else {
        counted
    };
    let col = if normalize { "proportion" } else { "count" };
    if sort {
        out.sort_values(&[col], &[ascending])
    } else {
        Ok(out)
    }
}
