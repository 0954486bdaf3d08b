//! The driver's view of the cluster: [`Cluster`] connects a session to every peer in a
//! `cluster.toml` and serves as its partition store's [`RemoteTier`].
//!
//! - **Placement.** A partition goes to the peers with the most free budget (the budget in
//!   `cluster.toml` less what this session has placed there), as many copies as the store asks
//!   for, each on a different peer. A peer that fails a put is skipped for the next one.
//! - **Liveness.** QUIC keep-alives run every `heartbeat`; a connection silent for
//!   `peer_timeout` is closed by quinn, and any request on it fails at once. A monitor task
//!   checks each connection every `heartbeat`: a closed one marks its peer down (its copies are
//!   lost, since a peer drops a session's partitions with its connection) and a down peer is
//!   reconnected, so a restarted peer rejoins.
//! - **Copies.** Each copy records the connection (epoch) it was placed on; a copy from an
//!   earlier epoch of its peer is lost even if the peer is back.
//!
//! The store calls these methods from its own threads and waits for the answer; the requests
//! run on the cluster's own runtime.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parking_lot::Mutex;
use spillframe_spill::{RemoteCopy, RemoteError, RemotePolicy, RemoteTier, RemoteWork};
use tracing::{info, warn};

use crate::client::{PeerClient, client_endpoint};
use crate::config::{ClusterConfig, PeerConfig, Placement};
use crate::error::{Error, Result};
use crate::protocol::message::{Hello, PeerStatus};

/// A session's connections to the peers of a cluster. Dropping it closes them, and the peers
/// drop the session's partitions.
pub struct Cluster {
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Inner {
    config: ClusterConfig,
    endpoint: quinn::Endpoint,
    hello: Hello,
    peers: Vec<PeerSlot>,
    /// Copies placed by this session: key → (peer index, epoch, bytes).
    placed: Mutex<HashMap<u64, (usize, u64, u64)>>,
    next_key: AtomicU64,
    stopping: AtomicBool,
}

struct PeerSlot {
    config: PeerConfig,
    link: Mutex<Link>,
}

#[derive(Default)]
struct Link {
    client: Option<PeerClient>,
    /// Counts connections; copies placed on an earlier one are gone.
    epoch: u64,
    /// Bytes this session has placed on the peer.
    used: u64,
    /// Why the peer is down, if it is.
    down: Option<String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("path", &self.inner.config.path)
            .field("peers", &self.inner.config.peer_names())
            .finish()
    }
}

impl Cluster {
    /// Loads `path` and connects to its peers.
    pub fn open(path: &Path) -> Result<Cluster> {
        Cluster::connect(ClusterConfig::load(path)?)
    }

