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
//!
//! The engine crate builds a DataFusion runtime from these pieces.

pub mod dir;
pub mod error;
pub mod governor;

pub use dir::{SpillDir, SweepReport};
pub use error::{Error, Result};
pub use governor::{DEFAULT_MEMORY_FRACTION, MachineMemory, MemoryGovernor, MemoryLimit};
