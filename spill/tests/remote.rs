//! The partition store with a remote tier: eviction to peers before disk, spreading sealed
//! partitions, replicas of partitions without lineage, and lost copies.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
use parking_lot::Mutex;
use spillframe_spill::{
    Error, Location, RemoteCopy, RemoteError, RemotePolicy, RemoteTier, RemoteWork,
};

use crate::store::{batch, schema, store_with};

/// Peers in memory: each has a byte capacity; a peer can be marked down.
#[derive(Debug)]
struct FakePeers {
    policy: RemotePolicy,
    copies_without_lineage: usize,
    capacity: u64,
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    held: HashMap<RemoteCopy, (Vec<RecordBatch>, u64)>,
    down: HashSet<String>,
    next_key: u64,
    runs: u64,
}

const PEERS: [&str; 3] = ["a", "b", "c"];

impl FakePeers {
    fn new(policy: RemotePolicy, copies_without_lineage: usize, capacity: u64) -> Arc<Self> {
        Arc::new(FakePeers {
            policy,
            copies_without_lineage,
            capacity,
            state: Mutex::new(FakeState::default()),
        })
    }

    fn used(state: &FakeState, peer: &str) -> u64 {
        state
            .held
            .iter()
            .filter(|(c, _)| c.peer == peer)
            .map(|(_, (_, b))| b)
            .sum()
    }

    fn held(&self) -> usize {
        self.state.lock().held.len()
    }

    fn set_down(&self, peer: &str) {
        self.state.lock().down.insert(peer.to_string());
    }
}

impl RemoteTier for FakePeers {
    fn policy(&self) -> RemotePolicy {
        self.policy
    }

    fn copies_without_lineage(&self) -> usize {
        self.copies_without_lineage
    }

    fn put(
        &self,
        _schema: &SchemaRef,
        batches: &[RecordBatch],
        bytes: u64,
        _lineage: Option<&str>,
        copies: usize,
    ) -> Result<Vec<RemoteCopy>, RemoteError> {
        let mut st = self.state.lock();
        // The peers with the most room first.
        let mut peers: Vec<&str> = PEERS
            .iter()
            .copied()
            .filter(|p| !st.down.contains(*p) && Self::used(&st, p) + bytes <= self.capacity)
            .collect();
        peers.sort_by_key(|p| Self::used(&st, p));
        if peers.len() < copies {
            return Err(RemoteError {
                peer: None,
                reason: format!("{} peers have room, {copies} needed", peers.len()),
                lost: false,
            });
        }
        let mut out = Vec::new();
        for p in &peers[..copies] {
            st.next_key += 1;
            let copy = RemoteCopy {
                peer: p.to_string(),
                key: st.next_key,
            };
            st.held.insert(copy.clone(), (batches.to_vec(), bytes));
            out.push(copy);
        }
        Ok(out)
    }

    fn get(&self, copy: &RemoteCopy) -> Result<Vec<RecordBatch>, RemoteError> {
        let st = self.state.lock();
        if st.down.contains(&copy.peer) {
            return Err(RemoteError {
                peer: Some(copy.peer.clone()),
                reason: "timed out".into(),
                lost: true,
            });
        }
        Ok(st.held[copy].0.clone())
    }

    fn run(
        &self,
        copy: &RemoteCopy,
        work: RemoteWork<'_>,
    ) -> Result<Vec<RecordBatch>, RemoteError> {
        // The "fragment" here is a row limit, enough to see that it ran over the copy; a
        // "function" is the row limit in its name.
        let limit = match work {
            RemoteWork::Fragment(bytes) => usize::from(bytes[0]),
            RemoteWork::Function { name, .. } => name.parse().map_err(|_| RemoteError {
                peer: Some(copy.peer.clone()),
                reason: format!("no function '{name}'"),
                lost: false,
            })?,
        };
        let batches = self.get(copy)?;
        self.state.lock().runs += 1;
        Ok(vec![batches[0].slice(0, limit)])
    }

