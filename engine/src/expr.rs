//! Polars-style expressions: method chaining over DataFusion's [`Expr`].
//!
//! ```
//! use spillframe_engine::prelude::*;
//! let e = col("v").sum().alias("s");
//! let p = col("a").gt(lit(3)).and(col("b").is_in([lit("x"), lit("y")]));
//! # let _ = (e, p);
//! ```
//!
//! DataFusion's own `Expr` methods stay available (`alias`, `gt`, `lt`, `eq`, `and`, `or`,
//! `is_null`, `between`, ...); [`ExprExt`] adds the Polars names DataFusion lacks.

use arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::logical_expr::{Expr, cast};
use datafusion::prelude::lit;

/// A column by its exact name. Unlike DataFusion's `col`, a dot in the name is part of the name
/// (as in Polars), not a table qualifier.
pub fn col(name: impl AsRef<str>) -> Expr {
    Expr::Column(Column::from_name(name.as_ref()))
}

/// Several columns by name.
pub fn cols<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Vec<Expr> {
    names.into_iter().map(col).collect()
}

/// The number of rows (in a group), named `len` as in Polars.
pub fn len() -> Expr {
    agg::count(lit(1)).alias("len")
}

/// Something usable where an expression is expected: an [`Expr`] or a column name.
pub trait IntoExpr {
    /// The expression.
    fn into_expr(self) -> Expr;
}

impl IntoExpr for Expr {
    fn into_expr(self) -> Expr {
        self
    }
}
impl IntoExpr for &Expr {
    fn into_expr(self) -> Expr {
        self.clone()
    }
}
impl IntoExpr for &str {
    fn into_expr(self) -> Expr {
        col(self)
    }
}
impl IntoExpr for String {
    fn into_expr(self) -> Expr {
        col(self)
    }
}
impl IntoExpr for &String {
    fn into_expr(self) -> Expr {
        col(self)
    }
}

/// Polars-style methods on [`Expr`].
// `is_in`/`is_between` keep Polars' names; like every expression builder they consume `self`.
#[allow(clippy::wrong_self_convention)]
pub trait ExprExt: Sized {
    /// Sum (nulls skipped).
    fn sum(self) -> Expr;
    /// Arithmetic mean (nulls skipped).
    fn mean(self) -> Expr;
    /// Minimum.
    fn min(self) -> Expr;
    /// Maximum.
    fn max(self) -> Expr;
    /// Number of non-null values.
    fn count(self) -> Expr;
    /// Number of distinct non-null values.
    fn n_unique(self) -> Expr;
    /// Median (exact).
    fn median(self) -> Expr;
    /// Quantile `q` in [0, 1] with linear interpolation between the closest values.
    fn quantile(self, q: f64) -> Expr;
    /// Standard deviation with `ddof` delta degrees of freedom (1 = sample, as in Polars).
    fn std(self, ddof: u8) -> Expr;
    /// Variance with `ddof` delta degrees of freedom (1 = sample).
    fn var(self, ddof: u8) -> Expr;
    /// The first value in the order rows arrive (sort first for a deterministic choice).
    fn first(self) -> Expr;
    /// The last value in the order rows arrive.
    fn last(self) -> Expr;
    /// `self != other`.
    fn neq(self, other: Expr) -> Expr;
    /// `low <= self <= high`.
    fn is_between(self, low: Expr, high: Expr) -> Expr;
    /// Membership in a list of values.
    fn is_in(self, values: impl IntoIterator<Item = Expr>) -> Expr;
    /// Replaces nulls with `value`.
    fn fill_null(self, value: Expr) -> Expr;
    /// Casts to `data_type`.
    fn cast(self, data_type: DataType) -> Expr;
    /// Absolute value.
    fn abs(self) -> Expr;
    /// Rounds to `decimals` places.
    fn round(self, decimals: i64) -> Expr;
    /// Number of characters of a string.
    fn str_len(self) -> Expr;
    /// Lower-cases a string.
    fn str_to_lowercase(self) -> Expr;
    /// Upper-cases a string.
    fn str_to_uppercase(self) -> Expr;
    /// True where the string contains `pattern` literally.
    fn str_contains(self, pattern: &str) -> Expr;
    /// True where the string starts with `prefix`.
    fn str_starts_with(self, prefix: &str) -> Expr;
}

impl ExprExt for Expr {
    fn sum(self) -> Expr {
        agg::sum(self)
    }
    fn mean(self) -> Expr {
        agg::avg(self)
    }
    fn min(self) -> Expr {
        agg::min(self)
    }
    fn max(self) -> Expr {
        agg::max(self)
    }
    fn count(self) -> Expr {
        agg::count(self)
    }
    fn n_unique(self) -> Expr {
        agg::count_distinct(self)
    }
    fn median(self) -> Expr {
        agg::median(self)
    }
    fn quantile(self, q: f64) -> Expr {
        agg::percentile_cont(self.sort(true, false), lit(q))
    }
    fn std(self, ddof: u8) -> Expr {
        match ddof {
            0 => agg::stddev_pop(self),
            1 => agg::stddev(self),
            _ => datafusion::functions::math::expr_fn::sqrt(self.var(ddof)),
        }
    }
    fn var(self, ddof: u8) -> Expr {
        match ddof {
            0 => agg::var_pop(self),
            1 => agg::var_sample(self),
            d => {
                // var_pop * n / (n - ddof)
                let n = cast(agg::count(self.clone()), DataType::Float64);
                agg::var_pop(self) * n.clone() / (n - lit(d as f64))
            }
        }
    }
    fn first(self) -> Expr {
        agg::first_value(self, vec![])
    }
    fn last(self) -> Expr {
        agg::last_value(self, vec![])
    }
    fn neq(self, other: Expr) -> Expr {
        self.not_eq(other)
    }
    fn is_between(self, low: Expr, high: Expr) -> Expr {
        self.between(low, high)
    }
    fn is_in(self, values: impl IntoIterator<Item = Expr>) -> Expr {
        self.in_list(values.into_iter().collect(), false)
    }
    fn fill_null(self, value: Expr) -> Expr {
        datafusion::functions::core::expr_fn::coalesce(vec![self, value])
    }
    fn cast(self, data_type: DataType) -> Expr {
        cast(self, data_type)
    }
    fn abs(self) -> Expr {
        datafusion::functions::math::expr_fn::abs(self)
    }
    fn round(self, decimals: i64) -> Expr {
        datafusion::functions::math::expr_fn::round(vec![self, lit(decimals)])
    }
    fn str_len(self) -> Expr {
        datafusion::functions::unicode::expr_fn::character_length(self)
    }
    fn str_to_lowercase(self) -> Expr {
        datafusion::functions::string::expr_fn::lower(self)
    }
    fn str_to_uppercase(self) -> Expr {
        datafusion::functions::string::expr_fn::upper(self)
    }
    fn str_contains(self, pattern: &str) -> Expr {
        datafusion::functions::string::expr_fn::contains(self, lit(pattern))
    }
    fn str_starts_with(self, prefix: &str) -> Expr {
        datafusion::functions::string::expr_fn::starts_with(self, lit(prefix))
    }
}

/// The output name of an expression: its alias, its column name, or DataFusion's display name.
pub(crate) fn output_name(e: &Expr) -> String {
    match e {
        Expr::Alias(a) => a.name.clone(),
        Expr::Column(c) => c.name.clone(),
        other => other.schema_name().to_string(),
    }
}
