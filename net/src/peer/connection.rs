//! The driver of one connection: moves bytes between quinn's streams and the
//! [`ServerConnection`] state machine, and runs what its events ask for.
//!
//! One task owns the state machine. Each accepted stream gets a reader task that forwards its
//! chunks over a channel; each request gets a handler task that owns the stream's sending
//! side. A protocol error closes this connection only: the peer keeps serving the others.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::service::{PartitionKey, PeerState};
use crate::protocol::message::{Request, Response};
use crate::protocol::server::{ServerConnection, ServerEvent};
use crate::protocol::stream::{BatchWriter, write_message};

/// The QUIC application error code sent when the protocol is broken.
pub const PROTOCOL_ERROR_CODE: u32 = 1;

/// Bytes asked of quinn per read.
const READ_CHUNK: usize = 256 << 10;

enum StreamInput {
    Data(Bytes),
    Finished,
    Reset,
}

enum PutInput {
    Schema(SchemaRef),
    Batch(RecordBatch),
    End,
}

/// Serves one incoming connection until it closes.
pub async fn serve(state: Arc<PeerState>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            // Wrong certificate, wrong ALPN, or a client that gave up: TLS refused it.
            warn!(peer = %state.settings.name, %remote, "connection refused during TLS: {e}");
            return;
        }
    };
    state.connection_opened();
    let session = drive(&state, &conn).await;
    state.connection_closed(session);
    debug!(peer = %state.settings.name, %remote, "connection closed");
}

/// Runs the state machine; returns the session that said hello, if one did.
async fn drive(state: &Arc<PeerState>, conn: &quinn::Connection) -> Option<u64> {
    let remote = conn.remote_address();
    let mut proto = ServerConnection::new(state.settings.clone());
    let (input_tx, mut input_rx) = mpsc::channel::<(u64, StreamInput)>(64);
    let mut sends: HashMap<u64, quinn::SendStream> = HashMap::new();
    let mut puts: HashMap<u64, mpsc::Sender<PutInput>> = HashMap::new();
    let mut session = None;
    loop {
        tokio::select! {
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    let id = send.id().index();
                    sends.insert(id, send);
                    tokio::spawn(read_stream(id, recv, input_tx.clone()));
                }
                Err(e) => {
                    debug!(%remote, "connection ended: {e}");
                    return session;
                }
            },
            Some((id, input)) = input_rx.recv() => match input {
                StreamInput::Data(bytes) => proto.handle_data(id, &bytes),
                StreamInput::Finished => {
                    proto.handle_finish(id);
                    // A put that never ended its data is abandoned by dropping its channel.
                    puts.remove(&id);
                }
                StreamInput::Reset => {
                    proto.handle_reset(id);
                    puts.remove(&id);
                    sends.remove(&id);
                }
            },
        }
        while let Some(event) = proto.poll_event() {
            match event {
                ServerEvent::Transmit { stream, data, fin } => {
                    if let Some(mut send) = sends.remove(&stream) {
                        if send.write_all(&data).await.is_ok() && !fin {
                            sends.insert(stream, send);
                        } else if fin {
                            let _ = send.finish();
                        }
                    }
                }
                ServerEvent::Authenticated { from, session: s } => {
                    info!(peer = %state.settings.name, %remote, %from, session = s, "authenticated");
                    session = Some(s);
                }
                ServerEvent::Request { stream, request } => {
                    let Some(send) = sends.remove(&stream) else {
                        continue;
                    };
                    let s = session.unwrap_or_default();
                    match request {
                        Request::Put { partition, lineage } => {
                            let (tx, rx) = mpsc::channel(8);
                            puts.insert(stream, tx);
                            tokio::spawn(put(state.clone(), (s, partition), lineage, rx, send));
                        }
                        other => {
                            tokio::spawn(answer(state.clone(), s, other, send));
                        }
                    }
                }
                ServerEvent::Schema { stream, schema } => {
                    if let Some(tx) = puts.get(&stream) {
                        let _ = tx.send(PutInput::Schema(schema)).await;
                    }
                }
                ServerEvent::Batch { stream, batch } => {
                    if let Some(tx) = puts.get(&stream) {
                        let _ = tx.send(PutInput::Batch(batch)).await;
                    }
                }
                ServerEvent::DataEnd { stream } => {
                    if let Some(tx) = puts.remove(&stream) {
                        let _ = tx.send(PutInput::End).await;
                    }
                }
                ServerEvent::Close { error } => {
                    warn!(peer = %state.settings.name, %remote, "closing the connection: {error}");
                    let reason = error.to_string();
                    conn.close(
                        quinn::VarInt::from_u32(PROTOCOL_ERROR_CODE),
                        &reason.as_bytes()[..reason.len().min(512)],
                    );
                    return session;
                }
            }
        }
    }
}

async fn read_stream(id: u64, mut recv: quinn::RecvStream, tx: mpsc::Sender<(u64, StreamInput)>) {
    loop {
        let input = match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => StreamInput::Data(chunk.bytes),
            Ok(None) => StreamInput::Finished,
            Err(quinn::ReadError::Reset(_)) => StreamInput::Reset,
            Err(_) => return,
        };
        let last = !matches!(input, StreamInput::Data(_));
        if tx.send((id, input)).await.is_err() || last {
            return;
        }
    }
}

