//! QUIC partition transfer on loopback against copies in one process.
//!
//! `cargo bench -p spillframe-net --bench transfer -- [MiB] [rounds]`
//!
//! Starts one peer on 127.0.0.1 (TLS 1.3, CA trust, as `cluster init` makes it), then for a
//! partition of about `MiB` (default 256) of int64 and string columns, times, best of
//! `rounds` (default 5):
//! - `copy`: a deep copy in this process (`concat_batches`: every buffer copied once);
//! - `ipc`: an Arrow IPC stream encode and decode in this process (the serialization the
//!   protocol does, without the network);
//! - `put` and `get`: the partition sent to the peer (which stores it in memory) and read back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use spillframe_net::protocol::message::Hello;
use spillframe_net::{
    ClusterConfig, InitOptions, InitTrust, PeerClient, RunningPeer, client_endpoint, init_cluster,
};

fn data(mib: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    // About 32 bytes a row: two int64 and a 10-byte string with its offset.
    let rows = mib * (1 << 20) / 32;
    let batches = (0..rows)
        .step_by(65_536)
        .map(|start| {
            let end = (start + 65_536).min(rows) as i64;
            let start = start as i64;
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(start..end)),
                    Arc::new(Int64Array::from_iter_values((start..end).map(|i| i * 31))),
                    Arc::new(StringArray::from_iter_values(
                        (start..end).map(|i| format!("s{:09}", i % 1_000_000_000)),
                    )),
                ],
            )
            .unwrap()
        })
        .collect();
    (schema, batches)
}

fn best<T>(rounds: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mib: usize = args.first().map_or(256, |a| a.parse().expect("MiB"));
    let rounds: usize = args.get(1).map_or(5, |a| a.parse().expect("rounds"));
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let path = init_cluster(
        dir.path(),
        &InitOptions {
            peers: 1,
            memory: "8GiB".into(),
            trust: InitTrust::Ca,
            base_port: port,
            ..InitOptions::default()
        },
    )
    .unwrap();
    let config = ClusterConfig::load(&path).unwrap();
    let peer = RunningPeer::start(&config, "a").unwrap();
    let (schema, batches) = data(mib);
    let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();

    let copy = best(rounds, || {
        arrow::compute::concat_batches(&schema, &batches).unwrap()
    });
    let ipc = best(rounds, || {
        let mut buf = Vec::new();
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &schema).unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(buf), None)
            .unwrap()
            .map(|b| b.unwrap())
            .collect::<Vec<_>>()
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (put, get) = rt.block_on(async {
        let endpoint = client_endpoint(&config, &config.driver).unwrap();
        let hello = Hello {
            token: config.token.clone(),
            from: "driver".into(),
            session: 1,
            build: "bench".into(),
        };
        let client = PeerClient::connect(
            &endpoint,
            &config.peers[0],
            &hello,
            config.max_frame as usize,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let mut put = Duration::MAX;
        let mut get = Duration::MAX;
        for round in 0..rounds {
            let t = Instant::now();
            client
                .put(round as u64, None, &schema, &batches)
                .await
                .unwrap();
            put = put.min(t.elapsed());
            let t = Instant::now();
            let (_, back) = client.get(round as u64).await.unwrap();
            get = get.min(t.elapsed());
            assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), rows);
            client.drop_partitions(vec![round as u64]).await.unwrap();
        }
        client.close();
        (put, get)
    });
    peer.stop();

    let mb = bytes as f64 / 1e6;
    let rate = |d: Duration| mb / d.as_secs_f64();
    println!(
        "partition: {rows} rows, {:.1} MB in memory; best of {rounds} rounds",
        mb
    );
    println!(
        "{:<6} {:>10} {:>12} {:>10}",
        "what", "time", "MB/s", "vs copy"
    );
    for (name, d) in [("copy", copy), ("ipc", ipc), ("put", put), ("get", get)] {
        println!(
            "{:<6} {:>8.1}ms {:>12.0} {:>9.1}x",
            name,
            d.as_secs_f64() * 1e3,
            rate(d),
            d.as_secs_f64() / copy.as_secs_f64()
        );
    }
}
