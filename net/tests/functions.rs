//! Registered functions on a cluster of 2 loopback peers: map jobs run them where the
//! partitions live, with the same results as a session alone; a peer without the function,
//! and a function that fails or panics on a peer, give errors of the job that name them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use spillframe_engine::jobs::{FunctionRegistry, JobStatus, Partition};
use spillframe_engine::prelude::*;
use spillframe_net::{Cluster, ClusterConfig, InitTrust, RunningPeer};

use super::*;

const ROWS: i64 = 120_000;

/// Set when the `slow` function starts, on whichever side runs it.
static SLOW_STARTED: AtomicBool = AtomicBool::new(false);

/// `k` (0..50) and `v`, in 12 batches.
fn input() -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    (0..ROWS)
        .step_by(10_000)
        .map(|start| {
            let ids = start..start + 10_000;
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values(ids.clone().map(|i| i % 50))),
                    Arc::new(Int64Array::from_iter_values(ids.map(|i| (i * 31) % 1_000))),
                ],
            )
            .unwrap()
        })
        .collect()
}

/// The functions, registered alike on the driver and the peers:
/// - `small`: a partition function keeping rows with v < 100, tagged with the partition's
///   index and row count (so a wrong index or a split partition shows);
/// - `plus`: a batch function adding 1000 to v, and the batch's row count as `n`;
/// - `fails`: a partition function that errors on a partition holding a row with k = 7 and
///   v = 0;
/// - `boom`: a partition function that panics.
fn registry() -> FunctionRegistry {
    let r = FunctionRegistry::new();
    r.register_partitions("small", |p: Partition| {
        let index = p.index() as i64;
        let rows = p.num_rows() as i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
            Field::new("part", DataType::Int64, false),
            Field::new("part_rows", DataType::Int64, false),
        ]));
        p.batches()
            .iter()
            .map(|b| {
                let v = b.column(1);
                let keep = arrow::compute::kernels::cmp::lt(v, &Int64Array::new_scalar(100))?;
                let b = arrow::compute::filter_record_batch(b, &keep)?;
                let n = b.num_rows();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        b.column(0).clone(),
                        b.column(1).clone(),
                        Arc::new(Int64Array::from(vec![index; n])),
                        Arc::new(Int64Array::from(vec![rows; n])),
                    ],
                )
            })
            .collect::<Result<Vec<_>, arrow::error::ArrowError>>()
    });
    r.register_batches("plus", |b: RecordBatch| {
        let v = b.column(1).as_primitive::<Int64Type>();
        let plus: Int64Array = v.iter().map(|x| x.map(|x| x + 1000)).collect();
        let n = b.num_rows() as i64;
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, false),
                Field::new("v", DataType::Int64, false),
                Field::new("n", DataType::Int64, false),
            ])),
            vec![
                b.column(0).clone(),
                Arc::new(plus),
                Arc::new(Int64Array::from(vec![n; b.num_rows()])),
            ],
        )
    });
    r.register_partitions("fails", |p: Partition| {
        let seven_at_zero = p.batches().iter().any(|b| {
            let k = b.column(0).as_primitive::<Int64Type>();
            let v = b.column(1).as_primitive::<Int64Type>();
            (0..b.num_rows()).any(|i| k.value(i) == 7 && v.value(i) == 0)
        });
        if seven_at_zero {
            return Err(std::io::Error::other("k = 7 with v = 0 is not allowed"));
        }
        Ok(p.into_batches())
    });
    r.register_partitions("slow", |p: Partition| {
        SLOW_STARTED.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(3));
        Ok::<_, std::io::Error>(p.into_batches())
    });
    r.register_partitions(
        "boom",
        |_: Partition| -> Result<Vec<RecordBatch>, std::io::Error> { panic!("boom on purpose") },
    );
    r
}

fn session(remote: Option<Arc<Cluster>>) -> Session {
    let mut b = Session::builder()
        .ignore_environment()
        .memory_limit_bytes(256 << 20)
        .target_partitions(4)
        .functions(registry());
    if let Some(c) = remote {
        b = b.remote(c);
    }
    b.build().unwrap()
}

/// 2 peers placing every finished partition at once (`spread`); with `functions`, the peers
/// run the registry's functions.
fn two_peers(dir: &Path, functions: bool) -> (ClusterConfig, Vec<RunningPeer>) {
    let config = make_cluster(dir, 2, InitTrust::Ca, "256MiB");
    let text = std::fs::read_to_string(&config.path).unwrap().replace(
        "placement = \"peers-before-disk\"",
        "placement = \"spread\"",
    );
    std::fs::write(&config.path, text).unwrap();
    let config = ClusterConfig::load(&config.path).unwrap();
    let peers = config
        .peers
        .iter()
        .map(|p| {
            if functions {
                RunningPeer::start_with(&config, &p.name, registry()).unwrap()
            } else {
                RunningPeer::start(&config, &p.name).unwrap()
            }
        })
        .collect();
    (config, peers)
}

