//! The governor's pool: how one memory limit is shared between DataFusion's memory consumers.
//!
//! DataFusion operators reserve memory from a [`MemoryPool`] before they buffer data. A
//! consumer that *can spill* (sorts, hash aggregates, repartition buffers) writes what it holds
//! to disk when a reservation is refused; one that cannot (hash-join build sides, the merges of
//! spilled sorts, writers) fails the query. A pool cannot take memory back: it can only refuse
//! the next request, so the policy is in who is refused and when.
//!
//! DataFusion's `FairSpillPool` caps every *registered* spilling consumer at an equal share of
//! the limit. Idle consumers count too (a repartition buffer holding one batch, a partial
//! aggregate that passes rows through), so a grouped aggregation over many groups spilled with
//! most of the limit free: h2o q10 at 1e8 rows spilled 7.1 GiB while the pool's peak was
//! 5.3 GiB of an 11.8 GiB limit. Letting consumers borrow freely fixed that but broke a query
//! with two spilling sorts, whose merges (which cannot spill, and take as many spill files as
//! fit) then took the whole limit and refused each other. This pool keeps what worked in both:
//!
//! - **Shares as in DataFusion**: each reservation of a spilling consumer may hold an equal share
//!   of the limit (less what non-spilling consumers hold) among the registered spilling
//!   consumers. That rule is proven under small limits, where a single batch's state is a good
//!   part of a share.
//! - **Borrowing while memory is plentiful**: beyond its share, a spilling consumer may take
//!   free memory as long as (1) no registered spilling consumer has been refused yet (once one
//!   has spilled, memory is short, and borrowers are refused at their next request, so they
//!   spill and give it back), (2) what stays free is at least an eighth of the limit and at
//!   least the room every other consumer that has held memory needs to double it (or return
//!   to its peak) up to its share, and (3) the share is at least 32 MiB.
//! - **Consumers that cannot spill** (sort merges included) are served first come, first
//!   served, within the limit, as in DataFusion's pools.
//!
//! - **Reclaiming before refusing**: memory held outside the operators that can be given back
//!   cheaply (the partition store's in-memory partitions, already in their final form and
//!   written to disk in one go) is asked back, through [`Reclaim`], before any other consumer
//!   is refused. Otherwise a grace join's buckets, waiting in the store, would make the sort
//!   above the join spill, and its merge fail, with the bytes it needed parked in the store.
//!
//! Each consumer's peak and the requests it was refused are logged at `debug` level when it is
//! dropped, so `--log-level debug` shows what every operator was granted.

use std::collections::HashMap;
use std::fmt;

use bytesize::ByteSize;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

/// Borrowing beyond a share stops while less than this fraction (1/n) of the limit is free:
/// the rest is room for what operators need when they change phase (the merge of a spilled
/// aggregate, a sort's merge), which they cannot spill.
const BORROWING_RESERVE: usize = 8;

/// Borrowing is allowed only where a share is at least this large. Under smaller shares one
/// batch's aggregate state is a good part of a share: a consumer that borrowed spills runs
/// that its merge later cannot read back within its share (the corpus's distinct aggregates
/// under 4 MiB failed so), and spilling early costs little there.
const BORROWING_MIN_SHARE: usize = 32 << 20;

/// One registered consumer.
#[derive(Debug)]
struct Consumer {
    /// Whether it spills (or emits early) when refused; one that cannot fails the query.
    can_spill: bool,
    reserved: usize,
    peak: usize,
    refusals: usize,
}

