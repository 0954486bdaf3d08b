//! Runs the suite's files record by record in each mode and keeps every record's outcome.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datafusion_sqllogictest::{DFColumnType, DataFusion, TestFile, df_value_validator};
use futures::FutureExt as _;
use futures::StreamExt as _;
use indicatif::ProgressBar;
use sqllogictest::{Record, TestErrorKind, parse_file, strict_column_validator};

use super::contexts::{self, Mode};

/// Directories and files of the package the suite does not run, with the reason.
pub(super) const SKIPPED: [(&str, &str); 6] = [
    (
        "spark/",
        "Spark's dialect and functions (datafusion-spark), not part of spillframe",
    ),
    (
        "tpch/",
        "needs TPC-H data that the package does not ship (DataFusion skips it by default too)",
    ),
    ("sqlite/", "the sqlite corpus is not in the package"),
    ("pg_compat/", "compares with PostgreSQL"),
    (
        "encrypted_parquet.slt",
        "needs Parquet encryption, a feature spillframe does not build",
    ),
    (
        "cast_extension_type_metadata.slt",
        "needs the suite's own type planner, which cannot be moved onto another session",
    ),
];

/// How one record ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Pass,
    /// The expected rows in another order, from a query without a top-level ORDER BY: SQL
    /// promises no order, so this counts as a pass (DataFusion's suite relies on its own plans
    /// being deterministic; spillframe's partitioned operators emit buckets as they finish).
    OtherOrder,
    /// A different answer (rows, row count or columns).
    Mismatch {
        /// Expected and actual lines, sorted, are the same multiset.
        same_rows: bool,
        /// The actual lines (query results only).
        actual: Vec<String>,
        /// How many lines were expected.
        expected_lines: usize,
        message: String,
    },
    /// Other rows than expected from a query with a top-level LIMIT and no ORDER BY, each of
    /// them a row of the query without its LIMIT: SQL lets the LIMIT choose any rows, so this
    /// counts as a pass.
    OtherRows,
    /// An error, or success where an error was expected.
    Error(String),
}

impl Outcome {
    /// A pass, or the expected rows in an order SQL does not promise.
    pub(super) fn passed(&self) -> bool {
        matches!(
            self,
            Outcome::Pass | Outcome::OtherOrder | Outcome::OtherRows
        )
    }
}

/// One record's identity (`file:line`, relative to `test_files/`) and its SQL.
#[derive(Debug, Clone)]
pub(super) struct RecordId {
    pub(super) loc: String,
    pub(super) sql: String,
}

/// Every record's outcome in one mode.
pub(super) type ModeResults = BTreeMap<String, (RecordId, Outcome)>;

