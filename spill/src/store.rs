//! The partition store: materialised partitions, in memory while they fit, on disk when not.
//!
//! A *partition* is an ordered list of record batches with one schema: a cached frame's slice,
//! a hash bucket of a partitioned join or aggregate, the result of a user function. The store
//! holds them under a memory budget:
//!
//! - Appending reserves the batch's memory from the session's DataFusion pool (as the consumer
//!   `PartitionStore`) *and* against the store's own budget. When either says
//!   no, the least recently used partition that has batches in memory is *evicted*: its batches
//!   are written to one [spill file](crate::file) and their memory released. A batch that is
//!   larger than everything that could be freed goes straight to disk.
//! - Reading returns the partition's batches in the order they were appended: first those in
//!   spill files (mapped, zero-copy), then those still in memory. Reads mark the partition as
//!   recently used; a read does not bring spilled data back into memory.
//! - [`PartitionStore::take`] reads and removes in one step, for data used once (the buckets
//!   of a partitioned join).
//!
//! Each partition knows its [`Location`], size, row count and lineage (a description of how it
//! was made). Dropping the store, or removing a partition, deletes its files.
//!
//! With a [remote tier](crate::remote) attached (the peers of a cluster), evicted partitions go
//! to a peer with room before the local disk ([`RemotePolicy::PeersBeforeDisk`]), or every
//! sealed partition is sent to a peer at once ([`RemotePolicy::Spread`]). A partition that
//! cannot be rebuilt (see [`PartitionStore::mark_rebuildable`]) is placed on as many peers as
//! the tier asks for. When every copy of a partition is lost, reading it fails with
//! [`Error::PeerLost`], which names the peers; the engine rebuilds it from its lineage.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::file::{Compression, DiskBudget, SpillFile, SpillWriter};
use crate::governor::Reclaim;
use crate::remote::{RemoteCopy, RemoteError, RemotePolicy, RemoteTier, RemoteWork};

/// Identifies a partition within its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId(pub u64);

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a partition's batches are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Every batch is in memory.
    Memory,
    /// Every batch is in spill files.
    Disk,
    /// Older batches are in spill files, newer ones in memory.
    MemoryAndDisk,
    /// Every batch is on peers.
    Peer,
    /// Some batches are on peers, others in memory or spill files.
    Mixed,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Location::Memory => "memory",
            Location::Disk => "disk",
            Location::MemoryAndDisk => "memory+disk",
            Location::Peer => "peer",
            Location::Mixed => "mixed",
        })
    }
}

/// A description of one stored partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition.
    pub id: PartitionId,
    /// Where its batches are.
    pub location: Location,
    /// Rows stored.
    pub rows: u64,
    /// Bytes held in memory.
    pub memory_bytes: u64,
    /// Bytes in spill files.
    pub disk_bytes: u64,
    /// The spill files holding it, oldest first.
    pub files: Vec<PathBuf>,
    /// Bytes held on peers (counted once, however many copies).
    pub peer_bytes: u64,
    /// The peers holding copies of it.
    pub peers: Vec<String>,
    /// How it was made, when known (e.g. "bucket 3 of join build side").
    pub lineage: Option<String>,
    /// Whether the engine can rebuild it from its lineage if its copies are lost.
    pub rebuildable: bool,
}

/// Counters over the store's life; take differences around a query for per-query figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreMetrics {
    /// Partitions stored right now.
    pub partitions: u64,
    /// Bytes in memory right now.
    pub memory_bytes: u64,
    /// Bytes of the store's spill files on disk right now.
    pub disk_bytes: u64,
    /// Evictions so far: each wrote one partition's in-memory batches to a spill file.
    pub evictions: u64,
    /// Spill files written so far (by evictions and by batches too big for memory).
    pub files_written: u64,
    /// Bytes written to spill files so far.
    pub bytes_written: u64,
    /// Partitions (or parts of partitions) sent to the remote tier so far.
    pub sent_to_peers: u64,
    /// Bytes sent to the remote tier so far (each copy counted).
    pub bytes_to_peers: u64,
    /// Partitions emptied so far to be made again ([`PartitionStore::reset`]): lost with a
    /// peer and rebuilt from their lineage.
    pub rebuilt: u64,
}

