//! The peer protocol, as state machines that never touch a socket (the quinn-proto idiom):
//! bytes go in, events and bytes to send come out, and small drivers
//! ([`crate::peer::connection`], [`crate::client`]) move them between the machines and
//! quinn's streams. The whole
//! protocol can so be tested, and fuzzed, without a network.
//!
//! - [`frame`]: length-prefixed frames, refused above the connection's limit;
//! - [`message`]: the hello, requests and responses (serde, postcard);
//! - [`stream`]: one request or response per QUIC stream: a message, then optionally
//!   batches as an Arrow IPC stream;
//! - [`server`]: a peer's view of one connection: the handshake (version and token) on the
//!   first stream, then requests on any number of streams;
//! - [`client`]: the connecting side's handshake.
//!
//! A connection starts with the client opening a stream and sending a hello frame: the magic
//! `SPFR`, the protocol version (u32, big-endian), then the token and the client's identity.
//! The server answers with a welcome or a refusal on the same stream. Every other stream
//! carries one request and its response.

pub mod client;
pub mod frame;
/// The fuzz target's entry point: only with the `fuzz` feature (and in the unit tests).
#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz;
pub mod message;
pub mod server;
pub mod stream;

/// The protocol version. Both sides must speak the same one; a mismatch is refused with a
/// message naming both versions. Version 2 added fragment runs (`Request::Run`) and their
/// count in the status; version 3 registered functions (`Request::Call`), their count and
/// the peer's function names in the status.
pub const PROTOCOL_VERSION: u32 = 3;

/// The ALPN name of the protocol, checked by TLS.
pub const ALPN: &[u8] = b"spillframe/1";

/// The default largest frame payload: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// The smallest frame limit a cluster may set: 64 KiB (control messages must fit).
pub const MIN_MAX_FRAME: usize = 64 << 10;

/// The ways the other side can break the protocol. Each one closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A frame's length is over the limit.
    #[error("a frame of {len} bytes is over the limit of {max} bytes")]
    FrameTooLarge {
        /// The length announced.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame of a kind that does not exist.
    #[error("unknown frame kind 0x{0:02x}")]
    UnknownFrameKind(u8),
    /// A frame whose contents do not decode.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame that is valid but not allowed here.
    #[error("unexpected {0}")]
    Unexpected(String),
    /// The stream ended early.
    #[error("truncated stream: {0}")]
    Truncated(String),
    /// Arrow IPC data that does not decode.
    #[error("bad batch data: {0}")]
    Data(String),
    /// The hello's protocol version is not ours.
    #[error(
        "protocol version mismatch: this side speaks version {ours}, the other side version {theirs}; run the same spillframe version everywhere"
    )]
    VersionMismatch {
        /// Ours.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },
    /// The hello's token is not the cluster's.
    #[error("the application token does not match the cluster's")]
    BadToken,
    /// A frame arrived after the stream had already failed.
    #[error("data after a protocol error")]
    AfterError,
}