    /// Connects to every peer of `config` (at once, each within `peer_timeout`). Peers that do
    /// not answer are marked down and retried every `heartbeat`; if none answers, this fails
    /// with an error naming each peer and why.
    pub fn connect(config: ClusterConfig) -> Result<Cluster> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spillframe-cluster")
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                action: "starting the cluster runtime",
                path: config.path.clone(),
                source: Arc::new(e),
            })?;
        let endpoint = {
            let _guard = runtime.enter();
            client_endpoint(&config, &config.driver)?
        };
        let hello = Hello {
            token: config.token.clone(),
            from: "driver".into(),
            session: session_id(),
            build: env!("CARGO_PKG_VERSION").to_string(),
        };
        let inner = Arc::new(Inner {
            peers: config
                .peers
                .iter()
                .map(|p| PeerSlot {
                    config: p.clone(),
                    link: Mutex::new(Link::default()),
                })
                .collect(),
            config,
            endpoint,
            hello,
            placed: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
        });
        let first = Arc::clone(&inner);
        runtime.block_on(async move {
            let tries = (0..first.peers.len()).map(|i| first.reconnect(i));
            futures::future::join_all(tries).await;
        });
        let up = inner.up_count();
        if up == 0 {
            let reasons: Vec<String> = inner
                .peers
                .iter()
                .map(|p| {
                    format!(
                        "'{}': {}",
                        p.config.name,
                        p.link.lock().down.clone().unwrap_or_default()
                    )
                })
                .collect();
            return Err(Error::NoPeerUp {
                path: inner.config.path.clone(),
                reasons: reasons.join("; "),
            });
        }
        info!(
            cluster = %inner.config.path.display(),
            up,
            peers = inner.peers.len(),
            "connected to the cluster"
        );
        let monitor = Arc::clone(&inner);
        runtime.spawn(async move { monitor.monitor().await });
        Ok(Cluster {
            inner,
            runtime: Some(runtime),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The names of the peers that are up now.
    pub fn peers_up(&self) -> Vec<String> {
        self.inner
            .peers
            .iter()
            .filter(|p| p.link.lock().client.is_some())
            .map(|p| p.config.name.clone())
            .collect()
    }

    /// The status of every peer, by name (an error for a peer that is down).
    pub fn status(&self) -> Vec<(String, Result<PeerStatus>)> {
        (0..self.inner.peers.len())
            .map(|index| {
                let slot = &self.inner.peers[index];
                let client = slot.link.lock().client.clone();
                let status = match client {
                    Some(c) => self.wait(index, async move { c.status().await }),
                    None => Err(self.peer_error(index, "down")),
                };
                (slot.config.name.clone(), status)
            })
            .collect()
    }

    fn peer_error(&self, index: usize, reason: &str) -> Error {
        let config = &self.inner.peers[index].config;
        Error::Peer {
            peer: config.name.clone(),
            addr: config.addr,
            reason: reason.to_string(),
        }
    }

    /// Runs a request to peer `index` on the cluster's runtime and waits for it, from any
    /// thread (including the threads of another runtime, which a plain `block_on` would
    /// refuse).
    fn wait<T: Send + 'static>(
        &self,
        index: usize,
        fut: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let abandoned =
            || self.peer_error(index, "the request was abandoned (the cluster is stopping)");
        let rt = self.runtime.as_ref().ok_or_else(abandoned)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| abandoned())?
    }

    fn lost(&self, peer: &str, reason: impl Into<String>) -> RemoteError {
        RemoteError {
            peer: Some(peer.to_string()),
            reason: reason.into(),
            lost: true,
        }
    }

    /// The client for a copy, if the copy still exists (its peer is up on the same epoch).
    fn client_for(&self, copy: &RemoteCopy) -> Result<(usize, PeerClient), RemoteError> {
        let Some(&(index, epoch, _)) = self.inner.placed.lock().get(&copy.key) else {
            return Err(self.lost(&copy.peer, "this session placed no such copy"));
        };
        let link = self.inner.peers[index].link.lock();
        match (&link.client, link.epoch == epoch) {
            (Some(c), true) => Ok((index, c.clone())),
            (Some(_), false) => Err(self.lost(
                &copy.peer,
                "the peer restarted or reconnected since the copy was placed",
            )),
            (None, _) => Err(self.lost(
                &copy.peer,
                link.down.clone().unwrap_or_else(|| "down".into()),
            )),
        }
    }

    /// Turns a request's error into the tier's: the peer is lost if the connection is.
    fn request_error(&self, index: usize, error: Error) -> RemoteError {
        let peer = self.inner.peers[index].config.name.clone();
        match error {
            Error::Remote { message, .. } => RemoteError {
                peer: Some(peer),
                reason: message,
                lost: false,
            },
            other => {
                self.inner.mark_down(index, other.to_string());
                self.lost(&peer, other.to_string())
            }
        }
    }
}

impl Inner {
    fn up_count(&self) -> usize {
        self.peers
            .iter()
            .filter(|p| p.link.lock().client.is_some())
            .count()
    }

    fn mark_down(&self, index: usize, reason: String) {
        let slot = &self.peers[index];
        let mut link = slot.link.lock();
        if let Some(client) = link.client.take() {
            warn!(peer = %slot.config.name, reason = %reason, "peer lost");
            client.close();
        }
        link.used = 0;
        link.down = Some(reason);
    }

