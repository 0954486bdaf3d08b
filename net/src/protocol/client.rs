//! The connecting side's handshake, without I/O.

use bytes::BytesMut;

use super::ProtocolError;
use super::frame::{FrameDecoder, FrameKind, encode_frame};
use super::message::{self, Hello, HelloReply};

/// Reads the answer to a hello.
pub struct ClientHandshake {
    frames: FrameDecoder,
}

impl ClientHandshake {
    /// A handshake accepting frames up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> ClientHandshake {
        ClientHandshake {
            frames: FrameDecoder::new(max_frame),
        }
    }

    /// The bytes of a hello frame.
    pub fn hello_bytes(hello: &Hello) -> BytesMut {
        let mut out = BytesMut::new();
        encode_frame(FrameKind::Hello, &message::encode_hello(hello), &mut out);
        out
    }

    /// Feeds bytes of the reply; returns it once complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<HelloReply>, ProtocolError> {
        self.frames.push(data);
        match self.frames.next_frame()? {
            None => Ok(None),
            Some(frame) if frame.kind == FrameKind::Message => {
                message::decode(&frame.payload).map(Some)
            }
            Some(frame) => Err(ProtocolError::Unexpected(format!(
                "a {:?} frame as the answer to the hello",
                frame.kind
            ))),
        }
    }
}
