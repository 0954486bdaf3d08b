//! Execution: turning a frame into a physical plan, running it, watching its progress and
//! reporting its metrics.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use bytesize::ByteSize;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext, displayable};

use crate::error::{Error, Result};
use crate::session::Session;

/// What one query did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryMetrics {
    /// Rows produced (for writes: rows written).
    pub rows: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The session's memory limit.
    pub memory_limit: u64,
    /// Peak memory reserved through the session's memory pool during the query.
    pub peak_memory: u64,
    /// Bytes written to spill files: by DataFusion's operators (sort, aggregate, sort-merge
    /// join, repartition) and by the partition store (buckets of partitioned operators,
    /// cached frames).
    pub spilled_bytes: u64,
    /// Spill files written.
    pub spill_files: u64,
    /// Rows written to spill files by DataFusion's operators.
    pub spilled_rows: u64,
    /// Times the partition store evicted a partition from memory to disk.
    pub partitions_evicted: u64,
}

impl fmt::Display for QueryMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows in {:.2}s · peak memory {} of {} limit · spilled {} in {} files",
            self.rows,
            self.elapsed.as_secs_f64(),
            ByteSize(self.peak_memory),
            ByteSize(self.memory_limit),
            ByteSize(self.spilled_bytes),
            self.spill_files
        )?;
        if self.partitions_evicted > 0 {
            write!(f, " · {} partitions evicted", self.partitions_evicted)?;
        }
        Ok(())
    }
}

/// How far a running query has read its inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rows read from the inputs so far.
    pub rows_read: u64,
    /// Rows in the inputs, when the sources know it (Parquet metadata, in-memory tables).
    pub rows_total: Option<u64>,
}

/// A query planned and ready to run. Its progress and metrics can be read from another thread
/// while it runs.
pub struct Query {
    session: Session,
    plan: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    rows_total: Option<u64>,
    sources: Vec<std::path::PathBuf>,
    store_before: parking_lot::Mutex<spillframe_spill::StoreMetrics>,
    /// For a write: the staging file, moved over the target when the run succeeds.
    output: Option<crate::output::StagedOutput>,
    /// Whether a CSV file is read in byte ranges by several partitions: the CSV reader's line
    /// numbers then count from the start of a range, not of the file.
    csv_in_ranges: bool,
}

impl Query {
    pub(crate) fn new(
        session: Session,
        plan: Arc<dyn ExecutionPlan>,
        task_ctx: Arc<TaskContext>,
        sources: Vec<std::path::PathBuf>,
    ) -> Query {
        let rows_total = input_rows_total(&plan);
        let scanned = scanned_files(&plan);
        // A SQL query's frame knows no files; its plan's scans do.
        let sources = if sources.is_empty() {
            scanned.files
        } else {
            sources
        };
        Query {
            session,
            plan,
            task_ctx,
            rows_total,
            sources,
            csv_in_ranges: scanned.csv_in_ranges,
            store_before: Default::default(),
            output: None,
        }
    }

    /// A write query, whose plan writes to `output`'s staging file.
    pub(crate) fn with_output(mut self, output: crate::output::StagedOutput) -> Query {
        self.output = Some(output);
        self
    }

    /// The physical plan.
    pub fn plan(&self) -> &Arc<dyn ExecutionPlan> {
        &self.plan
    }

    /// The task context the plan runs with.
    pub fn task_context(&self) -> Arc<TaskContext> {
        Arc::clone(&self.task_ctx)
    }

    /// The physical plan as indented text; after a run it carries each operator's metrics.
    pub fn display_plan(&self, with_metrics: bool) -> String {
        if with_metrics {
            DisplayableExecutionPlan::with_metrics(self.plan.as_ref())
                .indent(true)
                .to_string()
        } else {
            displayable(self.plan.as_ref()).indent(true).to_string()
        }
    }

    /// How far the inputs have been read.
    pub fn progress(&self) -> Progress {
        let mut rows_read = 0u64;
        visit_leaves(&self.plan, &mut |leaf| {
            if let Some(m) = leaf.metrics() {
                rows_read += m.output_rows().unwrap_or(0) as u64;
            }
        });
        Progress {
            rows_read,
            rows_total: self.rows_total,
        }
    }

    /// Runs the query to completion and returns its batches and metrics.
    pub fn run(&self) -> Result<(Vec<RecordBatch>, QueryMetrics)> {
        let session = self.session.clone();
        session.block_on(self.run_async())
    }

