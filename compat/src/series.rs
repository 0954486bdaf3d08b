//! The pandas-style [`Series`]: one column expression over a [`DataFrame`].
//!
//! A Series is lazy: element-wise operations build expressions over the parent frame, so
//! `df.col("x")?.add(&df.col("y")?)?` stays one plan. Operations that change the rows
//! (`dropna`, `sort_values`, `head`) go through a one-column frame.

use std::ops::Not;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::logical_expr::{Expr, SortExpr, when};
use datafusion::prelude::lit;
use datafusion::scalar::ScalarValue;
use spillframe_engine::Table;

use crate::accessors::{DtAccessor, StrAccessor};
use crate::dtype;
use crate::error::{Result, invalid};
use crate::frame::{self, DataFrame, Keep, NaPosition, c, missing};
use crate::positioned::POS;
use crate::window::{self, CastExt, RankMethod};

/// One column of a [`DataFrame`], with pandas' Series methods.
#[derive(Clone, Debug)]
pub struct Series {
    pub(crate) frame: DataFrame,
    pub(crate) expr: Expr,
    pub(crate) name: String,
}

/// The right-hand side of an arithmetic or comparison operation: a Series or a scalar.
pub trait Operand {
    /// The operand as an expression over `series`' frame (aligning on position if needed).
    fn operand(&self, series: &Series) -> Result<(Series, Expr)>;
    /// The operand's name, when it is a Series.
    fn series_name(&self) -> Option<&str> {
        None
    }
}

impl Operand for Series {
    fn operand(&self, series: &Series) -> Result<(Series, Expr)> {
        let (frame, e) = series.frame.attach(self)?;
        let mut s = series.clone();
        s.frame = frame;
        Ok((s, e))
    }
    fn series_name(&self) -> Option<&str> {
        Some(&self.name)
    }
}

impl Operand for &Series {
    fn operand(&self, series: &Series) -> Result<(Series, Expr)> {
        (*self).operand(series)
    }
    fn series_name(&self) -> Option<&str> {
        Some(&self.name)
    }
}

macro_rules! scalar_operand {
    ($($t:ty),*) => {$(
        impl Operand for $t {
            fn operand(&self, series: &Series) -> Result<(Series, Expr)> {
                Ok((series.clone(), lit(ScalarValue::from(self.clone()))))
            }
        }
    )*};
}
scalar_operand!(i64, f64, bool, &str, String);

impl Operand for ScalarValue {
    fn operand(&self, series: &Series) -> Result<(Series, Expr)> {
        Ok((series.clone(), lit(self.clone())))
    }
}

/// Which ends `between` includes (pandas' `inclusive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inclusive {
    /// Both ends.
    #[default]
    Both,
    /// Neither end.
    Neither,
    /// The lower end only.
    Left,
    /// The upper end only.
    Right,
}

impl DataFrame {
    /// The expression of `s` usable in this frame: as is when `s` comes from this frame;
    /// otherwise `s` is joined on the row position (pandas' index alignment) into a hidden
    /// column of a new frame.
    pub(crate) fn attach(&self, s: &Series) -> Result<(DataFrame, Expr)> {
        if self.df.logical_plan() == s.frame.df.logical_plan() {
            return Ok((self.clone(), s.expr.clone()));
        }
        let h = self.fresh_hidden("aligned");
        let rpos = "__sf_rpos";
        let right = s
            .frame
            .df
            .clone()
            .select(vec![c(POS).alias(rpos), s.expr.clone().alias(h.as_str())])?;
        let joined = self
            .df
            .clone()
            .join(right, JoinType::Left, &[POS], &[rpos], None)?
            .drop_columns(&[rpos])?;
        Ok((self.with_df(joined), c(&h)))
    }
}

impl Series {
    pub(crate) fn new(frame: DataFrame, expr: Expr, name: &str) -> Self {
        Series {
            frame,
            expr,
            name: name.to_string(),
        }
    }

    fn derive(&self, expr: Expr) -> Series {
        Series::new(self.frame.clone(), expr, &self.name)
    }

    /// The Series' name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Arrow type of the values.
    pub fn data_type(&self) -> Result<DataType> {
        use datafusion::logical_expr::ExprSchemable;
        Ok(self.expr.get_type(self.frame.df.schema())?)
    }

