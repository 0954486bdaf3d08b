//! Jobs: `map_partitions`, `map_batches` and `parallelize` against a single-threaded loop over
//! the same data, under a roomy and a tiny memory limit; cancel, progress, failures, per-worker
//! state, PiCloud's `call`/`map`, the function registry, and queries submitted as jobs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use spillframe_engine::jobs::{JobStatus, Merge, Merged, Partition, ProgressUnit, Stateful};
use spillframe_engine::{Error, LazyFrame, Session, Table};

const ROWS: i64 = 400_000;

/// A Parquet file of `ROWS` rows: `k` (0..997, scrambled) and `v` (the row number), written
/// once per test binary.
fn input() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("input.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let batches = (0..ROWS)
            .step_by(50_000)
            .map(|start| {
                let v: Vec<i64> = (start..(start + 50_000).min(ROWS)).collect();
                let k: Vec<i64> = v.iter().map(|x| (x * 7919) % 997).collect();
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![Arc::new(Int64Array::from(k)), Arc::new(Int64Array::from(v))],
                )
                .expect("batch")
            })
            .collect();
        let session = roomy();
        session
            .from_batches(batches)
            .and_then(|f| f.write_parquet(&path))
            .expect("write input");
        (dir, path)
    })
    .1
    .as_path()
}

fn roomy() -> Session {
    Session::builder()
        .memory_limit_bytes(256 << 20)
        .target_partitions(3)
        .job_threads(2)
        .ignore_environment()
        .build()
        .expect("session")
}

/// 3 MiB: the partition store's share (1 MiB) is far below a partition of the input (about
/// 2 MB), so partitions are evicted to spill files.
fn tiny() -> Session {
    Session::builder()
        .memory_limit_bytes(3 << 20)
        .target_partitions(3)
        .batch_size(4096)
        .job_threads(2)
        .ignore_environment()
        .build()
        .expect("session")
}

fn frame(session: &Session) -> LazyFrame {
    session
        .read_parquet(input().to_string_lossy().as_ref())
        .expect("read input")
}

/// The row-wise function under test: drops rows where `v` is a multiple of 3 and adds
/// `w = 2v + k`.
fn transform(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let k = batch.column(0).as_primitive::<Int64Type>();
    let v = batch.column(1).as_primitive::<Int64Type>();
    let keep: arrow::array::BooleanArray = v.iter().map(|x| x.map(|x| x % 3 != 0)).collect();
    let w: Int64Array = k
        .iter()
        .zip(v.iter())
        .map(|(k, v)| Some(2 * v? + k?))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
        Field::new("w", DataType::Int64, true),
    ]));
    let out = RecordBatch::try_new(
        schema,
        vec![
            Arc::clone(batch.column(0)),
            Arc::clone(batch.column(1)),
            Arc::new(w),
        ],
    )?;
    filter_record_batch(&out, &keep)
}

fn transform_partition(p: Partition) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    p.batches().iter().map(transform).collect()
}

/// Every row of `batches` as (k, v, w), sorted.
fn rows(batches: &[RecordBatch]) -> Vec<(i64, i64, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let c = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let (k, v, w) = (c(0), c(1), c(2));
        for i in 0..b.num_rows() {
            out.push((k.value(i), v.value(i), w.value(i)));
        }
    }
    out.sort_unstable();
    out
}

/// The answer of a single-threaded loop over the input's batches.
fn expected() -> &'static Vec<(i64, i64, i64)> {
    static ROWS_EXPECTED: OnceLock<Vec<(i64, i64, i64)>> = OnceLock::new();
    ROWS_EXPECTED.get_or_init(|| {
        let session = roomy();
        let mut out = Vec::new();
        for batch in frame(&session).stream().expect("stream") {
            out.push(transform(&batch.expect("batch")).expect("transform"));
        }
        let r = rows(&out);
        // Sanity of the reference itself: two thirds of the rows are kept.
        assert_eq!(r.len() as i64, ROWS - (ROWS + 2) / 3);
        r
    })
}