    /// Async form of [`run`](Self::run).
    pub async fn run_async(&self) -> Result<(Vec<RecordBatch>, QueryMetrics)> {
        let mut batches = Vec::new();
        let metrics = self
            .run_each_async(|b| {
                batches.push(b);
                Ok(())
            })
            .await?;
        Ok((batches, metrics))
    }

    /// Runs the query, handing each result batch to `sink` as it is produced instead of
    /// keeping them: memory then holds what the plan holds plus what `sink` keeps. A write
    /// query's output is committed when the run succeeds and removed when it fails (`sink`
    /// failing included).
    pub fn run_each(
        &self,
        sink: impl FnMut(RecordBatch) -> Result<()> + Send,
    ) -> Result<QueryMetrics> {
        let session = self.session.clone();
        session.block_on(self.run_each_async(sink))
    }

    /// Async form of [`run_each`](Self::run_each).
    pub async fn run_each_async(
        &self,
        mut sink: impl FnMut(RecordBatch) -> Result<()> + Send,
    ) -> Result<QueryMetrics> {
        use futures::StreamExt as _;
        let started = self.start();
        let mut rows = 0u64;
        let streamed = async {
            let mut stream =
                datafusion::physical_plan::execute_stream(self.plan.clone(), self.task_ctx.clone())
                    .map_err(|e| self.execution_error(e))?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| self.execution_error(e))?;
                rows += batch.num_rows() as u64;
                sink(batch)?;
            }
            Ok::<_, Error>(())
        }
        .await;
        match (streamed, &self.output) {
            (Ok(()), Some(out)) => out.commit()?,
            (Ok(()), None) => {}
            (Err(e), Some(out)) => {
                out.abandon();
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        }
        Ok(self.metrics(rows, started.elapsed()))
    }

    /// Marks the start of a run: resets the peak and snapshots the store's counters.
    pub(crate) fn start(&self) -> Instant {
        self.session.governor().reset_peak();
        *self.store_before.lock() = self.session.store().metrics();
        Instant::now()
    }

    /// The metrics of the plan as it stands (complete after a run).
    pub fn metrics(&self, rows: u64, elapsed: Duration) -> QueryMetrics {
        let mut m = QueryMetrics {
            rows,
            elapsed,
            memory_limit: self.session.memory_limit(),
            peak_memory: self.session.governor().peak(),
            ..Default::default()
        };
        visit_all(&self.plan, &mut |node| {
            if let Some(set) = node.metrics() {
                m.spilled_bytes += set.spilled_bytes().unwrap_or(0) as u64;
                m.spill_files += set.spill_count().unwrap_or(0) as u64;
                m.spilled_rows += set.spilled_rows().unwrap_or(0) as u64;
            }
        });
        let before = *self.store_before.lock();
        let after = self.session.store().metrics();
        m.spilled_bytes += after.bytes_written.saturating_sub(before.bytes_written);
        m.spill_files += after.files_written.saturating_sub(before.files_written);
        m.partitions_evicted = after.evictions.saturating_sub(before.evictions);
        m
    }

    /// An execution error, with the source files named when reading them failed.
    fn execution_error(&self, e: datafusion::error::DataFusionError) -> Error {
        use datafusion::error::DataFusionError as D;
        if is_no_space(&e) {
            return Error::DiskFull {
                dir: self.session.spill_dir().to_path_buf(),
                output: self
                    .output
                    .as_ref()
                    .map(|o| format!(" or of the output '{}'", o.target().display()))
                    .unwrap_or_default(),
            };
        }
        // A spill file's failure (the spill cap, a full disk) is the spill layer's error,
        // not a read of the sources, though it reaches here as an I/O or external error.
        if let Some(spill) = spillframe_spill::Error::find_in(&e) {
            return Error::Spill(spill);
        }
        // Arrow's compute errors (an overflow, a division by zero, a cast) are the query's,
        // not a file's; its decoding errors are the file's.
        use arrow::error::ArrowError as A;
        let reading = match e.find_root() {
            D::ArrowError(a, _) => matches!(
                a.as_ref(),
                A::ParseError(_)
                    | A::CsvError(_)
                    | A::JsonError(_)
                    | A::IoError(..)
                    | A::IpcError(_)
                    | A::ParquetError(_)
                    | A::SchemaError(_)
                    | A::ExternalError(_)
            ),
            D::ParquetError(..) | D::IoError(..) | D::ObjectStore(..) | D::External(..) => true,
            _ => false,
        };
        let e = if self.csv_in_ranges {
            without_range_line_number(e)
        } else {
            e
        };
        if reading && !self.sources.is_empty() {
            crate::source::with_file_context(e, &self.sources)
        } else {
            Error::from(e)
        }
    }
}

