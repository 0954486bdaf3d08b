//! `spillframe demo`: the main job on an embedded default dataset.
//!
//! It generates the db-benchmark groupby table (10 million rows by default; cached and reused
//! on later runs), then runs a groupby, a join, a sort and a Rust function over every batch
//! (a `map_batches` job) under a memory limit smaller than the data, so that the sort and the
//! job's output spill. It prints each answer with its metrics and a summary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use bytesize::ByteSize;
use clap::Args;
use spillframe_engine::prelude::*;
use spillframe_engine::{MemoryLimit, QueryMetrics};

use crate::cli::parse_rows;
use crate::datagen::h2o::{GroupbySpec, generate_groupby};
use crate::error::{Error, Result};

/// Arguments of `spillframe demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Rows of the generated table.
    #[arg(long, value_parser = parse_rows, default_value = "1e7")]
    pub rows: u64,
    /// Memory limit for the queries (kept below the data size so that work spills).
    #[arg(long, value_parser = |s: &str| s.parse::<MemoryLimit>().map_err(|e| e.to_string()), default_value = "256MiB")]
    pub memory_limit: MemoryLimit,
    /// Where the dataset is cached (default: $SPILLFRAME_DEMO_DIR, else ~/.cache/spillframe/demo).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Generate the dataset again even if a cached copy exists.
    #[arg(long)]
    pub regenerate: bool,
    /// Partitions to split work into (default: one per core).
    #[arg(long)]
    pub target_partitions: Option<usize>,
    /// Base directory for spill files.
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
}

/// What the demo did, step by step.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The dataset file.
    pub data_file: PathBuf,
    /// Each step's title, printed answer and metrics.
    pub steps: Vec<(String, Table, QueryMetrics)>,
}

impl DemoReport {
    /// Bytes spilled over all steps.
    pub fn spilled_bytes(&self) -> u64 {
        self.steps.iter().map(|s| s.2.spilled_bytes).sum()
    }
    /// The highest peak memory of any step.
    pub fn peak_memory(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| s.2.peak_memory)
            .max()
            .unwrap_or(0)
    }
    /// Total query time.
    pub fn elapsed(&self) -> Duration {
        self.steps.iter().map(|s| s.2.elapsed).sum()
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SPILLFRAME_DEMO_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("spillframe").join("demo");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h)
            .join(".cache")
            .join("spillframe")
            .join("demo");
    }
    std::env::temp_dir().join("spillframe-demo")
}

/// Generates the dataset if needed and returns its file.
pub fn dataset(args: &DemoArgs, quiet: bool) -> Result<PathBuf> {
    let spec = GroupbySpec::new(args.rows);
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(default_data_dir)
        .join(format!(
            "h2o-groupby-{}-k{}-seed{}",
            args.rows, spec.k, spec.seed
        ));
    let file = dir.join("x.parquet");
    if file.is_file() && !args.regenerate {
        if !quiet {
            println!("using cached dataset {}", file.display());
        }
        return Ok(file);
    }
    if !quiet {
        println!(
            "generating {} rows of the h2o groupby table into {}",
            args.rows,
            dir.display()
        );
    }
    let bar = crate::cli::progress_bar(args.rows, "generating");
    let started = Instant::now();
    let files = generate_groupby(&spec, &dir, &|d, _| bar.set_position(d));
    bar.finish_and_clear();
    let files = files?;
    if !quiet {
        println!("generated in {:.1}s", started.elapsed().as_secs_f64());
    }
    files
        .into_iter()
        .next()
        .map(|f| f.path)
        .ok_or_else(|| Error::argument("--rows", "the generator wrote no file"))
}