fn collected(frame: &LazyFrame) -> Vec<(i64, i64, i64)> {
    rows(&frame.collect().expect("collect").into_batches())
}

#[test]
fn map_partitions_matches_a_single_threaded_loop() {
    for session in [roomy(), tiny()] {
        let before = session.store().metrics();
        let out = frame(&session)
            .map_partitions(transform_partition)
            .collect()
            .expect("map_partitions");
        assert_eq!(&collected(&out), expected());
        if session.memory_limit() < 4 << 20 {
            let after = session.store().metrics();
            assert!(
                after.evictions > before.evictions,
                "under 3 MiB the job's partitions should have been evicted to disk: {after:?}"
            );
        }
        drop(out);
        assert!(
            session.spill_files().is_empty(),
            "the job's stored partitions are removed with its frame: {:?}",
            session.spill_files()
        );
    }
}

#[test]
fn map_batches_matches_a_single_threaded_loop_with_exact_batches_and_bounded_concurrency() {
    for session in [roomy(), tiny()] {
        let sizes = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (s, r, m) = (Arc::clone(&sizes), Arc::clone(&running), Arc::clone(&most));
        let job = frame(&session)
            .map_batches(
                move |batch: RecordBatch| {
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    s.lock().push(batch.num_rows());
                    std::thread::sleep(Duration::from_millis(1));
                    let out = transform(&batch);
                    r.fetch_sub(1, Ordering::SeqCst);
                    out
                },
                10_000,
                2,
            )
            .submit()
            .expect("submit");
        let out = job
            .result()
            .expect("map_batches")
            .into_frame()
            .expect("frame");
        assert_eq!(&collected(&out), expected());
        let sizes = sizes.lock().clone();
        // Batches are exactly 10 000 rows, except the last of each input partition (3).
        let short = sizes.iter().filter(|&&n| n != 10_000).count();
        assert!(short <= 3, "{short} short batches: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>() as i64, ROWS);
        assert!(
            most.load(Ordering::SeqCst) <= 2,
            "more than 2 calls at once"
        );
        let p = job.progress();
        assert_eq!(p.unit, ProgressUnit::Batches);
        assert_eq!(
            (p.done, p.total),
            (sizes.len() as u64, Some(sizes.len() as u64))
        );
    }
}

#[test]
fn parallelize_merges_by_concat_none_or_a_custom_function() {
    for session in [roomy(), tiny()] {
        parallelize_merges(&session);
    }
}

fn parallelize_merges(session: &Session) {
    let frame = frame(session);

    let parts = frame
        .parallelize(transform_partition, 5)
        .merge(Merge::None)
        .submit()
        .expect("submit")
        .result()
        .expect("parallelize")
        .into_partitions()
        .expect("partitions");
    assert_eq!(parts.len(), 5);
    let mut all = Vec::new();
    for p in &parts {
        let rows = collected(p);
        assert!(!rows.is_empty(), "round robin gives every partition rows");
        all.extend(rows);
    }
    all.sort_unstable();
    assert_eq!(&all, expected());

    // A custom merge: the total of w, computed from each partition's table.
    let total = frame
        .parallelize(transform_partition, 4)
        .merge(Merge::custom(|tables: Vec<Table>| {
            assert_eq!(tables.len(), 4);
            let sum: i64 = tables
                .iter()
                .flat_map(|t| t.batches().to_vec())
                .map(|b| {
                    b.column(2)
                        .as_primitive::<Int64Type>()
                        .iter()
                        .flatten()
                        .sum::<i64>()
                })
                .sum();
            Table::from_columns(vec![(
                "w_sum".to_string(),
                Arc::new(Int64Array::from(vec![sum])) as _,
            )])
        }))
        .submit()
        .expect("submit")
        .result()
        .expect("merge");
    let want: i64 = expected().iter().map(|r| r.2).sum();
    let Merged::Table(t) = total else {
        panic!("a custom merge gives a table")
    };
    let got = t.batches()[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0);
    assert_eq!(got, want);
}

#[test]
fn cancel_stops_promptly_and_leaves_no_spill_files() {
    let session = tiny();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let job = frame(&session)
        .parallelize(
            move |p: Partition| {
                c.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
                transform_partition(p)
            },
            12,
        )
        .submit()
        .expect("submit");
    // Wait until the job is in the middle of its work, with spill files on disk.
    let deadline = Instant::now() + Duration::from_secs(60);
    while calls.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        calls.load(Ordering::SeqCst) > 0,
        "the job never called the function"
    );
    assert!(
        !session.spill_files().is_empty(),
        "at 3 MiB the job's input partitions should be on disk"
    );
    let asked = Instant::now();
    assert!(job.cancel());
    let status = job.join(Some(Duration::from_secs(10)));
    assert_eq!(status, JobStatus::Cancelled);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "cancel took {:?}",
        asked.elapsed()
    );
    assert!(matches!(job.result(), Err(Error::Cancelled { .. })));
    // Calls that had not started are skipped, and the files are gone.
    std::thread::sleep(Duration::from_millis(700));
    assert!(calls.load(Ordering::SeqCst) < 12, "every call ran");
    assert_eq!(session.spill_files(), Vec::<PathBuf>::new());
    assert!(!job.cancel(), "a finished job cannot be cancelled again");
}

