//! The pandas-style [`DataFrame`]: a lazy plan plus the index model.
//!
//! # The index model
//! pandas frames carry an index. spillframe's compat frames carry a **RangeIndex only**: every
//! result is numbered 0..n in its row order, as after pandas' `reset_index(drop=True)`.
//! Operations that in pandas move columns into the index (`groupby(...).sum()`,
//! `value_counts()`, `describe()`) return those labels as ordinary columns instead, as
//! `reset_index()` would. Row order follows pandas: each frame keeps order keys (a hidden
//! position column `__sf_pos`, preceded by any `sort_values` keys) and results are produced in
//! that order. Hidden columns start with `__sf_` and never appear in results.

use std::collections::HashMap;
use std::ops::Not;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::dataframe::DataFrame as DfFrame;
use datafusion::logical_expr::{Expr, SortExpr, when};
use datafusion::prelude::lit;
use datafusion::scalar::ScalarValue;
use spillframe_engine::{LazyFrame, Session, Table};

use crate::dtype;
use crate::error::{Error, Result, invalid};
use crate::positioned::{POS, PositionedTable};
use crate::series::Series;
use crate::window::{self, CastExt};

/// A reference to a column by its exact name (no parsing of dots or case).
pub(crate) fn c(name: &str) -> Expr {
    Expr::Column(Column::from_name(name))
}

/// Whether a column is one of the index model's hidden columns.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with("__sf_")
}

/// Which of a set of duplicate rows to keep (pandas' `keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// Keep the first occurrence.
    #[default]
    First,
    /// Keep the last occurrence.
    Last,
    /// Keep none of the duplicates (`keep=False`).
    None,
}

/// How `dropna` decides (pandas' `how`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum How {
    /// Drop a row if any of the columns is missing.
    #[default]
    Any,
    /// Drop a row only if all of the columns are missing.
    All,
}

/// Where missing values go in a sort (pandas' `na_position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NaPosition {
    /// After the other values (pandas' default).
    #[default]
    Last,
    /// Before the other values.
    First,
}

/// A pandas-style DataFrame over spillframe: lazy, partitioned, out of core.
#[derive(Clone)]
pub struct DataFrame {
    pub(crate) session: Session,
    pub(crate) df: DfFrame,
    pub(crate) order: Vec<SortExpr>,
}

impl std::fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFrame")
            .field("columns", &self.columns())
            .finish()
    }
}

/// The opposite row order (for `tail`, `keep="last"` and backward fills).
pub(crate) fn reversed(order: &[SortExpr]) -> Vec<SortExpr> {
    order
        .iter()
        .map(|s| SortExpr::new(s.expr.clone(), !s.asc, !s.nulls_first))
        .collect()
}

fn pos_order() -> Vec<SortExpr> {
    vec![SortExpr::new(c(POS), true, false)]
}

impl DataFrame {
    pub(crate) fn wrap(session: &Session, df: DfFrame, order: Vec<SortExpr>) -> Self {
        DataFrame {
            session: session.clone(),
            df,
            order,
        }
    }

    /// A frame with the same session and order keys over another plan.
    pub(crate) fn with_df(&self, df: DfFrame) -> Self {
        DataFrame {
            session: self.session.clone(),
            df,
            order: self.order.clone(),
        }
    }

    // ----- construction ------------------------------------------------------------------

    /// A frame from named columns of equal length (pandas' `DataFrame({...})`).
    pub fn from_columns(session: &Session, columns: Vec<(&str, ArrayRef)>) -> Result<Self> {
        let cols = columns
            .into_iter()
            .map(|(n, a)| (n.to_string(), a))
            .collect();
        Self::from_table(session, Table::from_columns(cols)?)
    }

    /// A frame over an owned table, in its row order.
    pub fn from_table(session: &Session, table: Table) -> Result<Self> {
        let mut offset = 0i64;
        let mut batches = Vec::new();
        let schema = table.schema().clone();
        let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
        fields.push(Arc::new(arrow::datatypes::Field::new(
            POS,
            DataType::Int64,
            false,
        )));
        let out_schema = Arc::new(arrow::datatypes::Schema::new(fields));
        for b in table.batches() {
            let n = b.num_rows() as i64;
            let mut cols = b.columns().to_vec();
            cols.push(Arc::new(Int64Array::from_iter_values(offset..offset + n)));
            offset += n;
            batches.push(arrow::array::RecordBatch::try_new(
                Arc::clone(&out_schema),
                cols,
            )?);
        }
        if batches.is_empty() {
            batches.push(arrow::array::RecordBatch::new_empty(out_schema));
        }
        let lf = session.from_batches(batches)?;
        Ok(Self::wrap(session, lf.datafusion_frame()?, pos_order()))
    }

