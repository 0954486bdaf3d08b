//! A peer's side of one connection, without I/O.
//!
//! Feed it what each stream delivers ([`ServerConnection::handle_data`],
//! [`ServerConnection::handle_finish`]) and act on what [`ServerConnection::poll_event`]
//! returns: bytes to send, requests and their batches to serve, or the order to close the
//! connection. Before the handshake only the hello is accepted; afterwards each stream carries
//! one request.

use std::collections::{HashMap, VecDeque};

use arrow::array::RecordBatch;
use bytes::{Bytes, BytesMut};
use ring::hmac;

use super::ProtocolError;
use super::frame::{FrameDecoder, FrameKind, encode_frame};
use super::message::{self, HelloReply, Request};
use super::stream::{InboundStream, Incoming};

/// What a peer checks a connection against.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The peer's name, sent in the welcome.
    pub name: String,
    /// The cluster's token.
    pub token: String,
    /// The memory the peer offers, sent in the welcome.
    pub memory: u64,
    /// The largest frame accepted.
    pub max_frame: usize,
}

/// What the driver must do next.
#[derive(Debug)]
pub enum ServerEvent {
    /// Send bytes on a stream, then finish its sending side if `fin`.
    Transmit {
        /// The stream.
        stream: u64,
        /// The bytes.
        data: Bytes,
        /// Whether the stream's sending side ends after them.
        fin: bool,
    },
    /// The handshake succeeded.
    Authenticated {
        /// Who connected.
        from: String,
        /// Their session.
        session: u64,
    },
    /// A request to serve; its answer goes on the same stream.
    Request {
        /// The stream.
        stream: u64,
        /// The request.
        request: Request,
    },
    /// The schema of a request's data, before its first batch.
    Schema {
        /// The stream.
        stream: u64,
        /// The schema.
        schema: arrow::datatypes::SchemaRef,
    },
    /// A batch of a request's data.
    Batch {
        /// The stream.
        stream: u64,
        /// The batch.
        batch: RecordBatch,
    },
    /// The end of a request's data.
    DataEnd {
        /// The stream.
        stream: u64,
    },
    /// Close the connection (after sending what was queued before this event).
    Close {
        /// Why; sent to the other side as the close reason.
        error: ProtocolError,
    },
}

enum Auth {
    AwaitHello {
        stream: Option<u64>,
        frames: FrameDecoder,
    },
    Ready,
    Closed,
}

/// One connection's protocol state.
pub struct ServerConnection {
    settings: ServerSettings,
    /// The token's MAC under a key of this connection: tokens are compared in constant time.
    token_key: hmac::Key,
    token_tag: hmac::Tag,
    auth: Auth,
    streams: HashMap<u64, InboundStream<Request>>,
    events: VecDeque<ServerEvent>,
}

