//! Test utilities (feature `testing`): a remote tier of peers that live in this process.
//!
//! [`LocalPeers`] implements the partition store's [`RemoteTier`] with one engine [`Session`]
//! per peer. It does what a `spillframe peer` does with a request, minus QUIC: a put stores
//! the batches in the peer session's own partition store (which spills under the peer's own
//! limit), a get reads them back, and a run decodes the plan fragment with
//! [`run_fragment_blocking`] or calls the registered function with [`run_function_blocking`]
//! over the peer's copy. So tests of the engine exercise [`crate::remote`] end to end without a
//! network, and [`LocalPeers::set_down`] loses a peer's copies as a crash would.
//!
//! It is for tests only and is not part of the default build.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parking_lot::Mutex;
use spillframe_spill::{
    PartitionId, RemoteCopy, RemoteError, RemotePolicy, RemoteTier, RemoteWork,
};

use crate::error::Result;
use crate::remote::codec::run_fragment_blocking;
use crate::remote::function::run_function_blocking;
use crate::session::Session;

/// What a [`LocalPeers`] tier has done, for tests to assert that it was used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalPeerStats {
    /// Copies stored.
    pub puts: u64,
    /// Copies read back.
    pub gets: u64,
    /// Plan fragments run over a copy.
    pub fragments_run: u64,
    /// Registered functions run over a copy.
    pub functions_run: u64,
    /// Copies held now.
    pub held: u64,
}

/// An in-process remote tier: named peers, each an engine [`Session`] with its own memory
/// limit, partition store and spill directory.
pub struct LocalPeers {
    policy: RemotePolicy,
    copies_without_lineage: usize,
    peers: Vec<LocalPeer>,
    next_key: AtomicU64,
    puts: AtomicU64,
    gets: AtomicU64,
    fragments_run: AtomicU64,
    functions_run: AtomicU64,
}

struct LocalPeer {
    name: String,
    session: Session,
    /// Bytes this peer accepts from the driver (its budget, as a cluster peer's `memory`).
    capacity: u64,
    state: Mutex<PeerState>,
}

#[derive(Default)]
struct PeerState {
    held: HashMap<u64, (PartitionId, u64)>,
    used: u64,
    down: bool,
}

impl fmt::Debug for LocalPeers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalPeers")
            .field("policy", &self.policy)
            .field(
                "peers",
                &self.peers.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .field("stats", &self.stats())
            .finish()
    }
}

