//! [`Session`]: the entry point. It owns the DataFusion context, the memory governor, the spill
//! directory and the runtime that executes queries.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use spillframe_spill::{
    Compression, DataFusionSpillFiles, DiskBudget, MachineMemory, MemoryGovernor, MemoryLimit,
    PartitionStore, RemoteTier, SpillDir, StoreConfig,
};

use crate::config::{DEFAULT_BATCH_SIZE, Settings};
use crate::error::{Error, Result};
use crate::frame::LazyFrame;
use crate::jobs::FunctionRegistry;
use crate::jobs::handle::JobTable;
use crate::jobs::pool::WorkerPool;
use crate::partitioned::OutOfCoreContext;
use crate::partitioned::rule::OutOfCoreRule;
use crate::source::{self, CsvOptions, FileFormat};
use crate::stored::{StoredPartitions, StoredTable};
use crate::table::Table;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;

/// The most partitions a session may split work into: each gets a runtime worker thread.
pub const MAX_TARGET_PARTITIONS: usize = 1024;

/// A spillframe session: where data is read, planned and executed under one memory limit.
///
/// `Session` is cheap to clone; clones share everything. The spill directory is removed when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    ctx: SessionContext,
    store: PartitionStore,
    governor: MemoryGovernor,
    config: SessionSettings,
    runtime: Option<tokio::runtime::Runtime>,
    jobs: JobTable,
    pool: WorkerPool,
    functions: FunctionRegistry,
    // Declared last: dropped after the context, whose disk manager writes inside it.
    spill_dir: SpillDir,
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Never blocks, so dropping a session inside an async context is fine.
            rt.shutdown_background();
        }
    }
}

/// The settings a session runs with, after every layer and default has been applied.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    /// Memory limit in bytes.
    pub memory_limit: u64,
    /// Where the limit came from, for messages ("2 GiB", "50% of memory").
    pub memory_limit_source: MemoryLimit,
    /// Base directory under which the session's spill directory lives.
    pub spill_base: PathBuf,
    /// Partitions work is split into.
    pub target_partitions: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// Cap on spill bytes, if any.
    pub max_spill: Option<u64>,
    /// Compression of spillframe's own spill files.
    pub spill_compression: Compression,
    /// Run joins, holistic aggregates and partitioned windows partitioned even when they
    /// would fit in memory (for tests and benchmarks).
    pub force_partitioned: bool,
    /// Threads of the worker pool that runs user functions.
    pub job_threads: usize,
    /// The cluster file, when the session uses peers.
    pub cluster: Option<PathBuf>,
}

/// Builds a [`Session`]. Values set here take precedence over environment variables and the
/// config file (see [`crate::config`]).
#[derive(Debug, Clone, Default)]
pub struct SessionBuilder {
    settings: Settings,
    ignore_environment: bool,
    force_partitioned: bool,
    remote: Option<Arc<dyn RemoteTier>>,
    functions: FunctionRegistry,
}

impl SessionBuilder {
    /// Uses `registry` as the session's named functions (it is shared, not copied: functions
    /// registered through either handle later are seen by both). A peer started with
    /// `spillframe::peer::serve` runs the functions of the registry it was given.
    pub fn functions(mut self, registry: FunctionRegistry) -> Self {
        self.functions = registry;
        self
    }

    /// Uses the peers of the cluster described by `path` (a `cluster.toml`), through the
    /// installed [cluster connector](crate::remote::ClusterConnector).
    pub fn cluster(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.cluster = Some(path.into());
        self
    }

    /// Places partitions on `remote` (a cluster already connected, or a test double); takes
    /// precedence over any configured cluster file.
    pub fn remote(mut self, remote: Arc<dyn RemoteTier>) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Sets the memory limit: bytes or a fraction of memory.
    pub fn memory_limit(mut self, limit: MemoryLimit) -> Self {
        self.settings.memory_limit = Some(limit);
        self
    }

    /// Sets the memory limit in bytes.
    pub fn memory_limit_bytes(self, bytes: u64) -> Self {
        self.memory_limit(MemoryLimit::Bytes(bytes))
    }