#[test]
fn progress_is_monotonic_and_reaches_the_total() {
    let session = roomy();
    let job = frame(&session)
        .parallelize(
            |p: Partition| {
                std::thread::sleep(Duration::from_millis(20));
                transform_partition(p)
            },
            16,
        )
        .submit()
        .expect("submit");
    let mut seen = Vec::new();
    while !job.status().is_finished() {
        seen.push(job.progress());
        std::thread::sleep(Duration::from_millis(2));
    }
    seen.push(job.progress());
    assert_eq!(job.status(), JobStatus::Done);
    for pair in seen.windows(2) {
        assert!(pair[1].done >= pair[0].done, "progress went back: {pair:?}");
        assert!(pair[1].bytes >= pair[0].bytes, "bytes went back: {pair:?}");
    }
    let last = seen.last().copied().expect("progress");
    assert_eq!((last.done, last.total), (16, Some(16)));
    assert_eq!(last.fraction(), Some(1.0));
    assert!(
        last.bytes >= ROWS as u64 * 16,
        "bytes processed: {}",
        last.bytes
    );
    assert!(seen.iter().all(|p| p.total == Some(16)));
}

#[test]
fn failures_name_the_partition_and_leave_the_session_usable() {
    let session = roomy();
    let failing = frame(&session)
        .parallelize(
            |p: Partition| {
                if p.index() == 2 {
                    return Err(std::io::Error::other("model refused the input"));
                }
                Ok(p.into_batches())
            },
            4,
        )
        .name("scoring")
        .submit()
        .expect("submit");
    let err = failing.result().expect_err("the function fails");
    let text = err.to_string();
    assert!(
        text.contains("scoring") && text.contains("partition 2") && text.contains("model refused"),
        "{text}"
    );
    assert_eq!(failing.status(), JobStatus::Failed);

    let panicking = frame(&session)
        .map_batches(
            |b: RecordBatch| -> Result<RecordBatch, std::io::Error> {
                if b.num_rows() > 0 {
                    panic!("index out of range in user code");
                }
                Ok(b)
            },
            1000,
            2,
        )
        .submit()
        .expect("submit");
    let err = panicking.result().expect_err("the function panics");
    let text = err.to_string();
    assert!(
        text.contains("panicked") && text.contains("index out of range") && text.contains("batch"),
        "{text}"
    );
    assert_eq!(
        session.job(panicking.id()).map(|j| j.status),
        Some(JobStatus::Failed)
    );

    // The session goes on: the same frame runs, and so does another job.
    assert_eq!(frame(&session).count().expect("count") as i64, ROWS);
    let out = frame(&session)
        .map_partitions(transform_partition)
        .collect()
        .expect("map_partitions after failures");
    assert_eq!(&collected(&out), expected());
    assert!(session.spill_files().is_empty());
}