/// Settings of a [`PartitionStore`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Directory for the store's spill files (the session's spill directory).
    pub dir: PathBuf,
    /// Most bytes the store keeps in memory, whatever the pool would grant.
    pub memory_budget: u64,
    /// Compression of spill files.
    pub compression: Compression,
    /// Peers (or another remote tier) to place partitions on, if any.
    pub remote: Option<Arc<dyn RemoteTier>>,
}

/// The partition store. Cheap to clone; clones share the partitions.
#[derive(Clone)]
pub struct PartitionStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: StoreConfig,
    disk: Arc<DiskBudget>,
    reservation: MemoryReservation,
    slots: Mutex<HashMap<PartitionId, Arc<Slot>>>,
    memory_used: AtomicU64,
    next_id: AtomicU64,
    clock: AtomicU64,
    evictions: AtomicU64,
    next_file: AtomicU64,
    sent_to_peers: AtomicU64,
    bytes_to_peers: AtomicU64,
    rebuilt: AtomicU64,
}

/// One partition. The atomics let eviction pick a victim without locking every partition.
struct Slot {
    id: PartitionId,
    schema: SchemaRef,
    last_used: AtomicU64,
    memory_bytes: AtomicU64,
    data: Mutex<Partition>,
}

struct Partition {
    /// Batches no longer in memory, oldest first.
    spilled: Vec<Spilled>,
    memory: Vec<RecordBatch>,
    rows: u64,
    lineage: Option<String>,
    rebuildable: bool,
    removed: bool,
}

/// Batches of a partition that left memory.
enum Spilled {
    Disk(DiskPart),
    Peer(PeerPart),
}

/// Batches of one partition on the remote tier, in one or more copies.
struct PeerPart {
    copies: Vec<RemoteCopy>,
    bytes: u64,
}

impl Partition {
    fn remote_copies(&mut self) -> Vec<RemoteCopy> {
        self.spilled
            .iter()
            .filter_map(|s| match s {
                Spilled::Peer(p) => Some(p.copies.iter().cloned()),
                Spilled::Disk(_) => None,
            })
            .flatten()
            .collect()
    }
}

/// Batches of one partition in a spill file. A file written by an eviction holds the batches
/// of several partitions one after another; it is deleted when the last of them lets go.
struct DiskPart {
    file: Arc<SpillFile>,
    /// Positions of the partition's batches in the file.
    batches: std::ops::Range<usize>,
    /// The partition's share of the file's bytes.
    bytes: u64,
}

impl fmt::Debug for PartitionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionStore")
            .field("dir", &self.inner.config.dir)
            .field("metrics", &self.metrics())
            .finish()
    }
}

impl PartitionStore {
    /// A store reserving memory from `pool` and charging spill files to `disk`.
    pub fn new(config: StoreConfig, pool: &Arc<dyn MemoryPool>, disk: Arc<DiskBudget>) -> Self {
        // Registered as not spillable: the governor's pool (like DataFusion's fair pool)
        // divides its spillable share by the number of spillable consumers, so a
        // registered-but-idle store would halve what each sort may hold. As an unspillable consumer it only takes what it actually holds, and
        // it frees memory itself, by eviction, when a reservation is refused.
        let reservation = MemoryConsumer::new("PartitionStore").register(pool);
        PartitionStore {
            inner: Arc::new(Inner {
                config,
                disk,
                reservation,
                slots: Mutex::new(HashMap::new()),
                memory_used: AtomicU64::new(0),
                next_id: AtomicU64::new(0),
                clock: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
                next_file: AtomicU64::new(0),
                sent_to_peers: AtomicU64::new(0),
                bytes_to_peers: AtomicU64::new(0),
                rebuilt: AtomicU64::new(0),
            }),
        }
    }

    /// The directory spill files go to.
    pub fn dir(&self) -> &Path {
        &self.inner.config.dir
    }

    /// The store's own memory budget in bytes.
    pub fn memory_budget(&self) -> u64 {
        self.inner.config.memory_budget
    }

    /// Creates an empty partition for batches of `schema`.
    pub fn create(&self, schema: SchemaRef, lineage: Option<String>) -> PartitionId {
        let id = PartitionId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let slot = Arc::new(Slot {
            id,
            schema,
            last_used: AtomicU64::new(self.tick()),
            memory_bytes: AtomicU64::new(0),
            data: Mutex::new(Partition {
                spilled: Vec::new(),
                memory: Vec::new(),
                rows: 0,
                lineage,
                rebuildable: false,
                removed: false,
            }),
        });
        self.inner.slots.lock().insert(id, slot);
        id
    }

