//! The error type of the net crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in the cluster layer. Every variant names the file, field,
/// peer or address at fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The cluster file cannot be parsed, or a field has a value that cannot be used.
    #[error("cluster config '{}': {field}: {reason}", path.display())]
    Config {
        /// The cluster file.
        path: PathBuf,
        /// The field at fault, e.g. `peer[1].addr` (empty when the file as a whole is bad).
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// A file system operation failed.
    #[error("{action} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A certificate, key or TLS setting could not be used.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// An option of `cluster init` that cannot be used.
    #[error("cluster init: {option}: {reason}")]
    InitOption {
        /// The option, e.g. `--peers`.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// Generating certificates failed.
    #[error("generating certificates: {0}")]
    Certificates(String),
    /// A peer broke the protocol: a malformed or oversized frame, or a message out of order.
    /// The connection is closed.
    #[error("protocol error: {0}")]
    Protocol(#[from] crate::protocol::ProtocolError),
    /// The other side refused the handshake (wrong token, version mismatch).
    #[error("peer '{peer}' refused the connection: {reason}")]
    Refused {
        /// The peer.
        peer: String,
        /// What it said.
        reason: String,
    },
    /// A peer could not be reached or the connection broke.
    #[error("peer '{peer}' ({addr}): {reason}")]
    Peer {
        /// The peer's name.
        peer: String,
        /// Its address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// A peer answered a request with an error.
    #[error("peer '{peer}': {message}")]
    Remote {
        /// The peer's name.
        peer: String,
        /// Its message.
        message: String,
    },
    /// A peer named on the command line or in a call is not in the cluster file.
    #[error("no peer named '{name}' in the cluster; peers: {known}")]
    UnknownPeer {
        /// The name asked for.
        name: String,
        /// The peers that exist.
        known: String,
    },
    /// A QUIC endpoint could not be bound.
    #[error("binding {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// An error from Arrow while encoding or decoding batches.
    #[error("{0}")]
    Arrow(Arc<arrow::error::ArrowError>),
    /// No peer of a cluster answered when a session connected.
    #[error("no peer of cluster '{}' answered: {reasons}", path.display())]
    NoPeerUp {
        /// The cluster file.
        path: PathBuf,
        /// Each peer and why it did not answer.
        reasons: String,
    },
    /// An error from the engine (the peer's own session).
    #[error(transparent)]
    Engine(#[from] spillframe_engine::Error),
    /// An error from the spill layer (the peer's partition store).
    #[error(transparent)]
    Spill(Arc<spillframe_spill::Error>),
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Arrow(Arc::new(e))
    }
}

impl From<spillframe_spill::Error> for Error {
    fn from(e: spillframe_spill::Error) -> Self {
        Error::Spill(Arc::new(e))
    }
}

impl Error {
    /// An I/O error on a path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

/// The net crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