    /// The number of dimensions: 1 (pandas' `Series.ndim`; a frame's is 2).
    pub fn ndim(&self) -> usize {
        1
    }

    /// The pandas dtype name.
    pub fn dtype(&self) -> Result<String> {
        Ok(dtype::pandas_dtype(&self.data_type()?))
    }

    /// The same values under another name.
    pub fn rename(&self, name: &str) -> Series {
        Series::new(self.frame.clone(), self.expr.clone(), name)
    }

    /// A one-column frame.
    pub fn to_frame(&self) -> Result<DataFrame> {
        self.frame
            .project(vec![self.expr.clone().alias(self.name.as_str())])
    }

    /// Runs the plan and returns the values as a one-column table.
    pub fn to_table(&self) -> Result<Table> {
        self.to_frame()?.to_table()
    }

    /// The values as one Arrow array.
    pub fn to_array(&self) -> Result<ArrayRef> {
        Ok(self.to_table()?.column(&self.name)?)
    }

    /// The values as a list of scalars (pandas' `tolist`).
    pub fn tolist(&self) -> Result<Vec<ScalarValue>> {
        let a = self.to_array()?;
        (0..a.len())
            .map(|i| Ok(ScalarValue::try_from_array(&a, i)?))
            .collect()
    }

    fn via_frame(&self, f: impl FnOnce(DataFrame) -> Result<DataFrame>) -> Result<Series> {
        let out = f(self.to_frame()?)?;
        Ok(Series::new(out, c(&self.name), &self.name))
    }

    // ----- selection and shape -----------------------------------------------------------

    /// The first `n` values.
    pub fn head(&self, n: usize) -> Result<Series> {
        self.via_frame(|f| f.head(n))
    }

    /// The last `n` values.
    pub fn tail(&self, n: usize) -> Result<Series> {
        self.via_frame(|f| f.tail(n))
    }

    /// Number of values.
    pub fn len(&self) -> Result<usize> {
        self.frame.len()
    }

    /// Whether there are no values (pandas' `empty`).
    pub fn is_empty(&self) -> Result<bool> {
        self.frame.is_empty()
    }

    /// `(len,)` as pandas' `shape`.
    pub fn shape(&self) -> Result<(usize,)> {
        Ok((self.len()?,))
    }

    /// Number of values.
    pub fn size(&self) -> Result<usize> {
        self.len()
    }

    // ----- missing data ------------------------------------------------------------------

    fn dt(&self) -> Result<DataType> {
        self.data_type()
    }

    /// Whether each value is missing (null or NaN).
    pub fn isna(&self) -> Result<Series> {
        Ok(self.derive(missing(self.expr.clone(), &self.dt()?)))
    }

    /// Alias of [`isna`](Self::isna).
    pub fn isnull(&self) -> Result<Series> {
        self.isna()
    }

    /// Whether each value is present.
    pub fn notna(&self) -> Result<Series> {
        Ok(self.derive(missing(self.expr.clone(), &self.dt()?).not()))
    }

    /// Alias of [`notna`](Self::notna).
    pub fn notnull(&self) -> Result<Series> {
        self.notna()
    }

    /// Drops missing values.
    pub fn dropna(&self) -> Result<Series> {
        let name = self.name.clone();
        self.via_frame(|f| f.dropna(frame::How::Any, Some(&[name.as_str()])))
    }

    /// Fills missing values with `value`.
    pub fn fillna(&self, value: impl Into<ScalarValue>) -> Result<Series> {
        Ok(self.derive(frame::fill(self.expr.clone(), &self.dt()?, &value.into())))
    }

    /// Fills missing values with the last present value before them.
    pub fn ffill(&self) -> Result<Series> {
        let e = frame::carry(self.expr.clone(), &self.dt()?, &self.frame.order, false)?;
        Ok(self.derive(e))
    }

    /// Fills missing values with the next present value after them.
    pub fn bfill(&self) -> Result<Series> {
        let e = frame::carry(self.expr.clone(), &self.dt()?, &self.frame.order, true)?;
        Ok(self.derive(e))
    }

