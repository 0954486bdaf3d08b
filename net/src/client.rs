//! The connecting side: one [`PeerClient`] per peer, over one QUIC connection, with one
//! stream per request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::BytesMut;

use crate::config::{ClusterConfig, Identity, PeerConfig};
use crate::error::{Error, Result};
use crate::peer::connection::PROTOCOL_ERROR_CODE;
use crate::protocol::client::ClientHandshake;
use crate::protocol::message::{Hello, HelloReply, PeerStatus, Request, Response};
use crate::protocol::stream::{BatchWriter, InboundStream, Incoming, write_message};

/// A QUIC endpoint for connecting to peers, presenting `identity`'s certificate.
pub fn client_endpoint(config: &ClusterConfig, identity: &Identity) -> Result<quinn::Endpoint> {
    let client_config = crate::tls::client_config(config, identity)?;
    let any: SocketAddr = if config.peers.iter().all(|p| p.addr.is_ipv4()) {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let mut endpoint = quinn::Endpoint::client(any).map_err(|e| Error::Bind {
        addr: any,
        reason: e.to_string(),
    })?;
    endpoint.set_default_client_config(client_config);
    Ok(endpoint)
}

/// A connection to one peer, after a successful handshake.
#[derive(Clone)]
pub struct PeerClient {
    name: String,
    addr: SocketAddr,
    memory: u64,
    max_frame: usize,
    conn: quinn::Connection,
}

/// What a partition put on a peer takes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
}

