//! The supported-operations registry: every public pandas name, its status in spillframe,
//! the spillframe call it maps to and the conformance cases that prove it.
//!
//! [`table::ENTRIES`] is the single source of truth. `docs/supported_apis.md` is rendered
//! from it, with the conformance cases of each entry, by `markdown` (feature `conformance`;
//! the crate's tests rewrite the file with `SPILLFRAME_BLESS=1`), and tests check that the
//! table lists exactly the names in `fixtures/compat/pandas_api.txt`, that every Supported or
//! Partial entry has a passing case, and that the rendered file is current.

pub mod table;

use std::fmt::Write as _;

/// Which pandas namespace a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Top-level functions and classes (`pd.merge`).
    Pandas,
    /// `DataFrame` methods and attributes.
    DataFrame,
    /// `Series` methods and attributes.
    Series,
    /// `Series.str` methods.
    SeriesStr,
    /// `Series.dt` methods and properties.
    SeriesDt,
    /// `DataFrameGroupBy` methods.
    DataFrameGroupBy,
}

impl Kind {
    /// The prefix pandas' own docs use (`DataFrame`, `Series.str`, `pandas`).
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Pandas => "pandas",
            Kind::DataFrame => "DataFrame",
            Kind::Series => "Series",
            Kind::SeriesStr => "Series.str",
            Kind::SeriesDt => "Series.dt",
            Kind::DataFrameGroupBy => "DataFrameGroupBy",
        }
    }

    /// All kinds, in the order the docs list them.
    pub const ALL: [Kind; 6] = [
        Kind::Pandas,
        Kind::DataFrame,
        Kind::Series,
        Kind::SeriesStr,
        Kind::SeriesDt,
        Kind::DataFrameGroupBy,
    ];
}

/// How far spillframe supports a pandas name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Supported with pandas' semantics for the parameters that make sense in Rust.
    Supported,
    /// Supported, but the named parameters or forms are missing.
    Partial(&'static str),
    /// Not yet.
    Planned,
    /// Will not be offered, for the reason given.
    NotApplicable(&'static str),
}

impl Status {
    /// Whether conformance cases must prove the entry.
    pub fn is_offered(self) -> bool {
        matches!(self, Status::Supported | Status::Partial(_))
    }

    #[cfg(feature = "conformance")]
    fn label(self) -> &'static str {
        match self {
            Status::Supported => "Supported",
            Status::Partial(_) => "Partial",
            Status::Planned => "Planned",
            Status::NotApplicable(_) => "Not applicable",
        }
    }
}

/// One pandas name.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Its namespace.
    pub kind: Kind,
    /// The name.
    pub name: &'static str,
    /// Its status here.
    pub status: Status,
    /// The spillframe call it maps to (empty when not offered).
    pub call: &'static str,
}

impl Entry {
    /// `DataFrame.merge`, `Series.str.lower`, `pandas.concat`.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.kind.prefix(), self.name)
    }

    /// Ids of the conformance cases that cover this entry.
    #[cfg(feature = "conformance")]
    pub fn cases(&self) -> Vec<&'static str> {
        let full = self.full_name();
        crate::conformance::cases::CASES
            .iter()
            .filter(|c| c.covers.contains(&full.as_str()))
            .map(|c| c.id)
            .collect()
    }
}

pub(crate) const fn e(kind: Kind, name: &'static str, status: Status, call: &'static str) -> Entry {
    Entry {
        kind,
        name,
        status,
        call,
    }
}

/// Every entry.
pub fn entries() -> &'static [Entry] {
    table::ENTRIES
}

/// Counts per status: (supported, partial, planned, not applicable).
pub fn counts(kind: Option<Kind>) -> (usize, usize, usize, usize) {
    let mut c = (0, 0, 0, 0);
    for e in entries()
        .iter()
        .filter(|e| kind.is_none_or(|k| e.kind == k))
    {
        match e.status {
            Status::Supported => c.0 += 1,
            Status::Partial(_) => c.1 += 1,
            Status::Planned => c.2 += 1,
            Status::NotApplicable(_) => c.3 += 1,
        }
    }
    c
}

/// The summary `spillframe compat` prints.
pub fn summary() -> String {
    let mut s = format!(
        "pandas {} API coverage (Supported / Partial / Planned / Not applicable):\n",
        table::PANDAS_VERSION
    );
    for k in Kind::ALL {
        let (a, b, c, d) = counts(Some(k));
        let _ = writeln!(s, "  {:<18} {a:>4} {b:>4} {c:>4} {d:>4}", k.prefix());
    }
    let (a, b, c, d) = counts(None);
    let _ = writeln!(s, "  {:<18} {a:>4} {b:>4} {c:>4} {d:>4}", "total");
    let _ = writeln!(
        s,
        "{} pandas operations are offered (Supported or Partial), each proven against pandas; \
         docs/supported_apis.md lists them with their cases",
        a + b,
    );
    s
}

