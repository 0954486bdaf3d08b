//! The sessions DataFusion's suite runs under: DataFusion's own test context (the baseline) and
//! spillframe's session in each mode, with the same tables and functions.

use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_sqllogictest::TestContext;
use spillframe::Session;
use std::path::Path;

/// The tiny limit of the constrained modes.
pub(super) const TINY_LIMIT: u64 = 4 << 20;
/// The suite pins four partitions so that its plans are deterministic.
pub(super) const SUITE_PARTITIONS: usize = 4;

/// A configuration a file runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Mode {
    /// DataFusion's own test context, four partitions: the baseline of the four-partition
    /// modes.
    Plain,
    /// DataFusion's own test context at one partition: the baseline of `OnePartition`.
    PlainOnePartition,
    /// DataFusion alone under the tiny limit (for the pass counts in docs/benchmarks.md; not a
    /// baseline).
    PlainTiny,
    /// spillframe's defaults (four partitions, like the suite).
    Defaults,
    /// spillframe under 4 MiB with forced partitioning.
    Tiny,
    /// spillframe on one partition.
    OnePartition,
}

impl Mode {
    /// Every mode, in the order they run.
    pub(super) const ALL: [Mode; 6] = [
        Mode::Plain,
        Mode::PlainOnePartition,
        Mode::PlainTiny,
        Mode::Defaults,
        Mode::Tiny,
        Mode::OnePartition,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::PlainOnePartition => "plain-one-partition",
            Mode::PlainTiny => "plain-tiny",
            Mode::Defaults => "defaults",
            Mode::Tiny => "tiny",
            Mode::OnePartition => "one-partition",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The plain DataFusion mode whose passing records this mode must pass too.
    pub(super) fn baseline(self) -> Option<Mode> {
        match self {
            Mode::Defaults | Mode::Tiny => Some(Mode::Plain),
            Mode::OnePartition => Some(Mode::PlainOnePartition),
            _ => None,
        }
    }

    /// Whether this is one of spillframe's modes.
    pub(super) fn is_spillframe(self) -> bool {
        self.baseline().is_some()
    }
}

/// A context for one file in one mode. `session` keeps spillframe's session (its spill
/// directory, governor and store) alive while the context runs.
pub(super) struct FileContext {
    pub(super) ctx: SessionContext,
    _session: Option<Session>,
}

/// DataFusion's test context for `relative` (tables and functions that file needs), rebuilt
/// over a memory-limited runtime or moved onto spillframe's session as `mode` asks. `None` if
/// DataFusion's harness skips the file.
pub(super) async fn for_file(relative: &Path, mode: Mode) -> Option<FileContext> {
    let theirs = TestContext::try_new_for_test_file(relative).await?;
    let theirs = theirs.session_ctx().clone();
    let (ctx, session) = match mode {
        Mode::Plain => return Some(plain(theirs)),
        Mode::PlainOnePartition => (plain_context(1, None), None),
        Mode::PlainTiny => (plain_context(SUITE_PARTITIONS, Some(TINY_LIMIT)), None),
        Mode::Defaults | Mode::Tiny | Mode::OnePartition => {
            let base = Session::builder().ignore_environment();
            let session = match mode {
                Mode::Defaults => base.target_partitions(SUITE_PARTITIONS),
                Mode::Tiny => base
                    .target_partitions(SUITE_PARTITIONS)
                    .memory_limit_bytes(TINY_LIMIT)
                    .force_partitioned(true),
                _ => base.target_partitions(1),
            }
            .build()
            .expect("a spillframe session");
            (session.context().clone(), Some(session))
        }
    };
    // dynamic_file.slt registers nothing; its catalogs answer through DataFusion's own context
    // (file names as tables), so the session gets that feature instead.
    let ctx = if relative
        .file_name()
        .is_some_and(|n| n == "dynamic_file.slt")
    {
        ctx.enable_url_table()
    } else {
        copy_setup(&theirs, &ctx);
        ctx
    };
    Some(FileContext {
        ctx,
        _session: session,
    })
}

fn plain(ctx: SessionContext) -> FileContext {
    FileContext {
        ctx,
        _session: None,
    }
}

/// A context configured like DataFusion's test context, with `partitions` and an optional
/// memory limit.
fn plain_context(partitions: usize, limit: Option<u64>) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(partitions);
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = limit {
        runtime = runtime.with_memory_limit(limit as usize, 1.0);
    }
    let runtime = runtime.build_arc().expect("a runtime");
    SessionContext::new_with_config_rt(config, runtime)
}

/// Gives `ours` the catalogs (so the registered tables) and the functions of DataFusion's
/// test context `theirs`. A function `ours` already has (spillframe's own) is kept.
fn copy_setup(theirs: &SessionContext, ours: &SessionContext) {
    for name in theirs.catalog_names() {
        if let Some(catalog) = theirs.catalog(&name) {
            ours.register_catalog(name, catalog);
        }
    }
    let state = theirs.state();
    let have = ours.state();
    for (name, f) in state.scalar_functions() {
        if !have.scalar_functions().contains_key(name) {
            ours.register_udf(f.as_ref().clone());
        }
    }
    for (name, f) in state.aggregate_functions() {
        if !have.aggregate_functions().contains_key(name) {
            ours.register_udaf(f.as_ref().clone());
        }
    }
    for (name, f) in state.window_functions() {
        if !have.window_functions().contains_key(name) {
            ours.register_udwf(f.as_ref().clone());
        }
    }
}