impl PeerClient {
    /// Connects to `peer` and says hello. Fails with [`Error::Refused`] when the peer refuses
    /// the token or the version, and with [`Error::Peer`] when it cannot be reached or TLS fails.
    pub async fn connect(
        endpoint: &quinn::Endpoint,
        peer: &PeerConfig,
        hello: &Hello,
        max_frame: usize,
        timeout: Duration,
    ) -> Result<PeerClient> {
        let fail = |reason: String| Error::Peer {
            peer: peer.name.clone(),
            addr: peer.addr,
            reason,
        };
        let server_name = crate::tls::server_name(&peer.name)?;
        let connecting = endpoint
            .connect(peer.addr, &server_name.to_str())
            .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let conn = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(fail(format!("connecting: {e}"))),
            Err(_) => {
                return Err(fail(format!("no answer within {} ms", timeout.as_millis())));
            }
        };
        let mut client = PeerClient {
            name: peer.name.clone(),
            addr: peer.addr,
            memory: 0,
            max_frame,
            conn,
        };
        let handshake = async {
            let (mut send, mut recv) = client.conn.open_bi().await.map_err(|e| client.lost(e))?;
            send.write_all(&ClientHandshake::hello_bytes(hello))
                .await
                .map_err(|e| client.write_error(e))?;
            let _ = send.finish();
            let mut hs = ClientHandshake::new(max_frame);
            loop {
                match recv.read_chunk(64 << 10, true).await {
                    Ok(Some(chunk)) => {
                        if let Some(reply) = hs.push(&chunk.bytes).map_err(Error::Protocol)? {
                            return Ok(reply);
                        }
                    }
                    Ok(None) => {
                        return Err(fail(
                            "the peer ended the handshake without answering".into(),
                        ));
                    }
                    Err(quinn::ReadError::ConnectionLost(e)) => return Err(client.lost(e)),
                    Err(e) => return Err(fail(format!("reading the handshake: {e}"))),
                }
            }
        };
        let reply = match tokio::time::timeout(timeout, handshake).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(fail(format!(
                    "no answer to the hello within {} ms",
                    timeout.as_millis()
                )));
            }
        };
        match reply {
            HelloReply::Welcome { peer: name, memory } => {
                if name != peer.name {
                    return Err(fail(format!(
                        "the peer at this address calls itself '{name}'"
                    )));
                }
                client.memory = memory;
                Ok(client)
            }
            HelloReply::Refused { reason } => Err(Error::Refused {
                peer: peer.name.clone(),
                reason,
            }),
        }
    }

    /// The peer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The memory the peer offers.
    pub fn memory(&self) -> u64 {
        self.memory
    }

    /// Why the connection is closed, if it is.
    pub fn close_reason(&self) -> Option<String> {
        self.conn.close_reason().map(|e| e.to_string())
    }

    /// Closes the connection; the peer drops this session's partitions.
    pub fn close(&self) {
        self.conn.close(quinn::VarInt::from_u32(0), b"done");
    }

    /// The round trip of a ping.
    pub async fn ping(&self) -> Result<Duration> {
        static NEXT_PING: AtomicU64 = AtomicU64::new(1);
        let seq = NEXT_PING.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        match self.request(&Request::Ping { seq }, None).await? {
            (Response::Pong { seq: s }, _) if s == seq => Ok(start.elapsed()),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    /// The peer's status.
    pub async fn status(&self) -> Result<PeerStatus> {
        match self.request(&Request::Status, None).await? {
            (Response::Status(s), _) => Ok(s),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    /// Stores a partition on the peer under `partition`.
    pub async fn put(
        &self,
        partition: u64,
        lineage: Option<String>,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<Stored> {
        let request = Request::Put { partition, lineage };
        match self.request(&request, Some((schema, batches))).await? {
            (Response::Stored { rows, bytes }, _) => Ok(Stored { rows, bytes }),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    /// Reads a partition back.
    pub async fn get(&self, partition: u64) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        match self.request(&Request::Get { partition }, None).await? {
            (Response::Batches, Some(data)) => Ok(data),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    /// Runs a plan fragment over a partition on the peer; returns its output.
    pub async fn run(&self, partition: u64, fragment: Vec<u8>) -> Result<Vec<RecordBatch>> {
        match self
            .request(
                &Request::Run {
                    partition,
                    fragment,
                },
                None,
            )
            .await?
        {
            (Response::Batches, Some((_, batches))) => Ok(batches),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    /// Runs the function registered on the peer as `function` over a partition; returns its
    /// output.
    pub async fn call(
        &self,
        partition: u64,
        function: String,
        index: u64,
        batch_size: Option<u64>,
    ) -> Result<Vec<RecordBatch>> {
        let request = Request::Call {
            partition,
            function,
            index,
            batch_size,
        };
        match self.request(&request, None).await? {
            (Response::Batches, Some((_, batches))) => Ok(batches),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    /// Drops partitions; returns how many the peer had.
    pub async fn drop_partitions(&self, partitions: Vec<u64>) -> Result<u64> {
        match self.request(&Request::Drop { partitions }, None).await? {
            (Response::Dropped { count }, _) => Ok(count),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    fn unexpected(&self, response: &Response) -> Error {
        match response {
            Response::Error { message } => Error::Remote {
                peer: self.name.clone(),
                message: message.clone(),
            },
            other => Error::Peer {
                peer: self.name.clone(),
                addr: self.addr,
                reason: format!("unexpected answer {other:?}"),
            },
        }
    }

    fn lost(&self, e: quinn::ConnectionError) -> Error {
        if let quinn::ConnectionError::ApplicationClosed(close) = &e
            && close.error_code == quinn::VarInt::from_u32(PROTOCOL_ERROR_CODE)
        {
            return Error::Refused {
                peer: self.name.clone(),
                reason: String::from_utf8_lossy(&close.reason).into_owned(),
            };
        }
        Error::Peer {
            peer: self.name.clone(),
            addr: self.addr,
            reason: format!("connection lost: {e}"),
        }
    }

    fn write_error(&self, e: quinn::WriteError) -> Error {
        match e {
            quinn::WriteError::ConnectionLost(e) => self.lost(e),
            other => Error::Peer {
                peer: self.name.clone(),
                addr: self.addr,
                reason: format!("sending: {other}"),
            },
        }
    }

    /// Sends one request (with batches, for a put) and reads its answer (with batches, for a
    /// get).
    async fn request(
        &self,
        request: &Request,
        data: Option<(&SchemaRef, &[RecordBatch])>,
    ) -> Result<(Response, Option<(SchemaRef, Vec<RecordBatch>)>)> {
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(|e| self.lost(e))?;
        let mut out = BytesMut::new();
        write_message(request, &mut out);
        if let Some((schema, batches)) = data {
            let mut writer = BatchWriter::new(schema, self.max_frame)?;
            for batch in batches {
                writer.write(batch, &mut out)?;
                if out.len() >= self.max_frame {
                    send.write_all(&out.split())
                        .await
                        .map_err(|e| self.write_error(e))?;
                }
            }
            writer.finish(&mut out)?;
        }
        send.write_all(&out)
            .await
            .map_err(|e| self.write_error(e))?;
        let _ = send.finish();

        let mut inbound = InboundStream::<Response>::new(self.max_frame);
        let mut response = None;
        let mut schema = None;
        let mut batches = Vec::new();
        let mut ended = false;
        loop {
            match recv.read_chunk(256 << 10, true).await {
                Ok(Some(chunk)) => {
                    for item in inbound.push(&chunk.bytes)? {
                        match item {
                            Incoming::Message(m) => response = Some(m),
                            Incoming::Schema(s) => schema = Some(s),
                            Incoming::Batch(b) => batches.push(b),
                            Incoming::End => ended = true,
                        }
                    }
                }
                Ok(None) => break,
                Err(quinn::ReadError::ConnectionLost(e)) => return Err(self.lost(e)),
                Err(e) => {
                    return Err(Error::Peer {
                        peer: self.name.clone(),
                        addr: self.addr,
                        reason: format!("reading the answer: {e}"),
                    });
                }
            }
        }
        inbound.finish()?;
        let response = response.ok_or_else(|| Error::Peer {
            peer: self.name.clone(),
            addr: self.addr,
            reason: "the peer ended the answer without a message".into(),
        })?;
        let data = match (ended, schema) {
            (true, Some(schema)) => Some((schema, batches)),
            _ => None,
        };
        Ok((response, data))
    }
}
