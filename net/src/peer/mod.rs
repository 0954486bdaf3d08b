//! A peer: `spillframe peer --config cluster.toml --name a`.
//!
//! A peer listens for QUIC connections, checks each one (TLS certificates, then the token and
//! protocol version in the hello), and serves requests. It keeps the partitions that sessions
//! put on it in a spillframe session of its own, under the memory it offers in the cluster
//! file, spilling to its own disk when that runs out. A session's partitions live as long as
//! its connection: when the connection closes, they are dropped.
//!
//! - [`connection`]: the driver between quinn and [`crate::protocol::server`]'s state machine;
//! - [`service`]: what each request does.

pub mod connection;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::ClusterConfig;
use crate::error::{Error, Result};
use crate::protocol::server::ServerSettings;
use service::PeerState;
use spillframe_engine::jobs::FunctionRegistry;

/// A peer serving on its own runtime. Dropping it stops it.
pub struct RunningPeer {
    name: String,
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    state: Arc<PeerState>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RunningPeer {
    /// Starts the peer `name` of `config`: builds its session, binds its address and starts
    /// accepting connections. It runs SQL and plan fragments only: no user functions.
    pub fn start(config: &ClusterConfig, name: &str) -> Result<RunningPeer> {
        Self::start_with(config, name, FunctionRegistry::new())
    }

    /// [`start`](Self::start), with the user functions of `functions`: map jobs whose
    /// function is registered under the same name on the driver run it here, over the
    /// partitions this peer holds.
    pub fn start_with(
        config: &ClusterConfig,
        name: &str,
        functions: FunctionRegistry,
    ) -> Result<RunningPeer> {
        let peer = config.peer(name)?.clone();
        let server_config = crate::tls::server_config(config, name)?;
        let mut builder = spillframe_engine::Session::builder()
            .ignore_environment()
            .functions(functions)
            .memory_limit_bytes(peer.memory);
        if let Some(dir) = &peer.spill_dir {
            builder = builder.spill_dir(dir);
        }
        let session = builder.build()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("peer-{name}"))
            .enable_all()
            .build()
            .map_err(|e| Error::Bind {
                addr: peer.addr,
                reason: format!("starting the peer's runtime: {e}"),
            })?;
        let endpoint = {
            let _guard = runtime.enter();
            quinn::Endpoint::server(server_config, peer.addr).map_err(|e| Error::Bind {
                addr: peer.addr,
                reason: e.to_string(),
            })?
        };
        let addr = endpoint.local_addr().unwrap_or(peer.addr);
        let state = Arc::new(PeerState::new(
            ServerSettings {
                name: name.to_string(),
                token: config.token.clone(),
                memory: peer.memory,
                max_frame: config.max_frame as usize,
            },
            session,
        ));
        let accept = endpoint.clone();
        let accept_state = state.clone();
        runtime.spawn(async move {
            while let Some(incoming) = accept.accept().await {
                let state = accept_state.clone();
                tokio::spawn(connection::serve(state, incoming));
            }
        });
        info!(
            peer = name,
            %addr,
            memory = peer.memory,
            functions = ?state.status().functions,
            "peer listening"
        );
        Ok(RunningPeer {
            name: name.to_string(),
            addr,
            endpoint,
            state,
            runtime: Some(runtime),
        })
    }

    /// The peer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Partitions held now.
    pub fn partition_count(&self) -> usize {
        self.state.partition_count()
    }

    /// Open connections now.
    pub fn connection_count(&self) -> u64 {
        self.state.connection_count()
    }

    /// Blocks until the process receives Ctrl-C (SIGINT), then stops gracefully.
    pub fn run_until_interrupted(self) -> Result<()> {
        let Some(rt) = self.runtime.as_ref() else {
            return Ok(());
        };
        if let Err(e) = rt.block_on(tokio::signal::ctrl_c()) {
            warn!("waiting for Ctrl-C: {e}");
        }
        info!(peer = %self.name, "interrupted; stopping");
        self.stop();
        Ok(())
    }

    /// Stops gracefully: connections are closed with a reason the other side sees.
    pub fn stop(mut self) {
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"peer stopping");
        if let Some(rt) = self.runtime.take() {
            let endpoint = self.endpoint.clone();
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
            });
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }

    /// Stops abruptly, as a killed process would: no close is sent, the socket just goes
    /// silent, and the other side notices by its timeouts.
    pub fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RunningPeer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            self.endpoint
                .close(quinn::VarInt::from_u32(0), b"peer stopping");
            rt.shutdown_background();
        }
    }
}