    /// Whether each value is one of `values`.
    pub fn isin(&self, values: &[ScalarValue]) -> Result<Series> {
        Ok(self.derive(frame::isin_expr(self.expr.clone(), &self.dt()?, values)))
    }

    /// Whether each value lies between `left` and `right`.
    pub fn between(
        &self,
        left: impl Into<ScalarValue>,
        right: impl Into<ScalarValue>,
        inclusive: Inclusive,
    ) -> Result<Series> {
        let (l, r) = (lit(left.into()), lit(right.into()));
        let e = self.expr.clone();
        let lo = match inclusive {
            Inclusive::Both | Inclusive::Left => e.clone().gt_eq(l),
            _ => e.clone().gt(l),
        };
        let hi = match inclusive {
            Inclusive::Both | Inclusive::Right => e.lt_eq(r),
            _ => e.lt(r),
        };
        Ok(self.derive(lo.and(hi).is_true()))
    }

    /// Keeps values where `cond` is true, `other` (missing when `None`) elsewhere.
    pub fn where_(&self, cond: &Series, other: Option<ScalarValue>) -> Result<Series> {
        let (s, cond) = cond.operand(self)?;
        let other = match other {
            Some(v) => lit(v),
            None => lit(ScalarValue::try_from(&self.dt()?)?),
        };
        Ok(s.derive(when(cond.is_true(), s.expr.clone()).otherwise(other)?))
    }

    /// Replaces values where `cond` is true by `other` (missing when `None`).
    pub fn mask(&self, cond: &Series, other: Option<ScalarValue>) -> Result<Series> {
        let (s, cond) = cond.operand(self)?;
        let other = match other {
            Some(v) => lit(v),
            None => lit(ScalarValue::try_from(&self.dt()?)?),
        };
        Ok(s.derive(when(cond.is_true(), other).otherwise(s.expr.clone())?))
    }

    /// Casts to a pandas dtype.
    pub fn astype(&self, dtype_name: &str) -> Result<Series> {
        let t = dtype::arrow_type(dtype_name)?;
        Ok(self.derive(datafusion::logical_expr::cast(self.expr.clone(), t)))
    }

    // ----- sorting and ranking -----------------------------------------------------------

    /// Sorts the values (stable; missing values last).
    pub fn sort_values(&self, ascending: bool) -> Result<Series> {
        let name = self.name.clone();
        self.via_frame(|f| f.sort_values_with(&[name], &[ascending], NaPosition::Last))
    }

    /// The `n` largest values, largest first.
    pub fn nlargest(&self, n: usize) -> Result<Series> {
        let name = self.name.clone();
        self.via_frame(|f| f.nlargest(n, &[name]))
    }

    /// The `n` smallest values, smallest first.
    pub fn nsmallest(&self, n: usize) -> Result<Series> {
        let name = self.name.clone();
        self.via_frame(|f| f.nsmallest(n, &[name]))
    }

    /// Ranks of the values (float64; missing values get a missing rank).
    pub fn rank(&self, method: RankMethod, ascending: bool) -> Result<Series> {
        let v = frame::zero_signed(self.expr.clone(), &self.dt()?);
        let e = window::rank(v, method, ascending, &[], &self.frame.order)?;
        Ok(self.derive(e))
    }

    // ----- deduplication and counting ----------------------------------------------------

    /// Drops repeated values, keeping the first.
    pub fn drop_duplicates(&self, keep: Keep) -> Result<Series> {
        let name = self.name.clone();
        self.via_frame(|f| f.drop_duplicates(Some(&[name.as_str()]), keep))
    }

    /// Whether each value repeats an earlier one (a later one for `Keep::Last`).
    pub fn duplicated(&self, keep: Keep) -> Result<Series> {
        let f = self.to_frame()?;
        let e = f.duplicated_expr(Some(&[self.name.as_str()]), keep)?;
        Ok(Series::new(f, e, &self.name))
    }

    /// The distinct values in order of first appearance (missing included).
    pub fn unique(&self) -> Result<Series> {
        Ok(self.drop_duplicates(Keep::First)?.rename("value"))
    }

    /// Number of distinct present values.
    pub fn nunique(&self) -> Result<ScalarValue> {
        let dt = self.dt()?;
        let v =
            when(missing(c(&self.name), &dt), lit(ScalarValue::Null)).otherwise(c(&self.name))?;
        // -0.0 and 0.0 are one value to pandas.
        self.reduce(agg::count_distinct(frame::zero_signed(v, &dt)))
    }

