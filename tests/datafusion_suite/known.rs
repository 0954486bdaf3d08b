//! The committed list of known differences from plain DataFusion, and the comparison with it.
//!
//! Each line is `modes file:line reason`. `modes` is `defaults`, `tiny`, `one-partition` or
//! `all`, several joined by commas, with `?` at the end for a record that fails in some runs
//! only (it may pass). The reason starts with its kind:
//! - `explain:` the plan text differs (spillframe's operators and settings show in it);
//! - `setting:` a setting whose default spillframe changes on purpose;
//! - `order:` the same rows in another order where the query does not promise one (or other
//!   rows where a LIMIT without ORDER BY lets it choose); these may pass;
//! - `memory:` an error for want of memory under the tiny limit (never a wrong answer);
//! - `checked:` spillframe's integer arithmetic fails on overflow where DataFusion wraps;
//! - `wrong:` a known wrong answer (the goal is none);
//! - `spillframe:` another known error, whose cause is spillframe's.
//!
//! Only `explain:`, `setting:`, `order:` and `wrong:` entries may give a different answer; any
//! other entry that does fails the run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::contexts::Mode;
use super::run::{ModeResults, Outcome};

/// One entry of the list.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    modes: BTreeSet<Mode>,
    flaky: bool,
    reason: String,
}

impl Entry {
    /// A `?` entry, or an `order:` one: rows in an order SQL does not promise come out in the
    /// suite's order in some runs.
    fn may_pass(&self) -> bool {
        self.flaky || self.reason.starts_with("order:")
    }
}

/// The list: entries by record.
#[derive(Debug, Default)]
pub(super) struct Known {
    entries: BTreeMap<String, Vec<Entry>>,
}

const SPILLFRAME_MODES: [Mode; 3] = [Mode::Defaults, Mode::Tiny, Mode::OnePartition];

impl Known {
    pub(super) fn read(path: &Path) -> Known {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut known = Known::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.splitn(3, ' ');
            let (Some(modes), Some(loc), Some(reason)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!(
                    "{}:{}: want `modes file:line reason`",
                    path.display(),
                    i + 1
                );
            };
            let (modes, flaky) = match modes.strip_suffix('?') {
                Some(m) => (m, true),
                None => (modes, false),
            };
            let modes = modes
                .split(',')
                .flat_map(|m| match m {
                    "all" => SPILLFRAME_MODES.to_vec(),
                    m => vec![
                        Mode::from_name(m)
                            .filter(|m| m.is_spillframe())
                            .unwrap_or_else(|| {
                                panic!("{}:{}: unknown mode {m}", path.display(), i + 1)
                            }),
                    ],
                })
                .collect();
            known
                .entries
                .entry(loc.to_string())
                .or_default()
                .push(Entry {
                    modes,
                    flaky,
                    reason: reason.trim().to_string(),
                });
        }
        known
    }

    fn get(&self, mode: Mode, loc: &str) -> Option<&Entry> {
        self.entries
            .get(loc)
            .and_then(|es| es.iter().find(|e| e.modes.contains(&mode)))
    }
}

/// Whether an entry's kind allows a different answer.
fn may_differ(reason: &str) -> bool {
    ["explain:", "setting:", "order:", "wrong:"]
        .iter()
        .any(|k| reason.starts_with(k))
}

/// The start of a failure's message; for a different answer, its diff (the SQL is shown
/// apart).
fn first_lines(s: &str) -> String {
    let from = s.find("[Diff]").unwrap_or(0);
    s[from..]
        .lines()
        .take(16)
        .collect::<Vec<_>>()
        .join("\n    ")
}

/// Calls `f` for every record of every mode that has a baseline, with whether the baseline
/// passed it and the record's entry in the list.
fn for_each_record<'a>(
    results: &'a BTreeMap<Mode, ModeResults>,
    known: &'a Known,
    mut f: impl FnMut(Mode, &'a str, &'a super::run::RecordId, &'a Outcome, bool, Option<&'a Entry>),
) {
    for (&mode, ours) in results {
        let Some(base) = mode.baseline().and_then(|b| results.get(&b)) else {
            continue;
        };
        for (loc, (id, outcome)) in ours {
            let base_passes = base.get(loc).is_some_and(|(_, o)| o.passed());
            f(mode, loc, id, outcome, base_passes, known.get(mode, loc));
        }
    }
}

