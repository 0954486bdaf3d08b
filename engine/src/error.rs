//! The error type of the engine crate.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::error::DataFusionError;

/// Everything that can go wrong in the engine. Every variant names the file, column or setting
/// at fault.
///
/// The error is `Clone` (sources are shared behind `Arc`) because a [`LazyFrame`] keeps the
/// first error of a chain of transformations and reports it at the action, as Polars does.
///
/// [`LazyFrame`]: crate::LazyFrame
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// An error from DataFusion: planning, a missing column, a type mismatch, a malformed file.
    #[error("{0}")]
    DataFusion(Arc<DataFusionError>),
    /// An error from Arrow.
    #[error("{0}")]
    Arrow(Arc<arrow::error::ArrowError>),
    /// An error from the spill layer: the memory limit, the spill directory, a spill file, the
    /// cap on spill bytes (`max_spill`, reached by DataFusion's spill files or the partition
    /// store's alike), a full disk under the spill directory.
    #[error(transparent)]
    Spill(Arc<spillframe_spill::Error>),
    /// An input path that does not exist.
    #[error("file not found: '{}'", path.display())]
    FileNotFound {
        /// The path that was given.
        path: PathBuf,
    },
    /// A glob or directory that matched no data files.
    #[error("no {format} files found at '{pattern}'")]
    NoFiles {
        /// The glob or directory.
        pattern: String,
        /// The file format looked for.
        format: &'static str,
    },
    /// Reading a data source failed; `files` names the file(s) read.
    #[error("error reading {files}: {source}")]
    Read {
        /// The file, or a list of the candidate files.
        files: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// A column that the frame does not have.
    #[error("column '{column}' not found; available columns: {available}")]
    ColumnNotFound {
        /// The missing column.
        column: String,
        /// The columns that do exist.
        available: String,
    },
    /// A file system operation failed.
    #[error("{action} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A setting has a value that cannot be used.
    #[error("invalid setting {setting} = '{value}' (from {origin}): {reason}")]
    Setting {
        /// The setting's name, e.g. `memory_limit`.
        setting: String,
        /// The value given.
        value: String,
        /// Where the value came from: an environment variable, a config file, or the builder.
        origin: String,
        /// Why it was refused.
        reason: String,
    },
    /// A configuration file that cannot be read or parsed.
    #[error("invalid config file '{}': {reason}", path.display())]
    ConfigFile {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument to an API call that cannot be used.
    #[error("{0}")]
    InvalidArgument(String),
    /// An operator needed more memory than the memory limit left it, and could not spill (or
    /// spill further). The text is DataFusion's account of who held what, without the
    /// DataFusion settings it suggests, which spillframe sets itself.
    #[error(
        "out of memory under the memory limit (setting `memory_limit`): {0}; raise `memory_limit`, \
         or lower `target_partitions` or `batch_size`"
    )]
    MemoryExhausted(String),
    /// The disk ran out of space while a query ran: the spill directory's disk (or, for a
    /// write, the output's).
    #[error(
        "no space left on the disk of the spill directory '{dir}'{output}; free space, set \
         `spill_dir` to a larger disk, or cap spilling with `max_spill`"
    )]
    DiskFull {
        /// The session's spill directory.
        dir: PathBuf,
        /// ` or of the output 'FILE'` for a write, empty otherwise.
        output: String,
    },
    /// The session's runtime could not be started.
    #[error("cannot start the execution runtime: {0}")]
    Runtime(String),
    /// A user function (of `map_partitions`, `map_batches`, `call`, `map`) returned an error or
    /// panicked. `at` names the partition, batch or item it was given.
    #[error("job '{job}': the function failed on {at}: {source}")]
    UserFunction {
        /// The job's name.
        job: String,
        /// Where: "partition 3", "partition 1, batch 7", "item 12".
        at: String,
        /// The function's own error (or the panic's message).
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The job was cancelled before it finished.
    #[error("job '{job}' was cancelled")]
    Cancelled {
        /// The job's name.
        job: String,
    },
    /// A function name that is not in the function registry.
    #[error("no function named '{name}' is registered; registered: {registered}")]
    UnknownFunction {
        /// The name asked for.
        name: String,
        /// The names that are registered.
        registered: String,
    },
}

/// Result type of the engine crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        // A DataFusion spill file's writer failing (the spill cap, a full disk) raised the
        // spill layer's own error, carried inside the I/O error DataFusion saw.
        if let Some(spill) = spillframe_spill::Error::find_in(&e) {
            return Error::Spill(spill);
        }
        // A refused reservation, whatever wraps it (context, shared, ...), is one error.
        if is_memory_refusal(e.find_root()) {
            return Error::MemoryExhausted(without_datafusion_advice(&e.to_string()));
        }
        // Unwrap the layers DataFusion adds so that the message is the cause itself.
        match e {
            DataFusionError::Context(ctx, inner) if ctx.is_empty() => Error::from(*inner),
            DataFusionError::Shared(shared) => match Arc::try_unwrap(shared) {
                Ok(owned) => Error::from(owned),
                Err(shared) => Error::DataFusion(shared),
            },
            DataFusionError::External(b) => match b.downcast::<Error>() {
                Ok(engine) => *engine,
                Err(b) => Error::DataFusion(Arc::new(DataFusionError::External(b))),
            },
            other => Error::DataFusion(Arc::new(other)),
        }
    }
}

/// A memory reservation refused by the pool.
fn is_memory_refusal(root: &DataFusionError) -> bool {
    matches!(root, DataFusionError::ResourcesExhausted(_))
}

/// DataFusion's account of a refused reservation, without its advice to change DataFusion
/// settings ("Consider increasing the memory limit config: 'datafusion.runtime...'"), which
/// a spillframe user cannot set: each line is cut at its "Consider".
fn without_datafusion_advice(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|l| match l.find(" Consider ") {
            Some(i) if l[i..].contains("datafusion.") => l[..i].trim_end_matches('.'),
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Arrow(Arc::new(e))
    }
}

impl From<spillframe_spill::Error> for Error {
    fn from(e: spillframe_spill::Error) -> Self {
        Error::Spill(Arc::new(e))
    }
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// True when the error is the memory pool refusing memory ("Resources exhausted").
    pub fn is_resources_exhausted(&self) -> bool {
        matches!(self, Error::MemoryExhausted(_))
    }
}