    /// Stores `batches` as a new partition.
    pub fn put(
        &self,
        schema: SchemaRef,
        batches: impl IntoIterator<Item = RecordBatch>,
        lineage: Option<String>,
    ) -> Result<PartitionId> {
        let id = self.create(schema, lineage);
        for b in batches {
            if let Err(e) = self.append(id, b) {
                self.remove(id);
                return Err(e);
            }
        }
        Ok(id)
    }

    /// Appends a batch to a partition, evicting least recently used partitions to disk when
    /// memory is short.
    pub fn append(&self, id: PartitionId, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let slot = self.slot(id)?;
        slot.last_used.store(self.tick(), Ordering::Relaxed);
        let size = batch.get_array_memory_size() as u64;
        loop {
            if self.try_reserve(size) {
                let mut part = slot.data.lock();
                if part.removed {
                    self.release(size);
                    return Err(Error::UnknownPartition(id.0));
                }
                part.rows += batch.num_rows() as u64;
                part.memory.push(batch);
                slot.memory_bytes.fetch_add(size, Ordering::Relaxed);
                return Ok(());
            }
            match self.lru_victim() {
                // Evict at least an eighth of the budget at once: fewer, larger files.
                Some(victim) => {
                    self.evict_group(victim, size.max(self.inner.config.memory_budget / 8))?
                }
                None => {
                    // Nothing left to evict: this batch alone is too big for memory.
                    let mut part = slot.data.lock();
                    if part.removed {
                        return Err(Error::UnknownPartition(id.0));
                    }
                    let file = self.write_file(&slot.schema, std::slice::from_ref(&batch))?;
                    part.rows += batch.num_rows() as u64;
                    part.spilled.push(Spilled::Disk(DiskPart {
                        bytes: file.bytes(),
                        file: Arc::new(file),
                        batches: 0..1,
                    }));
                    return Ok(());
                }
            }
        }
    }

    /// The partition's batches in append order. Spilled batches are mapped from their files
    /// (after their checksum is verified); batches on peers are fetched (from the first copy
    /// that answers). Nothing is brought back into the store's memory.
    ///
    /// Fails with [`Error::PeerLost`] when every copy of some of its batches is lost.
    pub fn read(&self, id: PartitionId) -> Result<Vec<RecordBatch>> {
        let slot = self.slot(id)?;
        slot.last_used.store(self.tick(), Ordering::Relaxed);
        let part = slot.data.lock();
        let mut out = Vec::new();
        for s in &part.spilled {
            match s {
                Spilled::Disk(f) => out.extend(f.file.read_range(f.batches.clone())?),
                Spilled::Peer(p) => out.extend(self.on_some_copy(
                    id,
                    part.lineage.as_deref(),
                    &p.copies,
                    |r, c| r.get(c),
                )?),
            }
        }
        out.extend(part.memory.iter().cloned());
        Ok(out)
    }

    /// When the whole partition is on the remote tier, in one part: its copies. Plans over
    /// such a partition can run where it lives ([`run_remote`](Self::run_remote)).
    pub fn remote_copies(&self, id: PartitionId) -> Result<Option<Vec<RemoteCopy>>> {
        let slot = self.slot(id)?;
        let part = slot.data.lock();
        Ok(match (part.spilled.as_slice(), part.memory.is_empty()) {
            ([Spilled::Peer(p)], true) => Some(p.copies.clone()),
            _ => None,
        })
    }

    /// Runs `work` where the partition lives (see [`RemoteTier::run`]), on the first copy
    /// that answers. The partition must be wholly remote ([`remote_copies`](Self::remote_copies)).
    pub fn run_remote(&self, id: PartitionId, work: RemoteWork<'_>) -> Result<Vec<RecordBatch>> {
        let slot = self.slot(id)?;
        slot.last_used.store(self.tick(), Ordering::Relaxed);
        // The partition's lock is not held while the peer works (a user function may run for
        // minutes): removing the partition meanwhile must not wait for it. Its copies then
        // go, and the run's output is of no use to anyone.
        let (copies, lineage) = {
            let part = slot.data.lock();
            match part.spilled.as_slice() {
                [Spilled::Peer(p)] if part.memory.is_empty() => {
                    (p.copies.clone(), part.lineage.clone())
                }
                _ => {
                    return Err(Error::NotRemote {
                        partition: id.0,
                        location: Self::location(&part),
                    });
                }
            }
        };
        self.on_some_copy(id, lineage.as_deref(), &copies, |r, c| r.run(c, work))
    }

