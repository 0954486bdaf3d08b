//! The same program alone or on a peer cluster: cache a dataset, then query it. With
//! `SPILLFRAME_CLUSTER` pointing at a `cluster.toml` whose peers are running, the cached
//! partitions live on the peers, the filter and partial aggregation run there, and only the
//! partial sums come back. Without it, everything runs here.
//!
//! `cargo run --release --example cluster [ROWS]`

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use spillframe::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: i64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 2_000_000,
    };
    // ANCHOR: enable
    // Once, at start: sessions then use the cluster in SPILLFRAME_CLUSTER (or in the
    // `cluster` key of spillframe.toml) when one is set, and run alone when not.
    spillframe::enable_cluster();
    let session = Session::new()?;
    // ANCHOR_END: enable
    match &session.settings().cluster {
        Some(path) => println!("on the cluster in {}", path.display()),
        None => println!("alone (SPILLFRAME_CLUSTER is not set)"),
    }

    // A dataset on disk: id, k (100 keys), v.
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let batches = (0..rows)
        .step_by(100_000)
        .map(|start| {
            let ids: Vec<i64> = (start..(start + 100_000).min(rows)).collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids.clone())),
                    Arc::new(StringArray::from_iter_values(
                        ids.iter().map(|i| format!("k{:02}", i % 100)),
                    )),
                    Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i % 1000))),
                ],
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    session.from_batches(batches)?.write_parquet(&input)?;

    // ANCHOR: query
    let cached = session.read_parquet(&input)?.cache()?;
    let out = cached
        .clone()
        .filter(col("v").gt_eq(lit(500i64)))
        .group_by(["k"])
        .agg([col("v").sum().alias("total"), len().alias("rows")])
        .sort(["k"], SortMultipleOptions::default())
        .collect()?;
    // ANCHOR_END: query
    println!("{}", out.format(3));

    let metrics = session.store().metrics();
    println!(
        "partitions sent to peers: {} ({})",
        metrics.sent_to_peers,
        bytesize::ByteSize(metrics.bytes_to_peers)
    );
    let mut by_peer = std::collections::BTreeMap::<String, usize>::new();
    for info in session.store().infos() {
        for p in info.peers {
            *by_peer.entry(p).or_default() += 1;
        }
    }
    for (peer, n) in by_peer {
        println!("  peer {peer}: {n} cached partitions");
    }
    Ok(())
}
