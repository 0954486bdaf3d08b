//! Sessions on a cluster of 3 loopback peers: the same answers as a session alone (groupby,
//! join, sort, a per-partition function), fragments that run on the peers, eviction to peers,
//! and peers lost during a query.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use spillframe_engine::jobs::Partition;
use spillframe_engine::prelude::*;
use spillframe_net::{Cluster, ClusterConfig, InitTrust, RunningPeer};
use spillframe_spill::RemoteTier;

use super::*;

const ROWS: i64 = 200_000;

/// The input as a Parquet file of several row groups: id, k (97 keys), v, w.
fn write_input(dir: &Path) -> PathBuf {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
        Field::new("w", DataType::Int64, false),
    ]));
    let batches: Vec<RecordBatch> = (0..ROWS)
        .step_by(20_000)
        .map(|start| {
            let ids: Vec<i64> = (start..(start + 20_000).min(ROWS)).collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids.clone())),
                    Arc::new(StringArray::from_iter_values(
                        ids.iter().map(|i| format!("k{:02}", i % 97)),
                    )),
                    Arc::new(Int64Array::from_iter_values(
                        ids.iter().map(|i| (i * 7919) % 10_007),
                    )),
                    Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| i % 13))),
                ],
            )
            .unwrap()
        })
        .collect();
    let session = local();
    let path = dir.join("input.parquet");
    session
        .from_batches(batches)
        .unwrap()
        .write_parquet(&path)
        .unwrap();
    path
}

fn local() -> Session {
    Session::builder()
        .ignore_environment()
        .memory_limit_bytes(256 << 20)
        .target_partitions(2)
        .build()
        .unwrap()
}

fn on_cluster(cluster: Arc<Cluster>, memory: u64) -> Session {
    Session::builder()
        .ignore_environment()
        .memory_limit_bytes(memory)
        .remote(cluster)
        .build()
        .unwrap()
}

/// A cluster of 3 peers with `placement`, `replicate`, and 256 MiB each.
fn cluster(dir: &Path, placement: &str, replicate: bool) -> (ClusterConfig, Vec<RunningPeer>) {
    let config = make_cluster(dir, 3, InitTrust::Ca, "256MiB");
    let mut text = std::fs::read_to_string(&config.path).unwrap();
    text = text
        .replace(
            "placement = \"peers-before-disk\"",
            &format!("placement = \"{placement}\""),
        )
        .replace("replicate = false", &format!("replicate = {replicate}"));
    std::fs::write(&config.path, text).unwrap();
    let config = ClusterConfig::load(&config.path).unwrap();
    assert_eq!(config.placement.to_string(), placement);
    assert_eq!(config.replicate, replicate);
    let peers = start_peers(&config);
    (config, peers)
}

fn one_batch(t: &Table) -> RecordBatch {
    concat_batches(t.schema(), t.batches()).unwrap()
}

/// Streamed batches as one batch in `id` order (sorted by a session alone).
fn sorted_by_id(batches: Vec<RecordBatch>) -> RecordBatch {
    let t = local()
        .from_batches(batches)
        .unwrap()
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    one_batch(&t)
}

