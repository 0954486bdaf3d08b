//! The differential SQL corpus: every record of `tests/sql/*.slt` runs in every mode, and every
//! mode must give DuckDB's answer (made by `fixtures/sql/make_corpus.py`).
//!
//! The files are in sqllogictest's format and read with the `sqllogictest` crate's parser;
//! this runner executes them, because it runs each record under several sessions, compares
//! numbers with a tolerance (DuckDB and DataFusion sum floats in different orders), and
//! records what each query spilled. The modes ([`modes::Mode`]):
//!
//! 1. in memory (1 GiB, 4 partitions);
//! 2. forced partitioned under 4 MiB, where the fixture tables are many times the limit;
//! 3. one partition;
//! 4. on peers: the tables are cached and spread over three in-process peers
//!    ([`spillframe_engine::testing::LocalPeers`]), so scans run as plan fragments on the
//!    peers, under 8 MiB with forced partitioning, so buckets are evicted to peers too.
//!
//! Committed lists, beside the corpus:
//! - `tests/sql/spills.txt`: the cases that must spill in mode 2, with the operators that
//!   spilled. A listed case that stops spilling (or stops spilling in a listed operator)
//!   fails. A case that spills but is not listed is reported, so the list can be extended.
//! - `tests/sql/known_failures.txt`: `mode case reason` lines for answers known to be wrong or
//!   missing in a mode (`mode` is a mode's name, several joined by commas, or `all`). A listed
//!   case that passes fails too: the list may only shrink. A mode written `mode?` marks a
//!   case that fails in some runs only (it depends on when concurrent operators reserve
//!   memory); it may pass. A reason starting `wrong:` is a known wrong answer; any other
//!   entry is a known error, and a wrong answer from it fails the run.
//!
//! In the two constrained modes a case that fails with a memory error (never a wrong answer)
//! runs once more: whether a reservation is refused depends on what the other partitions hold
//! at that moment. Cases that needed the second run are listed on stderr.
//!
//! `CORPUS_BLESS=1` rewrites `spills.txt` from the run (check the diff before committing).
//! `CORPUS_FILTER=text` runs only cases whose name contains `text`.

mod compare;
mod modes;
mod random;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqllogictest::{DefaultColumnType, QueryExpect, Record, SortMode};

use modes::{Mode, Outcome};

/// One query of the corpus.
struct Case {
    name: String,
    file: String,
    line: String,
    sql: String,
    expect: Expect,
}

enum Expect {
    Rows {
        sorted: bool,
        lines: Vec<String>,
    },
    /// The error the case expects, matched with sqllogictest's own rules (a regex).
    Error(sqllogictest::ExpectedError),
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql")
}

/// Every case of every `.slt` file, in file order.
fn cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/sql")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let filter = std::env::var("CORPUS_FILTER").ok();
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let records = sqllogictest::parse_file::<DefaultColumnType>(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut name: Option<String> = None;
        for record in records {
            match record {
                Record::Comment(lines) => {
                    for l in lines {
                        if let Some(n) = l.trim().strip_prefix("case:") {
                            name = Some(n.trim().to_string());
                        }
                    }
                }
                Record::Query {
                    loc, sql, expected, ..
                } => {
                    let name = name
                        .take()
                        .unwrap_or_else(|| panic!("{loc}: a query without a '# case:' name"));
                    assert!(names.insert(name.clone()), "{loc}: case {name} twice");
                    let expect = match expected {
                        QueryExpect::Results {
                            sort_mode, results, ..
                        } => Expect::Rows {
                            sorted: !matches!(sort_mode, Some(SortMode::NoSort)),
                            lines: results,
                        },
                        QueryExpect::Error(e) => Expect::Error(e),
                    };
                    if filter.as_deref().is_some_and(|f| !name.contains(f)) {
                        continue;
                    }
                    out.push(Case {
                        name,
                        file: file.clone(),
                        line: loc.to_string(),
                        sql,
                        expect,
                    });
                }
                Record::Newline | Record::Control(_) => {}
                other => panic!(
                    "{}: unsupported record in the corpus: {other}",
                    path.display()
                ),
            }
        }
    }
    out
}

/// A `known_failures.txt` entry for this mode.
struct Known {
    reason: String,
    /// Marked `mode?`: it fails in some runs only (memory timing), so passing is allowed.
    sometimes: bool,
}