    /// A frame over an engine frame whose rows are numbered in the order its plan produces
    /// them (one partition, so a file is read in file order).
    pub fn from_lazy(frame: &LazyFrame) -> Result<Self> {
        let session = frame.session().clone();
        let view = frame.datafusion_frame()?.into_view();
        let df = session
            .context()
            .read_table(Arc::new(PositionedTable::new(view)))?;
        Ok(Self::wrap(&session, df, pos_order()))
    }

    // ----- the index model ---------------------------------------------------------------

    /// The session the frame runs in.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The column labels (pandas' `columns`).
    pub fn columns(&self) -> Vec<String> {
        self.df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !is_hidden(n))
            .collect()
    }

    pub(crate) fn hidden_columns(&self) -> Vec<String> {
        self.df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| is_hidden(n))
            .collect()
    }

    /// The Arrow type of a column, or an error naming it and the columns that exist.
    pub(crate) fn dtype_of(&self, op: &'static str, name: &str) -> Result<DataType> {
        match self.df.schema().field_with_unqualified_name(name) {
            Ok(f) if !is_hidden(name) => Ok(f.data_type().clone()),
            _ => Err(Error::ColumnNotFound {
                op,
                column: name.to_string(),
                available: self.columns().join(", "),
            }),
        }
    }

    pub(crate) fn check_columns<S: AsRef<str>>(&self, op: &'static str, names: &[S]) -> Result<()> {
        for n in names {
            self.dtype_of(op, n.as_ref())?;
        }
        Ok(())
    }

    /// Keeps `user` as the visible columns (with the hidden ones after them).
    pub(crate) fn project(&self, user: Vec<Expr>) -> Result<Self> {
        let mut exprs = user;
        exprs.extend(self.hidden_columns().iter().map(|h| c(h)));
        Ok(self.with_df(self.df.clone().select(exprs)?))
    }

    /// Replaces every visible column `name` by `f(name, type)`, keeping names and order.
    pub(crate) fn map_columns(
        &self,
        names: &[String],
        f: impl Fn(&str, &DataType) -> Result<Expr>,
    ) -> Result<Self> {
        let mut user = Vec::new();
        for n in self.columns() {
            if names.contains(&n) {
                let dt = self.dtype_of("map", &n)?;
                user.push(f(&n, &dt)?.alias(n.as_str()));
            } else {
                user.push(c(&n));
            }
        }
        self.project(user)
    }

    /// A hidden column name not yet used in this frame.
    pub(crate) fn fresh_hidden(&self, stem: &str) -> String {
        let taken = self.hidden_columns();
        (0..)
            .map(|i| format!("__sf_{stem}{i}"))
            .find(|n| !taken.contains(n))
            .unwrap_or_default()
    }

    /// Numbers the rows 0..n in their current order (whose keys may be hidden or visible
    /// columns) into `__sf_pos` and drops the other hidden columns, so the order keys are the
    /// position alone.
    pub(crate) fn renumbered(&self) -> Result<Self> {
        let by_pos = matches!(self.order.as_slice(), [s] if s.expr == c(POS) && s.asc);
        if by_pos && self.hidden_columns() == [POS] {
            return Ok(self.clone());
        }
        let rn = (window::row_number(&[], &self.order)?.cast_to_i64() - lit(1i64)).alias(POS);
        let mut user: Vec<Expr> = self.columns().iter().map(|n| c(n)).collect();
        user.push(rn);
        Ok(Self::wrap(
            &self.session,
            self.df.clone().select(user)?,
            pos_order(),
        ))
    }

    /// The plan of the result: rows in order, visible columns only.
    pub fn ordered_plan(&self) -> Result<DfFrame> {
        let cols: Vec<Expr> = self.columns().iter().map(|n| c(n)).collect();
        Ok(self.df.clone().sort(self.order.clone())?.select(cols)?)
    }

    /// The result as an engine frame (rows in order), for the engine's actions.
    pub fn to_lazy(&self) -> Result<LazyFrame> {
        Ok(LazyFrame::from_datafusion(
            &self.session,
            self.ordered_plan()?,
        ))
    }

    /// Runs the plan and returns the rows in pandas order.
    pub fn to_table(&self) -> Result<Table> {
        run(&self.to_lazy()?)
    }

    /// A column as a [`Series`] (pandas' `df["name"]`).
    pub fn col(&self, name: &str) -> Result<Series> {
        self.dtype_of("__getitem__", name)?;
        Ok(Series::new(self.clone(), c(name), name))
    }

    /// A column as a [`Series`] (pandas' `get`).
    pub fn get(&self, name: &str) -> Result<Series> {
        self.col(name)
    }

    // ----- selection and shape -----------------------------------------------------------

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Result<Self> {
        let df = self
            .df
            .clone()
            .sort(self.order.clone())?
            .limit(0, Some(n))?;
        Ok(self.with_df(df))
    }

    /// The last `n` rows.
    pub fn tail(&self, n: usize) -> Result<Self> {
        let df = self
            .df
            .clone()
            .sort(reversed(&self.order))?
            .limit(0, Some(n))?;
        Ok(self.with_df(df))
    }

    /// Number of rows (runs a count).
    pub fn len(&self) -> Result<usize> {
        Ok(LazyFrame::from_datafusion(&self.session, self.df.clone()).count()?)
    }

    /// Whether the frame has no rows.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.head(1)?.len()? == 0)
    }

    /// Whether the frame has no rows or no columns (pandas' `empty`).
    pub fn empty(&self) -> Result<bool> {
        Ok(self.columns().is_empty() || self.head(1)?.len()? == 0)
    }

    /// `(rows, columns)`.
    pub fn shape(&self) -> Result<(usize, usize)> {
        Ok((self.len()?, self.columns().len()))
    }

    /// Number of cells, rows times columns.
    pub fn size(&self) -> Result<usize> {
        let (r, c) = self.shape()?;
        Ok(r * c)
    }

    /// Always 2.
    pub fn ndim(&self) -> usize {
        2
    }

    /// Each column's pandas dtype name, in column order.
    pub fn dtypes(&self) -> Vec<(String, String)> {
        self.df
            .schema()
            .fields()
            .iter()
            .filter(|f| !is_hidden(f.name()))
            .map(|f| (f.name().clone(), dtype::pandas_dtype(f.data_type())))
            .collect()
    }

    /// Keeps the named columns, in the order given (pandas' `df[[...]]`).
    pub fn select<S: AsRef<str>>(&self, columns: &[S]) -> Result<Self> {
        self.check_columns("__getitem__", columns)?;
        self.project(columns.iter().map(|n| c(n.as_ref())).collect())
    }

    /// Keeps the named columns that exist (pandas' `filter(items=...)`).
    pub fn filter_items<S: AsRef<str>>(&self, items: &[S]) -> Result<Self> {
        let have = self.columns();
        let keep: Vec<&str> = items
            .iter()
            .map(|s| s.as_ref())
            .filter(|s| have.iter().any(|h| h == s))
            .collect();
        self.select(&keep)
    }

    /// Keeps the rows where `mask` is true (pandas' `loc[mask]`; a missing mask value is false).
    pub fn loc(&self, mask: &Series) -> Result<Self> {
        let (f, e) = self.attach(mask)?;
        f.filter_expr(e)
    }

    /// Keeps the rows where `mask` is true, and the named columns (`loc[mask, columns]`).
    pub fn loc_columns<S: AsRef<str>>(&self, mask: &Series, columns: &[S]) -> Result<Self> {
        self.loc(mask)?.select(columns)
    }

    pub(crate) fn filter_expr(&self, predicate: Expr) -> Result<Self> {
        // Window functions cannot appear in a filter: evaluate the mask into a hidden column.
        let name = self.fresh_hidden("mask");
        let df = self
            .df
            .clone()
            .with_column(&name, predicate)?
            .filter(c(&name).is_true())?
            .drop_columns(&[name.as_str()])?;
        Ok(self.with_df(df))
    }

    /// Keeps the rows where a boolean expression holds (pandas' `query`). The expression uses
    /// SQL syntax plus pandas' `==`; names with spaces go in backticks.
    pub fn query(&self, expr: &str) -> Result<Self> {
        let sql = expr.replace("==", "=").replace('`', "\"");
        let predicate = self
            .df
            .parse_sql_expr(&sql)
            .map_err(|e| invalid("query", format!("cannot parse '{expr}': {e}")))?;
        self.filter_expr(predicate)
    }

    /// For each cell, whether it equals one of `values` (values of another type never match).
    pub fn isin(&self, values: &[ScalarValue]) -> Result<Self> {
        let cols = self.columns();
        self.map_columns(&cols, |n, dt| Ok(isin_expr(c(n), dt, values)))
    }

    /// Keeps values where `cond` is true and puts `other` (missing when `None`) elsewhere.
    pub fn where_(&self, cond: &Series, other: Option<ScalarValue>) -> Result<Self> {
        let (f, cond) = self.attach(cond)?;
        let cols = f.columns();
        f.map_columns(&cols, |n, dt| {
            let other = other_value(other.clone(), dt)?;
            Ok(when(cond.clone().is_true(), c(n)).otherwise(other)?)
        })
    }

    /// The inverse of [`where_`](Self::where_): replaces values where `cond` is true.
    pub fn mask(&self, cond: &Series, other: Option<ScalarValue>) -> Result<Self> {
        let (f, cond) = self.attach(cond)?;
        let cols = f.columns();
        f.map_columns(&cols, |n, dt| {
            let other = other_value(other.clone(), dt)?;
            Ok(when(cond.clone().is_true(), other).otherwise(c(n))?)
        })
    }

    /// Removes columns (pandas' `drop(columns=...)`).
    pub fn drop<S: AsRef<str>>(&self, columns: &[S]) -> Result<Self> {
        self.check_columns("drop", columns)?;
        let keep: Vec<Expr> = self
            .columns()
            .iter()
            .filter(|n| !columns.iter().any(|d| d.as_ref() == n.as_str()))
            .map(|n| c(n))
            .collect();
        self.project(keep)
    }

    /// Renames columns (pandas' `rename(columns={...})`); names not in the frame are ignored,
    /// as in pandas.
    pub fn rename<A: AsRef<str>, B: AsRef<str>>(&self, mapping: &[(A, B)]) -> Result<Self> {
        let map: HashMap<&str, &str> = mapping
            .iter()
            .map(|(a, b)| (a.as_ref(), b.as_ref()))
            .collect();
        let user = self
            .columns()
            .iter()
            .map(|n| match map.get(n.as_str()) {
                Some(new) => c(n).alias(*new),
                None => c(n),
            })
            .collect();
        self.project(user)
    }

    /// Adds or replaces columns (pandas' `assign`), in the order given.
    pub fn assign(&self, columns: Vec<(&str, Series)>) -> Result<Self> {
        let mut out = self.clone();
        for (name, s) in columns {
            let (o, e) = out.attach(&s)?;
            out = o.with_df(o.df.clone().with_column(name, e)?);
        }
        // New columns go last among the visible ones, before the hidden ones.
        let cols: Vec<Expr> = out.columns().iter().map(|n| c(n)).collect();
        out.project(cols)
    }

    /// Inserts a column at position `loc` (pandas' `insert`, returning a new frame).
    pub fn insert(&self, loc: usize, name: &str, value: &Series) -> Result<Self> {
        if self.columns().iter().any(|n| n == name) {
            return Err(invalid(
                "insert",
                format!("cannot insert {name}, already exists"),
            ));
        }
        let (f, e) = self.attach(value)?;
        let e = e.alias(name);
        let mut user: Vec<Expr> = f.columns().iter().map(|n| c(n)).collect();
        if loc > user.len() {
            return Err(invalid(
                "insert",
                format!("loc {loc} is past the {} columns", user.len()),
            ));
        }
        user.insert(loc, e);
        f.project(user)
    }

    /// Removes a column and returns it (pandas' `pop`).
    pub fn pop(&mut self, name: &str) -> Result<Series> {
        let s = self.col(name)?;
        *self = self.drop(&[name])?;
        Ok(s)
    }

    /// Casts columns to pandas dtypes (pandas' `astype({...})`).
    pub fn astype<S: AsRef<str>>(&self, mapping: &[(S, &str)]) -> Result<Self> {
        let mut types = HashMap::new();
        for (n, t) in mapping {
            self.dtype_of("astype", n.as_ref())?;
            types.insert(n.as_ref().to_string(), dtype::arrow_type(t)?);
        }
        let cols: Vec<String> = types.keys().cloned().collect();
        self.map_columns(&cols, |n, _| {
            Ok(datafusion::logical_expr::cast(c(n), types[n].clone()))
        })
    }

    /// Adds a prefix to every column label.
    pub fn add_prefix(&self, prefix: &str) -> Result<Self> {
        let m: Vec<(String, String)> = self
            .columns()
            .into_iter()
            .map(|n| (n.clone(), format!("{prefix}{n}")))
            .collect();
        self.rename(&m)
    }

    /// Adds a suffix to every column label.
    pub fn add_suffix(&self, suffix: &str) -> Result<Self> {
        let m: Vec<(String, String)> = self
            .columns()
            .into_iter()
            .map(|n| (n.clone(), format!("{n}{suffix}")))
            .collect();
        self.rename(&m)
    }

    /// Keeps the columns of the given kinds: `number`, `bool`, `object`, `datetime`, or a
    /// dtype name.
    pub fn select_dtypes(&self, include: &[&str]) -> Result<Self> {
        let keep: Vec<String> = self
            .df
            .schema()
            .fields()
            .iter()
            .filter(|f| !is_hidden(f.name()))
            .filter(|f| {
                let dt = f.data_type();
                include.iter().any(|k| match *k {
                    "number" => dtype::is_numeric(dt),
                    "datetime" => matches!(dt, DataType::Timestamp(_, _)),
                    other => dtype::pandas_dtype(dt) == other,
                })
            })
            .map(|f| f.name().clone())
            .collect();
        self.select(&keep)
    }

    // ----- missing data ------------------------------------------------------------------

    /// Whether each cell is missing (null, or NaN in a float column).
    pub fn isna(&self) -> Result<Self> {
        let cols = self.columns();
        self.map_columns(&cols, |n, dt| Ok(missing(c(n), dt)))
    }

    /// Alias of [`isna`](Self::isna).
    pub fn isnull(&self) -> Result<Self> {
        self.isna()
    }

    /// Whether each cell is present.
    pub fn notna(&self) -> Result<Self> {
        let cols = self.columns();
        self.map_columns(&cols, |n, dt| Ok(missing(c(n), dt).not()))
    }

    /// Alias of [`notna`](Self::notna).
    pub fn notnull(&self) -> Result<Self> {
        self.notna()
    }

    /// Drops rows with missing values in `subset` (all columns when `None`).
    pub fn dropna(&self, how: How, subset: Option<&[&str]>) -> Result<Self> {
        let cols: Vec<String> = match subset {
            Some(s) => {
                self.check_columns("dropna", s)?;
                s.iter().map(|x| x.to_string()).collect()
            }
            None => self.columns(),
        };
        let mut tests = Vec::new();
        for n in &cols {
            tests.push(missing(c(n), &self.dtype_of("dropna", n)?));
        }
        let Some(first) = tests.first().cloned() else {
            return Ok(self.clone());
        };
        let drop = match how {
            How::Any => tests.into_iter().skip(1).fold(first, |a, b| a.or(b)),
            How::All => tests.into_iter().skip(1).fold(first, |a, b| a.and(b)),
        };
        self.filter_expr(drop.not())
    }

    /// Fills missing values in every column with `value` (columns of another type keep
    /// theirs, as when pandas cannot hold the value in the column).
    pub fn fillna(&self, value: ScalarValue) -> Result<Self> {
        let cols = self.columns();
        self.map_columns(&cols, |n, dt| Ok(fill(c(n), dt, &value)))
    }

    /// Fills missing values per column (pandas' `fillna({...})`).
    pub fn fillna_map(&self, values: &[(&str, ScalarValue)]) -> Result<Self> {
        let mut out = self.clone();
        for (n, v) in values {
            let dt = self.dtype_of("fillna", n)?;
            out = out.map_columns(&[n.to_string()], |n, _| Ok(fill(c(n), &dt, v)))?;
        }
        Ok(out)
    }

    /// Fills missing values with the last present value before them.
    pub fn ffill(&self) -> Result<Self> {
        let cols = self.columns();
        let order = self.order.clone();
        self.map_columns(&cols, |n, dt| carry(c(n), dt, &order, false))
    }

    /// Fills missing values with the next present value after them.
    pub fn bfill(&self) -> Result<Self> {
        let cols = self.columns();
        let order = self.order.clone();
        self.map_columns(&cols, |n, dt| carry(c(n), dt, &order, true))
    }

    // ----- sorting and ranking -----------------------------------------------------------

    /// Sorts by columns; a stable sort (ties keep their order), missing values last.
    pub fn sort_values<S: AsRef<str>>(&self, by: &[S], ascending: &[bool]) -> Result<Self> {
        self.sort_values_with(by, ascending, NaPosition::Last)
    }

    /// Sorts by columns with missing values placed as `na_position` says.
    pub fn sort_values_with<S: AsRef<str>>(
        &self,
        by: &[S],
        ascending: &[bool],
        na_position: NaPosition,
    ) -> Result<Self> {
        self.check_columns("sort_values", by)?;
        if !(ascending.len() == 1 || ascending.len() == by.len()) {
            return Err(invalid(
                "sort_values",
                format!(
                    "ascending has {} values for {} columns",
                    ascending.len(),
                    by.len()
                ),
            ));
        }
        // The keys are copied into hidden columns, so later changes to the visible columns
        // cannot change the order.
        let mut out = self.clone();
        let mut keys = Vec::new();
        for (i, n) in by.iter().enumerate() {
            let asc = ascending[if ascending.len() == 1 { 0 } else { i }];
            let dt = self.dtype_of("sort_values", n.as_ref())?;
            let h = out.fresh_hidden("key");
            // NaN sorts with the missing values, as in pandas.
            let key = if dtype::is_float(&dt) {
                when(missing(c(n.as_ref()), &dt), lit(ScalarValue::Null))
                    .otherwise(c(n.as_ref()) + lit(0.0))?
            } else {
                c(n.as_ref())
            };
            out = out.with_df(out.df.clone().with_column(&h, key)?);
            keys.push(SortExpr::new(c(&h), asc, na_position == NaPosition::First));
        }
        keys.extend(out.order.iter().cloned());
        out.order = keys;
        Ok(out)
    }

    /// The `n` rows with the largest values of `columns`, largest first.
    pub fn nlargest<S: AsRef<str>>(&self, n: usize, columns: &[S]) -> Result<Self> {
        self.dropna(
            How::Any,
            Some(&columns.iter().map(|s| s.as_ref()).collect::<Vec<_>>()),
        )?
        .sort_values(columns, &[false])?
        .head(n)
    }

    /// The `n` rows with the smallest values of `columns`, smallest first.
    pub fn nsmallest<S: AsRef<str>>(&self, n: usize, columns: &[S]) -> Result<Self> {
        self.dropna(
            How::Any,
            Some(&columns.iter().map(|s| s.as_ref()).collect::<Vec<_>>()),
        )?
        .sort_values(columns, &[true])?
        .head(n)
    }

    /// Ranks every column (numeric columns; average ranks, ascending).
    pub fn rank(&self, method: window::RankMethod, ascending: bool) -> Result<Self> {
        let cols = self.columns();
        let order = self.order.clone();
        self.map_columns(&cols, |n, dt| {
            window::rank(zero_signed(c(n), dt), method, ascending, &[], &order)
        })
    }

    // ----- deduplication and counting ----------------------------------------------------

    /// The occurrence test behind `duplicated` and `drop_duplicates`: true for rows that are
    /// duplicates under `keep`.
    pub(crate) fn duplicated_expr(&self, subset: Option<&[&str]>, keep: Keep) -> Result<Expr> {
        let cols: Vec<String> = match subset {
            Some(s) => {
                self.check_columns("duplicated", s)?;
                s.iter().map(|x| x.to_string()).collect()
            }
            None => self.columns(),
        };
        let part: Vec<Expr> = cols.iter().map(|n| c(n)).collect();
        use datafusion::functions_aggregate::count::count_udaf;
        Ok(match keep {
            Keep::First => window::row_number(&part, &self.order)?.gt(lit(1u64)),
            Keep::Last => window::row_number(&part, &reversed(&self.order))?.gt(lit(1u64)),
            Keep::None => {
                window::aggregate(count_udaf(), vec![lit(1)], &part, &[], window::Span::Whole)?
                    .gt(lit(1i64))
            }
        })
    }

    /// Whether each row repeats an earlier one (later one, for `Keep::Last`) on `subset`.
    pub fn duplicated(&self, subset: Option<&[&str]>, keep: Keep) -> Result<Series> {
        let e = self.duplicated_expr(subset, keep)?;
        Ok(Series::new(self.clone(), e, "value"))
    }

    /// Drops duplicate rows on `subset` (all columns when `None`).
    pub fn drop_duplicates(&self, subset: Option<&[&str]>, keep: Keep) -> Result<Self> {
        let dup = self.duplicated_expr(subset, keep)?;
        self.filter_expr(dup.not())
    }

    /// Number of distinct present values per column, as columns `column` and `nunique`.
    pub fn nunique(&self) -> Result<Self> {
        use datafusion::functions_aggregate::expr_fn::count_distinct;
        let cols = self.columns();
        let mut aggs = Vec::new();
        for n in &cols {
            let dt = self.dtype_of("nunique", n)?;
            let v = when(missing(c(n), &dt), lit(ScalarValue::Null)).otherwise(c(n))?;
            // -0.0 and 0.0 are one value to pandas.
            aggs.push(count_distinct(zero_signed(v, &dt)).alias(n.as_str()));
        }
        let row = self.run_one_row(aggs)?;
        crate::stats::long_table(&self.session, &cols, &row, "nunique")
    }

    /// Counts of each distinct row of `subset` (all columns when empty), most common first;
    /// rows with a missing value are dropped, as in pandas.
    pub fn value_counts(&self, subset: &[&str]) -> Result<Self> {
        let cols: Vec<String> = if subset.is_empty() {
            self.columns()
        } else {
            subset.iter().map(|s| s.to_string()).collect()
        };
        let keys: Vec<&str> = cols.iter().map(|s| s.as_str()).collect();
        crate::groupby::GroupBy::new(self, &keys, true, true)?.value_counts()
    }

    /// Runs aggregate expressions over the whole frame and returns the single row.
    pub(crate) fn run_one_row(&self, aggs: Vec<Expr>) -> Result<arrow::array::RecordBatch> {
        let df = self.df.clone().aggregate(vec![], aggs)?;
        let table = run(&LazyFrame::from_datafusion(&self.session, df))?;
        Ok(table.to_batch()?)
    }

    // ----- whole-frame element-wise operations -------------------------------------------

    /// Applies `f` to each numeric column, leaving the others as they are.
    pub(crate) fn map_numeric(&self, f: impl Fn(Expr, &DataType) -> Result<Expr>) -> Result<Self> {
        let cols = self.columns();
        self.map_columns(&cols, |n, dt| {
            if dtype::is_numeric(dt) {
                f(c(n), dt)
            } else {
                Ok(c(n))
            }
        })
    }

    /// Replaces values equal to a key of `mapping` by its value, in every column of a
    /// matching type (pandas' `replace({...})`).
    pub fn replace(&self, mapping: &[(ScalarValue, ScalarValue)]) -> Result<Self> {
        let cols = self.columns();
        self.map_columns(&cols, |n, dt| Ok(replace_expr(c(n), dt, mapping)))
    }
}