    /// Sets the memory limit as a fraction in (0, 1] of the machine's usable memory.
    pub fn memory_fraction(self, fraction: f64) -> Self {
        self.memory_limit(MemoryLimit::Fraction(fraction))
    }

    /// Sets the base directory for spill files.
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.settings.spill_dir = Some(dir.into());
        self
    }

    /// Sets the number of partitions work is split into.
    pub fn target_partitions(mut self, n: usize) -> Self {
        self.settings.target_partitions = Some(n);
        self
    }

    /// Sets the number of rows per batch.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.settings.batch_size = Some(n);
        self
    }

    /// Caps the bytes of spill files the session may hold; passing it fails the query with
    /// a clear error (the session stays usable).
    pub fn max_spill(mut self, bytes: u64) -> Self {
        self.settings.max_spill = Some(bytes);
        self
    }

    /// Sets the compression of spillframe's spill files.
    pub fn spill_compression(mut self, compression: Compression) -> Self {
        self.settings.spill_compression = Some(compression);
        self
    }

    /// Runs hash joins, holistic aggregates and partitioned windows through partitioned
    /// execution even when estimates say they fit in memory.
    pub fn force_partitioned(mut self, on: bool) -> Self {
        self.force_partitioned = on;
        self
    }

    /// Sets the threads of the worker pool that runs user functions (jobs).
    pub fn job_threads(mut self, n: usize) -> Self {
        self.settings.job_threads = Some(n);
        self
    }

    /// Applies every setting present in `settings` (e.g. from a file of the caller's choosing).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings.or(self.settings);
        self
    }

    /// Ignores environment variables and config files: only the builder and defaults apply.
    pub fn ignore_environment(mut self) -> Self {
        self.ignore_environment = true;
        self
    }

    /// Resolves the settings without starting anything.
    pub fn resolve(&self) -> Result<SessionSettings> {
        self.resolve_layered(self.layered()?)
    }

    /// The builder's settings over the environment's and the config file's (unless ignored).
    fn layered(&self) -> Result<Settings> {
        Ok(if self.ignore_environment {
            self.settings.clone()
        } else {
            self.settings
                .clone()
                .or(Settings::from_environment_and_file()?)
        })
    }

    fn resolve_layered(&self, layered: Settings) -> Result<SessionSettings> {
        let builder = "the session builder or a command-line flag";
        let memory_limit_source = layered.memory_limit.unwrap_or_default();
        if let MemoryLimit::Fraction(f) = memory_limit_source
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(Error::Setting {
                setting: "memory_limit".into(),
                value: f.to_string(),
                origin: builder.into(),
                reason: "a fraction of memory must be in (0, 1]".into(),
            });
        }
        let memory_limit = match memory_limit_source {
            MemoryLimit::Bytes(0) => {
                return Err(Error::Setting {
                    setting: "memory_limit".into(),
                    value: "0".into(),
                    origin: builder.into(),
                    reason: "the limit must be greater than zero".into(),
                });
            }
            MemoryLimit::Bytes(b) => {
                let machine = MachineMemory::detect()?;
                if b > machine.physical {
                    return Err(Error::Setting {
                        setting: "memory_limit".into(),
                        value: bytesize::ByteSize(b).to_string(),
                        origin: builder.into(),
                        reason: format!(
                            "it is more than this machine's {} of memory, so spilling would \
                             start only after the system ran out; give a smaller size or a \
                             fraction such as 50%",
                            bytesize::ByteSize(machine.physical)
                        ),
                    });
                }
                if b > machine.usable() {
                    tracing::warn!(
                        "memory_limit {} is more than the {} this process may use (cgroup \
                         limit); the system may kill it before it spills",
                        bytesize::ByteSize(b),
                        bytesize::ByteSize(machine.usable())
                    );
                }
                b
            }
            fraction => fraction.resolve(MachineMemory::detect()?.usable()),
        };
        let count = |name: &str, v: Option<usize>, default: usize| -> Result<usize> {
            match v {
                Some(0) => Err(Error::Setting {
                    setting: name.into(),
                    value: "0".into(),
                    origin: builder.into(),
                    reason: "expected a whole number greater than zero".into(),
                }),
                Some(n) => Ok(n),
                None => Ok(default),
            }
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(n) = layered.target_partitions
            && n > MAX_TARGET_PARTITIONS
        {
            return Err(Error::Setting {
                setting: "target_partitions".into(),
                value: n.to_string(),
                origin: builder.into(),
                reason: format!(
                    "at most {MAX_TARGET_PARTITIONS} partitions are allowed (this machine has \
                     {cores} cores; the default is one partition per core)"
                ),
            });
        }
        Ok(SessionSettings {
            memory_limit,
            memory_limit_source,
            spill_base: layered
                .spill_dir
                .unwrap_or_else(|| std::env::temp_dir().join("spillframe")),
            target_partitions: count("target_partitions", layered.target_partitions, cores)?,
            batch_size: count("batch_size", layered.batch_size, DEFAULT_BATCH_SIZE)?,
            max_spill: layered.max_spill,
            spill_compression: layered.spill_compression.unwrap_or_default(),
            force_partitioned: self.force_partitioned,
            job_threads: count("job_threads", layered.job_threads, cores)?,
            cluster: layered.cluster,
        })
    }

    /// Starts the session: sweeps stale spill directories, creates this session's own, and
    /// builds the DataFusion runtime under the memory limit.
    pub fn build(self) -> Result<Session> {
        let layered = self.layered()?;
        let partitions_set = layered.target_partitions.is_some();
        let mut config = self.resolve_layered(layered)?;
        let remote = match (&self.remote, &config.cluster) {
            (Some(r), _) => Some(Arc::clone(r)),
            (None, None) => None,
            (None, Some(path)) => {
                let setting = |reason: String| Error::Setting {
                    setting: "cluster".into(),
                    value: path.display().to_string(),
                    origin: "the session builder, SPILLFRAME_CLUSTER or the config file".into(),
                    reason,
                };
                let connector = crate::remote::connector().ok_or_else(|| {
                    setting(
                        "this program has no cluster support installed; call \
                         spillframe::enable_cluster() once at start (the spillframe command does)"
                            .into(),
                    )
                })?;
                Some(connector.connect(path).map_err(setting)?)
            }
        };
        // On a cluster, work is split into at least two partitions per peer (unless set), so
        // that spread partitions reach every peer.
        if let Some(r) = &remote
            && !partitions_set
        {
            config.target_partitions = config.target_partitions.max(2 * r.locations());
        }
        let governor = MemoryGovernor::new(config.memory_limit);
        let (spill_dir, _swept) = SpillDir::create(&config.spill_base)?;

        // An external sort's merge takes as many spill files as the pool allows, leaving
        // nothing for the operators after it (a Parquet writer, say). A fan-in bounded by
        // each partition's share (about 4 MiB per merged file; with 2 MiB, a full-width sort
        // of 2e6 h2o rows to Parquet failed at 16 MiB) keeps room for them; more files are
        // merged in several passes.
        let per_partition = config.memory_limit / config.target_partitions.max(1) as u64;
        let fan_in = (per_partition / (4 << 20)).clamp(2, 64) as usize;
        // One cap over both DataFusion's spill files and the partition store's: DataFusion
        // creates its files through the spill layer, which charges them to the same budget
        // (DataFusion's own cap, `max_temp_directory_size`, stays unlimited).
        let disk_budget = Arc::new(DiskBudget::new(config.max_spill));
        let disk = DiskManagerBuilder::default()
            .with_temp_file_factory(Arc::new(DataFusionSpillFiles::new(
                spill_dir.path(),
                Arc::clone(&disk_budget),
            )))
            .with_max_spill_merge_fan_in(fan_in)
            .with_max_temp_directory_size(u64::MAX);
        let runtime_env = RuntimeEnvBuilder::new()
            .with_memory_pool(governor.pool())
            .with_disk_manager_builder(disk)
            .build_arc()?;
        let store = PartitionStore::new(
            StoreConfig {
                dir: spill_dir.path().to_path_buf(),
                // The store may fill a third of the limit (the pool's fair share may grant
                // less); the rest is for the operators that process what it holds.
                memory_budget: config.memory_limit / 3,
                compression: config.spill_compression,
                remote: remote.clone(),
            },
            &governor.pool(),
            disk_budget,
        );
        // Before the pool refuses an operator, it evicts the store's partitions to disk: they
        // are the cheapest memory to give back.
        let (store_consumer, reclaim) = store.reclaimer();
        governor.set_reclaim(store_consumer, reclaim);
        let out_of_core = Arc::new(OutOfCoreContext {
            store: store.clone(),
            memory_limit: config.memory_limit,
            batch_size: config.batch_size,
            target_partitions: config.target_partitions,
            force: config.force_partitioned,
            sharers: 1,
        });
        let mut session_config = SessionConfig::new()
            .with_target_partitions(config.target_partitions)
            .with_batch_size(config.batch_size)
            .with_information_schema(true);
        // DataFusion's own spill files (sorts, aggregates, repartitions) follow the same
        // `spill_compression` as the partition store's.
        session_config.options_mut().execution.spill_compression = match config.spill_compression {
            Compression::None => datafusion::common::config::SpillCompression::Uncompressed,
            Compression::Lz4 => datafusion::common::config::SpillCompression::Lz4Frame,
            Compression::Zstd => datafusion::common::config::SpillCompression::Zstd,
        };
        // A sort reserves memory up front for merging what it holds when it spills (10 MiB per
        // partition by default). Under small limits that reservation alone would exhaust the
        // pool, so it is kept to a third of each partition's share. Under large limits 10 MiB
        // is too little: the merge's need grows with the data the sort buffers (at 1e8 rows
        // under 2 GiB, a sort holding 1.98 GB needed more than 71 MB and failed), so it is at
        // least a sixteenth of each partition's part of the limit.
        let parts = config.target_partitions.max(1) as u64;
        let share = config.memory_limit / (parts * 3);
        let proportional = config.memory_limit / (parts * 16);
        session_config
            .options_mut()
            .execution
            .sort_spill_reservation_bytes =
            share.clamp(64 << 10, 10 << 20).max(proportional) as usize;
        // The Parquet writer holds a whole row group in memory (and cannot spill it), so row
        // groups shrink with the limit: about 256 bytes a row in a quarter of a share.
        session_config
            .options_mut()
            .execution
            .parquet
            .max_row_group_size = (share / 256).clamp(16 << 10, 1 << 20) as usize;
        // The parallel Parquet writer buffers several row groups' encoders at once; under
        // small limits (a partition's share under 32 MiB) it writes one at a time. At 16 MiB,
        // with 64K-row groups and parallel writing, a partitioned window's output failed about
        // one run in six for want of 0.5 MB for the writer.
        if share < 32 << 20 {
            session_config
                .options_mut()
                .execution
                .parquet
                .allow_single_file_parallelism = false;
        }
        // A repartition that cannot reserve memory for a batch writes it to a spill pool. In
        // DataFusion 55.2, two inputs spilling into one output at once leave two open files,
        // and the reader waits on the older one for a batch that is in the newer: the query
        // stops for ever at 0% CPU (apache/datafusion#24883, fixed in #24891, which no
        // release has yet). A grouped aggregation over 400,000 rows under 1 MiB did so
        // (compat's out-of-core test). Closing each spill file after one batch leaves no file
        // open without its batch, so the reader always has one to read or a file to skip.
        // Only the repartition spill pool uses this setting.
        session_config
            .options_mut()
            .execution
            .max_spill_file_size_bytes =
            datafusion::common::config::ConfigNonZeroUsize::try_new(1)?;
        let mut rules = physical_rules(out_of_core);
        if remote.is_some() {
            // A stored partition is rebuilt by running its plan partition again, which only
            // gives the same rows if no round-robin repartition decided where rows went.
            session_config
                .options_mut()
                .optimizer
                .enable_round_robin_repartition = false;
            rules.push(Arc::new(crate::remote::fragment::FragmentRule));
        }
        // Integer + - * and `sum` fail on overflow (`checked`): an analyzer rule placed before
        // DataFusion's own (type coercion among them). Its functions are registered so that
        // plans naming them also decode on peers.
        let checked = Arc::new(crate::checked::CheckedArithmetic::new());
        let mut analyzer_rules = datafusion::optimizer::Analyzer::new().rules;
        analyzer_rules.insert(0, Arc::clone(&checked) as _);
        let mut state = SessionStateBuilder::new()
            .with_config(session_config)
            .with_runtime_env(runtime_env)
            .with_default_features()
            .with_analyzer_rules(analyzer_rules)
            .with_physical_optimizer_rules(rules)
            .build();
        {
            use datafusion::execution::FunctionRegistry as _;
            for f in checked.functions() {
                state.register_udf(Arc::clone(f))?;
            }
            state.register_udaf(Arc::clone(checked.aggregate()))?;
        }
        let ctx = SessionContext::new_with_state(state);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.target_partitions.max(1))
            .thread_name("spillframe-worker")
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime(e.to_string()))?;

        tracing::debug!(
            memory_limit = config.memory_limit,
            target_partitions = config.target_partitions,
            spill_dir = %spill_dir.path().display(),
            "session started"
        );
        let job_threads = config.job_threads;
        Ok(Session {
            inner: Arc::new(SessionInner {
                ctx,
                store,
                governor,
                config,
                runtime: Some(runtime),
                jobs: JobTable::default(),
                pool: WorkerPool::new(job_threads),
                functions: self.functions.clone(),
                spill_dir,
            }),
        })
    }
}