/// The result sorted by every column, as one batch.
fn sorted(frame: LazyFrame) -> RecordBatch {
    let names: Vec<String> = frame
        .schema()
        .unwrap()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let t = frame
        .sort(names, SortMultipleOptions::default())
        .collect()
        .unwrap();
    concat_batches(t.schema(), t.batches()).unwrap()
}

fn functions_run(cluster: &Cluster) -> Vec<u64> {
    cluster
        .status()
        .into_iter()
        .map(|(_, s)| s.map_or(0, |s| s.functions_run))
        .collect()
}

/// The jobs of the comparison over `frame`.
fn jobs(frame: &LazyFrame) -> (RecordBatch, RecordBatch) {
    let small = frame
        .map_partitions_named("small")
        .unwrap()
        .collect()
        .unwrap();
    let plus = frame
        .map_batches_named("plus", 3_000, 0)
        .unwrap()
        .collect()
        .unwrap();
    (sorted(small), sorted(plus))
}

#[test]
fn registered_functions_run_on_two_peers_and_match_a_local_run() {
    let local = session(None);
    let want = jobs(&local.from_batches(input()).unwrap());
    // Checked by hand: v = 31 i mod 1000 is below 100 for 100 of every 1000 rows; every
    // batch of `plus` has 3000 rows except the last of each partition.
    assert_eq!(want.0.num_rows(), (ROWS / 10) as usize);
    assert_eq!(want.1.num_rows(), ROWS as usize);

    let dir = tempfile::tempdir().unwrap();
    let (config, _peers) = two_peers(dir.path(), true);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    let remote = session(Some(cluster.clone()));
    let frame = remote.from_batches(input()).unwrap();
    let parts = remote.store().infos();
    assert!(
        parts
            .iter()
            .all(|p| p.memory_bytes == 0 && p.peer_bytes > 0),
        "under spread, the input lives on the peers: {parts:?}"
    );
    let got = jobs(&frame);
    assert_eq!(want.0, got.0, "the partition function differs on the peers");
    assert_eq!(want.1, got.1, "the batch function differs on the peers");
    let ran = functions_run(&cluster);
    assert_eq!(
        ran.iter().sum::<u64>(),
        2 * parts.len() as u64,
        "each partition was mapped where it lives, once per job: {ran:?}"
    );
    assert!(ran.iter().all(|&n| n > 0), "both peers ran some: {ran:?}");

    // A frame that is not a bare stored scan: its partitions are stored first, spread, and
    // mapped there too.
    let filtered = frame.clone().filter(col("k").lt(lit(25i64)));
    let want = sorted(
        local
            .from_batches(input())
            .unwrap()
            .filter(col("k").lt(lit(25i64)))
            .map_partitions_named("small")
            .unwrap()
            .collect()
            .unwrap()
            .select(["k", "v"]),
    );
    let before: u64 = functions_run(&cluster).iter().sum();
    let job = filtered
        .map_partitions_named("small")
        .unwrap()
        .submit()
        .unwrap();
    let result = job.result().unwrap();
    let progress = job.progress();
    let got = sorted(result.into_frame().unwrap().select(["k", "v"]));
    assert_eq!(want, got);
    assert_eq!(Some(progress.done), progress.total, "{progress:?}");
    assert!(progress.bytes > 0, "{progress:?}");
    assert!(functions_run(&cluster).iter().sum::<u64>() > before);
}

#[test]
fn a_peer_without_the_function_or_a_failing_function_is_an_error_of_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _peers) = two_peers(dir.path(), false);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    let s = session(Some(cluster.clone()));
    let frame = s.from_batches(input()).unwrap();
    let err = frame
        .map_partitions_named("small")
        .unwrap()
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no function 'small' is registered here (registered: none)"),
        "{err}"
    );
    assert!(err.contains("spillframe::peer::serve"), "{err}");
    eprintln!("error of a missing function: {err}");
    assert!(
        err.contains("peer 'a'") || err.contains("peer 'b'"),
        "{err}"
    );
    // The session goes on: a query over the same frame still runs on the peers.
    let n = frame.clone().select([len().alias("n")]).collect().unwrap();
    assert_eq!(
        n.batches()[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0),
        ROWS
    );
    drop(frame);
    drop(s);
    drop(cluster);
}