#[test]
fn outputs_must_share_a_schema_and_empty_inputs_infer_it() {
    let session = roomy();
    // Partition 1 returns other columns than the rest.
    let err = frame(&session)
        .parallelize(
            |p: Partition| {
                let b = p.concat()?;
                if p.index() == 1 {
                    b.project(&[1])
                } else {
                    Ok(b)
                }
            },
            3,
        )
        .collect()
        .expect_err("schemas differ");
    let text = err.to_string();
    // Whichever partition finished first sets the schema; the message names both.
    assert!(
        text.contains("returned columns")
            && text.contains("[v: Int64]")
            && text.contains("[k: Int64, v: Int64]"),
        "{text}"
    );

    // No rows: the schema comes from the function applied to an empty input.
    let empty = frame(&session).filter(spillframe_engine::col("v").lt(datafusion::prelude::lit(0)));
    let out = empty
        .map_partitions(|p: Partition| transform(&p.concat()?))
        .collect()
        .expect("empty input");
    let t = out.collect().expect("collect");
    assert_eq!(t.num_rows(), 0);
    assert_eq!(t.schema().field(2).name(), "w");

    // A function that returns nothing for nothing leaves the schema unknown, unless declared.
    let err = empty
        .map_partitions(transform_partition)
        .collect()
        .expect_err("schema unknown");
    assert!(
        err.to_string().contains("declare it with .schema()"),
        "{err}"
    );
    let declared = Arc::clone(t.schema());
    let t = empty
        .map_partitions(transform_partition)
        .schema(Arc::clone(&declared))
        .collect()
        .and_then(|f| f.collect())
        .expect("declared schema");
    assert_eq!((t.num_rows(), t.schema()), (0, &declared));
}

#[test]
fn state_is_built_once_per_worker() {
    let session = roomy();
    let built = Arc::new(AtomicUsize::new(0));
    let b = Arc::clone(&built);
    struct Model {
        offset: i64,
    }
    let f = Stateful::batches(
        move || {
            b.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Model { offset: 0 })
        },
        |m: &mut Model, batch: RecordBatch| {
            m.offset += 0;
            transform(&batch)
        },
    );
    let out = frame(&session)
        .map_batches(f, 5000, 2)
        .collect()
        .expect("stateful");
    assert_eq!(&collected(&out), expected());
    let n = built.load(Ordering::SeqCst);
    // 80 batches, 2 workers: one model each (at most).
    assert!((1..=2).contains(&n), "built {n} times");
}