    fn release(&self, copies: Vec<RemoteCopy>) {
        let mut st = self.state.lock();
        for c in copies {
            st.held.remove(&c);
        }
    }
}

fn values(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

fn pool() -> Arc<dyn MemoryPool> {
    Arc::new(GreedyMemoryPool::new(1 << 30))
}

#[test]
fn evicted_partitions_go_to_peers_before_disk_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let peers = FakePeers::new(RemotePolicy::PeersBeforeDisk, 1, 1 << 30);
    let s = store_with(dir.path(), 200 << 10, &pool(), Some(peers.clone()));
    let a = s.put(schema(), [batch(0, 10_000)], None).unwrap();
    s.mark_rebuildable(a).unwrap();
    let b = s.put(schema(), [batch(100, 10_000)], None).unwrap();
    let c = s.put(schema(), [batch(200, 10_000)], None).unwrap();
    let info = s.info(a).unwrap();
    assert_eq!(info.location, Location::Peer, "a was evicted to a peer");
    assert_eq!(info.peers.len(), 1, "a rebuildable partition has one copy");
    assert!(info.files.is_empty() && info.disk_bytes == 0);
    assert_eq!(s.metrics().files_written, 0, "nothing went to disk");
    assert_eq!(s.metrics().sent_to_peers, 1);
    // Appending after eviction keeps the order: the peer's batches first, then memory's.
    s.append(a, batch(5, 2)).unwrap();
    assert_eq!(s.info(a).unwrap().location, Location::Mixed);
    let mut want: Vec<i64> = (0..10_000).collect();
    want.extend([5, 6]);
    assert_eq!(values(&s.read(a).unwrap()), want);
    assert_eq!(
        values(&s.read(c).unwrap()),
        (200..10_200).collect::<Vec<_>>()
    );
    s.remove(a);
    s.remove(b);
    s.remove(c);
    assert_eq!(peers.held(), 0, "removing partitions releases their copies");
}

#[test]
fn when_no_peer_has_room_eviction_goes_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let peers = FakePeers::new(RemotePolicy::PeersBeforeDisk, 1, 1 << 10);
    let s = store_with(dir.path(), 200 << 10, &pool(), Some(peers.clone()));
    let a = s.put(schema(), [batch(0, 10_000)], None).unwrap();
    s.put(schema(), [batch(100, 10_000)], None).unwrap();
    s.put(schema(), [batch(200, 10_000)], None).unwrap();
    assert_eq!(s.info(a).unwrap().location, Location::Disk);
    assert_eq!(peers.held(), 0);
    assert_eq!(values(&s.read(a).unwrap()), (0..10_000).collect::<Vec<_>>());
}

#[test]
fn spread_sends_sealed_partitions_to_the_emptiest_peers() {
    let dir = tempfile::tempdir().unwrap();
    let peers = FakePeers::new(RemotePolicy::Spread, 1, 1 << 30);
    let pool = pool();
    let s = store_with(dir.path(), 64 << 20, &pool, Some(peers.clone()));
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = s.put(schema(), [batch(i * 1000, 1000)], None).unwrap();
        s.mark_rebuildable(id).unwrap();
        assert_eq!(
            s.info(id).unwrap().location,
            Location::Memory,
            "not sealed yet"
        );
        s.seal(id).unwrap();
        ids.push(id);
    }
    let mut used: Vec<String> = ids
        .iter()
        .map(|id| {
            let info = s.info(*id).unwrap();
            assert_eq!(info.location, Location::Peer);
            assert_eq!(info.memory_bytes, 0);
            info.peers[0].clone()
        })
        .collect();
    used.sort();
    assert_eq!(used, ["a", "b", "c"], "one partition on each peer");
    assert_eq!(pool.reserved(), 0, "the driver holds none of them");
    assert_eq!(
        values(&s.read(ids[2]).unwrap()),
        (2000..3000).collect::<Vec<_>>()
    );
}