impl Consumer {
    fn new(can_spill: bool) -> Self {
        Consumer {
            can_spill,
            reserved: 0,
            peak: 0,
            refusals: 0,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    consumers: HashMap<usize, Consumer>,
    /// Bytes held by spillable consumers.
    spillable: usize,
    /// Bytes held by other consumers that cannot spill.
    fixed: usize,
    /// Spillable consumers registered.
    registered: usize,
    /// Registered spillable consumers that have been refused (and so have spilled).
    spilled: usize,
}

impl State {
    fn total(&self) -> usize {
        self.spillable + self.fixed
    }

    /// The bytes held by spilling consumers, or by the others.
    fn held_by(&mut self, can_spill: bool) -> &mut usize {
        if can_spill {
            &mut self.spillable
        } else {
            &mut self.fixed
        }
    }

    /// Records `additional` bytes granted to consumer `id`.
    fn grant(&mut self, id: usize, can_spill: bool, additional: usize) {
        let c = self
            .consumers
            .entry(id)
            .or_insert_with(|| Consumer::new(can_spill));
        c.reserved += additional;
        c.peak = c.peak.max(c.reserved);
        *self.held_by(can_spill) += additional;
    }

    /// Why a reservation of consumer `id` (holding `held`) may not grow by `additional`, or
    /// `None`.
    fn refusal(
        &self,
        limit: usize,
        id: usize,
        can_spill: bool,
        held: usize,
        additional: usize,
    ) -> Option<String> {
        let total = self.total();
        let free = limit.saturating_sub(total);
        if additional > free {
            return Some(format!("{} of the limit is free", ByteSize(free as u64)));
        }
        // Consumers that cannot spill are first come, first served. (Capping a sort's merge
        // at its sort's part of the limit failed a window query under 12 MiB with 4.6 MB
        // free: a merge refused below two streams fails the query.)
        if !can_spill {
            return None;
        }
        let wanted = held + additional;
        // DataFusion's fair rule: a share of every registered spilling consumer...
        let available = limit.saturating_sub(self.fixed);
        let share = available / self.registered.max(1);
        if wanted <= share {
            return None;
        }
        // ...and beyond it, borrowing, but only while no consumer has had to spill.
        if share < BORROWING_MIN_SHARE {
            return Some(format!(
                "its share is {} of {} spilling consumers",
                ByteSize(share as u64),
                self.registered
            ));
        }
        if self.spilled > 0 {
            return Some(format!(
                "memory is short ({} spilling consumers have spilled), and its share \
                 is {} of {} spilling consumers",
                self.spilled,
                ByteSize(share as u64),
                self.registered
            ));
        }
        // Keep room for every other consumer that has held memory to double what it
        // holds, or to get back to its peak, up to the share; and an eighth of the
        // limit at least.
        let owed: usize = self
            .consumers
            .iter()
            .filter(|(other, c)| **other != id && c.can_spill && c.peak > 0)
            .map(|(_, c)| {
                share
                    .min((2 * c.reserved).max(c.peak))
                    .saturating_sub(c.reserved)
            })
            .sum();
        let kept = owed.max(limit / BORROWING_RESERVE);
        (free - additional < kept).then(|| {
            format!(
                "its share is {} of {} spilling consumers, and {} more is kept for the \
                 others to grow",
                ByteSize(share as u64),
                self.registered,
                ByteSize(kept as u64)
            )
        })
    }
}

/// Memory held outside DataFusion's operators that can be given back when an operator would
/// be refused: the partition store's in-memory partitions, which it writes to disk on demand.
pub trait Reclaim: Send + Sync {
    /// Frees about `bytes` (more is fine) by moving data out of memory, and returns the
    /// bytes freed. Called without any pool lock held, on the thread of the refused request.
    fn reclaim(&self, bytes: usize) -> usize;
}

/// Where the pool finds its [`Reclaim`], set after the pool is built (the reclaiming store
/// reserves from the pool, so it cannot exist first).
#[derive(Default)]
pub struct ReclaimSlot {
    registered: RwLock<Option<(usize, Arc<dyn Reclaim>)>>,
}

impl ReclaimSlot {
    /// Installs `reclaim`; `consumer` is the id of the memory consumer it reserves with, whose
    /// own requests it does not answer (it frees memory itself when refused).
    pub fn set(&self, consumer: usize, reclaim: Arc<dyn Reclaim>) {
        *self.registered.write() = Some((consumer, reclaim));
    }

    /// The reclaimer, unless `consumer` is its own.
    fn for_consumer(&self, consumer: usize) -> Option<Arc<dyn Reclaim>> {
        match &*self.registered.read() {
            Some((own, r)) if *own != consumer => Some(Arc::clone(r)),
            _ => None,
        }
    }
}

impl fmt::Debug for ReclaimSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReclaimSlot")
            .field("set", &self.registered.read().is_some())
            .finish()
    }
}

