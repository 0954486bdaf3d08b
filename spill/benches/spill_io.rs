//! Spill I/O micro-benchmarks (criterion): how fast spill files are written and read back,
//! to be read against the disk's own sequential bandwidth, which `benches/spill_io.sh`
//! measures with `dd` in the same run.
//!
//! - `spill_write/page_cache`: [`SpillWriter`] writes 256 MiB of Arrow batches and finishes
//!   the file (checksum trailer included), without forcing it to disk: what a spilling query
//!   pays while the page cache absorbs the writes.
//! - `spill_write/fsync`: the same, then `fsync`: the disk's share (compare with `dd
//!   conv=fdatasync`).
//! - `spill_read/mmap_zero_copy/{cached,cold}`: [`SpillFile::read`], the path spillframe uses:
//!   maps the file, verifies the xxh3 checksum over every byte, and decodes the batches in
//!   place (the arrays point into the mapping). "cold" drops the file's pages from the page
//!   cache before every read (`posix_fadvise(DONTNEED)`), so the bytes come from the disk.
//! - `spill_read/buffered_copy/{cached,cold}`: the same batches as a plain Arrow IPC file read
//!   with arrow's `FileReader` over a `BufReader`, which copies every buffer onto the heap
//!   (and verifies no checksum).
//!
//! Every read sums one column of every batch, so that the mapped pages are really touched.
//!
//! ```sh
//! benches/spill_io.sh                                   # dd + these, report in docs
//! cargo bench --workspace --bench spill_io              # these alone
//! SPILL_BENCH_DIR=/mnt/disk cargo bench --workspace --bench spill_io
//! ```

use std::fs::File;
use std::hint::black_box;
use std::io::BufReader;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use spillframe_spill::{Compression, DiskBudget, SpillFile, SpillWriter};

/// Rows per batch, and batches: about 256 MiB of Arrow data in all.
const ROWS: usize = 1 << 20;
const BATCHES: usize = 7;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("key", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("label", DataType::Utf8, false),
    ]))
}

/// Deterministic batches with the shape of a spilled h2o partition: two integer keys, a
/// float and a short string.
fn batches() -> Vec<RecordBatch> {
    (0..BATCHES)
        .map(|b| {
            let base = (b * ROWS) as i64;
            let id = Int64Array::from_iter_values((0..ROWS as i64).map(|i| base + i));
            let key = Int64Array::from_iter_values(
                (0..ROWS as i64).map(|i| (base + i).wrapping_mul(0x9E37_79B9) % 100_000),
            );
            let value = Float64Array::from_iter_values((0..ROWS).map(|i| (i % 1000) as f64 * 0.25));
            let label =
                StringArray::from_iter_values((0..ROWS).map(|i| format!("id{:07}", i % 9973)));
            RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(id),
                    Arc::new(key),
                    Arc::new(value),
                    Arc::new(label),
                ],
            )
            .expect("the columns match the schema")
        })
        .collect()
}

/// Where the files go: `SPILL_BENCH_DIR`, else the system's temporary directory.
fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("SPILL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("spill-io-bench-")
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("cannot create a directory in {}: {e}", base.display()))
}

fn write_spill(path: &Path, batches: &[RecordBatch], budget: &Arc<DiskBudget>) -> SpillFile {
    let mut w = SpillWriter::create(
        path.to_path_buf(),
        &schema(),
        Compression::None,
        Arc::clone(budget),
    )
    .expect("create spill file");
    for b in batches {
        w.write(b).expect("write batch");
    }
    w.finish().expect("finish spill file")
}

/// Drops the file's pages from the page cache (they are clean: the file was synced).
fn evict(path: &Path) {
    let f = File::open(path).expect("open for eviction");
    // SAFETY: a plain advisory call on a file descriptor we own for its duration.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(
        rc,
        0,
        "posix_fadvise(DONTNEED) failed on {}",
        path.display()
    );
}

fn sync(path: &Path) {
    File::open(path)
        .and_then(|f| f.sync_all())
        .expect("fsync the file");
}

/// Sums the `value` column of every batch (touches the data, so the pages are read).
fn touch(batches: &[RecordBatch]) -> f64 {
    batches
        .iter()
        .map(|b| {
            let v = b
                .column(2)
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("value is Float64");
            v.values().iter().sum::<f64>() + v.len() as f64
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let data = batches();
    let dir = bench_dir();
    let budget = Arc::new(DiskBudget::new(None));

    // Writes.
    let probe = write_spill(&dir.path().join("probe.spill"), &data, &budget);
    let bytes = probe.bytes();
    drop(probe);
    let mut group = c.benchmark_group("spill_write");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut n = 0u64;
    group.bench_function("page_cache", |b| {
        b.iter(|| {
            n += 1;
            let f = write_spill(&dir.path().join(format!("w{n}.spill")), &data, &budget);
            black_box(f.bytes())
            // Dropping the handle deletes the file.
        })
    });
    group.bench_function("fsync", |b| {
        b.iter(|| {
            n += 1;
            let f = write_spill(&dir.path().join(format!("w{n}.spill")), &data, &budget);
            sync(f.path());
            black_box(f.bytes())
        })
    });
    group.finish();

    // Reads: one spill file and the same batches as a plain IPC file.
    let spill = write_spill(&dir.path().join("read.spill"), &data, &budget);
    sync(spill.path());
    let plain = dir.path().join("read.arrow");
    {
        let options = IpcWriteOptions::try_new(64, false, arrow_ipc::MetadataVersion::V5)
            .expect("ipc options");
        let mut w = FileWriter::try_new_with_options(
            std::io::BufWriter::new(File::create(&plain).expect("create plain file")),
            &schema(),
            options,
        )
        .expect("ipc writer");
        for b in &data {
            w.write(b).expect("write batch");
        }
        w.finish().expect("finish plain file");
    }
    sync(&plain);
    let expected = touch(&data);
    let read_mmap = || {
        let got = spill.read().expect("read spill file");
        assert_eq!(touch(&got), expected);
        got.len()
    };
    let read_buffered = || {
        let reader = FileReader::try_new(
            BufReader::with_capacity(1 << 20, File::open(&plain).expect("open plain file")),
            None,
        )
        .expect("ipc reader");
        let got: Vec<RecordBatch> = reader.map(|b| b.expect("read batch")).collect();
        assert_eq!(touch(&got), expected);
        got.len()
    };
    let mut group = c.benchmark_group("spill_read");
    group.throughput(Throughput::Bytes(spill.bytes()));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("mmap_zero_copy/cached", |b| b.iter(read_mmap));
    group.bench_function("buffered_copy/cached", |b| b.iter(read_buffered));
    group.bench_function("mmap_zero_copy/cold", |b| {
        b.iter_batched(
            || evict(spill.path()),
            |()| read_mmap(),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("buffered_copy/cold", |b| {
        b.iter_batched(
            || evict(&plain),
            |()| read_buffered(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
