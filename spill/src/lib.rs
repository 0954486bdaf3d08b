//! # spillframe-spill
//!
//! The bottom layer of spillframe: everything that decides *how much memory a session may use*
//! and *where data goes when it does not fit*. It knows nothing of query plans.
//!
//! - [`governor`]: resolves the session's memory limit (bytes or a fraction of the machine's
//!   memory, read with `sysinfo`) and owns the one DataFusion memory pool that every operator
//!   of the session reserves from.
//! - [`dir`]: the per-session spill directory, guarded by an owner lock so that directories
//!   left behind by crashed processes are found and swept at the next start.
//! - [`file`]: spill files: Arrow IPC file format with a checksum trailer, mapped back zero-copy;
//!   the [`DiskBudget`] that caps the bytes a session may spill.
//! - [`datafusion_files`]: DataFusion's own spill files, made in the spill directory and
//!   charged to the same budget, through DataFusion's `TempFileFactory`.
//! - [`store`]: the [`PartitionStore`] of materialised partitions, which evicts the least
//!   recently used ones to spill files (or to peers) when memory runs short.
//! - [`cleanup`]: spill directories and staged output files to remove if a signal stops the
//!   process before their owners can.
//! - [`remote`]: the [`RemoteTier`] trait through which the store places partitions beyond
//!   this machine; the cluster crate implements it.
//!
//! The engine crate builds a DataFusion runtime from these pieces.

pub mod cleanup;
pub mod datafusion_files;
pub mod dir;
pub mod error;
pub mod file;
pub mod governor;
pub mod remote;
pub mod store;

pub use datafusion_files::DataFusionSpillFiles;
pub use dir::{SpillDir, SweepReport};
pub use error::{Error, Result, SharedError};
pub use file::{Compression, DiskBudget, SpillFile, SpillWriter};
pub use governor::{
    DEFAULT_MEMORY_FRACTION, MachineMemory, MemoryGovernor, MemoryLimit, Reclaim, SharingPool,
    parse_size,
};
pub use remote::{RemoteCopy, RemoteError, RemotePolicy, RemoteTier, RemoteWork};
pub use store::{Location, PartitionId, PartitionInfo, PartitionStore, StoreConfig, StoreMetrics};
