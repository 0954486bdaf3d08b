//! Your own functions on a peer cluster: Panda Farm's `parallelize`, with each partition
//! scored on the peer that holds it.
//!
//! One program plays both roles, so the driver and the peers register the same functions:
//!
//! ```text
//! cargo run --release --example peer_functions -- peer --config cluster.toml --name a
//! cargo run --release --example peer_functions -- peer --config cluster.toml --name b
//! SPILLFRAME_CLUSTER=cluster.toml cargo run --release --example peer_functions
//! ```
//!
//! Run alone (no arguments, no `SPILLFRAME_CLUSTER`), it starts two peers of its own on
//! loopback ports, in this process, and uses them.

use std::time::Duration;

use spillframe::jobs::FunctionRegistry;
use spillframe::net::{Cluster, InitOptions, init_cluster};
use spillframe::peer::{PeerOptions, RunningPeer};
use spillframe::prelude::*;

#[path = "shared/score.rs"]
mod score;
use score::score;

// ANCHOR: registry
/// The functions this program runs, by name: the same on the driver and on every peer.
fn registry() -> FunctionRegistry {
    let functions = FunctionRegistry::new();
    functions.register_partitions("score", score);
    functions
}
// ANCHOR_END: registry

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ANCHOR: peer
    // `peer_functions peer --config cluster.toml --name a`: serve until Ctrl-C.
    if std::env::args().nth(1).as_deref() == Some("peer") {
        spillframe::peer::serve(registry(), PeerOptions::from_args()?)?;
        return Ok(());
    }
    // ANCHOR_END: peer

    let dir = tempfile::tempdir()?;
    let (cluster, _own_peers) = match std::env::var_os("SPILLFRAME_CLUSTER") {
        Some(path) => (std::path::PathBuf::from(path), Vec::new()),
        None => own_peers(dir.path())?,
    };

    // ANCHOR: driver
    spillframe::enable_cluster();
    let session = Session::builder()
        .cluster(&cluster)
        .functions(registry())
        .build()?;
    let n = 2_000_000i64;
    let df = df!(
        "k" => (0..n).map(|i| i % 10).collect::<Vec<i64>>(),
        "x" => (0..n).map(|i| i as f64 / 1000.0).collect::<Vec<f64>>()
    )?
    .lazy(&session)?;

    // job = parallelize(df, "score", n_partitions=8): each partition is stored, placed on a
    // peer, and scored there by the peer's "score".
    let job = df.parallelize_named("score", 8)?.submit()?;
    while !job.status().is_finished() {
        let p = job.progress();
        println!("{} of {:?} {} done", p.done, p.total, p.unit);
        std::thread::sleep(Duration::from_millis(200));
    }
    let scored = job.result()?.into_frame()?;
    // ANCHOR_END: driver
    let top = scored
        .group_by(["k"])
        .agg([col("score").sum().alias("total")])
        .sort(["k"], SortMultipleOptions::default())
        .collect()?;
    println!("{}", top.format(3));

    for (peer, status) in Cluster::open(&cluster)?.status() {
        match status {
            Ok(s) => println!(
                "peer {peer}: ran {} function calls; functions [{}]",
                s.functions_run,
                s.functions.join(", ")
            ),
            Err(e) => println!("peer {peer}: {e}"),
        }
    }
    Ok(())
}

/// A cluster file for two loopback peers in `dir`, with every finished partition placed on a
/// peer at once (`placement = "spread"`), and the peers running in this process.
fn own_peers(
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, Vec<RunningPeer>), Box<dyn std::error::Error>> {
    let free = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let path = init_cluster(
        dir,
        &InitOptions {
            peers: 2,
            base_port: free,
            memory: "512MiB".into(),
            ..InitOptions::default()
        },
    )?;
    let text = std::fs::read_to_string(&path)?.replace(
        "placement = \"peers-before-disk\"",
        "placement = \"spread\"",
    );
    std::fs::write(&path, text)?;
    let peers = ["a", "b"]
        .into_iter()
        .map(|name| spillframe::peer::start(registry(), &PeerOptions::new(&path, name)))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "started peers a and b on 127.0.0.1:{free} and :{}",
        free + 1
    );
    Ok((path, peers))
}