static SPILLED: std::sync::Mutex<Vec<(std::path::PathBuf, u64)>> =
    std::sync::Mutex::new(Vec::new());

/// Runs an engine frame, counting what it spilled against its session.
pub(crate) fn run(lf: &LazyFrame) -> Result<Table> {
    let (table, metrics) = lf.collect_with_metrics()?;
    if metrics.spilled_bytes > 0 {
        let dir = lf.session().spill_dir().to_path_buf();
        let mut all = SPILLED.lock().unwrap_or_else(|p| p.into_inner());
        match all.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, n)) => *n += metrics.spilled_bytes,
            None => all.push((dir, metrics.spilled_bytes)),
        }
    }
    Ok(table)
}

/// Bytes that compat actions in `session` have spilled so far (operators and the partition
/// store), for tests and progress reports.
pub fn spilled_bytes(session: &Session) -> u64 {
    let all = SPILLED.lock().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .find(|(d, _)| d == session.spill_dir())
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

/// `expr` is missing: null, or NaN for floats.
pub(crate) fn missing(expr: Expr, dt: &DataType) -> Expr {
    if dtype::is_float(dt) {
        expr.clone()
            .is_null()
            .or(datafusion::functions::expr_fn::isnan(expr).is_true())
    } else {
        expr.is_null()
    }
}

/// Floats with -0.0 made 0.0, so that the two compare equal in sorts and ranks, as in pandas.
pub(crate) fn zero_signed(e: Expr, dt: &DataType) -> Expr {
    if dtype::is_float(dt) { e + lit(0.0) } else { e }
}

/// `value` cast to `dt` if it is of the same kind, else `None`.
pub(crate) fn same_kind(value: &ScalarValue, dt: &DataType) -> Option<ScalarValue> {
    let vt = value.data_type();
    let ok = (vt.is_numeric() && dt.is_numeric())
        || (dtype::is_string(&vt) && dtype::is_string(dt))
        || (vt == DataType::Boolean && *dt == DataType::Boolean);
    if !ok {
        return None;
    }
    // Only lossless conversions: 1.5 never matches an integer column.
    let cast = value.cast_to(dt).ok()?;
    match cast.cast_to(&vt) {
        Ok(back) if back == *value => Some(cast),
        _ => None,
    }
}

pub(crate) fn isin_expr(e: Expr, dt: &DataType, values: &[ScalarValue]) -> Expr {
    let list: Vec<Expr> = values
        .iter()
        .filter_map(|v| same_kind(v, dt))
        .map(lit)
        .collect();
    if list.is_empty() {
        return lit(false);
    }
    e.in_list(list, false).is_true()
}

fn other_value(other: Option<ScalarValue>, dt: &DataType) -> Result<Expr> {
    Ok(match other {
        None => lit(ScalarValue::try_from(dt)?),
        Some(v) => lit(v),
    })
}

pub(crate) fn fill(e: Expr, dt: &DataType, value: &ScalarValue) -> Expr {
    match same_kind(value, dt) {
        Some(v) => when(missing(e.clone(), dt), lit(v))
            .otherwise(e.clone())
            .unwrap_or(e),
        None => e,
    }
}

pub(crate) fn replace_expr(e: Expr, dt: &DataType, mapping: &[(ScalarValue, ScalarValue)]) -> Expr {
    let mut pairs = Vec::new();
    for (from, to) in mapping {
        if let (Some(f), Some(t)) = (same_kind(from, dt), same_kind(to, dt)) {
            pairs.push((f, t));
        }
    }
    if pairs.is_empty() {
        return e;
    }
    let mut case: Option<datafusion::logical_expr::conditional_expressions::CaseBuilder> = None;
    for (f, t) in pairs {
        let cond = e.clone().eq(lit(f));
        case = Some(match case {
            None => when(cond, lit(t)),
            Some(mut b) => b.when(cond, lit(t)),
        });
    }
    match case {
        Some(mut b) => b.otherwise(e.clone()).unwrap_or(e),
        None => e,
    }
}

/// Carries the last (or, backwards, the next) present value over missing ones.
pub(crate) fn carry(e: Expr, dt: &DataType, order: &[SortExpr], backward: bool) -> Result<Expr> {
    use datafusion::functions_aggregate::first_last::last_value_udaf;
    use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionParams};
    use datafusion::logical_expr::{
        WindowFrame, WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition,
        expr::NullTreatment,
    };
    let value = when(missing(e.clone(), dt), lit(ScalarValue::try_from(dt)?)).otherwise(e)?;
    let order: Vec<SortExpr> = if backward {
        reversed(order)
    } else {
        order.to_vec()
    };
    Ok(Expr::WindowFunction(Box::new(WindowFunction {
        fun: WindowFunctionDefinition::AggregateUDF(last_value_udaf()),
        params: WindowFunctionParams {
            args: vec![value],
            partition_by: vec![],
            order_by: order,
            window_frame: WindowFrame::new_bounds(
                WindowFrameUnits::Rows,
                WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
                WindowFrameBound::CurrentRow,
            ),
            filter: None,
            null_treatment: Some(NullTreatment::IgnoreNulls),
            distinct: false,
        },
    })))
}
