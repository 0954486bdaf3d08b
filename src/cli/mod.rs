//! The `spillframe` command line: `sql`, `gen`, `demo`, `compat`, `cluster` and `peer`.

mod cluster;
mod generate;
mod progress;
mod sql;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use spillframe_engine::{MemoryLimit, Session, SessionBuilder};

use crate::error::{Error, Result};

pub use progress::{ProgressReporter, count_bar as progress_bar};

/// spillframe: DataFrames and SQL over data larger than memory.
#[derive(Debug, Parser)]
#[command(name = "spillframe", version, about, long_about = None)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a SQL query over Parquet, CSV, JSON or Arrow files.
    Sql(sql::SqlArgs),
    /// Generate benchmark data as Parquet.
    #[command(subcommand)]
    Gen(generate::GenCommand),
    /// Run the demo: generate (or reuse) a dataset and run a groupby, a join and a sort
    /// under a memory limit smaller than the data.
    Demo(crate::demo::DemoArgs),
    /// Show which pandas operations the compat layer supports.
    Compat(CompatArgs),
    /// Set up and inspect a peer cluster.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Run one peer of a cluster until Ctrl-C.
    Peer(cluster::PeerArgs),
}

/// Arguments of `spillframe compat` (none: it prints the summary; the full table with each
/// entry's cases is docs/supported_apis.md).
#[derive(Debug, Clone, Args)]
pub struct CompatArgs {}

/// Session settings shared by the commands that run queries.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// Memory limit: a size (512MiB, 2GB) or a fraction of memory (50%, 0.5).
    #[arg(long, value_parser = parse_memory_limit)]
    pub memory_limit: Option<MemoryLimit>,
    /// Base directory for spill files.
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
    /// Partitions to split work into (default: one per core).
    #[arg(long)]
    pub target_partitions: Option<usize>,
    /// Rows per batch.
    #[arg(long)]
    pub batch_size: Option<usize>,
}

impl SessionArgs {
    /// A session builder with these flags applied over the environment and config file.
    pub fn builder(&self) -> SessionBuilder {
        let mut b = Session::builder();
        if let Some(l) = self.memory_limit {
            b = b.memory_limit(l);
        }
        if let Some(d) = &self.spill_dir {
            b = b.spill_dir(d);
        }
        if let Some(n) = self.target_partitions {
            b = b.target_partitions(n);
        }
        if let Some(n) = self.batch_size {
            b = b.batch_size(n);
        }
        b
    }
}

fn parse_memory_limit(s: &str) -> std::result::Result<MemoryLimit, String> {
    s.parse::<MemoryLimit>().map_err(|e| e.to_string())
}

/// Parses a row count: `1000000`, `1e7`, `2.5e6` or `10_000_000`.
pub fn parse_rows(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim().replace('_', "");
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    match t.parse::<f64>() {
        Ok(f) if f >= 1.0 && f.fract() == 0.0 && f < 1e15 => Ok(f as u64),
        _ => Err(format!(
            "'{s}' is not a row count; expected a whole number such as 1000000 or 1e7"
        )),
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.log_level);
    // Sessions of every command use the cluster when one is configured.
    crate::enable_cluster();
    let result = run(cli);
    // During a signal exit this waits for the handler to end the process.
    spillframe_spill::cleanup::settle();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only on a terminal: a log redirected to a file stays plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The process's peak resident set size in bytes (Linux: `VmHWM` in `/proc/self/status`).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The summary line: the query's metrics, then the process's peak RSS where it is known.
pub fn summary(metrics: &spillframe_engine::QueryMetrics) -> String {
    match peak_rss() {
        Some(rss) => format!("{metrics} · peak RSS {}", bytesize::ByteSize(rss)),
        None => metrics.to_string(),
    }
}

/// An error with its causes, "a: b: c", skipping causes already in the message.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// On SIGINT or SIGTERM, removes this process's spill directories and staged output files
/// (see `spillframe_spill::cleanup`), then exits with code 130. Without it the signal would
/// end the process with its files in place until the next start's sweep. Installed for the
/// commands that spill or write; `peer` handles Ctrl-C itself.
fn remove_temporaries_on_signal() {
    let installed = ctrlc::set_handler(|| {
        // The main thread's query fails once its spill directory is gone; the handler waits
        // (at most a second) until it has ended, so that nothing it finishes stays behind.
        let removed =
            spillframe_spill::cleanup::remove_all_for_exit(std::time::Duration::from_secs(1));
        eprintln!("interrupted; removed {removed} temporary paths");
        // Then at once: `exit` would run exit handlers while other threads go on writing.
        // SAFETY: _exit(2) ends the process; nothing after it runs.
        unsafe { libc::_exit(130) }
    });
    if let Err(e) = installed {
        tracing::warn!("cannot install the signal handler that removes spill files: {e}");
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if matches!(
        cli.command,
        Command::Sql(_) | Command::Gen(_) | Command::Demo(_)
    ) {
        remove_temporaries_on_signal();
    }
    match cli.command {
        Command::Sql(args) => sql::run(args),
        Command::Gen(cmd) => generate::run(cmd),
        Command::Demo(args) => crate::demo::run(args),
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::Peer(args) => cluster::peer(args),
        Command::Compat(_) => {
            print!("{}", spillframe_compat::registry::summary());
            Ok(())
        }
    }
}

impl From<clap::Error> for Error {
    fn from(e: clap::Error) -> Self {
        Error::argument("(command line)", e.to_string())
    }
}
