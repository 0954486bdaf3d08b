//! Frames: the unit every stream is cut into.
//!
//! A frame is a 4-byte big-endian payload length, a 1-byte kind, then the payload. The length
//! is checked against the connection's limit as soon as the header arrives, before any of the
//! payload is buffered, so a peer cannot make the other side allocate more than one frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::ProtocolError;

/// Bytes before a frame's payload: the length (u32, big-endian) and the kind (u8).
pub const HEADER_LEN: usize = 5;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// The handshake's first frame: the magic, the protocol version, then a postcard body.
    Hello = 0x48,
    /// A control message (postcard).
    Message = 0x4d,
    /// A piece of an Arrow IPC stream.
    Data = 0x44,
    /// The end of the Arrow IPC stream (no payload).
    End = 0x45,
}

impl FrameKind {
    fn from_byte(b: u8) -> Result<FrameKind, ProtocolError> {
        Ok(match b {
            0x48 => FrameKind::Hello,
            0x4d => FrameKind::Message,
            0x44 => FrameKind::Data,
            0x45 => FrameKind::End,
            other => return Err(ProtocolError::UnknownFrameKind(other)),
        })
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its kind.
    pub kind: FrameKind,
    /// Its payload.
    pub payload: Bytes,
}

/// Appends one frame to `out`.
///
/// Panics only on a payload over 4 GiB, which no caller builds: writers cut data into pieces of
/// at most the connection's frame limit.
pub fn encode_frame(kind: FrameKind, payload: &[u8], out: &mut BytesMut) {
    let len = u32::try_from(payload.len()).expect("frames are cut to the frame limit");
    out.reserve(HEADER_LEN + payload.len());
    out.put_u32(len);
    out.put_u8(kind as u8);
    out.put_slice(payload);
}

/// Cuts a byte stream into frames, whatever the sizes of the pieces it arrives in.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
    /// The header of the frame being received, once checked.
    pending: Option<(FrameKind, usize)>,
    failed: bool,
}

impl FrameDecoder {
    /// A decoder refusing frames whose payload is longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame,
            pending: None,
            failed: false,
        }
    }

    /// Adds bytes received from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `None` when more bytes are needed. After an error the decoder
    /// keeps returning it: a stream that broke the framing cannot be resynchronised.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.failed {
            return Err(ProtocolError::AfterError);
        }
        let result = self.decode();
        if result.is_err() {
            self.failed = true;
            self.buf = BytesMut::new();
        }
        result
    }

    fn decode(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.pending.is_none() {
            if self.buf.len() < HEADER_LEN {
                return Ok(None);
            }
            let len =
                u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            let kind = FrameKind::from_byte(self.buf[4])?;
            if len > self.max_frame {
                return Err(ProtocolError::FrameTooLarge {
                    len,
                    max: self.max_frame,
                });
            }
            if kind == FrameKind::End && len != 0 {
                return Err(ProtocolError::Malformed(format!(
                    "an end frame carries {len} bytes; it must be empty"
                )));
            }
            self.buf.advance(HEADER_LEN);
            self.pending = Some((kind, len));
        }
        let (kind, len) = self.pending.expect("set above");
        if self.buf.len() < len {
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(Frame {
            kind,
            payload: self.buf.split_to(len).freeze(),
        }))
    }

    /// Whether bytes of an unfinished frame are waiting.
    pub fn is_mid_frame(&self) -> bool {
        self.pending.is_some() || !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let mut wire = BytesMut::new();
        encode_frame(FrameKind::Message, b"hello", &mut wire);
        encode_frame(FrameKind::Data, &[7u8; 300], &mut wire);
        encode_frame(FrameKind::End, b"", &mut wire);
        for step in [1, 2, 5, 6, 64, wire.len()] {
            let mut d = FrameDecoder::new(1024);
            let mut got = vec![];
            for piece in wire.chunks(step) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert!(!d.is_mid_frame());
            assert_eq!(got.len(), 3, "step {step}");
            assert_eq!(&got[0].payload[..], b"hello");
            assert_eq!(got[1].kind, FrameKind::Data);
            assert_eq!(got[1].payload.len(), 300);
            assert_eq!(got[2].kind, FrameKind::End);
        }
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header() {
        let mut d = FrameDecoder::new(100);
        // Only the header: the refusal must not wait for (or buffer) the payload.
        d.push(&[0, 0, 0, 101, FrameKind::Data as u8]);
        assert_eq!(
            d.next_frame(),
            Err(ProtocolError::FrameTooLarge { len: 101, max: 100 })
        );
        d.push(b"more");
        assert_eq!(d.next_frame(), Err(ProtocolError::AfterError));
    }

    #[test]
    fn unknown_kind_and_nonempty_end_are_refused() {
        let mut d = FrameDecoder::new(100);
        d.push(&[0, 0, 0, 0, 0x99]);
        assert_eq!(d.next_frame(), Err(ProtocolError::UnknownFrameKind(0x99)));
        let mut d = FrameDecoder::new(100);
        d.push(&[0, 0, 0, 1, FrameKind::End as u8, 0]);
        assert!(matches!(d.next_frame(), Err(ProtocolError::Malformed(_))));
    }
}
