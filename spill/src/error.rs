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
    /// A spill file failed its checks; its data is not used.
    #[error("spill file '{path}' is corrupt: {reason}")]
    Corrupt {
        /// The file at fault.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// Writing a spill file would pass the session's cap on spill bytes.
    #[error(
        "spilling stopped at the cap of {} on spill files (setting `max_spill`), while writing '{path}'; raise the cap or the memory limit",
        bytesize::ByteSize(*cap)
    )]
    SpillCapReached {
        /// The cap in bytes.
        cap: u64,
        /// The file that would have passed it.
        path: PathBuf,
    },
    /// The disk holding the spill directory is full.
    #[error(
        "the disk is full while writing spill file '{path}'; free space or set `spill_dir` to a larger disk"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// Arrow could not encode or decode a spill file.
    #[error("spill file '{path}': {source}")]
    Arrow {
        /// The file at fault.
        path: PathBuf,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A stored partition does not exist (it was removed, or belongs to another store).
    #[error("partition {0} is not in the partition store")]
    UnknownPartition(u64),
    /// Every copy of (part of) a partition was on peers that are gone.
    #[error(
        "partition {partition}{} was on peer{} {} which {} lost ({reason}); {}",
        lineage.as_ref().map(|l| format!(" ({l})")).unwrap_or_default(),
        if peers.len() == 1 { "" } else { "s" },
        peers.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", "),
        if peers.len() == 1 { "is" } else { "are" },
        "it is rebuilt from its lineage if it has one; data without lineage survives only with `replicate = true` in cluster.toml"
    )]
    PeerLost {
        /// The partition.
        partition: u64,
        /// The peers that held its copies.
        peers: Vec<String>,
        /// How it was made.
        lineage: Option<String>,
        /// What failed.
        reason: String,
    },
    /// The remote tier refused or failed a request (the peer is still there).
    #[error("{0}")]
    Remote(#[from] crate::remote::RemoteError),
    /// A plan fragment was asked to run remotely over a partition that is not wholly remote.
    #[error("partition {partition} is not wholly on a peer (it is in {location})")]
    NotRemote {
        /// The partition.
        partition: u64,
        /// Where it is.
        location: crate::store::Location,
    },
    /// The machine's memory could not be read.
    #[error("cannot read the machine's memory size: {0}")]
    MachineMemory(String),
}

/// Result type of the spill crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A spill error shared between the DataFusion or I/O error that carries it and whoever
/// finds it again ([`Error::find_in`]).
pub type SharedError = std::sync::Arc<Error>;

impl Error {
    /// This error as a DataFusion error (`External`), for the operators and file backends that
    /// hand spill-layer errors to DataFusion. [`Error::find_in`] finds it again.
    pub fn into_datafusion(self) -> datafusion::error::DataFusionError {
        datafusion::error::DataFusionError::External(Box::new(SharedError::new(self)))
    }

    /// This error inside an I/O error, for writers that Arrow's IPC writer drives (Arrow's
    /// `IoError` keeps the `io::Error` itself, not only its text).
    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::other(SharedError::new(self))
    }

    /// The spill error carried somewhere in `e`'s chain, by [`into_datafusion`](Self::into_datafusion)
    /// or inside an I/O error, through whatever DataFusion and Arrow wrapped it in (their
    /// `source`s lead to it; an I/O error's payload is looked into, since its `source` skips
    /// the payload itself).
    pub fn find_in(e: &(dyn std::error::Error + 'static)) -> Option<SharedError> {
        let mut next = Some(e);
        while let Some(err) = next {
            if let Some(shared) = err.downcast_ref::<SharedError>() {
                return Some(SharedError::clone(shared));
            }
            if let Some(shared) = err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<SharedError>())
            {
                return Some(SharedError::clone(shared));
            }
            next = err.source();
        }
        None
    }

    pub(crate) fn arrow(path: &std::path::Path, source: arrow::error::ArrowError) -> Self {
        Error::Arrow {
            path: path.to_path_buf(),
            source,
        }
    }

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