/// A [`MemoryPool`] that shares a limit between spilling consumers, lends what they leave while
/// memory is plentiful, takes back what can be reclaimed before refusing anyone, and serves
/// the rest first come, first served (see the [module docs](self)).
#[derive(Debug)]
pub struct SharingPool {
    limit: usize,
    state: Mutex<State>,
    reclaim: Arc<ReclaimSlot>,
}

impl SharingPool {
    /// A pool that grants at most `limit` bytes in total.
    pub fn new(limit: usize) -> Self {
        SharingPool {
            limit,
            state: Mutex::new(State::default()),
            reclaim: Arc::default(),
        }
    }

    /// The slot where a [`Reclaim`] is installed; shared, so it can be set after the pool is
    /// wrapped in other pools.
    pub fn reclaim_slot(&self) -> Arc<ReclaimSlot> {
        Arc::clone(&self.reclaim)
    }
}

impl fmt::Display for SharingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spillframe's pool of {}", ByteSize(self.limit as u64))
    }
}

impl MemoryPool for SharingPool {
    fn name(&self) -> &str {
        "sharing"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        let mut state = self.state.lock();
        if consumer.can_spill() {
            state.registered += 1;
        }
        state
            .consumers
            .insert(consumer.id(), Consumer::new(consumer.can_spill()));
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        let mut state = self.state.lock();
        let Some(c) = state.consumers.remove(&consumer.id()) else {
            return;
        };
        if c.can_spill {
            state.registered = state.registered.saturating_sub(1);
            if c.refusals > 0 {
                state.spilled = state.spilled.saturating_sub(1);
            }
        }
        // Reservations are freed before they unregister; anything left is released here.
        let held = state.held_by(c.can_spill);
        *held = held.saturating_sub(c.reserved);
        tracing::debug!(
            consumer = consumer.name(),
            peak = c.peak,
            refused = c.refusals,
            "memory consumer done"
        );
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        let consumer = reservation.consumer();
        self.state
            .lock()
            .grant(consumer.id(), consumer.can_spill(), additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        let mut state = self.state.lock();
        let id = reservation.consumer().id();
        let Some(c) = state.consumers.get_mut(&id) else {
            return;
        };
        c.reserved = c.reserved.saturating_sub(shrink);
        let can_spill = c.can_spill;
        let held = state.held_by(can_spill);
        *held = held.saturating_sub(shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let consumer = reservation.consumer();
        let id = consumer.id();
        let can_spill = consumer.can_spill();
        // Shares are checked per reservation, as in DataFusion's pools: an operator that
        // holds one reservation for its table and takes a fresh one to merge its spills must
        // get the merge's memory, or fail.
        let decide = |state: &mut State| {
            let why = state.refusal(self.limit, id, can_spill, reservation.size(), additional);
            if why.is_none() {
                state.grant(id, can_spill, additional);
            }
            why
        };
        let mut why = decide(&mut self.state.lock());
        if why.is_some()
            && let Some(reclaim) = self.reclaim.for_consumer(id)
        {
            // Ask the store for the bytes first, with the pool unlocked (its eviction
            // shrinks its own reservation), then decide again.
            let freed = reclaim.reclaim(additional);
            if freed > 0 {
                tracing::debug!(
                    consumer = consumer.name(),
                    additional,
                    freed,
                    "reclaimed memory before refusing"
                );
                why = decide(&mut self.state.lock());
            }
        }
        let Some(why) = why else {
            return Ok(());
        };
        let mut state = self.state.lock();
        if let Some(c) = state.consumers.get_mut(&id) {
            c.refusals += 1;
            if c.refusals == 1 && c.can_spill {
                state.spilled += 1;
            }
        }
        Err(DataFusionError::ResourcesExhausted(format!(
            "Failed to allocate additional {} for {} with {} already allocated: {why} \
             ({self})",
            ByteSize(additional as u64),
            consumer.name(),
            ByteSize(reservation.size() as u64),
        )))
    }

    fn reserved(&self) -> usize {
        self.state.lock().total()
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}
