//! The error type of the spill crate.

use std::path::PathBuf;

/// Everything that can go wrong in the spill layer. Every variant names the thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation on `path` failed.
    #[error("{action} '{path}': {source}")]
    Io {
        /// What was being done, e.g. "cannot create spill directory".
        action: &'static str,
        /// The file or directory at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A memory limit could not be understood.
    #[error("invalid memory limit '{value}': {reason}")]
    InvalidMemoryLimit {
        /// The text that was given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The machine's memory could not be read.
    #[error("cannot read the machine's memory size: {0}")]
    MachineMemory(String),
}

/// Result type of the spill crate.
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
}
