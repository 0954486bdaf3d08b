//! The memory governor: one memory limit and one DataFusion memory pool per session.
//!
//! DataFusion operators (sort, aggregate, joins, repartition) reserve memory from a
//! [`MemoryPool`] before they buffer data, and spill when a reservation is refused. The governor
//! builds that pool from the session's limit:
//!
//! - [`SharingPool`] keeps DataFusion's fair shares of the limit and lends spilling consumers
//!   what the others leave while memory is plentiful (see [`pool`]);
//! - [`TrackConsumersPool`] makes a "resources exhausted" error name the biggest consumers;
//! - [`PeakRecordingPool`] records the high-water mark that the query summary reports.

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::Arc;

use bytesize::ByteSize;
use datafusion::execution::memory_pool::{MemoryPool, PeakRecordingPool, TrackConsumersPool};

pub mod pool;
pub use pool::{Reclaim, ReclaimSlot, SharingPool};

use crate::error::{Error, Result};

/// Fraction of the machine's memory used as the memory limit when none is set.
///
/// Half the memory leaves room for what DataFusion does not account for (batches in flight
/// between operators, allocator slack) and for the rest of the machine.
pub const DEFAULT_MEMORY_FRACTION: f64 = 0.5;

/// How many consumers a "resources exhausted" error lists.
const TOP_CONSUMERS_IN_ERRORS: usize = 5;

/// A memory limit as the user gives it: a number of bytes, or a fraction of the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MemoryLimit {
    /// An absolute number of bytes.
    Bytes(u64),
    /// A fraction in (0, 1] of the machine's memory (see [`MachineMemory`]).
    Fraction(f64),
}

impl MemoryLimit {
    /// The limit in bytes on a machine with `machine` bytes of usable memory.
    pub fn resolve(&self, machine: u64) -> u64 {
        match *self {
            MemoryLimit::Bytes(b) => b,
            MemoryLimit::Fraction(f) => ((machine as f64) * f) as u64,
        }
    }
}

impl Default for MemoryLimit {
    fn default() -> Self {
        MemoryLimit::Fraction(DEFAULT_MEMORY_FRACTION)
    }
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryLimit::Bytes(b) => write!(f, "{}", ByteSize(*b)),
            MemoryLimit::Fraction(x) => write!(f, "{}% of memory", x * 100.0),
        }
    }
}

/// Parses a size in bytes: `"10GiB"`, `"512 MB"`, `"1048576"`. The one size parser of
/// spillframe's settings and cluster file; the error says what is wrong, for the caller to
/// name the setting.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("'{text}' is negative: a size cannot be negative"));
    }
    match t.parse::<ByteSize>() {
        Ok(b) if b.0 == 0 => Err("the size must be greater than zero".into()),
        // ByteSize saturates what does not fit in 64 bits.
        Ok(b) if b.0 >= 1 << 62 => Err(format!(
            "'{text}' is larger than any machine's memory or disk"
        )),
        Ok(b) => Ok(b.0),
        Err(e) => Err(format!(
            "'{text}': {e}; expected a size such as '512MiB' or '10GiB'"
        )),
    }
}

impl FromStr for MemoryLimit {
    type Err = Error;

    /// Parses `"2GiB"`, `"512 MB"`, `"1073741824"` (bytes), `"50%"` or `"0.5"` (a fraction).
    fn from_str(s: &str) -> Result<Self> {
        let text = s.trim();
        let invalid = |reason: &str| Error::InvalidMemoryLimit {
            value: s.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        let fraction = if let Some(pct) = text.strip_suffix('%') {
            let v: f64 = pct
                .trim()
                .parse()
                .map_err(|_| invalid("a percentage must be a number followed by '%'"))?;
            Some(v / 100.0)
        } else if text.contains('.') && text.parse::<f64>().is_ok() {
            text.parse::<f64>().ok()
        } else {
            None
        };
        if let Some(f) = fraction {
            if !(f > 0.0 && f <= 1.0) {
                return Err(invalid(
                    "a fraction of memory must be in (0, 1], e.g. 0.5 or 50%",
                ));
            }
            return Ok(MemoryLimit::Fraction(f));
        }
        let bytes = parse_size(text).map_err(|e| {
            invalid(&format!(
                "{e}; a limit is a size such as '512MiB' or '2GB', or a fraction such as '50%'"
            ))
        })?;
        Ok(MemoryLimit::Bytes(bytes))
    }
}

/// The memory this process may use: the machine's physical memory, or the cgroup limit when
/// one is set and smaller (cgroup v1 or v2, the process's own group or the root's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineMemory {
    /// Total physical memory in bytes.
    pub physical: u64,
    /// The cgroup memory limit in bytes, if the process runs under one.
    pub cgroup_limit: Option<u64>,
}

