//! Combining and reshaping: `merge`, `join`, `concat`, `melt`, `pivot_table`.

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use datafusion::common::{JoinType, NullEquality};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, SortExpr, when};
use datafusion::prelude::lit;
use datafusion::scalar::ScalarValue;
use spillframe_engine::LazyFrame;

use crate::error::{Result, invalid};
use crate::frame::{DataFrame, c};
use crate::positioned::POS;
use crate::stats::named_agg;

/// The kind of merge (pandas' `how`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeHow {
    /// Keys on both sides; rows in left order.
    #[default]
    Inner,
    /// All left rows, in left order.
    Left,
    /// All right rows, in right order.
    Right,
    /// All rows of both; keys sorted.
    Outer,
}

/// pandas' `merge` parameters.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The kind of merge.
    pub how: MergeHow,
    /// Key columns present on both sides.
    pub on: Vec<String>,
    /// Left key columns (with `right_on`, instead of `on`).
    pub left_on: Vec<String>,
    /// Right key columns.
    pub right_on: Vec<String>,
    /// Suffixes for clashing column names (`_x`, `_y`).
    pub suffixes: (String, String),
    /// Adds a `_merge` column: `left_only`, `right_only` or `both`.
    pub indicator: bool,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            how: MergeHow::Inner,
            on: Vec::new(),
            left_on: Vec::new(),
            right_on: Vec::new(),
            suffixes: ("_x".into(), "_y".into()),
            indicator: false,
        }
    }
}

