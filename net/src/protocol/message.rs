//! The control messages, encoded with postcard.
//!
//! postcard is a compact, documented serde format (its wire format is specified and stable
//! across 1.x), so both sides of a connection decode the same bytes the same way; the
//! protocol version in the hello covers every change to these types.

use serde::{Deserialize, Serialize};

use super::{PROTOCOL_VERSION, ProtocolError};

/// The first bytes of every hello: they tell a spillframe peer from anything else.
pub const HELLO_MAGIC: [u8; 4] = *b"SPFR";

/// What a connecting side says first. The version travels before the body (see
/// [`encode_hello`]), so a version mismatch is recognised even when the bodies differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The application token of the cluster.
    pub token: String,
    /// Who connects: `driver` or a peer's name.
    pub from: String,
    /// The connecting session, which owns the partitions it puts on this connection.
    pub session: u64,
    /// The spillframe version of the connecting side, for messages.
    pub build: String,
}

/// The answer to a hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted.
    Welcome {
        /// The peer's name.
        peer: String,
        /// The memory the peer offers, in bytes.
        memory: u64,
    },
    /// Refused; the connection is closed after this.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A request, the first frame of a stream the driver opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness and round-trip time.
    Ping {
        /// Echoed back.
        seq: u64,
    },
    /// The peer's memory, spill and partitions.
    Status,
    /// Store a partition; its batches follow as an Arrow IPC stream. Answered with
    /// [`Response::Stored`].
    Put {
        /// The partition's id within the session.
        partition: u64,
        /// How to rebuild it, for the status display.
        lineage: Option<String>,
    },
    /// Send a partition back as an Arrow IPC stream after [`Response::Batches`].
    Get {
        /// The partition.
        partition: u64,
    },
    /// Run a plan fragment over a partition and send its output back as an Arrow IPC stream
    /// after [`Response::Batches`].
    Run {
        /// The partition.
        partition: u64,
        /// The fragment: a datafusion-proto physical plan whose leaf scans the partition.
        fragment: Vec<u8>,
    },
    /// Run the user function registered on the peer under `function` over a partition, and
    /// send its output back as an Arrow IPC stream after [`Response::Batches`].
    Call {
        /// The partition.
        partition: u64,
        /// The function's registered name.
        function: String,
        /// The partition's index in the driver's job (what the function sees).
        index: u64,
        /// Rows per call for a batch function; `None` for a partition function.
        batch_size: Option<u64>,
    },
    /// Forget partitions (unknown ones are ignored).
    Drop {
        /// The partitions.
        partitions: Vec<u64>,
    },
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The answer to [`Request::Ping`].
    Pong {
        /// The request's number.
        seq: u64,
    },
    /// The answer to [`Request::Status`].
    Status(PeerStatus),
    /// A partition was stored.
    Stored {
        /// Its rows.
        rows: u64,
        /// Its bytes in memory (or on disk, if the peer spilled it).
        bytes: u64,
    },
    /// Batches follow as an Arrow IPC stream.
    Batches,
    /// Partitions were dropped.
    Dropped {
        /// How many existed.
        count: u64,
    },
    /// The request failed; the connection stays open.
    Error {
        /// What went wrong, in the peer's words.
        message: String,
    },
}

/// A peer's state, for `spillframe cluster status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer's name.
    pub name: String,
    /// Its spillframe version.
    pub build: String,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// The memory it offers.
    pub memory_limit: u64,
    /// The memory its pool has reserved now.
    pub memory_used: u64,
    /// Bytes of partitions in its memory.
    pub partition_memory: u64,
    /// Bytes it has spilled to its disk and still holds.
    pub spilled_bytes: u64,
    /// Open connections.
    pub connections: u64,
    /// Plan fragments it has run since it started.
    pub fragments_run: u64,
    /// User functions it has run over partitions since it started.
    pub functions_run: u64,
    /// The names of the functions registered on it (none for the built-in `spillframe
    /// peer`, which serves SQL and expressions only).
    pub functions: Vec<String>,
    /// The partitions it holds.
    pub partitions: Vec<RemotePartition>,
}

/// One partition held by a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemotePartition {
    /// The owning session.
    pub session: u64,
    /// The partition's id within it.
    pub partition: u64,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// `memory`, `disk` or `memory+disk`.
    pub location: String,
    /// How to rebuild it, if known.
    pub lineage: Option<String>,
}

/// The payload of a hello frame: magic, version, then the postcard body.
pub fn encode_hello(hello: &Hello) -> Vec<u8> {
    encode_hello_with_version(hello, PROTOCOL_VERSION)
}

/// [`encode_hello`] with any version number (for tests of the refusal).
pub fn encode_hello_with_version(hello: &Hello, version: u32) -> Vec<u8> {
    let mut out = HELLO_MAGIC.to_vec();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&postcard::to_stdvec(hello).expect("a hello always encodes"));
    out
}

/// Reads a hello frame's payload, refusing a foreign magic or another protocol version.
pub fn decode_hello(payload: &[u8]) -> Result<Hello, ProtocolError> {
    if payload.len() < 8 || payload[..4] != HELLO_MAGIC {
        return Err(ProtocolError::Malformed(
            "the hello does not start with the spillframe magic".into(),
        ));
    }
    let version = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: version,
        });
    }
    decode(&payload[8..])
}

/// Encodes a control message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_stdvec(message).expect("control messages always encode")
}

/// Decodes a control message; trailing bytes are an error.
pub fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, ProtocolError> {
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(ProtocolError::Malformed(format!(
            "{} bytes after the end of a message",
            rest.len()
        ))),
        Err(e) => Err(ProtocolError::Malformed(format!(
            "undecodable message: {e}"
        ))),
    }
}