    /// Tries `f` on each copy in turn; a copy whose peer is lost is skipped, any other error
    /// stops.
    fn on_some_copy<T>(
        &self,
        id: PartitionId,
        lineage: Option<&str>,
        copies: &[RemoteCopy],
        f: impl Fn(&dyn RemoteTier, &RemoteCopy) -> Result<T, RemoteError>,
    ) -> Result<T> {
        let Some(remote) = self.inner.config.remote.as_deref() else {
            return Err(Error::PeerLost {
                partition: id.0,
                peers: copies.iter().map(|c| c.peer.clone()).collect(),
                lineage: lineage.map(str::to_string),
                reason: "this store has no remote tier".into(),
            });
        };
        let mut reasons = Vec::new();
        for copy in copies {
            match f(remote, copy) {
                Ok(v) => return Ok(v),
                Err(e) if e.lost => {
                    tracing::warn!(partition = id.0, %copy, reason = %e, "copy of a partition lost");
                    reasons.push(e.to_string());
                }
                Err(e) => return Err(Error::Remote(e)),
            }
        }
        Err(Error::PeerLost {
            partition: id.0,
            peers: copies.iter().map(|c| c.peer.clone()).collect(),
            lineage: lineage.map(str::to_string),
            reason: reasons.join("; "),
        })
    }

    /// Declares that the engine can rebuild the partition from its lineage, so it needs no
    /// replica on the remote tier.
    pub fn mark_rebuildable(&self, id: PartitionId) -> Result<()> {
        self.slot(id)?.data.lock().rebuildable = true;
        Ok(())
    }

    /// Declares the partition complete. Under [`RemotePolicy::Spread`] its batches go to the
    /// remote tier now (if the tier can take them; otherwise they stay).
    pub fn seal(&self, id: PartitionId) -> Result<()> {
        let Some(remote) = self.inner.config.remote.as_deref() else {
            return Ok(());
        };
        if remote.policy() != RemotePolicy::Spread {
            return Ok(());
        }
        let slot = self.slot(id)?;
        let mut part = slot.data.lock();
        if !part.removed && !part.memory.is_empty() {
            let bytes = slot.memory_bytes.load(Ordering::Relaxed);
            if self.send_to_remote(remote, &slot, &mut part, bytes).is_ok() {
                let released = slot.memory_bytes.swap(0, Ordering::Relaxed);
                drop(part);
                self.release(released);
            }
        }
        Ok(())
    }