impl MachineMemory {
    /// Reads the machine's memory with `sysinfo`.
    pub fn detect() -> Result<Self> {
        let mut sys = sysinfo::System::new().map_err(|e| Error::MachineMemory(e.to_string()))?;
        sys.refresh_memory();
        let physical = sys.total_memory();
        if physical == 0 {
            return Err(Error::MachineMemory(
                "the operating system reported 0 bytes of memory".into(),
            ));
        }
        // The system-wide reading covers the cgroup root only; the process's own group (a
        // v1 `memory.limit_in_bytes` or a v2 `memory.max`, with its ancestors) is read from
        // `/proc/self`. The smaller applies.
        let own = sysinfo::get_current_pid().ok().and_then(|pid| {
            sys.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), false);
            sys.process(pid)
                .and_then(|p| p.cgroup_limits())
                .map(|c| c.total_memory)
        });
        let cgroup_limit = [sys.cgroup_limits().map(|c| c.total_memory), own]
            .into_iter()
            .flatten()
            .filter(|&l| l > 0 && l < physical)
            .min();
        Ok(MachineMemory {
            physical,
            cgroup_limit,
        })
    }

    /// The memory this process may use: the smaller of the physical memory and the cgroup limit.
    pub fn usable(&self) -> u64 {
        self.cgroup_limit
            .map_or(self.physical, |c| c.min(self.physical))
    }
}

/// Owns the session's memory pool and reports on it.
#[derive(Debug, Clone)]
pub struct MemoryGovernor {
    limit: u64,
    pool: Arc<dyn MemoryPool>,
    peak: Arc<PeakRecordingPool>,
    reclaim: Arc<ReclaimSlot>,
}

impl MemoryGovernor {
    /// A governor whose pool grants at most `limit` bytes in total.
    pub fn new(limit: u64) -> Self {
        let top = NonZeroUsize::new(TOP_CONSUMERS_IN_ERRORS).unwrap_or(NonZeroUsize::MIN);
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        let sharing = SharingPool::new(limit_usize);
        let reclaim = sharing.reclaim_slot();
        let tracked: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(sharing, top));
        let peak = Arc::new(PeakRecordingPool::new(tracked));
        MemoryGovernor {
            limit,
            pool: Arc::clone(&peak) as Arc<dyn MemoryPool>,
            peak,
            reclaim,
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The pool to install in the DataFusion runtime.
    pub fn pool(&self) -> Arc<dyn MemoryPool> {
        Arc::clone(&self.pool)
    }

    /// Bytes reserved right now.
    pub fn reserved(&self) -> u64 {
        self.pool.reserved() as u64
    }

    /// The most bytes reserved at once since the last [`reset_peak`](Self::reset_peak).
    pub fn peak(&self) -> u64 {
        self.peak.peak_reserved() as u64
    }

    /// Installs the memory that the pool asks back before it refuses an operator (the
    /// partition store's partitions); `consumer` is the id of the reclaimer's own consumer.
    pub fn set_reclaim(&self, consumer: usize, reclaim: Arc<dyn Reclaim>) {
        self.reclaim.set(consumer, reclaim);
    }

    /// Starts a new high-water mark, e.g. at the start of a query.
    pub fn reset_peak(&self) {
        self.peak.reset_peak();
    }
}