impl ServerConnection {
    /// A connection that has not said hello yet.
    pub fn new(settings: ServerSettings) -> ServerConnection {
        let rng = ring::rand::SystemRandom::new();
        let token_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system's random number generator works");
        let token_tag = hmac::sign(&token_key, settings.token.as_bytes());
        let max_frame = settings.max_frame;
        ServerConnection {
            settings,
            token_key,
            token_tag,
            auth: Auth::AwaitHello {
                stream: None,
                frames: FrameDecoder::new(max_frame),
            },
            streams: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Whether the handshake has succeeded and the connection is open.
    pub fn is_ready(&self) -> bool {
        matches!(self.auth, Auth::Ready)
    }

    /// Whether the connection was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.auth, Auth::Closed)
    }

    /// The next thing to do.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Bytes arrived on `stream`.
    pub fn handle_data(&mut self, stream: u64, data: &[u8]) {
        match &mut self.auth {
            Auth::Closed => {}
            Auth::AwaitHello {
                stream: hello_stream,
                frames,
            } => {
                if hello_stream.is_some_and(|s| s != stream) {
                    self.close(ProtocolError::Unexpected(
                        "a request before the handshake finished".into(),
                    ));
                    return;
                }
                *hello_stream = Some(stream);
                frames.push(data);
                match frames.next_frame() {
                    Ok(None) => {}
                    Ok(Some(frame)) if frame.kind == FrameKind::Hello => {
                        if frames.is_mid_frame() {
                            self.close(ProtocolError::Unexpected("data after the hello".into()));
                            return;
                        }
                        self.on_hello(stream, &frame.payload);
                    }
                    Ok(Some(frame)) => self.close(ProtocolError::Unexpected(format!(
                        "a {:?} frame before the hello",
                        frame.kind
                    ))),
                    Err(e) => self.close(e),
                }
            }
            Auth::Ready => {
                let max_frame = self.settings.max_frame;
                let inbound = self
                    .streams
                    .entry(stream)
                    .or_insert_with(|| InboundStream::new(max_frame));
                match inbound.push(data) {
                    Ok(items) => {
                        for item in items {
                            self.events.push_back(match item {
                                Incoming::Message(request) => {
                                    ServerEvent::Request { stream, request }
                                }
                                Incoming::Schema(schema) => ServerEvent::Schema { stream, schema },
                                Incoming::Batch(batch) => ServerEvent::Batch { stream, batch },
                                Incoming::End => ServerEvent::DataEnd { stream },
                            });
                        }
                    }
                    Err(e) => self.close(e),
                }
            }
        }
    }

    /// The other side finished sending on `stream`.
    pub fn handle_finish(&mut self, stream: u64) {
        match &self.auth {
            Auth::Closed => {}
            Auth::AwaitHello {
                stream: hello_stream,
                ..
            } => {
                if *hello_stream == Some(stream) || hello_stream.is_none() {
                    self.close(ProtocolError::Truncated(
                        "the stream ended before the hello".into(),
                    ));
                }
            }
            Auth::Ready => {
                if let Some(mut inbound) = self.streams.remove(&stream)
                    && let Err(e) = inbound.finish()
                {
                    self.close(e);
                }
            }
        }
    }

    /// The other side abandoned `stream` (reset it): its request is forgotten, and the
    /// connection stays open.
    pub fn handle_reset(&mut self, stream: u64) {
        if self.is_ready() {
            self.streams.remove(&stream);
        } else {
            self.handle_finish(stream);
        }
    }

    fn on_hello(&mut self, stream: u64, payload: &[u8]) {
        let hello = match message::decode_hello(payload) {
            Ok(h) => h,
            Err(e) => {
                // A version mismatch gets a readable refusal before the close.
                if matches!(e, ProtocolError::VersionMismatch { .. }) {
                    self.refuse(stream, e.to_string());
                }
                self.close(e);
                return;
            }
        };
        if hmac::verify(
            &self.token_key,
            hello.token.as_bytes(),
            self.token_tag.as_ref(),
        )
        .is_err()
        {
            self.refuse(stream, ProtocolError::BadToken.to_string());
            self.close(ProtocolError::BadToken);
            return;
        }
        let mut out = BytesMut::new();
        encode_frame(
            FrameKind::Message,
            &message::encode(&HelloReply::Welcome {
                peer: self.settings.name.clone(),
                memory: self.settings.memory,
            }),
            &mut out,
        );
        self.events.push_back(ServerEvent::Transmit {
            stream,
            data: out.freeze(),
            fin: true,
        });
        self.events.push_back(ServerEvent::Authenticated {
            from: hello.from,
            session: hello.session,
        });
        self.auth = Auth::Ready;
    }

    fn refuse(&mut self, stream: u64, reason: String) {
        let mut out = BytesMut::new();
        encode_frame(
            FrameKind::Message,
            &message::encode(&HelloReply::Refused { reason }),
            &mut out,
        );
        self.events.push_back(ServerEvent::Transmit {
            stream,
            data: out.freeze(),
            fin: true,
        });
    }

    fn close(&mut self, error: ProtocolError) {
        if !self.is_closed() {
            self.auth = Auth::Closed;
            self.streams.clear();
            self.events.push_back(ServerEvent::Close { error });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::client::ClientHandshake;
    use crate::protocol::message::Hello;
    use crate::protocol::stream::{BatchWriter, write_message};

    fn settings() -> ServerSettings {
        ServerSettings {
            name: "a".into(),
            token: "0123456789abcdef".into(),
            memory: 1 << 30,
            max_frame: 1 << 16,
        }
    }

    fn hello(token: &str) -> Hello {
        Hello {
            token: token.into(),
            from: "driver".into(),
            session: 42,
            build: "test".into(),
        }
    }

    fn events(c: &mut ServerConnection) -> Vec<ServerEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn welcome(c: &mut ServerConnection) {
        c.handle_data(0, &ClientHandshake::hello_bytes(&hello("0123456789abcdef")));
        let ev = events(c);
        let ServerEvent::Transmit {
            data, fin: true, ..
        } = &ev[0]
        else {
            panic!("{ev:?}")
        };
        let mut hs = ClientHandshake::new(1 << 16);
        let reply = hs.push(data).unwrap().unwrap();
        assert_eq!(
            reply,
            HelloReply::Welcome {
                peer: "a".into(),
                memory: 1 << 30
            }
        );
        assert!(matches!(
            ev[1],
            ServerEvent::Authenticated { session: 42, .. }
        ));
        assert!(c.is_ready());
    }

    #[test]
    fn handshake_then_requests_on_several_streams() {
        let mut c = ServerConnection::new(settings());
        welcome(&mut c);
        let mut wire = BytesMut::new();
        write_message(&Request::Ping { seq: 9 }, &mut wire);
        c.handle_data(4, &wire[..3]);
        assert!(events(&mut c).is_empty());
        c.handle_data(4, &wire[3..]);
        c.handle_finish(4);
        let mut wire = BytesMut::new();
        write_message(
            &Request::Put {
                partition: 1,
                lineage: None,
            },
            &mut wire,
        );
        let b = RecordBatch::try_from_iter([(
            "x",
            std::sync::Arc::new(arrow::array::Int32Array::from(vec![1, 2, 3])) as _,
        )])
        .unwrap();
        let mut w = BatchWriter::new(&b.schema(), 1 << 16).unwrap();
        w.write(&b, &mut wire).unwrap();
        w.finish(&mut wire).unwrap();
        c.handle_data(8, &wire);
        c.handle_finish(8);
        let ev = events(&mut c);
        assert!(matches!(
            ev[0],
            ServerEvent::Request {
                stream: 4,
                request: Request::Ping { seq: 9 }
            }
        ));
        assert!(matches!(ev[1], ServerEvent::Request { stream: 8, .. }));
        assert!(matches!(&ev[2], ServerEvent::Schema { stream: 8, .. }));
        assert!(matches!(&ev[3], ServerEvent::Batch { stream: 8, batch } if batch.num_rows() == 3));
        assert!(matches!(ev[4], ServerEvent::DataEnd { stream: 8 }));
        assert_eq!(ev.len(), 5);
        assert!(c.is_ready());
    }

    #[test]
    fn bad_token_is_refused_and_closes() {
        let mut c = ServerConnection::new(settings());
        c.handle_data(0, &ClientHandshake::hello_bytes(&hello("0123456789abcdeX")));
        let ev = events(&mut c);
        let ServerEvent::Transmit { data, .. } = &ev[0] else {
            panic!()
        };
        let reply = ClientHandshake::new(1 << 16).push(data).unwrap().unwrap();
        assert!(matches!(reply, HelloReply::Refused { reason } if reason.contains("token")));
        assert!(matches!(
            ev[1],
            ServerEvent::Close {
                error: ProtocolError::BadToken
            }
        ));
        assert!(c.is_closed());
        // Nothing more is accepted.
        c.handle_data(4, b"anything");
        assert!(events(&mut c).is_empty());
    }

    #[test]
    fn version_mismatch_is_refused_with_both_versions() {
        let mut c = ServerConnection::new(settings());
        let mut wire = BytesMut::new();
        encode_frame(
            FrameKind::Hello,
            &message::encode_hello_with_version(&hello("0123456789abcdef"), 99),
            &mut wire,
        );
        c.handle_data(0, &wire);
        let ev = events(&mut c);
        let ServerEvent::Transmit { data, .. } = &ev[0] else {
            panic!()
        };
        let reply = ClientHandshake::new(1 << 16).push(data).unwrap().unwrap();
        let HelloReply::Refused { reason } = reply else {
            panic!()
        };
        assert!(
            reason.contains(&format!("version {}", crate::protocol::PROTOCOL_VERSION))
                && reason.contains("version 99"),
            "{reason}"
        );
        assert!(c.is_closed());
    }

    #[test]
    fn requests_before_the_hello_and_garbage_close() {
        let mut c = ServerConnection::new(settings());
        let mut wire = BytesMut::new();
        write_message(&Request::Status, &mut wire);
        c.handle_data(0, &wire);
        assert!(matches!(events(&mut c)[..], [ServerEvent::Close { .. }]));

        let mut c = ServerConnection::new(settings());
        c.handle_data(0, b"GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(events(&mut c)[..], [ServerEvent::Close { .. }]));

        let mut c = ServerConnection::new(settings());
        welcome(&mut c);
        c.handle_data(4, &[0xff, 0xff, 0xff, 0xff, FrameKind::Message as u8]);
        let ev = events(&mut c);
        assert!(
            matches!(
                &ev[..],
                [ServerEvent::Close {
                    error: ProtocolError::FrameTooLarge { .. }
                }]
            ),
            "{ev:?}"
        );
    }

    #[test]
    fn a_stream_cut_short_closes() {
        let mut c = ServerConnection::new(settings());
        welcome(&mut c);
        let mut wire = BytesMut::new();
        write_message(&Request::Status, &mut wire);
        c.handle_data(4, &wire[..wire.len() - 1]);
        c.handle_finish(4);
        assert!(matches!(
            events(&mut c)[..],
            [ServerEvent::Close {
                error: ProtocolError::Truncated(_)
            }]
        ));
    }
}