    /// Counts of each distinct value, most common first (ties in order of first
    /// appearance), as columns `<name>` and `count` (`proportion` when `normalize`).
    pub fn value_counts(
        &self,
        normalize: bool,
        sort: bool,
        ascending: bool,
        dropna: bool,
    ) -> Result<DataFrame> {
        crate::groupby::value_counts(
            &self.to_frame()?,
            &self.name,
            normalize,
            sort,
            ascending,
            dropna,
        )
    }

    // ----- reductions --------------------------------------------------------------------

    /// Runs one aggregate over the values.
    pub(crate) fn reduce(&self, e: Expr) -> Result<ScalarValue> {
        let batch = self.to_frame()?.run_one_row(vec![e.alias("value")])?;
        Ok(ScalarValue::try_from_array(batch.column(0), 0)?)
    }

    fn value(&self) -> Expr {
        c(&self.name)
    }

    /// Sum of the present values (0 when there are none).
    pub fn sum(&self) -> Result<ScalarValue> {
        let zero = ScalarValue::new_zero(&self.dt()?)?;
        self.reduce(datafusion::prelude::coalesce(vec![
            agg::sum(self.value()),
            lit(zero),
        ]))
    }

    /// Mean of the present values.
    pub fn mean(&self) -> Result<ScalarValue> {
        self.reduce(agg::avg(self.value().cast_to_f64()))
    }

    /// Median of the present values.
    pub fn median(&self) -> Result<ScalarValue> {
        self.reduce(agg::median(self.value().cast_to_f64()))
    }

    /// Smallest present value.
    pub fn min(&self) -> Result<ScalarValue> {
        self.reduce(agg::min(self.value()))
    }

    /// Largest present value.
    pub fn max(&self) -> Result<ScalarValue> {
        self.reduce(agg::max(self.value()))
    }

    /// Number of present values.
    pub fn count(&self) -> Result<ScalarValue> {
        let v = when(missing(self.value(), &self.dt()?), lit(ScalarValue::Null))
            .otherwise(self.value())?;
        self.reduce(agg::count(v))
    }

    /// Standard deviation with `ddof` delta degrees of freedom (pandas' default is 1).
    pub fn std(&self, ddof: u32) -> Result<ScalarValue> {
        self.reduce(crate::stats::std_expr(self.value(), ddof))
    }

    /// Variance with `ddof` delta degrees of freedom.
    pub fn var(&self, ddof: u32) -> Result<ScalarValue> {
        self.reduce(crate::stats::var_expr(self.value(), ddof))
    }

    /// Product of the present values (1 when there are none).
    pub fn prod(&self) -> Result<ScalarValue> {
        self.reduce(crate::functions::product(self.value()))
    }

    /// Whether every present value is true.
    pub fn all(&self) -> Result<ScalarValue> {
        self.reduce(datafusion::prelude::coalesce(vec![
            agg::bool_and(self.value()),
            lit(true),
        ]))
    }

    /// Whether any present value is true.
    pub fn any(&self) -> Result<ScalarValue> {
        self.reduce(datafusion::prelude::coalesce(vec![
            agg::bool_or(self.value()),
            lit(false),
        ]))
    }

    fn idx(&self, largest: bool) -> Result<ScalarValue> {
        let f = self.to_frame()?.renumbered()?;
        let v = c(&self.name);
        let e = datafusion::functions_aggregate::first_last::first_value(
            c(POS),
            vec![
                SortExpr::new(v.clone(), !largest, false),
                SortExpr::new(c(POS), true, false),
            ],
        );
        let batch = f
            .filter_expr(v.is_not_null())?
            .run_one_row(vec![e.alias("value")])?;
        Ok(ScalarValue::try_from_array(batch.column(0), 0)?)
    }

    /// Position of the first largest value.
    pub fn idxmax(&self) -> Result<ScalarValue> {
        self.idx(true)
    }

    /// Position of the first smallest value.
    pub fn idxmin(&self) -> Result<ScalarValue> {
        self.idx(false)
    }