    /// Empties a partition (keeping its id, schema and lineage) so it can be filled again:
    /// what rebuilding a lost partition does.
    pub fn reset(&self, id: PartitionId) -> Result<()> {
        let slot = self.slot(id)?;
        let mut part = slot.data.lock();
        let copies = part.remote_copies();
        part.spilled.clear();
        part.memory.clear();
        part.rows = 0;
        drop(part);
        let bytes = slot.memory_bytes.swap(0, Ordering::Relaxed);
        self.release(bytes);
        self.release_copies(copies);
        self.inner.rebuilt.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The remote tier, if one is attached.
    pub fn remote(&self) -> Option<&Arc<dyn RemoteTier>> {
        self.inner.config.remote.as_ref()
    }

    /// Sends the partition's in-memory batches to the remote tier (as many copies as its
    /// rebuildability asks for). On success the batches leave `part.memory`; the caller
    /// releases `slot.memory_bytes`.
    fn send_to_remote(
        &self,
        remote: &dyn RemoteTier,
        slot: &Slot,
        part: &mut Partition,
        bytes: u64,
    ) -> Result<(), RemoteError> {
        let copies = if part.rebuildable {
            1
        } else {
            remote.copies_without_lineage().max(1)
        };
        // What the batches take on a peer: slices of a larger batch count only their own
        // rows there (here, they keep the whole buffers alive).
        let bytes = sliced_bytes(&part.memory).unwrap_or(bytes).min(bytes);
        let placed = remote.put(
            &slot.schema,
            &part.memory,
            bytes,
            part.lineage.as_deref(),
            copies,
        );
        match placed {
            Ok(copies) => {
                self.inner.sent_to_peers.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .bytes_to_peers
                    .fetch_add(bytes * copies.len() as u64, Ordering::Relaxed);
                tracing::debug!(
                    partition = slot.id.0,
                    bytes,
                    copies = ?copies,
                    "partition sent to peers"
                );
                part.memory.clear();
                part.spilled.push(Spilled::Peer(PeerPart { copies, bytes }));
                Ok(())
            }
            Err(e) => {
                tracing::debug!(partition = slot.id.0, reason = %e, "no peer took the partition");
                Err(e)
            }
        }
    }

    fn release_copies(&self, copies: Vec<RemoteCopy>) {
        if copies.is_empty() {
            return;
        }
        if let Some(remote) = &self.inner.config.remote {
            remote.release(copies);
        }
    }

    fn location(part: &Partition) -> Location {
        let on_peer = part.spilled.iter().any(|s| matches!(s, Spilled::Peer(_)));
        let on_disk = part.spilled.iter().any(|s| matches!(s, Spilled::Disk(_)));
        let in_memory = !part.memory.is_empty();
        match (on_peer, on_disk, in_memory) {
            (true, false, false) => Location::Peer,
            (true, _, _) => Location::Mixed,
            (false, false, _) => Location::Memory,
            (false, true, false) => Location::Disk,
            (false, true, true) => Location::MemoryAndDisk,
        }
    }

    /// Reads a partition and removes it from the store.
    ///
    /// The memory the batches held is released from the store's reservation, so the caller
    /// must account for them if it keeps them.
    pub fn take(&self, id: PartitionId) -> Result<Vec<RecordBatch>> {
        let out = self.read(id)?;
        self.remove(id);
        Ok(out)
    }

    /// Removes a partition, releasing its memory and deleting its files. Unknown ids are
    /// ignored.
    pub fn remove(&self, id: PartitionId) {
        let Some(slot) = self.inner.slots.lock().remove(&id) else {
            return;
        };
        let mut part = slot.data.lock();
        part.removed = true;
        part.memory.clear();
        let copies = part.remote_copies();
        part.spilled.clear();
        drop(part);
        let bytes = slot.memory_bytes.swap(0, Ordering::Relaxed);
        self.release(bytes);
        self.release_copies(copies);
    }

    /// The partition's schema.
    pub fn schema(&self, id: PartitionId) -> Result<SchemaRef> {
        Ok(Arc::clone(&self.slot(id)?.schema))
    }

    /// A description of the partition.
    pub fn info(&self, id: PartitionId) -> Result<PartitionInfo> {
        let slot = self.slot(id)?;
        let part = slot.data.lock();
        let memory_bytes = slot.memory_bytes.load(Ordering::Relaxed);
        let mut disk_bytes = 0;
        let mut peer_bytes = 0;
        let mut files: Vec<PathBuf> = Vec::new();
        let mut peers: Vec<String> = Vec::new();
        for s in &part.spilled {
            match s {
                Spilled::Disk(f) => {
                    disk_bytes += f.bytes;
                    if files.last().map(PathBuf::as_path) != Some(f.file.path()) {
                        files.push(f.file.path().to_path_buf());
                    }
                }
                Spilled::Peer(p) => {
                    peer_bytes += p.bytes;
                    for c in &p.copies {
                        if !peers.contains(&c.peer) {
                            peers.push(c.peer.clone());
                        }
                    }
                }
            }
        }
        Ok(PartitionInfo {
            id,
            location: Self::location(&part),
            rows: part.rows,
            memory_bytes,
            disk_bytes,
            files,
            peer_bytes,
            peers,
            lineage: part.lineage.clone(),
            rebuildable: part.rebuildable,
        })
    }

    /// Descriptions of every partition, by id.
    pub fn infos(&self) -> Vec<PartitionInfo> {
        let mut ids: Vec<PartitionId> = self.inner.slots.lock().keys().copied().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| self.info(id).ok())
            .collect()
    }

    /// Writes the partition's in-memory batches to disk now.
    pub fn evict(&self, id: PartitionId) -> Result<()> {
        let slot = self.slot(id)?;
        self.evict_slots(vec![slot])
    }

    /// Evicts least recently used partitions until at most `bytes` are held in memory.
    pub fn shrink_to(&self, bytes: u64) -> Result<()> {
        loop {
            let used = self.inner.memory_used.load(Ordering::Relaxed);
            if used <= bytes {
                break;
            }
            match self.lru_victim() {
                Some(victim) => self.evict_group(victim, used - bytes)?,
                None => break,
            }
        }
        Ok(())
    }