/// DataFusion's runtime settings that spillframe owns, and the session setting for each.
const OWNED_RUNTIME_SETTINGS: [(&str, &str); 3] = [
    ("datafusion.runtime.memory_limit", "memory_limit"),
    ("datafusion.runtime.temp_directory", "spill_dir"),
    ("datafusion.runtime.max_temp_directory_size", "max_spill"),
];

/// The error for a `SET` of a runtime setting spillframe owns, if `query` has one.
fn refused_set(query: &str) -> Option<Error> {
    // Every query passes here: only one that names a runtime setting is parsed a second time.
    if !query.to_ascii_lowercase().contains("datafusion.runtime.") {
        return None;
    }
    let statements = datafusion::sql::parser::DFParser::parse_sql(query).ok()?;
    statements.iter().find_map(|statement| {
        let text = statement.to_string();
        let rest = text
            .strip_prefix("SET ")
            .or_else(|| text.strip_prefix("set "))?;
        let (name, value) = rest
            .split_once(" = ")
            .or_else(|| rest.split_once(" TO "))
            .unwrap_or((rest, ""));
        let name = name.trim().to_ascii_lowercase();
        let (_, ours) = OWNED_RUNTIME_SETTINGS.iter().find(|(n, _)| *n == name)?;
        Some(Error::Setting {
            setting: name.clone(),
            value: value.trim().trim_matches('\'').to_string(),
            origin: "a SQL SET statement".into(),
            reason: format!(
                "spillframe's memory governor and spill directory own this; set `{ours}` when \
                 the session starts (the builder, the config file or the command line)"
            ),
        })
    })
}

