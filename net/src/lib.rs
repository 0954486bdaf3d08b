//! # spillframe-net
//!
//! The optional peer cluster of spillframe. Without a cluster file nothing here runs and a
//! session works alone; with one, a session can keep partitions on peers over QUIC.
//!
//! - [`config`]: `cluster.toml` (peers, trust, token, budgets, placement), with errors that
//!   name the field at fault;
//! - [`init`]: `spillframe cluster init`: a CA or pinned certificates, keys and a token;
//! - [`tls`]: rustls configurations: TLS 1.3, both sides authenticated, no 0-RTT;
//! - [`protocol`]: the versioned wire protocol as state machines without I/O (frames,
//!   messages, streams, the server's connection, the client's handshake);
//! - [`peer`]: the peer process: quinn driver and request service over a partition store;
//! - [`client`]: the connecting side: one connection per peer, one stream per request;
//! - [`cluster`]: a session's connections to all peers, as its partition store's remote tier
//!   (placement, liveness, rejoin), and the connector sessions use to find it.
//!
//! The engine does not depend on this crate; the facade wires the two together.

pub mod client;
pub mod cluster;
pub mod config;
pub mod error;
pub mod init;
pub mod peer;
pub mod protocol;
pub mod tls;

pub use client::{PeerClient, Stored, client_endpoint};
pub use cluster::{Cluster, NetConnector};
pub use config::{ClusterConfig, PeerConfig, Placement, Trust};
pub use error::{Error, Result};
pub use init::{InitOptions, InitTrust, init_cluster};
pub use peer::RunningPeer;
