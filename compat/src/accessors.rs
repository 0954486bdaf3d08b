//! pandas' `.str` and `.dt` accessors.

use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{Expr, when};
use datafusion::prelude::lit;
use datafusion::scalar::ScalarValue;

use crate::error::{Result, invalid};
use crate::series::Series;
use crate::window::CastExt;

/// Plain (non-view) strings. DataFusion's case functions return string views whose buffers
/// are accounted many times over when a sort buffers them, which fails sorts under small
/// memory limits; plain strings are accounted once.
fn utf8(e: Expr) -> Expr {
    datafusion::logical_expr::cast(e, arrow::datatypes::DataType::Utf8)
}

/// String methods of a [`Series`] (pandas' `.str`). Missing values stay missing.
#[derive(Debug, Clone)]
pub struct StrAccessor {
    s: Series,
}

impl StrAccessor {
    pub(crate) fn new(s: Series) -> Self {
        StrAccessor { s }
    }

    fn e(&self) -> Expr {
        self.s.expr.clone()
    }

    fn out(&self, e: Expr) -> Result<Series> {
        Ok(self.s.with_expr(e))
    }

    /// Whether each string contains `pat`, a regular expression when `regex` is true.
    pub fn contains(&self, pat: &str, regex: bool) -> Result<Series> {
        if regex {
            self.out(f::regexp_like(self.e(), lit(pat), None))
        } else {
            self.out(f::strpos(self.e(), lit(pat)).gt(lit(0)))
        }
    }

    /// Whether each string starts with `prefix`.
    pub fn startswith(&self, prefix: &str) -> Result<Series> {
        self.out(f::starts_with(self.e(), lit(prefix)))
    }

    /// Whether each string ends with `suffix`.
    pub fn endswith(&self, suffix: &str) -> Result<Series> {
        self.out(f::ends_with(self.e(), lit(suffix)))
    }

    /// Lower case.
    pub fn lower(&self) -> Result<Series> {
        self.out(utf8(f::lower(self.e())))
    }

    /// Upper case.
    pub fn upper(&self) -> Result<Series> {
        self.out(utf8(f::upper(self.e())))
    }

    /// Number of characters.
    pub fn len(&self) -> Result<Series> {
        self.out(f::character_length(self.e()).cast_to_i64())
    }

    /// Removes leading and trailing whitespace.
    pub fn strip(&self) -> Result<Series> {
        self.out(f::btrim(vec![self.e()]))
    }

    /// Removes leading whitespace.
    pub fn lstrip(&self) -> Result<Series> {
        self.out(f::ltrim(vec![self.e()]))
    }

    /// Removes trailing whitespace.
    pub fn rstrip(&self) -> Result<Series> {
        self.out(f::rtrim(vec![self.e()]))
    }

    /// Replaces every occurrence of `pat` (literally, pandas' default) with `repl`.
    pub fn replace(&self, pat: &str, repl: &str) -> Result<Series> {
        self.out(f::replace(self.e(), lit(pat), lit(repl)))
    }

    /// Characters `start..stop` (from 0; non-negative bounds).
    pub fn slice(&self, start: usize, stop: usize) -> Result<Series> {
        if stop < start {
            return Err(invalid("str.slice", "stop is before start"));
        }
        self.out(f::substring(
            self.e(),
            lit(start as i64 + 1),
            lit((stop - start) as i64),
        ))
    }

    /// Part `i` (from 0) of each string split on `pat`; missing when there is no such part
    /// (pandas' `str.split(pat).str.get(i)`).
    pub fn split_get(&self, pat: &str, i: usize) -> Result<Series> {
        if pat.is_empty() {
            return Err(invalid("str.split", "the separator is empty"));
        }
        let e = self.e();
        let parts = (f::character_length(e.clone())
            - f::character_length(f::replace(e.clone(), lit(pat), lit(""))))
            / lit(pat.chars().count() as i32)
            + lit(1);
        let part = f::split_part(e, lit(pat), lit(i as i64 + 1));
        self.out(when(parts.gt(lit(i as i32)), part).otherwise(lit(ScalarValue::Utf8(None)))?)
    }

    /// Character `i` (from 0); missing past the end.
    pub fn get(&self, i: usize) -> Result<Series> {
        let e = self.e();
        let ch = f::substring(e.clone(), lit(i as i64 + 1), lit(1i64));
        self.out(
            when(f::character_length(e).gt(lit(i as i32)), ch)
                .otherwise(lit(ScalarValue::Utf8(None)))?,
        )
    }

    /// Each word capitalised.
    pub fn title(&self) -> Result<Series> {
        self.out(utf8(f::initcap(self.e())))
    }

    /// First character upper case, the rest lower case.
    pub fn capitalize(&self) -> Result<Series> {
        let e = self.e();
        self.out(f::concat(vec![
            f::upper(f::substring(e.clone(), lit(1i64), lit(1i64))),
            f::lower(f::substring(e.clone(), lit(2i64), lit(i64::MAX / 2))),
        ]))
        .and_then(|s| {
            let text = datafusion::logical_expr::cast(s.expr, arrow::datatypes::DataType::Utf8);
            let expr = when(self.e().is_null(), lit(ScalarValue::Utf8(None))).otherwise(text)?;
            Ok(self.s.with_expr(expr))
        })
    }

