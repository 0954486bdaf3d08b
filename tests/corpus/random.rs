//! Randomized differential queries: a small grammar over the corpus' tables generates
//! queries (filters, joins, grouped and holistic aggregates, windows, sorts with limits),
//! and each must give the same rows in memory as partitioned under the tiny limit.
//!
//! CI runs `CORPUS_RANDOM` queries (default 60) from the fixed seed `CORPUS_SEED` (default
//! 20261201). A longer run: `CORPUS_RANDOM=2000 CORPUS_SEED=$RANDOM cargo test --test
//! spillframe random_queries -- --nocapture`. A failure prints the seed, the query's number
//! and its SQL; shrink it by hand (drop clauses while it still fails) and add it to
//! `fixtures/sql/cases/` as a corpus case.
//!
//! Only wrong answers and errors other than refused memory fail the test: under 4 MiB some
//! generated queries run out of memory (see `tests/sql/known_failures.txt` for the kinds),
//! and those are counted and reported.

use super::compare;
use super::modes::{Env, Mode, Outcome};

/// xorshift64*, so the queries of a seed never change with a dependency's version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const PREDICATES: [&str; 10] = [
    "f.q > {n}",
    "f.q < -{n}",
    "f.g = {g}",
    "f.g < {g}",
    "f.v > 100",
    "f.s IS NULL",
    "f.flag",
    "f.k = 0",
    "f.k BETWEEN 1 AND {n}0",
    "f.amount > 50000",
];
const KEYS: [&str; 6] = [
    "f.g",
    "f.s",
    "f.flag",
    "f.k % 100",
    "f.g, f.flag",
    "f.q % 7",
];
const AGGS: [&str; 10] = [
    "count(*)",
    "sum(f.q)",
    "min(f.v)",
    "max(f.id)",
    "avg(f.q)",
    "sum(f.amount)",
    "median(f.v)",
    "stddev(f.v)",
    "count(f.s)",
    "max(f.d)",
];
const WINDOWS: [&str; 6] = [
    "row_number() OVER (PARTITION BY {key} ORDER BY f.id)",
    "sum(f.q) OVER (PARTITION BY {key} ORDER BY f.id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)",
    "rank() OVER (PARTITION BY {key} ORDER BY f.q NULLS LAST)",
    "lag(f.q) OVER (PARTITION BY {key} ORDER BY f.id)",
    "count(*) OVER (PARTITION BY {key})",
    "max(f.v) OVER (PARTITION BY {key})",
];

fn fill(template: &str, rng: &mut Rng) -> String {
    template
        .replace("{n}", &(rng.below(900) + 1).to_string())
        .replace("{g}", &rng.below(50).to_string())
}

fn predicate(rng: &mut Rng) -> String {
    let mut p = fill(rng.pick(&PREDICATES), rng);
    if rng.chance(30) {
        let join = if rng.chance(50) { "AND" } else { "OR" };
        p = format!("({p} {join} {})", fill(rng.pick(&PREDICATES), rng));
    }
    if rng.chance(10) {
        p = format!("NOT {p}");
    }
    p
}

/// The FROM clause: the fact table alone or joined with the dimension table.
fn source(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 | 1 => "fact f".to_string(),
        2 => format!(
            "fact f {} JOIN dim d ON f.k = d.k",
            rng.pick(&["", "LEFT", "RIGHT", "FULL"])
        ),
        _ => "fact f JOIN (SELECT k, count(*) AS n FROM dim GROUP BY k) d ON f.k = d.k".to_string(),
    }
}

fn query(rng: &mut Rng) -> String {
    let from = source(rng);
    let filter = if rng.chance(70) {
        format!(" WHERE {}", predicate(rng))
    } else {
        String::new()
    };
    match rng.below(3) {
        // Grouped aggregates.
        0 | 1 => {
            let key = rng.pick(&KEYS);
            let mut aggs: Vec<&str> = (0..rng.below(3) + 1).map(|_| rng.pick(&AGGS)).collect();
            aggs.sort_unstable();
            aggs.dedup();
            let having = if rng.chance(20) {
                " HAVING count(*) > 10"
            } else {
                ""
            };
            format!(
                "SELECT {key}, {} FROM {from}{filter} GROUP BY {key}{having}",
                aggs.join(", ")
            )
        }
        // A window, summarised per group so the answer stays small. Over the fact table
        // alone: its id is unique, so every window's order is total.
        _ => {
            let from = "fact f";
            let key = rng.pick(&KEYS);
            let w = rng.pick(&WINDOWS).replace("{key}", key);
            let limit = if rng.chance(30) {
                " ORDER BY t.g LIMIT 20"
            } else {
                ""
            };
            format!(
                "SELECT t.g, count(*), sum(CAST(t.w AS DOUBLE)), min(t.w), max(t.w) FROM \
                 (SELECT f.g AS g, {w} AS w FROM {from}{filter}) t GROUP BY t.g{limit}"
            )
        }
    }
}

fn memory_error(text: &str) -> bool {
    text.contains("Resources exhausted")
        || text.contains("Not enough memory")
        || text.contains("tracked peak")
}

#[test]
fn random_queries_agree_in_memory_and_partitioned() {
    let seed: u64 = std::env::var("CORPUS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261201);
    let count: usize = std::env::var("CORPUS_RANDOM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let reference = Env::new(Mode::OnePartition);
    let tight = Env::new(Mode::Partitioned);
    let mut rng = Rng(seed.max(1));
    let mut failures = Vec::new();
    let mut refused = 0;
    for i in 0..count {
        let sql = query(&mut rng);
        let expected = match reference.run(&sql) {
            Outcome::Rows { rows, .. } => rows,
            Outcome::Error(e) => {
                failures.push(format!("#{i}: fails in memory: {e}\n  {sql}"));
                continue;
            }
        };
        let lines: Vec<String> = expected.iter().map(|r| r.join(" ")).collect();
        let mut outcome = tight.run(&sql);
        if matches!(&outcome, Outcome::Error(e) if memory_error(e)) {
            outcome = tight.run(&sql);
        }
        match outcome {
            Outcome::Rows { rows, .. } => {
                // The only ORDER BY is on the (unique) group key before a LIMIT: compare
                // as multisets.
                if let Err(e) = compare::rows(&rows, &lines, true) {
                    failures.push(format!("#{i}: {e}\n  {sql}"));
                }
            }
            Outcome::Error(e) if memory_error(&e) => refused += 1,
            Outcome::Error(e) => failures.push(format!("#{i}: fails partitioned: {e}\n  {sql}")),
        }
    }
    eprintln!(
        "random queries: {count} from seed {seed}, {refused} refused memory under the tiny limit, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {count} random queries differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
