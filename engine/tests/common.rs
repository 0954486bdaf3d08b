//! Test helpers: a session with a small memory limit, and comparison of a [`Table`] with an
//! expected CSV by value (numbers compared numerically, empty cells as nulls).

use std::path::PathBuf;

use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use spillframe_engine::{Session, Table};

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

pub(crate) fn data(name: &str) -> String {
    fixtures()
        .join("data")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

pub(crate) fn session() -> Session {
    Session::builder()
        .memory_limit_bytes(64 << 20)
        .target_partitions(3)
        .ignore_environment()
        .build()
        .expect("session")
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Num(f64),
    Text(String),
}

impl Cell {
    fn parse(s: &str) -> Cell {
        let s = s.trim();
        if s.is_empty() {
            Cell::Null
        } else if let Ok(f) = s.parse::<f64>() {
            Cell::Num(f)
        } else if s == "True" || s == "true" {
            Cell::Text("true".into())
        } else if s == "False" || s == "false" {
            Cell::Text("false".into())
        } else {
            Cell::Text(s.to_string())
        }
    }

    fn same(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Num(a), Cell::Num(b)) => (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0),
            (a, b) => a == b,
        }
    }
}

fn sort_key(row: &[Cell]) -> String {
    row.iter()
        .map(|c| match c {
            Cell::Null => "\u{10FFFF}".to_string(),
            Cell::Num(f) => format!("{:020.6}", f + 1e12),
            Cell::Text(s) => s.clone(),
        })
        .collect::<Vec<_>>()
        .join("\u{1}")
}

/// The table's rows as cells.
pub(crate) fn rows(table: &Table) -> Vec<Vec<Cell>> {
    let mut out = Vec::new();
    let opts = FormatOptions::default().with_null("");
    for batch in table.batches() {
        let fmts: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .zip(&fmts)
                    .map(|(c, f)| {
                        if c.is_null(r) {
                            Cell::Null
                        } else {
                            Cell::parse(&f.value(r).to_string())
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The expected CSV's header and rows.
pub(crate) fn expected(name: &str) -> (Vec<String>, Vec<Vec<Cell>>) {
    let text = std::fs::read_to_string(fixtures().join("expected").join(name)).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(Cell::parse).collect())
        .collect();
    (header, rows)
}

pub(crate) fn assert_rows(actual: Vec<Vec<Cell>>, expected: Vec<Vec<Cell>>, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: row count differs\nactual: {actual:?}\nexpected: {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(
            a.len(),
            e.len(),
            "{what}: row {i} width differs: {a:?} vs {e:?}"
        );
        for (x, y) in a.iter().zip(e) {
            assert!(
                x.same(y),
                "{what}: row {i} differs\nactual:   {a:?}\nexpected: {e:?}"
            );
        }
    }
}

/// Asserts the table equals the expected CSV, columns and rows in order.
pub(crate) fn assert_matches(table: &Table, name: &str) {
    let (header, exp) = expected(name);
    assert_eq!(table.column_names(), header, "{name}: columns differ");
    assert_rows(rows(table), exp, name);
}

/// Asserts the table equals the expected CSV as a multiset of rows (order ignored).
pub(crate) fn assert_matches_unordered(table: &Table, name: &str) {
    let (header, mut exp) = expected(name);
    assert_eq!(table.column_names(), header, "{name}: columns differ");
    let mut act = rows(table);
    act.sort_by_key(|r| sort_key(r));
    exp.sort_by_key(|r| sort_key(r));
    assert_rows(act, exp, name);
}

/// One column's values as cells.
pub(crate) fn column(table: &Table, name: &str) -> Vec<Cell> {
    let idx = table
        .column_names()
        .iter()
        .position(|c| *c == name)
        .unwrap();
    rows(table).into_iter().map(|r| r[idx].clone()).collect()
}

pub(crate) fn nums(v: &[f64]) -> Vec<Cell> {
    v.iter().map(|f| Cell::Num(*f)).collect()
}