    /// Connects (again) to peer `index`.
    async fn reconnect(&self, index: usize) {
        let slot = &self.peers[index];
        let connected = PeerClient::connect(
            &self.endpoint,
            &slot.config,
            &self.hello,
            self.config.max_frame as usize,
            self.config.peer_timeout,
        )
        .await;
        let mut link = slot.link.lock();
        match connected {
            Ok(client) => {
                if link.down.is_some() && link.epoch > 0 {
                    info!(peer = %slot.config.name, "peer rejoined");
                }
                link.client = Some(client);
                link.epoch += 1;
                link.used = 0;
                link.down = None;
            }
            Err(e) => {
                if link.down.is_none() {
                    warn!(peer = %slot.config.name, "peer unreachable: {e}");
                }
                link.down = Some(e.to_string());
            }
        }
    }

    /// Every `heartbeat`: marks closed connections down and reconnects down peers.
    async fn monitor(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.stopping.load(Ordering::Relaxed) {
            tick.tick().await;
            for index in 0..self.peers.len() {
                let closed = {
                    let link = self.peers[index].link.lock();
                    link.client.as_ref().and_then(PeerClient::close_reason)
                };
                if let Some(reason) = closed {
                    self.mark_down(index, format!("connection closed: {reason}"));
                }
                let down = self.peers[index].link.lock().client.is_none();
                if down && !self.stopping.load(Ordering::Relaxed) {
                    self.reconnect(index).await;
                }
            }
        }
    }
}

impl RemoteTier for Cluster {
    fn policy(&self) -> RemotePolicy {
        match self.inner.config.placement {
            Placement::PeersBeforeDisk => RemotePolicy::PeersBeforeDisk,
            Placement::Spread => RemotePolicy::Spread,
        }
    }

    fn copies_without_lineage(&self) -> usize {
        if self.inner.config.replicate { 2 } else { 1 }
    }

    fn retries(&self) -> u32 {
        self.inner.config.retries
    }

    fn locations(&self) -> usize {
        self.inner.peers.len()
    }