impl LocalPeers {
    /// `count` peers named `p0`, `p1`, ..., each accepting up to `capacity` bytes and running
    /// its own session under `peer_memory` bytes.
    pub fn new(
        count: usize,
        policy: RemotePolicy,
        capacity: u64,
        peer_memory: u64,
    ) -> Result<Arc<LocalPeers>> {
        let peers = (0..count)
            .map(|i| {
                Ok(LocalPeer {
                    name: format!("p{i}"),
                    session: Session::builder()
                        .memory_limit_bytes(peer_memory)
                        .target_partitions(1)
                        .ignore_environment()
                        .build()?,
                    capacity,
                    state: Mutex::new(PeerState::default()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(LocalPeers {
            policy,
            copies_without_lineage: if count > 1 { 2 } else { 1 },
            peers,
            next_key: AtomicU64::new(1),
            puts: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            fragments_run: AtomicU64::new(0),
            functions_run: AtomicU64::new(0),
        }))
    }

    /// What the tier has done so far.
    pub fn stats(&self) -> LocalPeerStats {
        LocalPeerStats {
            puts: self.puts.load(Ordering::Relaxed),
            gets: self.gets.load(Ordering::Relaxed),
            fragments_run: self.fragments_run.load(Ordering::Relaxed),
            functions_run: self.functions_run.load(Ordering::Relaxed),
            held: self
                .peers
                .iter()
                .map(|p| p.state.lock().held.len() as u64)
                .sum(),
        }
    }

    /// Marks a peer lost: its copies are gone and every request to it fails as a dead peer's
    /// would.
    pub fn set_down(&self, name: &str) {
        if let Some(p) = self.peers.iter().find(|p| p.name == name) {
            let mut st = p.state.lock();
            st.down = true;
            for (_, (id, _)) in st.held.drain() {
                p.session.store().remove(id);
            }
            st.used = 0;
        }
    }

    fn peer(
        &self,
        copy: &RemoteCopy,
    ) -> std::result::Result<(&LocalPeer, PartitionId), RemoteError> {
        let peer = self
            .peers
            .iter()
            .find(|p| p.name == copy.peer)
            .ok_or_else(|| RemoteError {
                peer: Some(copy.peer.clone()),
                reason: "no such peer".into(),
                lost: true,
            })?;
        let st = peer.state.lock();
        if st.down {
            return Err(RemoteError {
                peer: Some(peer.name.clone()),
                reason: "the peer is down".into(),
                lost: true,
            });
        }
        let (id, _) = *st.held.get(&copy.key).ok_or_else(|| RemoteError {
            peer: Some(peer.name.clone()),
            reason: format!("no copy with key {}", copy.key),
            lost: true,
        })?;
        Ok((peer, id))
    }
}

fn refused(peer: &LocalPeer, reason: impl fmt::Display) -> RemoteError {
    RemoteError {
        peer: Some(peer.name.clone()),
        reason: reason.to_string(),
        lost: false,
    }
}

impl RemoteTier for LocalPeers {
    fn policy(&self) -> RemotePolicy {
        self.policy
    }

    fn copies_without_lineage(&self) -> usize {
        self.copies_without_lineage
    }

    fn locations(&self) -> usize {
        self.peers.len()
    }

    fn put(
        &self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        bytes: u64,
        lineage: Option<&str>,
        copies: usize,
    ) -> std::result::Result<Vec<RemoteCopy>, RemoteError> {
        // The peers with the most room first; the budget is taken before storing.
        let mut chosen = Vec::new();
        {
            let mut order: Vec<(&LocalPeer, u64)> = self
                .peers
                .iter()
                .filter_map(|p| {
                    let st = p.state.lock();
                    (!st.down && st.used + bytes <= p.capacity).then_some((p, st.used))
                })
                .collect();
            order.sort_by_key(|(_, used)| *used);
            for (p, _) in order.into_iter().take(copies) {
                p.state.lock().used += bytes;
                chosen.push(p);
            }
        }
        let give_back = |peers: &[&LocalPeer]| {
            for p in peers {
                let mut st = p.state.lock();
                st.used = st.used.saturating_sub(bytes);
            }
        };
        if chosen.len() < copies {
            give_back(&chosen);
            return Err(RemoteError {
                peer: None,
                reason: format!(
                    "{} peers have room for {bytes} bytes, {copies} needed",
                    chosen.len()
                ),
                lost: false,
            });
        }
        let mut out = Vec::new();
        for (i, p) in chosen.iter().enumerate() {
            let store = p.session.store();
            let id = store.create(Arc::clone(schema), lineage.map(String::from));
            if let Some(e) = batches
                .iter()
                .find_map(|b| store.append(id, b.clone()).err())
            {
                store.remove(id);
                give_back(&chosen[i..]);
                self.release(out);
                return Err(refused(p, format!("storing a batch: {e}")));
            }
            let key = self.next_key.fetch_add(1, Ordering::Relaxed);
            p.state.lock().held.insert(key, (id, bytes));
            out.push(RemoteCopy {
                peer: p.name.clone(),
                key,
            });
        }
        self.puts.fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    fn get(&self, copy: &RemoteCopy) -> std::result::Result<Vec<RecordBatch>, RemoteError> {
        let (peer, id) = self.peer(copy)?;
        let batches = peer
            .session
            .store()
            .read(id)
            .map_err(|e| refused(peer, e))?;
        self.gets.fetch_add(1, Ordering::Relaxed);
        Ok(batches)
    }

    fn run(
        &self,
        copy: &RemoteCopy,
        work: RemoteWork<'_>,
    ) -> std::result::Result<Vec<RecordBatch>, RemoteError> {
        let (peer, id) = self.peer(copy)?;
        let (_, batches) = match work {
            RemoteWork::Fragment(bytes) => {
                let out = run_fragment_blocking(&peer.session, id, bytes);
                self.fragments_run.fetch_add(1, Ordering::Relaxed);
                out
            }
            RemoteWork::Function {
                name,
                index,
                batch_size,
            } => {
                let out = run_function_blocking(&peer.session, id, index, name, batch_size);
                self.functions_run.fetch_add(1, Ordering::Relaxed);
                out
            }
        }
        .map_err(|e| refused(peer, e))?;
        Ok(batches)
    }

    fn release(&self, copies: Vec<RemoteCopy>) {
        for c in copies {
            if let Some(p) = self.peers.iter().find(|p| p.name == c.peer) {
                let mut st = p.state.lock();
                if let Some((id, bytes)) = st.held.remove(&c.key) {
                    st.used = st.used.saturating_sub(bytes);
                    p.session.store().remove(id);
                }
            }
        }
    }
}