#[test]
fn a_function_failing_on_a_peer_names_the_partition_and_carries_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _peers) = two_peers(dir.path(), true);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    let s = session(Some(cluster.clone()));
    // In the input, v = 0 needs i = 0 mod 1000 and k = 7 needs i = 7 mod 50: never both, so
    // only the extra row below trips the function.
    let mut batches = input();
    let extra = RecordBatch::try_new(
        batches[0].schema(),
        vec![
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(Int64Array::from(vec![0])),
        ],
    )
    .unwrap();
    batches.push(extra);
    let frame = s.from_batches(batches).unwrap();
    let err = frame
        .map_partitions_named("fails")
        .unwrap()
        .collect()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("job 'fails'"), "{text}");
    assert!(text.contains("partition"), "{text}");
    let chain = {
        let mut s = text.clone();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            s.push_str(&format!(" / {e}"));
            source = e.source();
        }
        s
    };
    assert!(chain.contains("k = 7 with v = 0 is not allowed"), "{chain}");
    assert!(text.contains(": peer '"), "it failed on a peer: {text}");
    eprintln!("error of a failing function: {chain}");
    let boom = frame
        .map_partitions_named("boom")
        .unwrap()
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        boom.contains("job 'boom'") && boom.contains("panicked: boom on purpose"),
        "{boom}"
    );
    // The session stays usable.
    let ok = frame
        .clone()
        .filter(col("v").gt(lit(0i64)))
        .map_partitions_named("fails")
        .unwrap()
        .collect()
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(ok.num_rows(), ROWS as usize - (ROWS / 1000) as usize);
}

#[test]
fn cancelling_a_job_on_peers_returns_at_once_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (config, peers) = two_peers(dir.path(), true);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    let s = session(Some(cluster.clone()));
    let frame = s.from_batches(input()).unwrap();
    let held = s.store().infos().len();
    // Not a bare scan: the job stores its own inputs, which go to the peers.
    let job = frame
        .clone()
        .filter(col("k").gt(lit(0i64)))
        .map_partitions_named("slow")
        .unwrap()
        .submit()
        .unwrap();
    let start = Instant::now();
    while !SLOW_STARTED.load(Ordering::SeqCst) {
        assert!(start.elapsed() < TIMEOUT, "the function never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let cancelled = Instant::now();
    assert!(job.cancel());
    assert_eq!(job.join(Some(TIMEOUT)), JobStatus::Cancelled);
    assert!(
        cancelled.elapsed() < Duration::from_secs(1),
        "cancel waited for the peers' 3 s calls: {:?}",
        cancelled.elapsed()
    );
    assert_eq!(s.store().infos().len(), held, "the job's inputs are gone");
    assert_eq!(s.store().metrics().files_written, 0);
    // The peers drop the job's inputs too (asynchronously).
    let start = Instant::now();
    loop {
        let on_peers: usize = peers.iter().map(|p| p.partition_count()).sum();
        if on_peers == held {
            break;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "peers still hold {on_peers} partitions, the frame has {held}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cached_input_lost_with_its_peer_is_rebuilt_and_mapped_again() {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.parquet");
    let local = session(None);
    local
        .from_batches(input())
        .unwrap()
        .write_parquet(&input_path)
        .unwrap();
    let want = sorted(
        local
            .read_parquet(&input_path)
            .unwrap()
            .map_partitions_named("small")
            .unwrap()
            .collect()
            .unwrap()
            .select(["k", "v"]),
    );

    let (config, mut peers) = two_peers(dir.path(), true);
    let cluster = Arc::new(Cluster::connect(config).unwrap());
    let s = session(Some(cluster.clone()));
    let cached = s.read_parquet(&input_path).unwrap().cache().unwrap();
    let infos = s.store().infos();
    assert!(
        infos.iter().all(|p| p.rebuildable && p.peer_bytes > 0),
        "{infos:?}"
    );
    let on_b = infos.iter().filter(|p| p.peers == ["b"]).count();
    assert!(on_b > 0, "some partitions are on b: {infos:?}");
    peers.pop().unwrap().kill();
    let start = Instant::now();
    while cluster.peers_up().len() != 1 {
        assert!(start.elapsed() < TIMEOUT, "b's loss was never noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = sorted(
        cached
            .map_partitions_named("small")
            .unwrap()
            .collect()
            .unwrap()
            .select(["k", "v"]),
    );
    assert_eq!(want, got, "the rebuilt partitions map to the same rows");
    let ran = functions_run(&cluster);
    assert_eq!(
        ran[0],
        infos.len() as u64,
        "a mapped every partition: {ran:?}"
    );
}