    fn put(
        &self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        bytes: u64,
        lineage: Option<&str>,
        copies: usize,
    ) -> Result<Vec<RemoteCopy>, RemoteError> {
        // Candidates: peers up with room, most free budget first. Their budget is taken now
        // (and given back if the put fails), so concurrent puts spread instead of all choosing
        // the same peer.
        let candidates: Vec<usize> = {
            let mut free: Vec<(usize, u64)> = self
                .inner
                .peers
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let link = p.link.lock();
                    let free = p.config.memory.saturating_sub(link.used);
                    (link.client.is_some() && free >= bytes).then_some((i, free))
                })
                .collect();
            free.sort_by_key(|&(i, free)| (std::cmp::Reverse(free), i));
            free.truncate(copies);
            free.into_iter().map(|(i, _)| i).collect()
        };
        if candidates.len() < copies {
            return Err(RemoteError {
                peer: None,
                reason: format!(
                    "{} of {} peers are up with {} free; {copies} needed",
                    candidates.len(),
                    self.inner.peers.len(),
                    bytesize::ByteSize(bytes)
                ),
                lost: false,
            });
        }
        for &i in &candidates {
            self.inner.peers[i].link.lock().used += bytes;
        }
        let batches: Arc<Vec<RecordBatch>> = Arc::new(batches.to_vec());
        let mut placed = Vec::new();
        let mut failures = Vec::new();
        for index in candidates {
            let (client, epoch) = {
                let mut link = self.inner.peers[index].link.lock();
                match &link.client {
                    Some(c) => (c.clone(), link.epoch),
                    None => {
                        link.used = link.used.saturating_sub(bytes);
                        continue;
                    }
                }
            };
            let key = self.inner.next_key.fetch_add(1, Ordering::Relaxed);
            let (schema, batches) = (Arc::clone(schema), Arc::clone(&batches));
            let lineage = lineage.map(str::to_string);
            let result = self.wait(index, async move {
                client.put(key, lineage, &schema, &batches).await
            });
            match result {
                Ok(_) => {
                    self.inner.placed.lock().insert(key, (index, epoch, bytes));
                    placed.push(RemoteCopy {
                        peer: self.inner.peers[index].config.name.clone(),
                        key,
                    });
                }
                Err(e) => {
                    let mut link = self.inner.peers[index].link.lock();
                    link.used = link.used.saturating_sub(bytes);
                    drop(link);
                    failures.push(self.request_error(index, e).to_string());
                }
            }
        }
        if placed.len() < copies {
            self.release(placed);
            return Err(RemoteError {
                peer: None,
                reason: format!("placing {copies} copies failed: {}", failures.join("; ")),
                lost: false,
            });
        }
        Ok(placed)
    }

    fn get(&self, copy: &RemoteCopy) -> Result<Vec<RecordBatch>, RemoteError> {
        let (index, client) = self.client_for(copy)?;
        let key = copy.key;
        self.wait(index, async move { client.get(key).await })
            .map(|(_, batches)| batches)
            .map_err(|e| self.request_error(index, e))
    }

    fn run(
        &self,
        copy: &RemoteCopy,
        work: RemoteWork<'_>,
    ) -> Result<Vec<RecordBatch>, RemoteError> {
        let (index, client) = self.client_for(copy)?;
        let key = copy.key;
        match work {
            RemoteWork::Fragment(fragment) => {
                let fragment = fragment.to_vec();
                self.wait(index, async move { client.run(key, fragment).await })
            }
            RemoteWork::Function {
                name,
                index: partition,
                batch_size,
            } => {
                let (name, batch_size) = (name.to_string(), batch_size.map(|n| n as u64));
                let partition = partition as u64;
                self.wait(index, async move {
                    client.call(key, name, partition, batch_size).await
                })
            }
        }
        .map_err(|e| self.request_error(index, e))
    }

    fn release(&self, copies: Vec<RemoteCopy>) {
        let mut by_peer: HashMap<usize, Vec<u64>> = HashMap::new();
        {
            let mut placed = self.inner.placed.lock();
            for copy in copies {
                let Some((index, epoch, bytes)) = placed.remove(&copy.key) else {
                    continue;
                };
                let mut link = self.inner.peers[index].link.lock();
                if link.epoch == epoch && link.client.is_some() {
                    link.used = link.used.saturating_sub(bytes);
                    by_peer.entry(index).or_default().push(copy.key);
                }
            }
        }
        let Some(rt) = self.runtime.as_ref() else {
            return;
        };
        for (index, keys) in by_peer {
            let Some(client) = self.inner.peers[index].link.lock().client.clone() else {
                continue;
            };
            rt.spawn(async move {
                if let Err(e) = client.drop_partitions(keys).await {
                    tracing::debug!("dropping partitions on peer '{}': {e}", client.name());
                }
            });
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        for p in &self.inner.peers {
            if let Some(c) = p.link.lock().client.take() {
                c.close();
            }
        }
        if let Some(rt) = self.runtime.take() {
            let endpoint = self.inner.endpoint.clone();
            // Let the close frames leave before the runtime goes.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            rt.spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), endpoint.wait_idle()).await;
                let _ = tx.send(());
            });
            let _ = rx.recv_timeout(Duration::from_secs(1));
            rt.shutdown_background();
        }
    }
}

/// A random session id: peers key the partitions of each session apart.
fn session_id() -> u64 {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // Only the uniqueness among a peer's sessions matters; the time will do.
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(bytes)
}

/// The connector a session uses to reach the cluster in a `cluster.toml`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetConnector;

impl spillframe_engine::remote::ClusterConnector for NetConnector {
    fn connect(&self, path: &Path) -> std::result::Result<Arc<dyn RemoteTier>, String> {
        Cluster::open(path)
            .map(|c| Arc::new(c) as Arc<dyn RemoteTier>)
            .map_err(|e| e.to_string())
    }
}