/// `mode case reason` lines of `known_failures.txt`.
fn known_failures(mode: Mode) -> BTreeMap<String, Known> {
    let text = std::fs::read_to_string(corpus_dir().join("known_failures.txt")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let (m, case, reason) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
            let (m, sometimes) = match m.strip_suffix('?') {
                Some(m) => (m, true),
                None => (m, false),
            };
            m.split(',')
                .any(|m| m == mode.name() || m == "all")
                .then(|| {
                    (
                        case.to_string(),
                        Known {
                            reason: reason.to_string(),
                            sometimes,
                        },
                    )
                })
        })
        .collect()
}

/// `case: operator,operator` lines of `spills.txt`.
fn expected_spills() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(corpus_dir().join("spills.txt")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (case, ops) = l.split_once(':').unwrap_or((l, ""));
            let ops = ops
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(String::from)
                .collect();
            (case.trim().to_string(), ops)
        })
        .collect()
}

/// Runs the whole corpus in `mode` and fails with every problem found.
fn run_mode(mode: Mode) {
    let cases = cases();
    assert!(
        std::env::var("CORPUS_FILTER").is_ok() || cases.len() >= 400,
        "the corpus has {} cases; it should have at least 400",
        cases.len()
    );
    let env = modes::Env::new(mode);
    let known = known_failures(mode);
    let spills = expected_spills();
    let mut failures = Vec::new();
    let mut report = String::new();
    let mut spilled_cases = BTreeMap::new();
    let started = Instant::now();
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    let mut retried = Vec::new();
    for case in &cases {
        let t = Instant::now();
        let mut outcome = env.run(&case.sql);
        let mut problem = check(case, &outcome, env.limit());
        // Under the tiny limits, whether a reservation is refused depends on what the other
        // partitions hold at that moment. A memory error (never a wrong answer) gets one more
        // run; a case that needed it is reported, and one that fails twice is a failure.
        if matches!(problem, Some((Problem::Failed, _)))
            && mode.constrained()
            && !known.contains_key(&case.name)
        {
            let first = problem.take().map(|(_, p)| p).unwrap_or_default();
            outcome = env.run(&case.sql);
            problem = check(case, &outcome, env.limit());
            if problem.is_none() {
                retried.push(format!(
                    "{} ({})",
                    case.name,
                    first.lines().next().unwrap_or("")
                ));
            }
        }
        let elapsed = t.elapsed();
        slowest.push((elapsed, case.name.clone()));
        if let Outcome::Rows {
            metrics,
            spilled_in,
            ..
        } = &outcome
        {
            let _ = writeln!(
                report,
                "{}\t{}\t{:.3}s\tpeak {}\tspilled {}\t{}",
                case.name,
                metrics.rows,
                elapsed.as_secs_f64(),
                metrics.peak_memory,
                metrics.spilled_bytes,
                spilled_in.iter().cloned().collect::<Vec<_>>().join(",")
            );
            if metrics.spilled_bytes > 0 {
                spilled_cases.insert(case.name.clone(), spilled_in.clone());
            }
        }
        match (problem, known.get(&case.name)) {
            // A case known to fail with an error must not start giving a wrong answer.
            (Some((Problem::Wrong, p)), Some(k)) if !k.reason.starts_with("wrong:") => failures
                .push(format!(
                    "[{}] {} ({}): a wrong answer, but known_failures.txt expects an error ({}): {p}",
                    mode.name(),
                    case.name,
                    case.line,
                    k.reason
                )),
            (Some((_, p)), None) => failures.push(format!(
                "[{}] {} ({}): {p}\n  {}",
                mode.name(),
                case.name,
                case.line,
                case.sql.replace('\n', " ")
            )),
            (None, Some(k)) if !k.sometimes => failures.push(format!(
                "[{}] {} ({}) passes but is listed in known_failures.txt ({}): remove it",
                mode.name(),
                case.name,
                case.file,
                k.reason
            )),
            _ => {}
        }
    }
    for name in known.keys() {
        if !cases.iter().any(|c| &c.name == name) && std::env::var("CORPUS_FILTER").is_err() {
            failures.push(format!(
                "known_failures.txt names {name}, which is not in the corpus"
            ));
        }
    }
    if mode == Mode::Partitioned && std::env::var("CORPUS_FILTER").is_err() {
        check_spills(&spills, &spilled_cases, &known, &mut failures);
    }
    failures.extend(env.finish());
    slowest.sort();
    let slow: Vec<String> = slowest
        .iter()
        .rev()
        .take(5)
        .map(|(d, n)| format!("{n} {:.2}s", d.as_secs_f64()))
        .collect();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::write(dir.join(format!("corpus-{}.tsv", mode.name())), &report);
    if !retried.is_empty() {
        eprintln!(
            "corpus [{}]: {} cases passed only when run again after a memory error: {}",
            mode.name(),
            retried.len(),
            retried.join("; ")
        );
    }
    eprintln!(
        "corpus [{}]: {} cases in {:.1}s, {} spilled; slowest: {}; report in {}",
        mode.name(),
        cases.len(),
        started.elapsed().as_secs_f64(),
        spilled_cases.len(),
        slow.join(", "),
        dir.join(format!("corpus-{}.tsv", mode.name())).display()
    );
    assert!(
        failures.is_empty(),
        "{} problems in mode {}:\n\n{}",
        failures.len(),
        mode.name(),
        failures.join("\n\n")
    );
}