/// `docs/supported_apis.md`, rendered from the registry.
#[cfg(feature = "conformance")]
pub fn markdown() -> String {
    let mut s = String::new();
    let (a, b, c, d) = counts(None);
    let _ = write!(
        s,
        "# Supported pandas APIs\n\n\
         <!-- Generated from compat/src/registry/table.rs by `SPILLFRAME_BLESS=1 cargo test -p \
         spillframe-compat --test compat supported_apis`. Do not edit by hand; a test fails \
         when this file is stale. -->\n\n\
         spillframe's compat layer (`spillframe-compat`) offers pandas' operations with pandas' \
         names and semantics over out-of-core frames. This table lists **every** public name of \
         pandas {ver} (top-level functions, `DataFrame`, `Series`, `Series.str`, `Series.dt` and \
         `DataFrameGroupBy`), as extracted by `fixtures/compat/pandas_api.py`.\n\n\
         - **Supported**: pandas' semantics for the parameters that make sense in Rust.\n\
         - **Partial**: supported, with the missing parameters or forms named.\n\
         - **Planned**: not yet.\n\
         - **Not applicable**: will not be offered, with the reason.\n\n\
         Every Supported or Partial entry names the conformance cases that prove it: each case \
         runs the operation on committed inputs and compares the result with the answer pandas \
         {ver} gave (`fixtures/compat/make_cases.py`), column names, dtype kinds and values, \
         once in memory and once under a 1 MiB memory limit.\n\n\
         What the 1 MiB run proves: the call completes and still gives pandas' answer with the \
         session's memory pool capped at 1 MiB. The cases' inputs are small, so most of them fit \
         without spilling; only `read_parquet` and `frame_rank` assert that they spilled.\n\n\
         On data many times the limit (`compat/tests/compat/out_of_core.rs`: 400,000 rows, 59 MB \
         counted, 56 times a 1 MiB limit), 11 cases check the answer against pandas' digest and \
         that the case spilled. Today only `pivot_table` passes. `sort_values`, `merge` (all \
         four hows), `groupby().agg`, `drop_duplicates`, `rank` and `value_counts` end in a \
         clear out-of-memory error (never a wrong answer): DataFusion's external sort and final \
         aggregation cannot work in a fair share of 1 MiB. These operations are not yet proven \
         out of core.\n\n\
         **Totals:** {a} Supported, {b} Partial, {c} Planned, {d} Not applicable \
         ({off} offered of {all}).\n\n",
        ver = table::PANDAS_VERSION,
        off = a + b,
        all = a + b + c + d,
    );
    s.push_str(INDEX_MODEL);
    for k in Kind::ALL {
        let (a, b, c, d) = counts(Some(k));
        let _ = write!(
            s,
            "\n## {}\n\n{a} Supported, {b} Partial, {c} Planned, {d} Not applicable.\n\n\
             | name | status | spillframe | notes | cases |\n|---|---|---|---|---|\n",
            k.prefix()
        );
        for e in entries().iter().filter(|e| e.kind == k) {
            let notes = match e.status {
                Status::Partial(n) | Status::NotApplicable(n) => n,
                _ => "",
            };
            let call = if e.call.is_empty() {
                String::new()
            } else {
                format!("`{}`", e.call)
            };
            let cases = e
                .cases()
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {} |",
                e.name.replace('_', "\\_").replace("\\_", "_"),
                e.status.label(),
                call,
                notes.replace('|', "\\|"),
                cases
            );
        }
    }
    s
}

#[cfg(feature = "conformance")]
const INDEX_MODEL: &str = "## The index model\n\n\
pandas frames carry an index; spillframe's compat frames carry a **RangeIndex only**.\n\n\
- Every result is numbered 0..n in its row order, as after `reset_index(drop=True)`.\n\
- Operations that in pandas move labels into the index return them as ordinary columns, as \
`reset_index()` would: `groupby(...).sum()` returns the keys as columns; `value_counts()` \
returns the values and a `count` (or `proportion`) column; `describe()` returns a `stat` \
column; frame reductions (`sum()`, `mean()`, ...) return `column` and `value` columns; \
`corr()`/`cov()` return a `column` column.\n\
- Row order follows pandas. Each frame keeps order keys (a hidden position, `__sf_pos`, \
preceded by any `sort_values` keys); sorts are stable; `merge` keeps left order for `inner` \
and `left`, right order for `right`, and sorts keys for `outer`.\n\
- Series combine by position: two Series of the same frame combine directly; a Series from \
a related frame (for example `df[[\"x\"]].where(df[\"n\"] > 0)`) is aligned on the position, \
as pandas aligns on index labels.\n\
- `set_index`, `reset_index`, `sort_index`, `loc`/`iloc` by label and MultiIndex operations \
are therefore Not applicable.\n\
- Where pandas turns an integer column with missing values into float64 (a type that depends \
on the data), spillframe keeps a nullable integer column.\n";