fn visit_all(plan: &Arc<dyn ExecutionPlan>, f: &mut dyn FnMut(&Arc<dyn ExecutionPlan>)) {
    f(plan);
    for child in plan.children() {
        visit_all(child, f);
    }
}

/// Whether an error comes from a write that found the disk full (ENOSPC), through any of the
/// layers DataFusion and Arrow wrap I/O errors in.
fn is_no_space(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as D;
    const ENOSPC: i32 = 28;
    let io_full = |io: &std::io::Error| io.raw_os_error() == Some(ENOSPC);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io_full(io)
        {
            return true;
        }
        if let Some(D::IoError(io)) = err.downcast_ref::<D>()
            && io_full(io)
        {
            return true;
        }
        if let Some(arrow::error::ArrowError::IoError(_, io)) =
            err.downcast_ref::<arrow::error::ArrowError>()
            && io_full(io)
        {
            return true;
        }
        source = err.source();
    }
    e.to_string().contains("No space left on device")
}

/// The files a plan's scans read.
struct Scanned {
    files: Vec<std::path::PathBuf>,
    csv_in_ranges: bool,
}

fn scanned_files(plan: &Arc<dyn ExecutionPlan>) -> Scanned {
    let mut out = Scanned {
        files: Vec::new(),
        csv_in_ranges: false,
    };
    visit_all(plan, &mut |node| {
        let Some(config) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|d| d.data_source().downcast_ref::<FileScanConfig>())
        else {
            return;
        };
        let csv = config.file_source().file_type() == "csv";
        for file in config.file_groups.iter().flat_map(|g| g.iter()) {
            out.csv_in_ranges |= csv && file.range.as_ref().is_some_and(|r| r.start > 0);
            let path = std::path::PathBuf::from(format!("/{}", file.object_meta.location));
            if !out.files.contains(&path) {
                out.files.push(path);
            }
        }
    });
    out
}

/// The CSV reader's "for line N" counts from the start of the byte range a partition reads,
/// so with ranges it names the wrong line; the number is dropped rather than mislead.
fn without_range_line_number(
    e: datafusion::error::DataFusionError,
) -> datafusion::error::DataFusionError {
    use arrow::error::ArrowError;
    use datafusion::error::DataFusionError as D;
    match e {
        D::ArrowError(err, bt) => match *err {
            ArrowError::CsvError(msg) if msg.contains(" for line ") => {
                let fixed = match msg.split_once(" for line ") {
                    Some((head, tail)) => {
                        let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
                        format!(
                            "{head}{rest} (at an unknown line: the file is read in parallel \
                             byte ranges; with --target-partitions 1 the line is named)"
                        )
                    }
                    None => msg,
                };
                D::ArrowError(Box::new(ArrowError::CsvError(fixed)), bt)
            }
            other => D::ArrowError(Box::new(other), bt),
        },
        D::Context(ctx, inner) => D::Context(ctx, Box::new(without_range_line_number(*inner))),
        D::Shared(shared) => match Arc::try_unwrap(shared) {
            Ok(inner) => without_range_line_number(inner),
            Err(shared) => D::Shared(shared),
        },
        other => other,
    }
}

fn visit_leaves(plan: &Arc<dyn ExecutionPlan>, f: &mut dyn FnMut(&Arc<dyn ExecutionPlan>)) {
    let children = plan.children();
    if children.is_empty() {
        f(plan);
    }
    for child in children {
        visit_leaves(child, f);
    }
}

fn input_rows_total(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let mut total = Some(0u64);
    visit_leaves(plan, &mut |leaf| {
        let rows = StatisticsContext::new()
            .compute(leaf.as_ref(), &StatisticsArgs::new())
            .ok()
            .and_then(|s| s.num_rows.get_value().copied());
        total = match (total, rows) {
            (Some(t), Some(r)) => Some(t + r as u64),
            _ => None,
        };
    });
    total.filter(|&t| t > 0)
}