/// The `.slt` files under `root/test_files` that run, sorted.
pub(super) fn test_files(root: &Path, filter: Option<&str>) -> Vec<TestFile> {
    let dir = root.join("test_files");
    let mut files = Vec::new();
    collect(&dir, &mut files);
    let prefix = format!("{}/", dir.display());
    let mut out: Vec<TestFile> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .map(|p| TestFile::new(p, &[prefix.as_str()]))
        .filter(|f| {
            let rel = f.relative_path.to_string_lossy();
            !SKIPPED.iter().any(|(s, _)| rel.starts_with(s))
                && filter.is_none_or(|w| rel.contains(w))
        })
        .collect();
    out.sort_by(|a, b| a.relative_path.cmp(&b.relative_path));
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Runs `files` in `modes`, `jobs` files at a time; returns each mode's results.
pub(super) async fn run_all(
    root: &Path,
    files: &[TestFile],
    modes: &[Mode],
    jobs: usize,
    timeout: Duration,
) -> BTreeMap<Mode, ModeResults> {
    let started = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let per_file: Vec<Vec<(Mode, ModeResults)>> = futures::stream::iter(files)
        .map(|file| {
            let done = &done;
            async move {
                let t = Instant::now();
                let mut out = Vec::new();
                for &mode in modes {
                    out.push((mode, run_file(root, file, mode, timeout).await));
                }
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let secs = t.elapsed().as_secs_f64();
                if secs > 20.0 || n.is_multiple_of(25) || n == files.len() {
                    eprintln!(
                        "datafusion suite: {n}/{} files, {:.0} s ({} took {secs:.1} s)",
                        files.len(),
                        started.elapsed().as_secs_f64(),
                        file.relative_path.display()
                    );
                }
                out
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    let mut results: BTreeMap<Mode, ModeResults> = BTreeMap::new();
    for file in per_file {
        for (mode, r) in file {
            results.entry(mode).or_default().extend(r);
        }
    }
    results
}

/// Runs one file in one mode, record by record (a failed record does not stop the file).
async fn run_file(root: &Path, file: &TestFile, mode: Mode, timeout: Duration) -> ModeResults {
    let mut out = ModeResults::new();
    let Some(fc) = contexts::for_file(&file.relative_path, mode).await else {
        return out;
    };
    datafusion_sqllogictest::setup_scratch_dir(&file.relative_path).expect("scratch dir");
    let records = match parse_file::<DFColumnType>(&file.path) {
        Ok(r) => r,
        Err(e) => panic!("{}: {e}", file.path.display()),
    };
    let ctx = fc.ctx.clone();
    let rel = file.relative_path.clone();
    let mut runner = sqllogictest::Runner::new(move || {
        let ctx = ctx.clone();
        let rel = rel.clone();
        async move { Ok(DataFusion::new(ctx, rel, ProgressBar::hidden())) }
    });
    runner.add_label("Datafusion");
    runner.with_column_validator(strict_column_validator);
    runner.with_normalizer(datafusion_sqllogictest::value_normalizer);
    runner.with_validator(df_value_validator);
    let prefix = format!("{}/", root.join("test_files").display());
    for record in records {
        if let Record::Halt { .. } = record {
            break;
        }
        let id = match &record {
            Record::Statement { loc, sql, .. } | Record::Query { loc, sql, .. } => Some(RecordId {
                loc: format!(
                    "{}:{}",
                    loc.file()
                        .strip_prefix(&prefix)
                        .unwrap_or(loc.file())
                        .trim_start_matches("./"),
                    loc.line()
                ),
                sql: sql.clone(),
            }),
            _ => None,
        };
        // Under a tiny limit, whether a reservation is refused depends on what the other
        // partitions hold at that moment: a query (it changes nothing) that fails for want of
        // memory runs once more.
        let again = matches!(record, Record::Query { .. }).then(|| record.clone());
        let mut outcome = run_record(&mut runner, record, timeout).await;
        if let (Some(record), Outcome::Error(m)) = (again, &outcome)
            && is_memory_error(m)
        {
            outcome = run_record(&mut runner, record, timeout).await;
        }
        if let (
            Outcome::Mismatch {
                same_rows,
                actual,
                expected_lines,
                ..
            },
            Some(id),
        ) = (&outcome, &id)
        {
            let top = top_level(&id.sql.to_lowercase());
            if !top.contains("order by") {
                if *same_rows {
                    outcome = Outcome::OtherOrder;
                } else if actual.len() == *expected_lines
                    && !actual.is_empty()
                    && let Some(full) = without_limit(&id.sql)
                    && rows_of(&fc.ctx, &file.relative_path, &full)
                        .await
                        .is_some_and(|all| is_sub_multiset(actual, &all))
                {
                    outcome = Outcome::OtherRows;
                }
            }
        }
        if let Some(id) = id {
            out.insert(id.loc.clone(), (id, outcome));
        }
    }
    drop(runner);
    drop(fc);
    out
}

async fn run_record<D, M>(
    runner: &mut sqllogictest::Runner<D, M>,
    record: Record<D::ColumnType>,
    timeout: Duration,
) -> Outcome
where
    D: sqllogictest::AsyncDB,
    M: sqllogictest::MakeConnection<Conn = D>,
{
    let run = AssertUnwindSafe(runner.run_async(record)).catch_unwind();
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Outcome::Error(format!("timed out after {} s", timeout.as_secs())),
        Ok(Err(panic)) => Outcome::Error(format!("panicked: {}", panic_message(&panic))),
        Ok(Ok(Ok(_))) => Outcome::Pass,
        Ok(Ok(Err(e))) => classify(e.kind()),
    }
}

fn is_memory_error(message: &str) -> bool {
    message.contains("Resources exhausted") || message.contains("Not enough memory")
}

fn classify(kind: TestErrorKind) -> Outcome {
    match kind {
        TestErrorKind::QueryResultMismatch {
            ref expected,
            ref actual,
            ..
        } => {
            let sorted = |s: &str| {
                let mut v: Vec<String> = s.lines().map(|l| l.trim_end().to_string()).collect();
                v.sort();
                v
            };
            Outcome::Mismatch {
                same_rows: sorted(expected) == sorted(actual),
                actual: actual.lines().map(|l| l.trim_end().to_string()).collect(),
                expected_lines: expected.lines().count(),
                message: kind.to_string(),
            }
        }
        TestErrorKind::StatementResultMismatch { .. }
        | TestErrorKind::QueryResultColumnsMismatch { .. } => Outcome::Mismatch {
            same_rows: false,
            actual: Vec::new(),
            expected_lines: 0,
            message: kind.to_string(),
        },
        other => Outcome::Error(other.to_string()),
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// `sql` without what is inside parentheses (aggregate and window orderings, subqueries).
pub(super) fn top_level(sql: &str) -> String {
    let mut depth = 0usize;
    sql.chars()
        .filter(|&c| {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => return depth == 0,
            }
            false
        })
        .collect()
}

/// `sql` without its top-level `LIMIT` (and what follows it), if it has one.
fn without_limit(sql: &str) -> Option<String> {
    let lower = sql.to_lowercase();
    let bytes = lower.as_bytes();
    let mut depth = 0usize;
    let mut cut = None;
    for (i, c) in lower.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0
                && lower[i..].starts_with("limit")
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
                && !bytes.get(i + 5).is_some_and(|b| b.is_ascii_alphanumeric()) =>
            {
                cut = Some(i)
            }
            _ => {}
        }
    }
    cut.map(|i| sql[..i].to_string())
}

/// The result lines of `sql`, formatted as the suite's engine formats them.
async fn rows_of(
    ctx: &datafusion::prelude::SessionContext,
    relative: &Path,
    sql: &str,
) -> Option<Vec<String>> {
    use sqllogictest::AsyncDB as _;
    let mut db = DataFusion::new(ctx.clone(), relative.to_path_buf(), ProgressBar::hidden());
    match db.run(sql).await.ok()? {
        sqllogictest::DBOutput::Rows { rows, .. } => Some(
            rows.iter()
                .map(|r| r.join(" ").trim_end().to_string())
                .collect(),
        ),
        _ => None,
    }
}

/// Whether every line of `part` is in `all`, as often as it occurs in `part`.
fn is_sub_multiset(part: &[String], all: &[String]) -> bool {
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    for l in all {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    part.iter().all(|l| {
        counts.get_mut(l.as_str()).is_some_and(|n| {
            let had = *n > 0;
            *n = n.saturating_sub(1);
            had
        })
    })
}
