//! The error type of the facade crate (CLI, data generation, demo).

use std::path::PathBuf;

/// Errors of the `spillframe` crate. Each names the file, argument or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An engine error (planning, execution, reading data, settings).
    #[error(transparent)]
    Engine(#[from] spillframe_engine::Error),
    /// A cluster error (cluster file, certificates, a peer).
    #[error(transparent)]
    Net(#[from] spillframe_net::Error),
    /// A file system operation failed.
    #[error("{action} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a Parquet file failed.
    #[error("cannot write Parquet file '{}': {source}", path.display())]
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// The writer's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An Arrow error while building data.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// `cluster status` found peers down.
    #[error("{down} of {total} peers are down: {names}")]
    PeersDown {
        /// How many are down.
        down: usize,
        /// How many the cluster lists.
        total: usize,
        /// Their names.
        names: String,
    },
    /// A command-line argument that cannot be used.
    #[error("invalid argument {argument}: {reason}")]
    Argument {
        /// The argument, e.g. `--rows`.
        argument: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Result type of the facade crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn argument(argument: &str, reason: impl Into<String>) -> Self {
        Error::Argument {
            argument: argument.to_string(),
            reason: reason.into(),
        }
    }
}