/// Sends one response message (and finishes the stream).
async fn respond(mut send: quinn::SendStream, response: &Response) {
    let mut out = BytesMut::new();
    write_message(response, &mut out);
    if send.write_all(&out).await.is_ok() {
        let _ = send.finish();
    }
}

/// Requests answered by one message (or by batches for `Get` and `Run`).
async fn answer(
    state: Arc<PeerState>,
    session: u64,
    request: Request,
    mut send: quinn::SendStream,
) {
    let response = match request {
        Request::Ping { seq } => Response::Pong { seq },
        Request::Status => Response::Status(state.status()),
        Request::Drop { partitions } => Response::Dropped {
            count: state.drop_partitions(session, &partitions),
        },
        Request::Get { partition } => {
            let st = state.clone();
            let read = move || st.read((session, partition));
            match send_read(&state, partition, "reading", read, &mut send).await {
                Some(response) => response,
                None => return,
            }
        }
        Request::Run {
            partition,
            fragment,
        } => {
            let st = state.clone();
            let run = move || st.run((session, partition), &fragment);
            match send_read(&state, partition, "running a fragment over", run, &mut send).await {
                Some(response) => response,
                None => return,
            }
        }
        Request::Call {
            partition,
            function,
            index,
            batch_size,
        } => {
            let st = state.clone();
            let what = format!("running function '{function}' over");
            let call = move || st.call((session, partition), &function, index, batch_size);
            match send_read(&state, partition, &what, call, &mut send).await {
                Some(response) => response,
                None => return,
            }
        }
        // `drive` hands puts to `put`; one arriving here is answered, not trusted.
        Request::Put { partition, .. } => Response::Error {
            message: format!("put of partition {partition} reached the wrong handler"),
        },
    };
    respond(send, &response).await;
}

/// Runs `read` off the async threads and sends its batches; returns the error response to
/// send instead, if it failed (`None` when the stream is already answered).
async fn send_read(
    state: &PeerState,
    partition: u64,
    what: &str,
    read: impl FnOnce() -> Result<(SchemaRef, Vec<RecordBatch>), String> + Send + 'static,
    send: &mut quinn::SendStream,
) -> Option<Response> {
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok((schema, batches))) => {
            if let Err(message) = send_batches(state, send, &schema, &batches).await {
                warn!(peer = %state.settings.name, "{what} partition {partition}: {message}");
                let _ = send.reset(quinn::VarInt::from_u32(PROTOCOL_ERROR_CODE));
            } else {
                let _ = send.finish();
            }
            None
        }
        Ok(Err(message)) => Some(Response::Error { message }),
        Err(e) => Some(Response::Error {
            message: format!("{what} partition {partition}: {e}"),
        }),
    }
}

async fn send_batches(
    state: &PeerState,
    send: &mut quinn::SendStream,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), String> {
    let max_frame = state.settings.max_frame;
    let mut out = BytesMut::new();
    write_message(&Response::Batches, &mut out);
    let mut writer = BatchWriter::new(schema, max_frame).map_err(|e| e.to_string())?;
    for batch in batches {
        writer.write(batch, &mut out).map_err(|e| e.to_string())?;
        if out.len() >= max_frame {
            send.write_all(&out.split())
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    writer.finish(&mut out).map_err(|e| e.to_string())?;
    send.write_all(&out).await.map_err(|e| e.to_string())
}

/// Stores a partition from the batches of a put, off the async threads (appending may spill).
async fn put(
    state: Arc<PeerState>,
    key: PartitionKey,
    lineage: Option<String>,
    mut rx: mpsc::Receiver<PutInput>,
    send: quinn::SendStream,
) {
    let st = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut id = None;
        let mut failure = None;
        let mut lineage = lineage;
        while let Some(input) = rx.blocking_recv() {
            match input {
                PutInput::Schema(schema) => {
                    id = Some(st.begin_put(key, schema, lineage.take()));
                }
                PutInput::Batch(batch) => {
                    if failure.is_none()
                        && let Some(id) = id
                        && let Err(e) = st.append(id, batch)
                    {
                        failure = Some(e);
                    }
                }
                PutInput::End => {
                    return match (id, failure) {
                        (Some(id), None) => Some(st.stored(id)),
                        (Some(id), Some(message)) => {
                            st.abort_put(key, id);
                            Some(Response::Error { message })
                        }
                        (None, _) => Some(Response::Error {
                            message: "a put without a schema".into(),
                        }),
                    };
                }
            }
        }
        // The stream ended or was reset before its data ended.
        if let Some(id) = id {
            st.abort_put(key, id);
        }
        None
    })
    .await;
    match result {
        Ok(Some(response)) => respond(send, &response).await,
        Ok(None) => {}
        Err(e) => {
            respond(
                send,
                &Response::Error {
                    message: format!("storing partition {}: {e}", key.1),
                },
            )
            .await
        }
    }
}