impl MergeOptions {
    /// Merge on columns present on both sides.
    pub fn on(how: MergeHow, on: &[&str]) -> Self {
        MergeOptions {
            how,
            on: on.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Merge on differently named key columns.
    pub fn left_right(how: MergeHow, left_on: &[&str], right_on: &[&str]) -> Self {
        MergeOptions {
            how,
            left_on: left_on.iter().map(|s| s.to_string()).collect(),
            right_on: right_on.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Sets the suffixes.
    pub fn suffixes(mut self, left: &str, right: &str) -> Self {
        self.suffixes = (left.into(), right.into());
        self
    }

    /// Adds the `_merge` indicator column.
    pub fn indicator(mut self, on: bool) -> Self {
        self.indicator = on;
        self
    }
}

const RPOS: &str = "__sf_rpos";
const LMARK: &str = "__sf_lmark";
const RMARK: &str = "__sf_rmark";

fn rname(n: &str) -> String {
    format!("__sf_r_{n}")
}

impl DataFrame {
    /// Database-style join (pandas' `merge`). Missing keys match each other, as in pandas.
    pub fn merge(&self, right: &DataFrame, opts: &MergeOptions) -> Result<DataFrame> {
        let (lkeys, rkeys, shared) = if !opts.on.is_empty() {
            (opts.on.clone(), opts.on.clone(), true)
        } else if !opts.left_on.is_empty() && opts.left_on.len() == opts.right_on.len() {
            (opts.left_on.clone(), opts.right_on.clone(), false)
        } else if opts.left_on.is_empty() && opts.right_on.is_empty() {
            let common: Vec<String> = self
                .columns()
                .into_iter()
                .filter(|n| right.columns().contains(n))
                .collect();
            if common.is_empty() {
                return Err(invalid("merge", "no columns in common and no keys given"));
            }
            (common.clone(), common, true)
        } else {
            return Err(invalid(
                "merge",
                "left_on and right_on must name the same number of columns",
            ));
        };
        self.check_columns("merge (left)", &lkeys)?;
        right.check_columns("merge (right)", &rkeys)?;
        let l = self.renumbered()?;
        let r = right.renumbered()?;
        let lcols = l.columns();
        let rcols = r.columns();
        let l_plan = l.df.clone().with_column(LMARK, lit(true))?;
        let mut rsel: Vec<Expr> = rcols.iter().map(|n| c(n).alias(rname(n))).collect();
        rsel.push(c(POS).alias(RPOS));
        rsel.push(lit(true).alias(RMARK));
        let r_plan = r.df.clone().select(rsel)?;
        let join_type = match opts.how {
            MergeHow::Inner => JoinType::Inner,
            MergeHow::Left => JoinType::Left,
            MergeHow::Right => JoinType::Right,
            MergeHow::Outer => JoinType::Full,
        };
        let rk: Vec<String> = rkeys.iter().map(|k| rname(k)).collect();
        let plan = LogicalPlanBuilder::from(l_plan.logical_plan().clone())
            .join_detailed(
                r_plan.logical_plan().clone(),
                join_type,
                (
                    lkeys
                        .iter()
                        .map(datafusion::common::Column::from_name)
                        .collect::<Vec<_>>(),
                    rk.iter()
                        .map(datafusion::common::Column::from_name)
                        .collect::<Vec<_>>(),
                ),
                None,
                NullEquality::NullEqualsNull,
            )?
            .build()?;
        let joined = datafusion::dataframe::DataFrame::new(l.df.clone().into_parts().0, plan);
        // Output columns: left (shared keys merged), then right (shared keys dropped).
        let clash =
            |n: &String, other: &[String]| other.contains(n) && !(shared && lkeys.contains(n));
        let mut user = Vec::new();
        for n in &lcols {
            let e = if shared && lkeys.contains(n) {
                datafusion::prelude::coalesce(vec![c(n), c(&rname(n))])
            } else {
                c(n)
            };
            let name = if clash(n, &rcols) {
                format!("{n}{}", opts.suffixes.0)
            } else {
                n.clone()
            };
            user.push(e.alias(name));
        }
        for n in &rcols {
            if shared && rkeys.contains(n) {
                continue;
            }
            let name = if clash(n, &lcols) {
                format!("{n}{}", opts.suffixes.1)
            } else {
                n.clone()
            };
            user.push(c(&rname(n)).alias(name));
        }
        if opts.indicator {
            let ind = when(
                c(LMARK).is_not_null().and(c(RMARK).is_not_null()),
                lit("both"),
            )
            .when(c(LMARK).is_not_null(), lit("left_only"))
            .otherwise(lit("right_only"))?;
            user.push(ind.alias("_merge"));
        }
        let by_pos = |name: &str| SortExpr::new(c(name), true, false);
        let mut order = Vec::new();
        match opts.how {
            MergeHow::Inner | MergeHow::Left => order.extend([by_pos(POS), by_pos(RPOS)]),
            MergeHow::Right => order.extend([by_pos(RPOS), by_pos(POS)]),
            MergeHow::Outer => {
                for (lk, rk) in lkeys.iter().zip(&rkeys) {
                    let key = datafusion::prelude::coalesce(vec![c(lk), c(&rname(rk))]);
                    order.push(SortExpr::new(key, true, false));
                }
                order.extend([by_pos(POS), by_pos(RPOS)]);
            }
        }
        let tmp = DataFrame::wrap(&self.session, joined, order);
        // Number rows in merge order, then keep only the output columns.
        let numbered = tmp.renumbered_keep()?;
        let mut sel = user;
        sel.push(c(POS));
        let df = numbered.df.clone().select(sel)?;
        Ok(DataFrame::wrap(
            &self.session,
            df,
            vec![SortExpr::new(c(POS), true, false)],
        ))
    }

    /// Numbers rows in order keys into `__sf_pos`, keeping every other column.
    fn renumbered_keep(&self) -> Result<DataFrame> {
        let rn = datafusion::logical_expr::cast(
            crate::window::row_number(&[], &self.order)?,
            DataType::Int64,
        ) - lit(1i64);
        let df = self.df.clone().with_column("__sf_newpos", rn)?;
        let keep: Vec<Expr> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != POS && n != "__sf_newpos")
            .map(|n| c(&n))
            .chain(std::iter::once(c("__sf_newpos").alias(POS)))
            .collect();
        let df = df.select(keep)?;
        Ok(DataFrame::wrap(
            &self.session,
            df,
            vec![SortExpr::new(c(POS), true, false)],
        ))
    }

    /// Joins `other` on its key column `other_key` matching this frame's column `on` (pandas'
    /// `join(other.set_index(other_key), on=...)`); the other key column is not kept.
    pub fn join(
        &self,
        other: &DataFrame,
        on: &str,
        other_key: &str,
        how: MergeHow,
    ) -> Result<DataFrame> {
        const KEY: &str = "__join_key";
        let other = other.rename(&[(other_key, KEY)])?;
        self.merge(&other, &MergeOptions::left_right(how, &[on], &[KEY]))?
            .drop(&[KEY])
    }

    /// Unpivots value columns into `variable`/`value` rows (pandas' `melt`).
    pub fn melt(
        &self,
        id_vars: &[&str],
        value_vars: &[&str],
        var_name: Option<&str>,
        value_name: Option<&str>,
    ) -> Result<DataFrame> {
        self.check_columns("melt", id_vars)?;
        let value_vars: Vec<String> = if value_vars.is_empty() {
            self.columns()
                .into_iter()
                .filter(|n| !id_vars.contains(&n.as_str()))
                .collect()
        } else {
            self.check_columns("melt", value_vars)?;
            value_vars.iter().map(|s| s.to_string()).collect()
        };
        let var_name = var_name.unwrap_or("variable");
        let value_name = value_name.unwrap_or("value");
        let types: Vec<DataType> = value_vars
            .iter()
            .map(|v| self.dtype_of("melt", v))
            .collect::<Result<_>>()?;
        let to = if types.iter().all(|t| t.is_integer()) {
            DataType::Int64
        } else if types.iter().all(|t| t.is_numeric()) {
            DataType::Float64
        } else {
            DataType::Utf8
        };
        let base = self.renumbered()?;
        let mut parts = Vec::new();
        for (i, v) in value_vars.iter().enumerate() {
            let mut sel: Vec<Expr> = id_vars.iter().map(|n| c(n)).collect();
            sel.push(lit(v.as_str()).alias(var_name));
            sel.push(datafusion::logical_expr::cast(c(v), to.clone()).alias(value_name));
            sel.push(lit(i as i64).alias("__sf_src"));
            sel.push(c(POS));
            parts.push(base.df.clone().select(sel)?);
        }
        let mut it = parts.into_iter();
        let mut df = it
            .next()
            .ok_or_else(|| invalid("melt", "no value columns"))?;
        for p in it {
            df = df.union(p)?;
        }
        let order = vec![
            SortExpr::new(c("__sf_src"), true, false),
            SortExpr::new(c(POS), true, false),
        ];
        DataFrame::wrap(&self.session, df, order).renumbered()
    }

    /// A spreadsheet-style pivot (pandas' `pivot_table`): one row per `index` key, one
    /// column per distinct value of `columns` (sorted), cells `aggfunc` of `values`.
    pub fn pivot_table(
        &self,
        values: &str,
        index: &[&str],
        columns: &str,
        aggfunc: &str,
        fill_value: Option<ScalarValue>,
    ) -> Result<DataFrame> {
        self.check_columns("pivot_table", index)?;
        self.check_columns("pivot_table", &[values, columns])?;
        let vdt = self.dtype_of("pivot_table", values)?;
        // The distinct column values decide the output columns, so they are computed first.
        let distinct = self
            .df
            .clone()
            .filter(c(columns).is_not_null())?
            .aggregate(vec![c(columns)], vec![])?
            .sort(vec![SortExpr::new(c(columns), true, false)])?;
        let table = crate::frame::run(&LazyFrame::from_datafusion(&self.session, distinct))?;
        let col: ArrayRef = table.column(columns)?;
        let mut aggs = Vec::new();
        for i in 0..col.len() {
            let u = ScalarValue::try_from_array(&col, i)?;
            let label = python_label(&u);
            let hit = c(columns).eq(lit(u.clone()));
            let v = when(hit.clone(), c(values)).otherwise(lit(ScalarValue::try_from(&vdt)?))?;
            let a = named_agg(aggfunc, v, &vdt)?;
            let seen = datafusion::functions_aggregate::expr_fn::count(
                when(hit, lit(1)).otherwise(lit(ScalarValue::Int32(None)))?,
            );
            let cell = when(seen.gt(lit(0i64)), a).otherwise(lit(ScalarValue::Null))?;
            let cell = match &fill_value {
                Some(f) => datafusion::prelude::coalesce(vec![cell, lit(f.clone())]),
                None => cell,
            };
            aggs.push(cell.alias(label));
        }
        let g = self.groupby(index)?;
        g.aggregate(aggs)
    }
}

/// A value as Python's `str()` would print it (pandas labels pivot columns so).
fn python_label(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Boolean(Some(true)) => "True".into(),
        ScalarValue::Boolean(Some(false)) => "False".into(),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

/// Stacks frames by rows, matching columns by name (pandas' `concat` with
/// `ignore_index=True`); a column missing from a frame is missing in its rows.
pub fn concat(frames: &[DataFrame]) -> Result<DataFrame> {
    let first = frames
        .first()
        .ok_or_else(|| invalid("concat", "no frames to concatenate"))?;
    let mut names: Vec<String> = Vec::new();
    for f in frames {
        for n in f.columns() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let mut df: Option<datafusion::dataframe::DataFrame> = None;
    for (i, f) in frames.iter().enumerate() {
        let r = f.renumbered()?;
        let mut sel: Vec<Expr> = r.columns().iter().map(|n| c(n)).collect();
        sel.push(lit(i as i64).alias("__sf_src"));
        sel.push(c(POS));
        let part = r.df.clone().select(sel)?;
        df = Some(match df {
            None => part,
            Some(d) => d.union_by_name(part)?,
        });
    }
    let df = df.ok_or_else(|| invalid("concat", "no frames"))?;
    let mut sel: Vec<Expr> = names.iter().map(|n| c(n)).collect();
    sel.push(c("__sf_src"));
    sel.push(c(POS));
    let df = df.select(sel)?;
    let order = vec![
        SortExpr::new(c("__sf_src"), true, false),
        SortExpr::new(c(POS), true, false),
    ];
    DataFrame::wrap(&first.session, df, order).renumbered()
}