#[test]
fn partitions_without_lineage_are_replicated_and_survive_one_lost_peer() {
    let dir = tempfile::tempdir().unwrap();
    let peers = FakePeers::new(RemotePolicy::Spread, 2, 1 << 30);
    let s = store_with(dir.path(), 64 << 20, &pool(), Some(peers.clone()));
    let id = s
        .put(schema(), [batch(0, 100)], Some("from_batches".into()))
        .unwrap();
    s.seal(id).unwrap();
    let info = s.info(id).unwrap();
    assert_eq!(info.peers.len(), 2, "two copies on two peers");
    assert!(!info.rebuildable);
    peers.set_down(&info.peers[0]);
    assert_eq!(values(&s.read(id).unwrap()), (0..100).collect::<Vec<_>>());
    peers.set_down(&info.peers[1]);
    let err = s.read(id).unwrap_err();
    let Error::PeerLost {
        partition,
        peers: lost,
        ..
    } = &err
    else {
        panic!("expected PeerLost, got {err}");
    };
    assert_eq!(*partition, id.0);
    assert_eq!(lost, &info.peers);
    let msg = err.to_string();
    assert!(msg.contains(&format!("'{}'", info.peers[0])), "{msg}");
    assert!(msg.contains("from_batches"), "{msg}");
}

#[test]
fn a_lost_partition_can_be_reset_and_filled_again() {
    let dir = tempfile::tempdir().unwrap();
    let peers = FakePeers::new(RemotePolicy::Spread, 1, 1 << 30);
    let s = store_with(dir.path(), 64 << 20, &pool(), Some(peers.clone()));
    let id = s.put(schema(), [batch(0, 100)], None).unwrap();
    s.mark_rebuildable(id).unwrap();
    s.seal(id).unwrap();
    let peer = s.info(id).unwrap().peers[0].clone();
    peers.set_down(&peer);
    assert!(matches!(s.read(id), Err(Error::PeerLost { .. })));
    s.reset(id).unwrap();
    assert_eq!(s.info(id).unwrap().rows, 0);
    s.append(id, batch(0, 100)).unwrap();
    s.seal(id).unwrap();
    let info = s.info(id).unwrap();
    assert_ne!(
        info.peers[0], peer,
        "the rebuilt partition avoids the lost peer"
    );
    assert_eq!(values(&s.read(id).unwrap()), (0..100).collect::<Vec<_>>());
}

#[test]
fn fragments_run_only_over_wholly_remote_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let peers = FakePeers::new(RemotePolicy::Spread, 1, 1 << 30);
    let s = store_with(dir.path(), 64 << 20, &pool(), Some(peers.clone()));
    let id = s.put(schema(), [batch(7, 100)], None).unwrap();
    assert!(s.remote_copies(id).unwrap().is_none());
    assert!(matches!(
        s.run_remote(id, RemoteWork::Fragment(&[3])),
        Err(Error::NotRemote {
            location: Location::Memory,
            ..
        })
    ));
    s.seal(id).unwrap();
    assert_eq!(s.remote_copies(id).unwrap().unwrap().len(), 1);
    assert_eq!(
        values(&s.run_remote(id, RemoteWork::Fragment(&[3])).unwrap()),
        [7, 8, 9]
    );
    let two = RemoteWork::Function {
        name: "2",
        index: 0,
        batch_size: None,
    };
    assert_eq!(values(&s.run_remote(id, two).unwrap()), [7, 8]);
    let unknown = RemoteWork::Function {
        name: "score",
        index: 0,
        batch_size: Some(10),
    };
    let err = s.run_remote(id, unknown).unwrap_err().to_string();
    assert!(err.contains("no function 'score'"), "{err}");
    assert_eq!(peers.state.lock().runs, 2);
}
