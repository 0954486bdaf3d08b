//! One request or response on one QUIC stream: a control message, then optionally an Arrow
//! IPC stream cut into data frames and closed by an end frame.

use std::marker::PhantomData;

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::Schema;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamEncoder;
use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use super::frame::{FrameDecoder, FrameKind, encode_frame};
use super::{ProtocolError, message};

/// What a stream delivered.
#[derive(Debug)]
pub enum Incoming<M> {
    /// The stream's control message.
    Message(M),
    /// The schema of the data, as soon as it is known (before its first batch; an empty
    /// partition has a schema and no batch).
    Schema(arrow::datatypes::SchemaRef),
    /// A batch of the data that follows it.
    Batch(RecordBatch),
    /// The end of the data.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitMessage,
    AfterMessage,
    Data,
    Ended,
}

/// Decodes one stream: exactly one message, then optionally data frames and an end frame.
/// Anything else (a second message, data before the message, frames after the end, bytes
/// that do not decode) is a protocol error.
pub struct InboundStream<M> {
    frames: FrameDecoder,
    state: State,
    ipc: StreamDecoder,
    schema_sent: bool,
    _message: PhantomData<fn() -> M>,
}

impl<M: for<'de> Deserialize<'de>> InboundStream<M> {
    /// A stream refusing frames over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        InboundStream {
            frames: FrameDecoder::new(max_frame),
            state: State::AwaitMessage,
            ipc: StreamDecoder::new(),
            schema_sent: false,
            _message: PhantomData,
        }
    }

    /// Feeds bytes read from the stream; returns what they completed.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Incoming<M>>, ProtocolError> {
        self.frames.push(data);
        let mut out = Vec::new();
        while let Some(frame) = self.frames.next_frame()? {
            match (self.state, frame.kind) {
                (State::AwaitMessage, FrameKind::Message) => {
                    out.push(Incoming::Message(message::decode(&frame.payload)?));
                    self.state = State::AfterMessage;
                }
                (State::AfterMessage | State::Data, FrameKind::Data) => {
                    self.state = State::Data;
                    let mut buffer = Buffer::from(frame.payload.to_vec());
                    while !buffer.is_empty() {
                        let batch = decode_ipc(&mut self.ipc, &mut buffer)?;
                        if !self.schema_sent
                            && let Some(schema) = self.ipc.schema()
                        {
                            self.schema_sent = true;
                            out.push(Incoming::Schema(schema));
                        }
                        match batch {
                            Some(batch) => out.push(Incoming::Batch(batch)),
                            None => break,
                        }
                    }
                }
                (State::Data, FrameKind::End) => {
                    self.ipc
                        .finish()
                        .map_err(|e| ProtocolError::Data(e.to_string()))?;
                    out.push(Incoming::End);
                    self.state = State::Ended;
                }
                (state, kind) => {
                    return Err(ProtocolError::Unexpected(format!(
                        "a {kind:?} frame {}",
                        match state {
                            State::AwaitMessage => "before the request's message",
                            State::AfterMessage => "right after the message",
                            State::Data => "in the middle of the data",
                            State::Ended => "after the end of the data",
                        }
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The stream's sender finished. Stopping inside a frame or inside the data is an error.
    pub fn finish(&mut self) -> Result<(), ProtocolError> {
        if self.frames.is_mid_frame() {
            return Err(ProtocolError::Truncated(
                "the stream ended inside a frame".into(),
            ));
        }
        match self.state {
            State::AwaitMessage => Err(ProtocolError::Truncated(
                "the stream ended before its message".into(),
            )),
            State::Data => Err(ProtocolError::Truncated(
                "the stream ended before the end of its data".into(),
            )),
            State::AfterMessage | State::Ended => Ok(()),
        }
    }
}

/// Arrow's decoder is trusted not to panic on bad bytes, but a panic here would take a
/// peer's connection task down, so one is turned into a protocol error.
fn decode_ipc(
    decoder: &mut StreamDecoder,
    buffer: &mut Buffer,
) -> Result<Option<RecordBatch>, ProtocolError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decoder.decode(buffer))) {
        Ok(Ok(batch)) => Ok(batch),
        Ok(Err(e)) => Err(ProtocolError::Data(e.to_string())),
        Err(_) => Err(ProtocolError::Data("undecodable Arrow IPC data".into())),
    }
}

/// Appends a message frame to `out`.
pub fn write_message<T: Serialize>(message: &T, out: &mut BytesMut) {
    encode_frame(FrameKind::Message, &message::encode(message), out);
}

/// Encodes batches as an Arrow IPC stream cut into data frames of at most `max_frame` bytes.
pub struct BatchWriter {
    encoder: StreamEncoder,
    max_frame: usize,
}

impl BatchWriter {
    /// A writer for batches of `schema`.
    pub fn new(schema: &Schema, max_frame: usize) -> Result<Self, ProtocolError> {
        Ok(BatchWriter {
            encoder: StreamEncoder::try_new(schema)
                .map_err(|e| ProtocolError::Data(e.to_string()))?,
            max_frame,
        })
    }

    /// Appends the frames of one batch to `out`.
    pub fn write(&mut self, batch: &RecordBatch, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let buffers = self
            .encoder
            .encode(batch)
            .map_err(|e| ProtocolError::Data(e.to_string()))?;
        self.frame(buffers, out);
        Ok(())
    }

    /// Appends the end of the IPC stream and the end frame to `out`.
    pub fn finish(self, out: &mut BytesMut) -> Result<(), ProtocolError> {
        let max_frame = self.max_frame;
        let buffers = self
            .encoder
            .finish()
            .map_err(|e| ProtocolError::Data(e.to_string()))?;
        BatchWriter::frame_with(max_frame, buffers, out);
        encode_frame(FrameKind::End, &[], out);
        Ok(())
    }

    fn frame(&self, buffers: Vec<Buffer>, out: &mut BytesMut) {
        BatchWriter::frame_with(self.max_frame, buffers, out);
    }

    fn frame_with(max_frame: usize, buffers: Vec<Buffer>, out: &mut BytesMut) {
        let mut pending = Vec::new();
        for buffer in buffers {
            let mut bytes = buffer.as_slice();
            while !bytes.is_empty() {
                let take = (max_frame - pending.len()).min(bytes.len());
                pending.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if pending.len() == max_frame {
                    encode_frame(FrameKind::Data, &pending, out);
                    pending.clear();
                }
            }
        }
        if !pending.is_empty() {
            encode_frame(FrameKind::Data, &pending, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::protocol::message::Request;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("row{i}")),
                )),
            ],
        )
        .unwrap()
    }

    fn put_stream(max_frame: usize) -> BytesMut {
        let mut wire = BytesMut::new();
        write_message(
            &Request::Put {
                partition: 7,
                lineage: None,
            },
            &mut wire,
        );
        let b = batch(1000);
        let mut w = BatchWriter::new(&b.schema(), max_frame).unwrap();
        w.write(&b, &mut wire).unwrap();
        w.write(&b.slice(10, 5), &mut wire).unwrap();
        w.finish(&mut wire).unwrap();
        wire
    }

    #[test]
    fn message_and_batches_round_trip_in_small_frames() {
        let wire = put_stream(256);
        for step in [3, 1000, wire.len()] {
            let mut s = InboundStream::<Request>::new(256);
            let mut got = vec![];
            for piece in wire.chunks(step) {
                got.extend(s.push(piece).unwrap());
            }
            s.finish().unwrap();
            assert!(matches!(
                got[0],
                Incoming::Message(Request::Put { partition: 7, .. })
            ));
            assert!(matches!(&got[1], Incoming::Schema(s) if s.fields().len() == 2));
            let batches: Vec<_> = got
                .iter()
                .filter_map(|i| match i {
                    Incoming::Batch(b) => Some(b.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(batches.len(), 2);
            assert_eq!(batches[0], batch(1000));
            assert_eq!(batches[1], batch(1000).slice(10, 5));
            assert!(matches!(got.last(), Some(Incoming::End)));
        }
    }

    #[test]
    fn out_of_order_frames_are_errors() {
        // Data first.
        let mut wire = BytesMut::new();
        encode_frame(FrameKind::Data, b"xx", &mut wire);
        let e = InboundStream::<Request>::new(64).push(&wire).unwrap_err();
        assert!(matches!(e, ProtocolError::Unexpected(_)), "{e}");
        // Two messages.
        let mut wire = BytesMut::new();
        write_message(&Request::Status, &mut wire);
        write_message(&Request::Status, &mut wire);
        assert!(InboundStream::<Request>::new(64).push(&wire).is_err());
        // Garbage in the data.
        let mut wire = BytesMut::new();
        write_message(&Request::Status, &mut wire);
        encode_frame(FrameKind::Data, &[0xff; 40], &mut wire);
        encode_frame(FrameKind::End, &[], &mut wire);
        let e = InboundStream::<Request>::new(64).push(&wire).unwrap_err();
        assert!(matches!(e, ProtocolError::Data(_)), "{e}");
    }

    #[test]
    fn truncated_streams_are_errors() {
        let wire = put_stream(1 << 16);
        let mut s = InboundStream::<Request>::new(1 << 16);
        s.push(&wire[..wire.len() - 5]).unwrap();
        assert!(matches!(s.finish(), Err(ProtocolError::Truncated(_))));
        let mut s = InboundStream::<Request>::new(1 << 16);
        s.push(&wire[..wire.len() - 1]).unwrap();
        assert!(matches!(s.finish(), Err(ProtocolError::Truncated(_))));
    }
}