#[test]
fn call_and_map_run_plain_functions_with_ids_status_and_kill() {
    let session = roomy();
    let job = session.call(|| Ok::<_, std::io::Error>(6 * 7));
    assert_eq!(job.result().expect("call"), 42);
    assert_eq!(job.status(), JobStatus::Done);

    let squares = session.map(0..100u64, |x| Ok::<_, std::io::Error>(x * x));
    let got = squares.result().expect("map");
    assert_eq!(got, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    let info = session.job(squares.id()).expect("known job");
    assert_eq!((info.progress.done, info.progress.total), (100, Some(100)));

    let failing = session.map(0..10u64, |x| {
        if x == 7 {
            Err(format!("bad item {x}"))
        } else {
            Ok(x)
        }
    });
    let text = failing.result().expect_err("item 7 fails").to_string();
    assert!(
        text.contains("item 7") && text.contains("bad item 7"),
        "{text}"
    );

    let slow = session.map(0..1000u64, |x| {
        std::thread::sleep(Duration::from_millis(10));
        Ok::<_, std::io::Error>(x)
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(session.kill(slow.id()));
    assert_eq!(
        slow.join(Some(Duration::from_secs(5))),
        JobStatus::Cancelled
    );
    assert!(slow.progress().done < 1000);
    assert!(session.jobs().len() >= 4);
    // A timed-out join reports the job still running.
    let sleeper = session.call(|| {
        std::thread::sleep(Duration::from_millis(500));
        Ok::<_, std::io::Error>(())
    });
    assert_eq!(
        sleeper.join(Some(Duration::from_millis(10))),
        JobStatus::Running
    );
    assert_eq!(sleeper.join(None), JobStatus::Done);
}

#[test]
fn registered_functions_run_by_name_and_unknown_names_are_clear_errors() {
    let session = roomy();
    session
        .functions()
        .register_partitions("transform", transform_partition)
        .register_batches("identity", |b: RecordBatch| Ok::<_, std::io::Error>(b));
    let out = frame(&session)
        .map_partitions_named("transform")
        .expect("registered")
        .collect()
        .expect("run");
    assert_eq!(&collected(&out), expected());

    let err = frame(&session)
        .map_partitions_named("score")
        .expect_err("not registered");
    let text = err.to_string();
    assert!(
        text.contains("'score'") && text.contains("identity, transform"),
        "{text}"
    );
    let err = frame(&session)
        .map_partitions_named("identity")
        .expect_err("wrong kind");
    assert!(err.to_string().contains("batch function"), "{err}");
}

#[test]
fn queries_submitted_as_jobs_report_rows_read() {
    let session = roomy();
    let job = frame(&session).submit_collect().expect("submit");
    let table = job.result().expect("collect job");
    assert_eq!(table.num_rows() as i64, ROWS);
    let p = job.progress();
    assert_eq!(
        (p.unit, p.done, p.total),
        (ProgressUnit::Rows, ROWS as u64, Some(ROWS as u64))
    );

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("out.parquet");
    let write = frame(&session)
        .submit_write(spillframe_engine::FileFormat::Parquet, &path)
        .expect("submit write");
    let metrics = write.result().expect("write job");
    assert_eq!(metrics.rows as i64, ROWS);
    let back: BTreeSet<i64> = session
        .read_parquet(path.to_string_lossy().as_ref())
        .and_then(|f| f.collect())
        .expect("read back")
        .batches()
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(back.len() as i64, ROWS);
}

#[test]
fn batch_column_helper_is_consistent() {
    // `rows` reads (k, v, w) by position; a batch with nulls in w would be misread.
    let b = transform(
        &RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, false),
                Field::new("v", DataType::Int64, false),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(Int64Array::from(vec![3, 4, 5])),
            ],
        )
        .expect("batch"),
    )
    .expect("transform");
    assert_eq!(b.column(2).null_count(), 0);
    assert_eq!(rows(&[b]), vec![(2, 4, 10), (3, 5, 13)]);
}

#[test]
fn sorted_outputs_are_merged_not_sorted_again() {
    let session = roomy();
    // Each partition's output sorted by v: the sort of the result becomes a merge.
    let out = frame(&session)
        .parallelize(
            |p: Partition| {
                let b = p.concat()?;
                let order = arrow::compute::sort_to_indices(b.column(1), None, None)?;
                arrow::compute::take_record_batch(&b, &order)
            },
            4,
        )
        .sorted_by(&["v"])
        .collect()
        .expect("job")
        .sort(["v"], spillframe_engine::SortMultipleOptions::default());
    let plan = out.explain(false).expect("explain");
    assert!(
        plan.contains("SortPreservingMergeExec") && !plan.contains("SortExec"),
        "{plan}"
    );
    let t = out.collect().expect("collect");
    let v: Vec<i64> = t
        .batches()
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(v, (0..ROWS).collect::<Vec<_>>());
}
