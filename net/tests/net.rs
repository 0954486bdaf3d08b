//! Integration tests of the net crate: peers on loopback addresses, started in this process
//! with bounded time, and stopped at the end of each test.

mod cluster;
mod functions;
mod scale_out;
mod security;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use spillframe_net::protocol::message::Hello;
use spillframe_net::{
    ClusterConfig, InitOptions, InitTrust, PeerClient, RunningPeer, client_endpoint, init_cluster,
};

/// Every network wait in the tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Makes a cluster of `n` peers in `dir`, each on its own loopback address (127.0.0.2, .3,
/// ...) and a port that was free a moment ago.
pub fn make_cluster(dir: &Path, n: usize, trust: InitTrust, memory: &str) -> ClusterConfig {
    let path = init_cluster(
        dir,
        &InitOptions {
            peers: n,
            memory: memory.into(),
            trust,
            ..InitOptions::default()
        },
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap();
    for i in 0..n {
        let ip: IpAddr = [127, 0, 0, 2 + i as u8].into();
        let port = UdpSocket::bind(SocketAddr::new(ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        text = text.replace(
            &format!("addr = \"127.0.0.1:{}\"", 7301 + i),
            &format!("addr = \"{}\"", SocketAddr::new(ip, port)),
        );
    }
    // Tests want a lost peer noticed quickly.
    text = text
        .replace("heartbeat_ms = 1000", "heartbeat_ms = 200")
        .replace("peer_timeout_ms = 5000", "peer_timeout_ms = 1500");
    std::fs::write(&path, text).unwrap();
    ClusterConfig::load(&path).unwrap()
}

/// Starts every peer of the cluster.
pub fn start_peers(config: &ClusterConfig) -> Vec<RunningPeer> {
    config
        .peers
        .iter()
        .map(|p| RunningPeer::start(config, &p.name).unwrap())
        .collect()
}

/// A current-thread runtime for the driver side of a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A hello from a driver session.
pub fn hello(config: &ClusterConfig, session: u64) -> Hello {
    Hello {
        token: config.token.clone(),
        from: "driver".into(),
        session,
        build: "test".into(),
    }
}

/// Connects the driver to peer `i`.
pub async fn connect(
    config: &ClusterConfig,
    i: usize,
    session: u64,
) -> spillframe_net::Result<PeerClient> {
    let endpoint = client_endpoint(config, &config.driver)?;
    PeerClient::connect(
        &endpoint,
        &config.peers[i],
        &hello(config, session),
        config.max_frame as usize,
        TIMEOUT,
    )
    .await
}

/// Batches of `rows` rows in batches of 10 000: k = 0.., s = "row-<k>" (about 30 bytes a row).
pub fn batches(rows: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let out = (0..rows)
        .step_by(10_000)
        .map(|start| {
            let end = (start + 10_000).min(rows) as i64;
            let start = start as i64;
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(start..end)),
                    Arc::new(StringArray::from_iter_values(
                        (start..end).map(|k| format!("row-{k}")),
                    )),
                ],
            )
            .unwrap()
        })
        .collect();
    (schema, out)
}

/// Waits (bounded) until `check` holds.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