    /// The `q` quantile, with linear interpolation.
    pub fn quantile(&self, q: f64) -> Result<ScalarValue> {
        let v = self.to_frame()?.exact_quantiles(&self.name, &[q])?;
        Ok(ScalarValue::Float64(v[0]))
    }

    /// Pearson correlation with `other` over rows where both are present.
    pub fn corr(&self, other: &Series) -> Result<ScalarValue> {
        let (s, o) = other.operand(self)?;
        let f = s
            .frame
            .project(vec![s.expr.clone().alias("__x"), o.alias("__y")])?;
        let (x, y) = crate::stats::pairwise(c("__x"), c("__y"))?;
        let b = f.run_one_row(vec![agg::corr(x, y).alias("value")])?;
        Ok(ScalarValue::try_from_array(b.column(0), 0)?)
    }

    /// Sample covariance with `other` over rows where both are present.
    pub fn cov(&self, other: &Series) -> Result<ScalarValue> {
        let (s, o) = other.operand(self)?;
        let f = s
            .frame
            .project(vec![s.expr.clone().alias("__x"), o.alias("__y")])?;
        let (x, y) = crate::stats::pairwise(c("__x"), c("__y"))?;
        let b = f.run_one_row(vec![agg::covar_samp(x, y).alias("value")])?;
        Ok(ScalarValue::try_from_array(b.column(0), 0)?)
    }

    /// Summary statistics (count, mean, std, min, quartiles, max) as columns `stat` and the
    /// Series' name.
    pub fn describe(&self) -> Result<DataFrame> {
        self.to_frame()?.describe()
    }

    // ----- element-wise arithmetic -------------------------------------------------------

    fn binary(&self, other: impl Operand, f: impl FnOnce(Expr, Expr) -> Expr) -> Result<Series> {
        // As in pandas, the result keeps the name only if both sides share it.
        let name = match other.series_name() {
            Some(n) if n != self.name => "value".to_string(),
            _ => self.name.clone(),
        };
        let (s, o) = other.operand(self)?;
        Ok(Series::new(s.frame.clone(), f(s.expr.clone(), o), &name))
    }

    /// Absolute values.
    pub fn abs(&self) -> Result<Series> {
        Ok(self.derive(datafusion::prelude::abs(self.expr.clone())))
    }

    /// Rounds to `decimals` places, halves to even (as numpy does).
    pub fn round(&self, decimals: i32) -> Result<Series> {
        Ok(self.derive(crate::stats::round_half_even(
            self.expr.clone(),
            &self.dt()?,
            decimals,
        )?))
    }

    /// Limits values to `[lower, upper]` (either may be absent).
    pub fn clip(&self, lower: Option<ScalarValue>, upper: Option<ScalarValue>) -> Result<Series> {
        Ok(self.derive(crate::stats::clip_expr(self.expr.clone(), lower, upper)?))
    }