    /// What the memory pool calls to take the store's memory back before it refuses an
    /// operator, with the id of the store's memory consumer (see
    /// [`MemoryGovernor::set_reclaim`](crate::MemoryGovernor::set_reclaim)). It holds the store
    /// weakly: the store's reservation holds the pool.
    pub fn reclaimer(&self) -> (usize, Arc<dyn Reclaim>) {
        (
            self.inner.reservation.consumer().id(),
            Arc::new(StoreReclaim(Arc::downgrade(&self.inner))),
        )
    }

    /// Counters and current sizes.
    pub fn metrics(&self) -> StoreMetrics {
        let slots = self.inner.slots.lock();
        StoreMetrics {
            partitions: slots.len() as u64,
            memory_bytes: self.inner.memory_used.load(Ordering::Relaxed),
            disk_bytes: self.inner.disk.used(),
            evictions: self.inner.evictions.load(Ordering::Relaxed),
            files_written: self.inner.disk.files_written(),
            bytes_written: self.inner.disk.bytes_written(),
            sent_to_peers: self.inner.sent_to_peers.load(Ordering::Relaxed),
            bytes_to_peers: self.inner.bytes_to_peers.load(Ordering::Relaxed),
            rebuilt: self.inner.rebuilt.load(Ordering::Relaxed),
        }
    }

    /// The disk budget the store charges.
    pub fn disk_budget(&self) -> &Arc<DiskBudget> {
        &self.inner.disk
    }