/// Runs the demo's queries on `data_file` and returns what each did.
pub fn run_queries(args: &DemoArgs, data_file: &Path) -> Result<DemoReport> {
    let mut builder = Session::builder().memory_limit(args.memory_limit);
    if let Some(n) = args.target_partitions {
        builder = builder.target_partitions(n);
    }
    if let Some(d) = &args.spill_dir {
        builder = builder.spill_dir(d);
    }
    let session = builder.build()?;
    let x = session.read_parquet(data_file)?;
    let mut steps = Vec::new();

    // 1. groupby, few and many groups.
    let (t, m) = x
        .clone()
        .group_by(["id1"])
        .agg([
            col("v1").sum().alias("v1_sum"),
            col("v3").mean().alias("v3_mean"),
            len(),
        ])
        .sort(["id1"], SortMultipleOptions::default())
        .limit(5)
        .collect_with_metrics()?;
    steps.push((
        "groupby id1: sum(v1), mean(v3), len (first 5 of 100 groups)".to_string(),
        t,
        m,
    ));

    let (t, m) = x
        .clone()
        .group_by(["id3"])
        .agg([
            col("v1").sum().alias("v1_sum"),
            col("v3").mean().alias("v3_mean"),
        ])
        .sort(
            ["v1_sum", "id3"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .limit(5)
        .collect_with_metrics()?;
    steps.push((
        "groupby id3 (N/100 groups): top 5 by sum(v1)".to_string(),
        t,
        m,
    ));

    // 2. join: every row against its group's mean. The means (100 rows) are materialised
    // first, so the planner knows the small side exactly and builds its hash table from it.
    let means = x
        .clone()
        .group_by(["id4"])
        .agg([col("v3").mean().alias("mean_v3")])
        .collect()?
        .lazy(&session)?;
    let (t, m) = x
        .clone()
        .inner_join(means, ["id4"], ["id4"])
        .filter(col("v3").gt(col("mean_v3")))
        .group_by(["id4"])
        .agg([
            len().alias("rows_above_mean"),
            (col("v3") - col("mean_v3")).mean().alias("mean_excess"),
        ])
        .sort(["id4"], SortMultipleOptions::default())
        .limit(5)
        .collect_with_metrics()?;
    steps.push((
        "join x with per-id4 means: rows above their group mean (first 5)".to_string(),
        t,
        m,
    ));

    // 3. a full sort of every row, written to Parquet, then read back.
    let sorted_path = data_file.with_file_name("sorted.parquet");
    let m = x
        .clone()
        .sort(
            ["id3", "v3"],
            SortMultipleOptions::default().with_order_descending_multi([false, true]),
        )
        .write_parquet(&sorted_path)?;
    let head = session
        .read_parquet(&sorted_path)?
        .select(["id3", "v3", "id1", "v1"])
        .limit(5)
        .collect()?;
    let _ = std::fs::remove_file(&sorted_path);
    steps.push((
        format!(
            "sort all {} rows by id3, v3 desc (written to Parquet; first 5)",
            m.rows
        ),
        head,
        m,
    ));

    // 4. a Rust function over every batch, on the worker pool (a map_batches job, with a
    // progress bar), then a groupby of what it produced. Its output goes to the partition
    // store, which spills it when memory is short.
    let started = Instant::now();
    session.governor().reset_peak();
    let store_before = session.store().metrics();
    let job = x
        .clone()
        .select(["v3"])
        .map_batches(band_v3, 0, 0)
        .name("band v3")
        .submit()?;
    let bar = crate::cli::ProgressReporter::follow_job(&job, "map_batches");
    let banded = job.result()?.into_frame()?;
    bar.finish();
    let (job_time, job_peak) = (started.elapsed(), session.governor().peak());
    let store_after = session.store().metrics();
    let batches = job.progress().done;
    let (t, mut m) = banded
        .group_by(["v3_band"])
        .agg([len().alias("rows"), col("v3").mean().alias("v3_mean")])
        .sort(["v3_band"], SortMultipleOptions::default())
        .limit(5)
        .collect_with_metrics()?;
    // The job's figures count too: its output went into the store, which evicted what did
    // not fit.
    m.elapsed += job_time;
    m.peak_memory = m.peak_memory.max(job_peak);
    m.spilled_bytes += store_after
        .bytes_written
        .saturating_sub(store_before.bytes_written);
    m.spill_files += store_after
        .files_written
        .saturating_sub(store_before.files_written);
    m.partitions_evicted += store_after.evictions.saturating_sub(store_before.evictions);
    steps.push((
        format!(
            "map_batches: a Rust function bands v3 in {batches} batches, then rows per band (first 5)"
        ),
        t,
        m,
    ));

    Ok(DemoReport {
        data_file: data_file.to_path_buf(),
        steps,
    })
}

/// The demo's user function: `v3` and its band of width 10 (`floor(v3 / 10)`).
fn band_v3(batch: RecordBatch) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let v3 = batch.column(0).as_primitive::<Float64Type>();
    let band: Int64Array = v3
        .iter()
        .map(|v| v.map(|v| (v / 10.0).floor() as i64))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("v3", DataType::Float64, true),
        Field::new("v3_band", DataType::Int64, true),
    ]));
    RecordBatch::try_new(schema, vec![Arc::clone(batch.column(0)), Arc::new(band)])
}

/// Runs `spillframe demo`.
pub fn run(args: DemoArgs) -> Result<()> {
    let file = dataset(&args, false)?;
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "spillframe demo: {} rows ({} of Parquet) under a {} memory limit\n",
        args.rows,
        ByteSize(size),
        args.memory_limit
    );
    let report = run_queries(&args, &file)?;
    for (i, (title, table, metrics)) in report.steps.iter().enumerate() {
        println!("{}. {title}", i + 1);
        print!("{table}");
        println!("   {metrics}\n");
    }
    println!(
        "summary: {} queries in {:.2}s · peak memory {} · spilled {} in total",
        report.steps.len(),
        report.elapsed().as_secs_f64(),
        ByteSize(report.peak_memory()),
        ByteSize(report.spilled_bytes())
    );
    Ok(())
}