    /// `self + other`.
    pub fn add(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a + b)
    }

    /// `self - other`.
    pub fn sub(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a - b)
    }

    /// `self * other`.
    pub fn mul(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a * b)
    }

    /// `self / other`, always in floating point.
    pub fn truediv(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a.cast_to_f64() / b.cast_to_f64())
    }

    /// Alias of [`truediv`](Self::truediv).
    pub fn div(&self, other: impl Operand) -> Result<Series> {
        self.truediv(other)
    }

    /// Floor division (rounds towards negative infinity, as Python does).
    pub fn floordiv(&self, other: impl Operand) -> Result<Series> {
        let float = dtype::is_float(&self.dt()?);
        self.binary(other, |a, b| {
            if float {
                datafusion::prelude::floor(a / b)
            } else {
                (a.clone() - py_mod(a, b.clone())) / b
            }
        })
    }

    /// Modulo with the sign of the divisor, as Python does.
    pub fn r#mod(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, py_mod)
    }

    /// `self ** other`.
    pub fn pow(&self, other: impl Operand) -> Result<Series> {
        let dt = self.dt()?;
        self.binary(other, |a, b| {
            let p = datafusion::prelude::power(a, b);
            if dtype::is_float(&dt) {
                p
            } else {
                p.cast_to_i64()
            }
        })
    }

    /// `self == other` (false where either is missing).
    pub fn eq(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a.eq(b).is_true())
    }

    /// `self != other` (true where either is missing).
    pub fn ne(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a.eq(b).is_true().not())
    }

    /// `self < other`.
    pub fn lt(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a.lt(b).is_true())
    }

    /// `self <= other`.
    pub fn le(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a.lt_eq(b).is_true())
    }

    /// `self > other`.
    pub fn gt(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a.gt(b).is_true())
    }

    /// `self >= other`.
    pub fn ge(&self, other: impl Operand) -> Result<Series> {
        self.binary(other, |a, b| a.gt_eq(b).is_true())
    }

    /// Maps values through `mapping`; values not in it become missing (pandas' `map(dict)`).
    pub fn map(&self, mapping: &[(ScalarValue, ScalarValue)]) -> Result<Series> {
        let mut e: Option<datafusion::logical_expr::conditional_expressions::CaseBuilder> = None;
        for (k, v) in mapping {
            let cond = self.expr.clone().eq(lit(k.clone()));
            e = Some(match e {
                None => when(cond, lit(v.clone())),
                Some(mut b) => b.when(cond, lit(v.clone())),
            });
        }
        match e {
            None => Err(invalid("map", "the mapping is empty")),
            Some(mut b) => Ok(self.derive(b.otherwise(lit(ScalarValue::Null))?)),
        }
    }

    /// Replaces values equal to `from` by `to`.
    pub fn replace(
        &self,
        from: impl Into<ScalarValue>,
        to: impl Into<ScalarValue>,
    ) -> Result<Series> {
        let e = frame::replace_expr(self.expr.clone(), &self.dt()?, &[(from.into(), to.into())]);
        Ok(self.derive(e))
    }

    /// Applies a Rust function to the values, a batch at a time (pandas' `apply`). The
    /// function gets an Arrow array and returns one of the same length and of `output` type.
    pub fn apply<F>(&self, output: DataType, f: F) -> Result<Series>
    where
        F: Fn(&ArrayRef) -> std::result::Result<ArrayRef, String> + Send + Sync + 'static,
    {
        let udf = crate::functions::closure_udf(&self.name, output, f);
        Ok(self.derive(udf.call(vec![self.expr.clone()])))
    }

    // ----- window-style ------------------------------------------------------------------

    fn cumulative(
        &self,
        udaf: std::sync::Arc<datafusion::logical_expr::AggregateUDF>,
    ) -> Result<Series> {
        let e = window::cumulative(udaf, self.expr.clone(), &[], &self.frame.order)?;
        Ok(self.derive(e))
    }

    /// Running sum (missing values stay missing and are skipped).
    pub fn cumsum(&self) -> Result<Series> {
        self.cumulative(datafusion::functions_aggregate::sum::sum_udaf())
    }

    /// Running product.
    pub fn cumprod(&self) -> Result<Series> {
        self.cumulative(crate::functions::product_udaf())
    }

    /// Running maximum.
    pub fn cummax(&self) -> Result<Series> {
        self.cumulative(datafusion::functions_aggregate::min_max::max_udaf())
    }

    /// Running minimum.
    pub fn cummin(&self) -> Result<Series> {
        self.cumulative(datafusion::functions_aggregate::min_max::min_udaf())
    }

    fn shifted(&self, periods: i64) -> Result<Expr> {
        let dt = self.dt()?;
        let v = if dt.is_integer() {
            self.expr.clone().cast_to_f64()
        } else {
            self.expr.clone()
        };
        window::shift(v, periods, &[], &self.frame.order)
    }

    /// Values `periods` rows earlier (later when negative); integers become float64, as the
    /// new missing values need NaN in pandas.
    pub fn shift(&self, periods: i64) -> Result<Series> {
        Ok(self.derive(self.shifted(periods)?))
    }

    /// Difference from the value `periods` rows earlier.
    pub fn diff(&self, periods: i64) -> Result<Series> {
        let e = self.expr.clone().cast_to_f64() - self.shifted(periods)?;
        Ok(self.derive(e))
    }

    /// Relative change from the value `periods` rows earlier (pandas' `fill_method=None`).
    pub fn pct_change(&self, periods: i64) -> Result<Series> {
        let e = self.expr.clone().cast_to_f64() / self.shifted(periods)? - lit(1.0);
        Ok(self.derive(e))
    }

    /// A rolling window over the last `window` values.
    pub fn rolling(&self, window: usize) -> Rolling {
        Rolling {
            series: self.clone(),
            window,
            min_periods: window,
        }
    }

    // ----- accessors ---------------------------------------------------------------------

    /// String methods (pandas' `.str`).
    pub fn str(&self) -> StrAccessor {
        StrAccessor::new(self.clone())
    }

    /// Date-time methods (pandas' `.dt`).
    pub fn dt_accessor(&self) -> DtAccessor {
        DtAccessor::new(self.clone())
    }

    pub(crate) fn with_expr(&self, expr: Expr) -> Series {
        self.derive(expr)
    }
}

