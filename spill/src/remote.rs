//! The remote tier: a place beyond local memory and disk where the [partition
//! store](crate::store) can put partitions, such as the peers of a cluster.
//!
//! The spill crate knows nothing of networks or query plans. It sees the remote tier through
//! [`RemoteTier`], which the cluster crate (`spillframe-net`) implements over QUIC. Plans that
//! run where a partition lives travel through [`RemoteTier::run`] as opaque bytes that only
//! the engine understands; user functions travel as the name they are registered under on
//! every location ([`RemoteWork::Function`]).
//!
//! Every method blocks. The store calls them from the threads that append and read, exactly
//! as it writes and reads spill files there.

use std::fmt;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// Where the store sends partitions once a remote tier is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemotePolicy {
    /// Evicted partitions go to a remote location with room before the local disk; the disk
    /// takes them only when no remote location can.
    #[default]
    PeersBeforeDisk,
    /// Every finished partition is placed remotely at once, spread over the remote locations;
    /// the local memory holds only what is being built or read.
    Spread,
}

/// One copy of a partition's batches in the remote tier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteCopy {
    /// The location holding it (a peer's name).
    pub peer: String,
    /// Its key there.
    pub key: u64,
}

impl fmt::Display for RemoteCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer '{}' (key {})", self.peer, self.key)
    }
}

/// Work to run over a partition where it lives ([`RemoteTier::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteWork<'a> {
    /// A serialized plan fragment, which only the engine reads.
    Fragment(&'a [u8]),
    /// A user function registered under `name` at the location: called once with the whole
    /// partition (`batch_size: None`), or once per batch of `batch_size` rows.
    Function {
        /// The registered name.
        name: &'a str,
        /// The partition's index in the job (what the function sees as its partition).
        index: usize,
        /// Rows per call for a batch function; `None` for a partition function.
        batch_size: Option<usize>,
    },
}

impl fmt::Display for RemoteWork<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteWork::Fragment(bytes) => write!(f, "a plan fragment ({} bytes)", bytes.len()),
            RemoteWork::Function {
                name,
                batch_size: None,
                ..
            } => write!(f, "partition function '{name}'"),
            RemoteWork::Function {
                name,
                batch_size: Some(rows),
                ..
            } => write!(f, "batch function '{name}' (batches of {rows} rows)"),
        }
    }
}

/// Why the remote tier could not do something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The location at fault, when one is.
    pub peer: Option<String>,
    /// What happened.
    pub reason: String,
    /// Whether the location is gone (unreachable, timed out, closed): its copies are lost.
    pub lost: bool,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.peer {
            Some(p) => write!(f, "peer '{p}': {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RemoteError {}

/// A place beyond local memory and disk for the partition store. Implemented by the cluster
/// (`spillframe-net`); tests implement it in memory.
pub trait RemoteTier: Send + Sync + fmt::Debug {
    /// Where the store sends partitions.
    fn policy(&self) -> RemotePolicy;

    /// Copies to keep of a partition that cannot be rebuilt (one means no replica).
    fn copies_without_lineage(&self) -> usize;

    /// How many places the tier spreads over (a cluster's peers). Sessions split their work
    /// into at least twice as many partitions by default, so every place gets some.
    fn locations(&self) -> usize {
        1
    }

    /// How many times a lost partition may be rebuilt within one read before giving up.
    fn retries(&self) -> u32 {
        2
    }

    /// Stores `batches` (of `schema`, `bytes` in memory) as `copies` copies on different
    /// locations with room for them, and says where. Fails when no location can take them;
    /// the store then keeps them locally.
    fn put(
        &self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        bytes: u64,
        lineage: Option<&str>,
        copies: usize,
    ) -> Result<Vec<RemoteCopy>, RemoteError>;

    /// Reads a copy back.
    fn get(&self, copy: &RemoteCopy) -> Result<Vec<RecordBatch>, RemoteError>;

    /// Runs `work` (a plan fragment or a registered function) over a copy where it lives,
    /// and returns what it produced.
    fn run(&self, copy: &RemoteCopy, work: RemoteWork<'_>)
    -> Result<Vec<RecordBatch>, RemoteError>;

    /// Forgets copies. Must not block: the store calls it when partitions are dropped.
    fn release(&self, copies: Vec<RemoteCopy>);
}