    fn tick(&self) -> u64 {
        self.inner.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn slot(&self, id: PartitionId) -> Result<Arc<Slot>> {
        self.inner
            .slots
            .lock()
            .get(&id)
            .cloned()
            .ok_or(Error::UnknownPartition(id.0))
    }

    /// Reserves `size` bytes against both the store's budget and the session pool.
    fn try_reserve(&self, size: u64) -> bool {
        let inner = &self.inner;
        let before = inner.memory_used.fetch_add(size, Ordering::Relaxed);
        if before + size > inner.config.memory_budget {
            inner.memory_used.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        let Ok(size_usize) = usize::try_from(size) else {
            inner.memory_used.fetch_sub(size, Ordering::Relaxed);
            return false;
        };
        if inner.reservation.try_grow(size_usize).is_err() {
            inner.memory_used.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn release(&self, size: u64) {
        if size == 0 {
            return;
        }
        self.inner.memory_used.fetch_sub(size, Ordering::Relaxed);
        self.inner
            .reservation
            .shrink(usize::try_from(size).unwrap_or(usize::MAX));
    }

    /// The least recently used partition that holds memory.
    fn lru_victim(&self) -> Option<Arc<Slot>> {
        self.inner
            .slots
            .lock()
            .values()
            .filter(|s| s.memory_bytes.load(Ordering::Relaxed) > 0)
            .min_by_key(|s| s.last_used.load(Ordering::Relaxed))
            .cloned()
    }

    /// Evicts `first` and, while less than `target` bytes are chosen, the next least recently
    /// used partitions of the same schema: all into one file.
    fn evict_group(&self, first: Arc<Slot>, target: u64) -> Result<()> {
        let mut chosen = first.memory_bytes.load(Ordering::Relaxed);
        let mut victims = vec![Arc::clone(&first)];
        if chosen < target {
            // Each partition's last use is read once: other threads touch partitions while
            // this sorts, and a key that changes mid-sort breaks the sort's total order (the
            // standard library panics on that).
            let mut others: Vec<(u64, Arc<Slot>)> = self
                .inner
                .slots
                .lock()
                .values()
                .filter(|s| {
                    s.id != first.id
                        && s.memory_bytes.load(Ordering::Relaxed) > 0
                        && (Arc::ptr_eq(&s.schema, &first.schema) || s.schema == first.schema)
                })
                .map(|s| (s.last_used.load(Ordering::Relaxed), Arc::clone(s)))
                .collect();
            others.sort_by_key(|(used, _)| *used);
            for (_, s) in others {
                if chosen >= target {
                    break;
                }
                chosen += s.memory_bytes.load(Ordering::Relaxed);
                victims.push(s);
            }
        }
        self.evict_slots(victims)
    }

    /// Moves the in-memory batches of `victims` (partitions of one schema) out of memory: to
    /// peers first under [`RemotePolicy::PeersBeforeDisk`], the rest to one spill file.
    fn evict_slots(&self, mut victims: Vec<Arc<Slot>>) -> Result<()> {
        // Locked in id order; nothing else holds two partitions' locks, so this cannot deadlock.
        victims.sort_by_key(|s| s.id);
        let mut parts: Vec<_> = victims.iter().map(|s| s.data.lock()).collect();
        let mut evicted: Vec<usize> = (0..parts.len())
            .filter(|&i| !parts[i].memory.is_empty() && !parts[i].removed)
            .collect();
        if let Some(remote) = self.inner.config.remote.as_deref()
            && remote.policy() == RemotePolicy::PeersBeforeDisk
        {
            let mut released = 0;
            let mut sent = 0;
            evicted.retain(|&i| {
                let bytes = victims[i].memory_bytes.load(Ordering::Relaxed);
                match self.send_to_remote(remote, &victims[i], &mut parts[i], bytes) {
                    Ok(()) => {
                        released += victims[i].memory_bytes.swap(0, Ordering::Relaxed);
                        sent += 1;
                        false
                    }
                    Err(_) => true,
                }
            });
            self.inner
                .evictions
                .fetch_add(sent as u64, Ordering::Relaxed);
            self.release(released);
        }
        let Some(&first) = evicted.first() else {
            return Ok(());
        };
        let mut writer = self.writer(&victims[first].schema)?;
        let mut written = 0usize;
        let mut ranges = Vec::with_capacity(evicted.len());
        for &i in &evicted {
            let start = written;
            let before = writer.bytes();
            for b in &parts[i].memory {
                writer.write(b)?;
                written += 1;
            }
            ranges.push((start..written, writer.bytes() - before));
        }
        let file = Arc::new(writer.finish()?);
        // The file's header and footer count to its first partition.
        let overhead = file.bytes() - ranges.iter().map(|(_, b)| b).sum::<u64>();
        let mut released = 0;
        for (k, (&i, (batches, bytes))) in evicted.iter().zip(ranges).enumerate() {
            let part = &mut parts[i];
            part.memory.clear();
            part.spilled.push(Spilled::Disk(DiskPart {
                file: Arc::clone(&file),
                batches,
                bytes: bytes + if k == 0 { overhead } else { 0 },
            }));
            released += victims[i].memory_bytes.swap(0, Ordering::Relaxed);
        }
        drop(parts);
        tracing::debug!(
            partitions = evicted.len(),
            rows = file.rows(),
            bytes = file.bytes(),
            path = %file.path().display(),
            "evicted partitions to disk"
        );
        self.release(released);
        self.inner
            .evictions
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn writer(&self, schema: &SchemaRef) -> Result<SpillWriter> {
        let n = self.inner.next_file.fetch_add(1, Ordering::Relaxed);
        let path = self.inner.config.dir.join(format!("partitions-{n}.arrow"));
        SpillWriter::create(
            path,
            schema,
            self.inner.config.compression,
            Arc::clone(&self.inner.disk),
        )
    }

    fn write_file(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<SpillFile> {
        let mut w = self.writer(schema)?;
        for b in batches {
            w.write(b)?;
        }
        w.finish()
    }
}

/// Gives the store's memory back to the pool on demand, by evicting its least recently used
/// partitions (see [`PartitionStore::reclaimer`]).
struct StoreReclaim(std::sync::Weak<Inner>);

impl Reclaim for StoreReclaim {
    fn reclaim(&self, bytes: usize) -> usize {
        let Some(inner) = self.0.upgrade() else {
            return 0;
        };
        let store = PartitionStore { inner };
        let before = store.inner.memory_used.load(Ordering::Relaxed);
        if before == 0 {
            return 0;
        }
        // At least an eighth of the store's budget at once: fewer, larger files.
        let target = (bytes as u64).max(store.inner.config.memory_budget / 8);
        if let Err(e) = store.shrink_to(before.saturating_sub(target)) {
            tracing::debug!(error = %e, "the store could not give memory back");
        }
        let after = store.inner.memory_used.load(Ordering::Relaxed);
        before.saturating_sub(after) as usize
    }
}

/// The bytes of `batches` counting only the rows each slice covers, or `None` if arrow cannot
/// tell for some column.
fn sliced_bytes(batches: &[RecordBatch]) -> Option<u64> {
    let mut total = 0u64;
    for b in batches {
        for c in b.columns() {
            total += c.to_data().get_slice_memory_size().ok()? as u64;
        }
    }
    Some(total)
}
