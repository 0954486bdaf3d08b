//! What a peer does for each request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parking_lot::Mutex;
use spillframe_engine::Session;
use spillframe_spill::PartitionId;

use crate::protocol::message::{PeerStatus, RemotePartition, Response};
use crate::protocol::server::ServerSettings;

/// A partition's key on a peer: the owning session, and the session's id for it.
pub type PartitionKey = (u64, u64);

/// One peer's shared state.
pub struct PeerState {
    pub(crate) settings: ServerSettings,
    session: Session,
    partitions: Mutex<HashMap<PartitionKey, PartitionId>>,
    connections: AtomicU64,
    fragments_run: AtomicU64,
    functions_run: AtomicU64,
    started: Instant,
}

impl PeerState {
    /// A peer keeping its partitions in `session`'s store.
    pub fn new(settings: ServerSettings, session: Session) -> PeerState {
        PeerState {
            settings,
            session,
            partitions: Mutex::new(HashMap::new()),
            connections: AtomicU64::new(0),
            fragments_run: AtomicU64::new(0),
            functions_run: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    pub(crate) fn partition_count(&self) -> usize {
        self.partitions.lock().len()
    }

    pub(crate) fn connection_count(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed: the partitions of its session go with it.
    pub(crate) fn connection_closed(&self, session: Option<u64>) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(session) = session {
            let dropped: Vec<PartitionId> = {
                let mut parts = self.partitions.lock();
                let keys: Vec<_> = parts.keys().filter(|k| k.0 == session).copied().collect();
                keys.iter().filter_map(|k| parts.remove(k)).collect()
            };
            for id in &dropped {
                self.session.store().remove(*id);
            }
            if !dropped.is_empty() {
                tracing::info!(
                    peer = %self.settings.name,
                    session,
                    partitions = dropped.len(),
                    "session gone; its partitions dropped"
                );
            }
        }
    }

    /// The peer's status.
    pub fn status(&self) -> PeerStatus {
        let store = self.session.store();
        let metrics = store.metrics();
        let by_id: HashMap<PartitionId, PartitionKey> = self
            .partitions
            .lock()
            .iter()
            .map(|(k, v)| (*v, *k))
            .collect();
        let mut partitions: Vec<RemotePartition> = store
            .infos()
            .into_iter()
            .filter_map(|info| {
                let (session, partition) = *by_id.get(&info.id)?;
                Some(RemotePartition {
                    session,
                    partition,
                    rows: info.rows,
                    bytes: info.memory_bytes + info.disk_bytes,
                    location: info.location.to_string(),
                    lineage: info.lineage,
                })
            })
            .collect();
        partitions.sort_by_key(|p| (p.session, p.partition));
        PeerStatus {
            name: self.settings.name.clone(),
            build: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            memory_limit: self.settings.memory,
            memory_used: self.session.governor().reserved(),
            partition_memory: metrics.memory_bytes,
            spilled_bytes: metrics.disk_bytes,
            connections: self.connection_count(),
            fragments_run: self.fragments_run.load(Ordering::Relaxed),
            functions_run: self.functions_run.load(Ordering::Relaxed),
            functions: self.session.functions().names(),
            partitions,
        }
    }

    /// Starts storing a partition (replacing one with the same key).
    pub(crate) fn begin_put(
        &self,
        key: PartitionKey,
        schema: SchemaRef,
        lineage: Option<String>,
    ) -> PartitionId {
        let id = self.session.store().create(schema, lineage);
        if let Some(old) = self.partitions.lock().insert(key, id) {
            self.session.store().remove(old);
        }
        id
    }

    /// Appends a batch to a partition being stored (may spill; call off the async threads).
    pub(crate) fn append(&self, id: PartitionId, batch: RecordBatch) -> Result<(), String> {
        self.session
            .store()
            .append(id, batch)
            .map_err(|e| format!("storing a batch on peer '{}': {e}", self.settings.name))
    }

    /// Abandons a partition whose put failed.
    pub(crate) fn abort_put(&self, key: PartitionKey, id: PartitionId) {
        let mut parts = self.partitions.lock();
        if parts.get(&key) == Some(&id) {
            parts.remove(&key);
        }
        drop(parts);
        self.session.store().remove(id);
    }

    /// The answer to a finished put.
    pub(crate) fn stored(&self, id: PartitionId) -> Response {
        match self.session.store().info(id) {
            Ok(info) => Response::Stored {
                rows: info.rows,
                bytes: info.memory_bytes + info.disk_bytes,
            },
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        }
    }

    fn id(&self, key: PartitionKey) -> Result<PartitionId, String> {
        self.partitions.lock().get(&key).copied().ok_or_else(|| {
            format!(
                "partition {} of session {} is not on peer '{}'",
                key.1, key.0, self.settings.name
            )
        })
    }

    /// Runs a plan fragment over a partition (call off the async threads).
    pub(crate) fn run(
        &self,
        key: PartitionKey,
        fragment: &[u8],
    ) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
        let id = self.id(key)?;
        let out =
            spillframe_engine::remote::codec::run_fragment_blocking(&self.session, id, fragment)
                .map_err(|e| format!("peer '{}': {e}", self.settings.name))?;
        self.fragments_run.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    /// Runs the function registered as `function` over a partition (call off the async
    /// threads: the function runs on the peer's worker pool, and this waits for it).
    pub(crate) fn call(
        &self,
        key: PartitionKey,
        function: &str,
        index: u64,
        batch_size: Option<u64>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
        let id = self.id(key)?;
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let batch_size = batch_size.map(|n| usize::try_from(n).unwrap_or(usize::MAX).max(1));
        let out = spillframe_engine::remote::function::run_function_blocking(
            &self.session,
            id,
            index,
            function,
            batch_size,
        )
        .map_err(|e| match e {
            // The driver's error names the peer, the job and the partition; this says what
            // happened here.
            spillframe_engine::Error::UnknownFunction { name, registered } => format!(
                "no function '{name}' is registered here (registered: {registered}); the \
                 built-in `spillframe peer` serves SQL and expressions only: start peers \
                 that run your functions from your own program with \
                 spillframe::peer::serve(registry, config)"
            ),
            spillframe_engine::Error::UserFunction { source, .. } => source.to_string(),
            other => other.to_string(),
        })?;
        self.functions_run.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    /// A partition's schema and batches (reads spill files; call off the async threads).
    pub(crate) fn read(&self, key: PartitionKey) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
        let id = self.id(key)?;
        let store = self.session.store();
        let schema = store.schema(id).map_err(|e| e.to_string())?;
        let batches = store.read(id).map_err(|e| e.to_string())?;
        Ok((schema, batches))
    }

    /// Drops partitions; returns how many existed.
    pub(crate) fn drop_partitions(&self, session: u64, partitions: &[u64]) -> u64 {
        let ids: Vec<PartitionId> = {
            let mut parts = self.partitions.lock();
            partitions
                .iter()
                .filter_map(|p| parts.remove(&(session, *p)))
                .collect()
        };
        for id in &ids {
            self.session.store().remove(*id);
        }
        ids.len() as u64
    }
}