/// DataFusion's physical optimizer rules with spillframe's out-of-core rule placed after join
/// selection (build sides are chosen) and before distribution and sort enforcement.
fn physical_rules(ctx: Arc<OutOfCoreContext>) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(OutOfCoreRule::new(ctx)));
    rules
}

impl Session {
    /// A builder; see [`SessionBuilder`].
    pub fn builder() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// A session with settings from the environment, the config file and defaults.
    pub fn new() -> Result<Session> {
        Session::builder().build()
    }

    /// The settings in effect.
    pub fn settings(&self) -> &SessionSettings {
        &self.inner.config
    }

    /// The memory limit in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.inner.config.memory_limit
    }

    /// This session's own spill directory (removed when the session is dropped).
    pub fn spill_dir(&self) -> &Path {
        self.inner.spill_dir.path()
    }

    /// Spill files present right now, for inspection and tests.
    pub fn spill_files(&self) -> Vec<PathBuf> {
        self.inner.spill_dir.files()
    }

    /// The partition store (cached frames, buckets of partitioned operators).
    pub fn store(&self) -> &PartitionStore {
        &self.inner.store
    }

    /// The memory governor (memory limit, reserved and peak bytes).
    pub fn governor(&self) -> &MemoryGovernor {
        &self.inner.governor
    }

    /// The underlying DataFusion context, for what spillframe does not wrap.
    pub fn context(&self) -> &SessionContext {
        &self.inner.ctx
    }

    /// Runs a future on the session's runtime and waits for it.
    ///
    /// Works from plain threads and from inside another async runtime (the future then runs on
    /// a helper thread, so nothing panics), but async callers should prefer the `_async`
    /// methods.
    pub(crate) fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(rt) = self.inner.runtime.as_ref() else {
            unreachable!("the runtime is only taken when the session is dropped")
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| rt.block_on(fut))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        } else {
            rt.block_on(fut)
        }
    }

    /// Starts a future on the session's runtime without waiting for it.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(rt) = self.inner.runtime.as_ref() else {
            unreachable!("the runtime is only taken when the session is dropped")
        };
        drop(rt.spawn(fut));
    }

    /// The session's jobs, by id.
    pub(crate) fn job_table(&self) -> &JobTable {
        &self.inner.jobs
    }

    /// The worker pool that runs user functions.
    pub(crate) fn worker_pool(&self) -> &WorkerPool {
        &self.inner.pool
    }

    /// The session's registry of named functions (see [`crate::jobs::registry`]).
    pub fn functions(&self) -> &FunctionRegistry {
        &self.inner.functions
    }

    /// Runs SQL. Tables are those registered with [`register`](Self::register) and friends.
    ///
    /// `SET datafusion.runtime.memory_limit`, `temp_directory` and `max_temp_directory_size`
    /// are refused ([`Error::Setting`]): DataFusion would replace spillframe's memory governor
    /// or spill directory with its own, so the session's `memory_limit`, `spill_dir` and
    /// `max_spill` are set when it is built instead.
    pub fn sql(&self, query: &str) -> LazyFrame {
        if let Some(e) = refused_set(query) {
            return LazyFrame::from_result(self.clone(), Err(e), Vec::new());
        }
        let ctx = self.inner.ctx.clone();
        let q = query.to_string();
        let df = self.block_on(async move { ctx.sql(&q).await });
        LazyFrame::from_result(self.clone(), df.map_err(Error::from), Vec::new())
    }

    /// Registers a frame as a table for SQL.
    pub fn register(&self, name: &str, frame: &LazyFrame) -> Result<()> {
        let df = frame.datafusion_frame()?;
        self.inner
            .ctx
            .register_table(name, df.into_view())
            .map_err(Error::from)?;
        Ok(())
    }

    /// Registers a file, directory or glob as a table, with the format taken from the
    /// extension (`.parquet`, `.csv`, `.json`/`.ndjson`, `.arrow`/`.ipc`/`.feather`).
    pub fn register_path(&self, name: &str, path: &str) -> Result<()> {
        let format = FileFormat::detect(path)?;
        let frame = self.read(format, &[path.to_string()], &CsvOptions::default())?;
        self.register(name, &frame)
    }

    /// Reads Parquet from files, directories or globs.
    pub fn read_parquet(&self, paths: impl source::DataPaths) -> Result<LazyFrame> {
        self.read(
            FileFormat::Parquet,
            &paths.to_paths(),
            &CsvOptions::default(),
        )
    }

    /// Reads CSV (with a header row, comma-separated) from files, directories or globs.
    pub fn read_csv(&self, paths: impl source::DataPaths) -> Result<LazyFrame> {
        self.read(FileFormat::Csv, &paths.to_paths(), &CsvOptions::default())
    }

    /// Reads CSV with explicit options.
    pub fn read_csv_with(
        &self,
        paths: impl source::DataPaths,
        options: &CsvOptions,
    ) -> Result<LazyFrame> {
        self.read(FileFormat::Csv, &paths.to_paths(), options)
    }

    /// Reads newline-delimited JSON from files, directories or globs.
    pub fn read_json(&self, paths: impl source::DataPaths) -> Result<LazyFrame> {
        self.read(FileFormat::Json, &paths.to_paths(), &CsvOptions::default())
    }

    /// Reads Arrow IPC files from files, directories or globs.
    pub fn read_ipc(&self, paths: impl source::DataPaths) -> Result<LazyFrame> {
        self.read(FileFormat::Ipc, &paths.to_paths(), &CsvOptions::default())
    }

    fn read(&self, format: FileFormat, paths: &[String], csv: &CsvOptions) -> Result<LazyFrame> {
        let files = source::resolve(paths, format)?;
        let ctx = self.inner.ctx.clone();
        let df = self
            .block_on(source::read(&ctx, format, &files, csv))
            .map_err(|e| source::with_file_context(e, &files))?;
        Ok(LazyFrame::from_result(self.clone(), Ok(df), files))
    }

    /// A frame over in-memory Arrow batches, spread over the session's partitions.
    pub fn from_batches(&self, batches: Vec<RecordBatch>) -> Result<LazyFrame> {
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => {
                return Err(Error::InvalidArgument(
                    "from_batches needs at least one batch (it takes the schema from it)".into(),
                ));
            }
        };
        for (i, b) in batches.iter().enumerate() {
            if b.schema().fields() != schema.fields() {
                return Err(Error::InvalidArgument(format!(
                    "batch {i} has schema {:?}, but batch 0 has {:?}",
                    b.schema(),
                    schema
                )));
            }
        }
        let parts = self.inner.config.target_partitions.max(1);
        let batch_size = self.inner.config.batch_size;
        let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
        let mut next = 0;
        for b in batches {
            let mut offset = 0;
            while offset < b.num_rows() {
                let len = batch_size.min(b.num_rows() - offset);
                partitions[next % parts].push(b.slice(offset, len));
                next += 1;
                offset += len;
            }
        }
        // The batches go to the partition store, which evicts them to disk if memory is short.
        let store = &self.inner.store;
        let mut groups = Vec::with_capacity(parts);
        for (i, batches) in partitions.into_iter().enumerate() {
            let put = store
                .put(
                    Arc::clone(&schema),
                    batches,
                    Some(format!("from_batches, partition {i}")),
                )
                .and_then(|id| store.seal(id).map(|()| id));
            match put {
                Ok(id) => groups.push(vec![id]),
                Err(e) => {
                    for id in groups.iter().flatten() {
                        store.remove(*id);
                    }
                    return Err(e.into());
                }
            }
        }
        let stored = StoredPartitions::new(store.clone(), schema, groups);
        self.frame_over_stored(stored, Vec::new())
    }

    /// A frame scanning stored partitions.
    pub(crate) fn frame_over_stored(
        &self,
        parts: StoredPartitions,
        sources: Vec<PathBuf>,
    ) -> Result<LazyFrame> {
        let table = StoredTable::new(Arc::new(parts));
        let df = self
            .inner
            .ctx
            .read_table(Arc::new(table))
            .map_err(Error::from)?;
        Ok(LazyFrame::from_result(self.clone(), Ok(df), sources))
    }

    /// A frame over an owned [`Table`] (for example one built with [`df!`](crate::df)).
    pub fn from_table(&self, table: Table) -> Result<LazyFrame> {
        self.from_batches(table.into_batches_nonempty())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("settings", &self.inner.config)
            .field("spill_dir", &self.inner.spill_dir.path())
            .finish()
    }
}