/// Every problem: a record that passes in its mode's baseline and fails in the mode without an
/// entry; an entry whose record passes (unless marked `?`) or fails in the baseline too; an
/// error entry that gave a different answer. `full` checks entries whose file did not run.
pub(super) fn compare(
    results: &BTreeMap<Mode, ModeResults>,
    known: &Known,
    full: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for_each_record(
        results,
        known,
        |mode, loc, id, outcome, base_passes, entry| match (base_passes, outcome, entry) {
            (true, o, Some(e)) if o.passed() && !e.may_pass() => problems.push(format!(
                "[{}] {loc} passes now: remove it from the list ({})",
                mode.name(),
                e.reason
            )),
            (true, o, _) if o.passed() => {}
            (true, failed, None) => problems.push(format!(
                "[{}] {loc} passes on plain DataFusion and fails here:\n    {}\n    {}",
                mode.name(),
                id.sql.lines().next().unwrap_or(""),
                first_lines(&message(failed))
            )),
            (true, Outcome::Mismatch { message, .. }, Some(e)) if !may_differ(&e.reason) => {
                problems.push(format!(
                    "[{}] {loc} is listed as an error ({}) but gave a different answer:\n    {}",
                    mode.name(),
                    e.reason,
                    first_lines(message)
                ))
            }
            (true, failed, Some(e)) => {
                if std::env::var_os("DF_SUITE_SHOW").is_some() {
                    eprintln!(
                        "[{}] {loc} (listed: {}):\n    {}",
                        mode.name(),
                        e.reason,
                        first_lines(&message(failed))
                    );
                }
            }
            (false, _, Some(e)) if !e.may_pass() => problems.push(format!(
                "[{}] {loc} fails on plain DataFusion too: remove it from the list ({})",
                mode.name(),
                e.reason
            )),
            (false, _, _) => {}
        },
    );
    for (&mode, ours) in results {
        if mode.baseline().is_none() {
            continue;
        }
        if full {
            for (loc, es) in &known.entries {
                if es.iter().any(|e| e.modes.contains(&mode)) && !ours.contains_key(loc) {
                    problems.push(format!(
                        "[{}] {loc} is listed but is not a record of the suite",
                        mode.name()
                    ));
                }
            }
        }
    }
    problems
}

fn message(o: &Outcome) -> String {
    match o {
        Outcome::Pass | Outcome::OtherOrder | Outcome::OtherRows => String::new(),
        Outcome::Mismatch { message, .. } | Outcome::Error(message) => message.clone(),
    }
}

/// A reason for a new entry, guessed from the failure; `TODO` where it needs a look.
fn guess(sql: &str, outcome: &Outcome) -> String {
    let lower = sql.trim_start().to_lowercase();
    if lower.starts_with("explain") {
        return "explain: the plan shows spillframe's operators and settings".into();
    }
    if (lower.starts_with("show") || lower.contains("information_schema"))
        && matches!(outcome, Outcome::Mismatch { .. })
    {
        return "setting: TODO".into();
    }
    match outcome {
        Outcome::Error(m) if m.contains("Resources exhausted") || m.contains("memory") => format!(
            "memory: TODO {}",
            m.lines().nth(1).or(m.lines().next()).unwrap_or("").trim()
        ),
        o => format!("TODO {}", message(o).lines().next().unwrap_or("").trim()),
    }
}

/// Rewrites the list from `results`: existing reasons and `?` marks are kept (a `?` entry is
/// kept when it passed this time); new failures get a guessed reason.
pub(super) fn bless(path: &Path, results: &BTreeMap<Mode, ModeResults>, known: &Known) {
    // (loc, reason, flaky) -> modes
    let mut lines: BTreeMap<(String, String, bool), BTreeSet<Mode>> = BTreeMap::new();
    for_each_record(
        results,
        known,
        |mode, loc, id, outcome, base_passes, entry| {
            let keep = match (outcome, entry) {
                (o, Some(e)) if o.passed() => e.may_pass() && base_passes,
                (o, None) if o.passed() => false,
                _ => base_passes,
            };
            if keep {
                let (reason, flaky) = match entry {
                    Some(e) => (e.reason.clone(), e.flaky),
                    None => (guess(&id.sql, outcome), false),
                };
                lines
                    .entry((loc.to_string(), reason, flaky))
                    .or_default()
                    .insert(mode);
            }
        },
    );
    // Entries of modes or files that did not run are kept as they are.
    for (loc, es) in &known.entries {
        for e in es {
            for &m in &e.modes {
                if !results.get(&m).is_some_and(|r| r.contains_key(loc)) {
                    lines
                        .entry((loc.clone(), e.reason.clone(), e.flaky))
                        .or_default()
                        .insert(m);
                }
            }
        }
    }
    let header: String = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let mut out = header;
    let mut sorted: Vec<_> = lines.into_iter().collect();
    sorted.sort_by(|a, b| {
        natural(&a.0.0)
            .cmp(&natural(&b.0.0))
            .then(a.0.1.cmp(&b.0.1))
    });
    for ((loc, reason, flaky), modes) in sorted {
        let names = if modes.len() == SPILLFRAME_MODES.len() {
            "all".to_string()
        } else {
            modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(",")
        };
        out.push_str(&format!(
            "{names}{} {loc} {reason}\n",
            if flaky { "?" } else { "" }
        ));
    }
    std::fs::write(path, out).unwrap();
}

/// `file:line` ordered by file, then line as a number.
fn natural(loc: &str) -> (String, u64) {
    match loc.rsplit_once(':') {
        Some((f, l)) => (f.to_string(), l.parse().unwrap_or(0)),
        None => (loc.to_string(), 0),
    }
}