/// Python's modulo: the result has the sign of the divisor.
fn py_mod(a: Expr, b: Expr) -> Expr {
    ((a % b.clone()) + b.clone()) % b
}

/// A rolling window of a [`Series`] (pandas' `rolling(n)`); results are float64.
#[derive(Debug, Clone)]
pub struct Rolling {
    series: Series,
    window: usize,
    min_periods: usize,
}

impl Rolling {
    /// Minimum number of present values for a result (pandas' `min_periods`).
    pub fn min_periods(mut self, n: usize) -> Self {
        self.min_periods = n;
        self
    }

    fn agg(&self, udaf: std::sync::Arc<datafusion::logical_expr::AggregateUDF>) -> Result<Series> {
        let v = self.series.expr.clone().cast_to_f64();
        let e = window::rolling(
            udaf,
            v,
            self.window,
            self.min_periods,
            &self.series.frame.order,
        )?;
        Ok(self.series.with_expr(e))
    }

    /// Rolling mean.
    pub fn mean(&self) -> Result<Series> {
        self.agg(datafusion::functions_aggregate::average::avg_udaf())
    }

    /// Rolling sum.
    pub fn sum(&self) -> Result<Series> {
        self.agg(datafusion::functions_aggregate::sum::sum_udaf())
    }

    /// Rolling minimum.
    pub fn min(&self) -> Result<Series> {
        self.agg(datafusion::functions_aggregate::min_max::min_udaf())
    }

    /// Rolling maximum.
    pub fn max(&self) -> Result<Series> {
        self.agg(datafusion::functions_aggregate::min_max::max_udaf())
    }

    /// Rolling sample standard deviation.
    pub fn std(&self) -> Result<Series> {
        self.agg(datafusion::functions_aggregate::stddev::stddev_udaf())
    }
}

/// Frame-wide window operations: each column as its Series would compute it.
impl DataFrame {
    fn each_series(&self, f: impl Fn(&Series) -> Result<Series>) -> Result<DataFrame> {
        let mut user = Vec::new();
        for n in self.columns() {
            let s = f(&self.col(&n)?)?;
            user.push(s.expr.alias(n.as_str()));
        }
        self.project(user)
    }

    /// Running sums of each column.
    pub fn cumsum(&self) -> Result<DataFrame> {
        self.each_series(Series::cumsum)
    }
    /// Running products of each column.
    pub fn cumprod(&self) -> Result<DataFrame> {
        self.each_series(Series::cumprod)
    }
    /// Running maximums of each column.
    pub fn cummax(&self) -> Result<DataFrame> {
        self.each_series(Series::cummax)
    }
    /// Running minimums of each column.
    pub fn cummin(&self) -> Result<DataFrame> {
        self.each_series(Series::cummin)
    }
    /// Each column shifted by `periods` rows.
    pub fn shift(&self, periods: i64) -> Result<DataFrame> {
        self.each_series(|s| s.shift(periods))
    }
    /// Each column's difference from `periods` rows earlier.
    pub fn diff(&self, periods: i64) -> Result<DataFrame> {
        self.each_series(|s| s.diff(periods))
    }
    /// Each column's rolling sum over `window` rows.
    pub fn rolling_sum(&self, window: usize) -> Result<DataFrame> {
        self.each_series(|s| s.rolling(window).sum())
    }
    /// Each column's rolling mean over `window` rows.
    pub fn rolling_mean(&self, window: usize) -> Result<DataFrame> {
        self.each_series(|s| s.rolling(window).mean())
    }
}