/// The four workloads of the comparison, each a whole result in a fixed order.
fn workloads(session: &Session, input: &Path) -> Vec<(&'static str, RecordBatch)> {
    let cached = session.read_parquet(input).unwrap().cache().unwrap();
    let groupby = cached
        .clone()
        .filter(col("w").not_eq(lit(5i64)))
        .group_by(["k"])
        .agg([
            col("v").sum().alias("s"),
            col("v").min().alias("lo"),
            col("v").max().alias("hi"),
            len().alias("n"),
        ])
        .sort(["k"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    let dims = session
        .from_table(
            df!(
                "k" => (0..97).map(|i| format!("k{i:02}")).collect::<Vec<_>>(),
                "region" => (0..97i64).map(|i| i % 4).collect::<Vec<_>>()
            )
            .unwrap(),
        )
        .unwrap();
    let join = cached
        .clone()
        .inner_join(dims, ["k"], ["k"])
        .group_by(["region"])
        .agg([col("v").sum().alias("s"), len().alias("n")])
        .sort(["region"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    let sort = cached
        .clone()
        .filter(col("w").lt(lit(2i64)))
        .select(["id", "v"])
        .sort(["v", "id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    let function = cached
        .map_partitions(|p: Partition| {
            p.batches()
                .iter()
                .map(|b| {
                    let v = b.column_by_name("v").unwrap();
                    let keep = arrow::compute::kernels::cmp::lt(v, &Int64Array::new_scalar(100))?;
                    arrow::compute::filter_record_batch(b, &keep)
                })
                .collect::<Result<Vec<_>, arrow::error::ArrowError>>()
        })
        .collect()
        .unwrap()
        .select(["id", "v"])
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    [
        ("groupby", groupby),
        ("join", join),
        ("sort", sort),
        ("function", function),
    ]
    .into_iter()
    .map(|(name, t)| (name, one_batch(&t)))
    .collect()
}

fn fragments_run(cluster: &Cluster) -> u64 {
    cluster
        .status()
        .into_iter()
        .map(|(_, s)| s.map_or(0, |s| s.fragments_run))
        .sum()
}

#[test]
fn results_on_three_peers_equal_results_alone() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let expected = workloads(&local(), &input);
    assert_eq!(expected[0].1.num_rows(), 97, "the groupby's own sanity");
    assert!(expected[2].1.num_rows() > 20_000);

    let (config, peers) = cluster(dir.path(), "spread", false);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    let session = on_cluster(cluster.clone(), 256 << 20);
    let got = workloads(&session, &input);
    for ((name, want), (_, have)) in expected.iter().zip(&got) {
        assert_eq!(want, have, "{name} differs on the cluster");
    }
    let metrics = session.store().metrics();
    assert!(
        metrics.sent_to_peers >= 6,
        "every cached partition went to a peer: {metrics:?}"
    );
    assert_eq!(metrics.files_written, 0, "nothing spilled locally");
    assert!(
        fragments_run(&cluster) >= 6,
        "the filters and partial aggregates ran on the peers"
    );
    drop(session);
    drop(cluster);
    for p in &peers {
        eventually("the session's partitions dropped", || {
            p.partition_count() == 0
        });
    }
}

#[test]
fn the_plan_shows_the_fragment_that_runs_on_peers() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let (config, _peers) = cluster(dir.path(), "spread", false);
    let session = on_cluster(Arc::new(Cluster::connect(config).unwrap()), 256 << 20);
    let cached = session.read_parquet(&input).unwrap().cache().unwrap();
    let plan = cached
        .filter(col("w").eq(lit(1i64)))
        .group_by(["k"])
        .agg([col("v").sum()])
        .explain(false)
        .unwrap();
    let fragment = plan
        .lines()
        .find(|l| l.contains("FragmentExec"))
        .unwrap_or_else(|| panic!("no fragment in\n{plan}"));
    assert!(
        fragment.contains("Partial") && fragment.contains("FilterExec"),
        "{fragment}"
    );
}

#[test]
fn peers_before_disk_evicts_to_peers_instead_of_disk() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let want = local()
        .read_parquet(&input)
        .unwrap()
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    let (config, _peers) = cluster(dir.path(), "peers-before-disk", false);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    // A 12 MiB limit: the store keeps 4 MiB; the cached input is several times that.
    let session = on_cluster(cluster, 12 << 20);
    let cached = session.read_parquet(&input).unwrap().cache().unwrap();
    let metrics = session.store().metrics();
    assert!(metrics.sent_to_peers > 0, "{metrics:?}");
    assert_eq!(metrics.files_written, 0, "peers had room: {metrics:?}");
    let have = cached
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_eq!(one_batch(&want), one_batch(&have));
}

/// Which peers hold the session's partitions now.
fn holders(session: &Session) -> Vec<String> {
    let mut out: Vec<String> = session
        .store()
        .infos()
        .into_iter()
        .flat_map(|i| i.peers)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn a_peer_killed_during_a_query_loses_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let want = local()
        .read_parquet(&input)
        .unwrap()
        .filter(col("w").lt(lit(4i64)))
        .select(["id", "k", "v"])
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    let (config, mut peers) = cluster(dir.path(), "spread", false);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    let session = on_cluster(cluster.clone(), 256 << 20);
    let cached = session.read_parquet(&input).unwrap().cache().unwrap();
    assert_eq!(holders(&session), ["a", "b", "c"]);
    // Stream the query; once the first batches are in, peer b dies without a word.
    let mut stream = cached
        .filter(col("w").lt(lit(4i64)))
        .select(["id", "k", "v"])
        .stream()
        .unwrap();
    let mut batches = vec![stream.next().unwrap().unwrap()];
    let b = peers.remove(1);
    assert_eq!(b.name(), "b");
    b.kill();
    for batch in stream {
        batches.push(batch.unwrap());
    }
    assert_eq!(one_batch(&want), sorted_by_id(batches));
    assert!(
        !holders(&session).contains(&"b".to_string()),
        "b's partitions were rebuilt elsewhere: {:?}",
        holders(&session)
    );
    // The query may finish on b's rebuilt partitions before the heartbeat marks b down.
    eventually("b is seen down", || {
        !cluster.peers_up().contains(&"b".to_string())
    });
}

/// A join run bucket by bucket (partitioned execution) whose buckets are evicted to the
/// peers; one peer dies after the first rows come out. Its buckets are made again from their
/// lineage (the input files, routed again), and the answer is whole.
#[test]
fn join_buckets_lost_with_a_peer_are_rebuilt_from_their_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let join = |session: &Session| {
        let right = session.read_parquet(&input).unwrap().select([
            col("id").alias("rid"),
            col("k").alias("rk"),
            col("v").alias("rv"),
            col("w").alias("rw"),
        ]);
        session
            .read_parquet(&input)
            .unwrap()
            .filter(col("w").not_eq(lit(7i64)))
            .inner_join(right, ["id"], ["rid"])
    };
    let want = join(&local())
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_eq!(want.height(), (0..ROWS).filter(|i| i % 13 != 7).count());
    let (config, mut peers) = cluster(dir.path(), "peers-before-disk", false);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    // 12 MiB: the store keeps 4 MiB, the join's two inputs take about 14.
    let session = Session::builder()
        .ignore_environment()
        .memory_limit_bytes(12 << 20)
        // One bucket runs at a time, and small batches: the result's channels hold a few
        // batches, far from a bucket's, so the query waits for this test to read on, with
        // every bucket but the current one unread (the oldest, evicted first, on peers).
        .target_partitions(1)
        .batch_size(512)
        .force_partitioned(true)
        .remote(cluster.clone())
        .build()
        .unwrap();
    let plan = join(&session).explain(false).unwrap();
    assert!(plan.contains("PartitionedExec"), "{plan}");
    let mut stream = join(&session).stream().unwrap();
    let mut batches = vec![stream.next().unwrap().unwrap()];
    // The buckets still to run: every one can be rebuilt.
    let buckets: Vec<_> = session
        .store()
        .infos()
        .into_iter()
        .filter(|i| i.lineage.as_deref().is_some_and(|l| l.contains("bucket")))
        .collect();
    assert!(buckets.iter().all(|i| i.rebuildable), "{buckets:?}");
    // Kill the peer holding most of them.
    let mut held = std::collections::BTreeMap::<String, usize>::new();
    for peer in buckets.iter().flat_map(|i| i.peers.iter()) {
        *held.entry(peer.clone()).or_default() += 1;
    }
    let victim = held
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(p, _)| p.clone())
        .expect("some bucket still to run is on a peer");
    let at = peers.iter().position(|p| p.name() == victim).unwrap();
    peers.remove(at).kill();
    for batch in stream {
        batches.push(batch.unwrap());
    }
    assert!(
        session.store().metrics().rebuilt > 0,
        "{:?}",
        session.store().metrics()
    );
    assert_eq!(one_batch(&want), sorted_by_id(batches));
}

#[test]
fn data_without_lineage_survives_a_lost_peer_only_when_replicated() {
    for replicate in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (config, mut peers) = cluster(dir.path(), "spread", replicate);
        let cluster = Arc::new(Cluster::connect(config).unwrap());
        let session = on_cluster(cluster.clone(), 256 << 20);
        let (_, data) = batches(50_000);
        let frame = session.from_batches(data).unwrap();
        let infos = session.store().infos();
        assert!(infos.iter().all(|i| !i.rebuildable));
        assert!(
            infos
                .iter()
                .all(|i| i.peers.len() == if replicate { 2 } else { 1 }),
            "{infos:?}"
        );
        // Lose a peer that holds a partition.
        let victim = infos[0].peers[0].clone();
        let at = peers.iter().position(|p| p.name() == victim).unwrap();
        peers.remove(at).kill();
        let result = frame.clone().select([col("k").sum()]).collect();
        if replicate {
            let t = result.unwrap();
            let sum = one_batch(&t);
            let sum = sum
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0);
            assert_eq!(sum, (0..50_000i64).sum::<i64>(), "the replica answered");
        } else {
            let e = result.unwrap_err().to_string();
            assert!(
                e.contains(&format!("peer '{victim}'")) && e.contains("replicate"),
                "the error names the lost peer and the setting: {e}"
            );
        }
    }
}

#[test]
fn a_restarted_peer_rejoins_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut peers) = cluster(dir.path(), "spread", false);
    let cluster = Arc::new(Cluster::connect(config.clone()).unwrap());
    assert_eq!(cluster.peers_up(), ["a", "b", "c"]);
    peers.remove(2).kill();
    eventually("c is seen down", || cluster.peers_up() == ["a", "b"]);
    let _c = RunningPeer::start(&config, "c").unwrap();
    eventually("c rejoins", || cluster.peers_up() == ["a", "b", "c"]);
    // And takes partitions again.
    let session = on_cluster(cluster.clone(), 256 << 20);
    let (_, data) = batches(60_000);
    let _frame = session.from_batches(data).unwrap();
    assert!(!session.store().infos().is_empty());
    assert!(
        session
            .store()
            .infos()
            .iter()
            .all(|i| i.location == spillframe_spill::Location::Peer)
    );
    let used: u64 = cluster
        .status()
        .into_iter()
        .map(|(_, s)| s.unwrap().partitions.len() as u64)
        .sum();
    assert_eq!(used as usize, session.store().infos().len());
    let _ = RemoteTier::policy(cluster.as_ref());
}