    fn pad_left(&self, width: usize, fill: &str) -> Result<Series> {
        let e = self.e();
        self.out(
            when(
                f::character_length(e.clone()).gt_eq(lit(width as i32)),
                e.clone(),
            )
            .otherwise(f::lpad(vec![e, lit(width as i64), lit(fill)]))?,
        )
    }

    /// Pads on the left with zeros to `width`.
    pub fn zfill(&self, width: usize) -> Result<Series> {
        self.pad_left(width, "0")
    }

    /// Pads on the left with `fillchar` to `width` (pandas' default side).
    pub fn pad(&self, width: usize, fillchar: char) -> Result<Series> {
        self.pad_left(width, &fillchar.to_string())
    }

    /// Each string repeated `n` times.
    pub fn repeat(&self, n: usize) -> Result<Series> {
        self.out(f::repeat(self.e(), lit(n as i64)))
    }

    /// Position of the first `sub` (from 0), or -1.
    pub fn find(&self, sub: &str) -> Result<Series> {
        self.out(f::strpos(self.e(), lit(sub)).cast_to_i64() - lit(1i64))
    }
}

/// Date-time methods of a [`Series`] (pandas' `.dt`).
#[derive(Debug, Clone)]
pub struct DtAccessor {
    s: Series,
}

impl DtAccessor {
    pub(crate) fn new(s: Series) -> Self {
        DtAccessor { s }
    }

    fn part(&self, what: &str) -> Result<Series> {
        let e = f::date_part(lit(what), self.s.expr.clone());
        Ok(self.s.with_expr(datafusion::logical_expr::cast(
            e,
            arrow::datatypes::DataType::Int32,
        )))
    }

    /// Year.
    pub fn year(&self) -> Result<Series> {
        self.part("year")
    }
    /// Month, 1 to 12.
    pub fn month(&self) -> Result<Series> {
        self.part("month")
    }
    /// Day of the month.
    pub fn day(&self) -> Result<Series> {
        self.part("day")
    }
    /// Hour.
    pub fn hour(&self) -> Result<Series> {
        self.part("hour")
    }
    /// Minute.
    pub fn minute(&self) -> Result<Series> {
        self.part("minute")
    }
    /// Second.
    pub fn second(&self) -> Result<Series> {
        let e = f::date_part(lit("second"), self.s.expr.clone());
        Ok(self.s.with_expr(datafusion::logical_expr::cast(
            datafusion::prelude::floor(e),
            arrow::datatypes::DataType::Int32,
        )))
    }
    /// Day of the week, Monday = 0.
    pub fn dayofweek(&self) -> Result<Series> {
        let dow = f::date_part(lit("dow"), self.s.expr.clone());
        let e = (dow + lit(6)) % lit(7);
        Ok(self.s.with_expr(datafusion::logical_expr::cast(
            e,
            arrow::datatypes::DataType::Int32,
        )))
    }
    /// Alias of [`dayofweek`](Self::dayofweek).
    pub fn day_of_week(&self) -> Result<Series> {
        self.dayofweek()
    }
    /// Alias of [`dayofweek`](Self::dayofweek).
    pub fn weekday(&self) -> Result<Series> {
        self.dayofweek()
    }
    /// Day of the year, from 1.
    pub fn dayofyear(&self) -> Result<Series> {
        self.part("doy")
    }
    /// Alias of [`dayofyear`](Self::dayofyear).
    pub fn day_of_year(&self) -> Result<Series> {
        self.dayofyear()
    }
    /// Quarter, 1 to 4.
    pub fn quarter(&self) -> Result<Series> {
        self.part("quarter")
    }

    /// Rounds down to a frequency: `D`, `h`, `min`, `s` (pandas' aliases).
    pub fn floor(&self, freq: &str) -> Result<Series> {
        let unit = match freq {
            "D" => "day",
            "h" | "H" => "hour",
            "min" | "T" => "minute",
            "s" | "S" => "second",
            other => {
                return Err(invalid(
                    "dt.floor",
                    format!("frequency '{other}' is not supported (D, h, min, s are)"),
                ));
            }
        };
        Ok(self
            .s
            .with_expr(f::date_trunc(lit(unit), self.s.expr.clone())))
    }

    /// Midnight of each day.
    pub fn normalize(&self) -> Result<Series> {
        self.floor("D")
    }

    /// Formats with a strftime pattern.
    pub fn strftime(&self, format: &str) -> Result<Series> {
        Ok(self
            .s
            .with_expr(f::to_char(self.s.expr.clone(), lit(format))))
    }

    /// Whether each date is the first of its month.
    pub fn is_month_start(&self) -> Result<Series> {
        let d = f::date_part(lit("day"), self.s.expr.clone());
        Ok(self.s.with_expr(d.eq(lit(1)).is_true()))
    }
}
