//! The sessions the corpus runs under, and how one query runs and is rendered.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use arrow::array::Array;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::ExecutionPlan;
use spillframe::{QueryMetrics, Session};
use spillframe_engine::testing::LocalPeers;
use spillframe_spill::RemotePolicy;

/// The fixture tables of `fixtures/sql/data`.
const TABLES: [&str; 5] = ["fact", "dim", "wide", "small", "empty"];

/// The tiny limit of the partitioned mode.
pub(super) const TINY_LIMIT: u64 = 4 << 20;
/// The limit of the peer mode's driver.
pub(super) const PEER_LIMIT: u64 = 8 << 20;

/// A number from the environment (for trying other limits by hand), or `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A configuration the whole corpus runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// 1 GiB, four partitions: DataFusion's in-memory operators.
    InMemory,
    /// 4 MiB with forced partitioning: the out-of-core operators.
    Partitioned,
    /// One partition, 1 GiB.
    OnePartition,
    /// Tables cached and spread over three in-process peers; 8 MiB, forced partitioning.
    Peers,
}

impl Mode {
    /// The modes under a tiny memory limit.
    pub(super) fn constrained(self) -> bool {
        matches!(self, Mode::Partitioned | Mode::Peers)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Mode::InMemory => "in-memory",
            Mode::Partitioned => "partitioned",
            Mode::OnePartition => "one-partition",
            Mode::Peers => "peers",
        }
    }
}

/// What one query gave.
pub(super) enum Outcome {
    Rows {
        rows: Vec<Vec<String>>,
        metrics: QueryMetrics,
        /// The operators that spilled (plan node names), and the out-of-core operators that ran.
        spilled_in: BTreeSet<String>,
    },
    Error(String),
}

/// A session for a mode, with the fixture tables registered.
pub(super) struct Env {
    mode: Mode,
    session: Session,
    peers: Option<Arc<LocalPeers>>,
    /// Frames over the cached tables (peer mode): they hold the stored partitions.
    _cached: Vec<spillframe::LazyFrame>,
}

impl Env {
    pub(super) fn new(mode: Mode) -> Env {
        let base = || Session::builder().ignore_environment();
        let mut peers = None;
        let session = match mode {
            Mode::InMemory => base().memory_limit_bytes(1 << 30).target_partitions(4),
            Mode::Partitioned => base()
                .memory_limit_bytes(env_or("CORPUS_TINY_LIMIT", TINY_LIMIT))
                .target_partitions(env_or("CORPUS_TINY_PARTITIONS", 3) as usize)
                .force_partitioned(true),
            Mode::OnePartition => base().memory_limit_bytes(1 << 30).target_partitions(1),
            Mode::Peers => {
                let p = LocalPeers::new(3, RemotePolicy::Spread, 256 << 20, 64 << 20)
                    .expect("in-process peers");
                peers = Some(Arc::clone(&p));
                base()
                    .memory_limit_bytes(PEER_LIMIT)
                    .target_partitions(6)
                    .force_partitioned(true)
                    .remote(p)
            }
        }
        .build()
        .expect("session");
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sql/data");
        let mut cached = Vec::new();
        for t in TABLES {
            let path = data.join(format!("{t}.parquet"));
            let path = path.to_str().unwrap();
            if mode == Mode::Peers {
                let frame = session
                    .read_parquet(path)
                    .and_then(|f| f.cache())
                    .unwrap_or_else(|e| panic!("caching {t} on the peers: {e}"));
                session.register(t, &frame).unwrap();
                cached.push(frame);
            } else {
                session.register_path(t, path).unwrap();
            }
        }
        Env {
            mode,
            session,
            peers,
            _cached: cached,
        }
    }

    pub(super) fn limit(&self) -> u64 {
        self.session.memory_limit()
    }

    /// Runs one query.
    pub(super) fn run(&self, sql: &str) -> Outcome {
        let query = match self.session.sql(sql).query() {
            Ok(q) => q,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        match query.run() {
            Ok((batches, metrics)) => {
                let mut spilled_in = BTreeSet::new();
                walk(query.plan(), &mut spilled_in);
                Outcome::Rows {
                    rows: render(&batches),
                    metrics,
                    spilled_in,
                }
            }
            Err(e) => Outcome::Error(e.to_string()),
        }
    }

    /// Problems with the mode as a whole, once every case has run.
    pub(super) fn finish(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(p) = &self.peers {
            let s = p.stats();
            if s.puts == 0 || s.fragments_run == 0 {
                problems.push(format!(
                    "[{}] the peers were not used: {s:?}",
                    self.mode.name()
                ));
            }
        }
        problems
    }
}

/// Collects the out-of-core operators in a plan and every operator that spilled.
fn walk(plan: &Arc<dyn ExecutionPlan>, out: &mut BTreeSet<String>) {
    let name = plan.name();
    let spilled = plan
        .metrics()
        .is_some_and(|m| m.spilled_bytes().unwrap_or(0) > 0);
    if spilled
        || matches!(
            name,
            "PartitionedExec" | "ChunkedNestedLoopExec" | "GlobalMedianExec"
        )
    {
        out.insert(name.to_string());
    }
    for child in plan.children() {
        walk(child, out);
    }
}

/// Rows as sqllogictest values: `NULL`, `(empty)` for an empty string, Arrow's display
/// otherwise.
fn render(batches: &[arrow::array::RecordBatch]) -> Vec<Vec<String>> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter<'_>> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .zip(&fmts)
                    .map(|(c, f)| {
                        let v = f.value(r).to_string();
                        if v.is_empty() && !c.is_null(r) {
                            "(empty)".to_string()
                        } else {
                            v
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}