/// What kind of problem a case has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// An answer that differs from DuckDB's (or success where an error was expected).
    Wrong,
    /// An error, or a tracked peak over the limit.
    Failed,
}

/// What is wrong with one outcome, if anything.
fn check(case: &Case, outcome: &Outcome, limit: u64) -> Option<(Problem, String)> {
    match (&case.expect, outcome) {
        (Expect::Error(want), Outcome::Error(got)) => (!want.is_match(got, None)).then(|| {
            (
                Problem::Failed,
                format!("failed with '{got}', expected an error matching '{want}'"),
            )
        }),
        (Expect::Error(want), Outcome::Rows { .. }) => Some((
            Problem::Wrong,
            format!("succeeded; expected an error matching '{want}'"),
        )),
        (Expect::Rows { .. }, Outcome::Error(got)) => {
            Some((Problem::Failed, format!("failed: {got}")))
        }
        (Expect::Rows { sorted, lines }, Outcome::Rows { rows, metrics, .. }) => {
            if let Err(e) = compare::rows(rows, lines, *sorted) {
                return Some((Problem::Wrong, e));
            }
            (metrics.peak_memory > limit).then(|| {
                (
                    Problem::Failed,
                    format!(
                        "tracked peak memory {} is over the limit {limit}",
                        metrics.peak_memory
                    ),
                )
            })
        }
    }
}

/// The expected error's text is a regular expression in the corpus; the cases use only
/// `(?i)` and plain words, so a case-insensitive substring test of each alternative is enough.
fn check_spills(
    expected: &BTreeMap<String, BTreeSet<String>>,
    seen: &BTreeMap<String, BTreeSet<String>>,
    known: &BTreeMap<String, Known>,
    failures: &mut Vec<String>,
) {
    if std::env::var("CORPUS_BLESS").is_ok() {
        let mut text = String::from(
            "# Cases that spill in the corpus' partitioned mode (4 MiB), with the operators that\n\
             # spilled. Written by CORPUS_BLESS=1 cargo test corpus; a listed case that stops\n\
             # spilling fails tests/corpus.\n",
        );
        for (case, ops) in seen {
            let _ = writeln!(
                text,
                "{case}: {}",
                ops.iter().cloned().collect::<Vec<_>>().join(",")
            );
        }
        std::fs::write(corpus_dir().join("spills.txt"), text).unwrap();
        return;
    }
    assert!(!expected.is_empty(), "tests/sql/spills.txt lists no case");
    for (case, ops) in expected {
        if known.contains_key(case) {
            continue;
        }
        match seen.get(case) {
            None => failures.push(format!(
                "[partitioned] {case} is listed in spills.txt but spilled nothing"
            )),
            Some(got) => {
                let missing: Vec<&String> = ops.difference(got).collect();
                if !missing.is_empty() {
                    failures.push(format!(
                        "[partitioned] {case} no longer spills in {missing:?} (spilled in {got:?})"
                    ));
                }
            }
        }
    }
    let new: Vec<&String> = seen.keys().filter(|c| !expected.contains_key(*c)).collect();
    if !new.is_empty() {
        eprintln!(
            "corpus: {} cases spill but are not in spills.txt (CORPUS_BLESS=1 adds them): {new:?}",
            new.len()
        );
    }
}

#[test]
fn corpus_in_memory() {
    run_mode(Mode::InMemory);
}

#[test]
fn corpus_partitioned_under_a_tiny_limit() {
    run_mode(Mode::Partitioned);
}

#[test]
fn corpus_one_partition() {
    run_mode(Mode::OnePartition);
}

#[test]
fn corpus_on_peers() {
    run_mode(Mode::Peers);
}
