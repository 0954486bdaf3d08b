//! `map_partitions`, `map_batches` and `parallelize`: user functions over a frame's
//! partitions or batches, run as a job on the worker pool, with results in the partition
//! store.
//!
//! Each output partition of the input plan is driven by its own task on the session's
//! runtime:
//! - for `map_partitions`, the task streams its partition into the store (which spills it
//!   when memory is short), hands it to the function on the worker pool, and stores what comes
//!   back;
//! - for `map_batches`, the task cuts its stream into batches of `batch_size` rows and keeps
//!   at most `concurrency` of them in the function at once over the whole job (a semaphore),
//!   so reading waits for the function: back-pressure. Outputs are stored in input order.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::col as physical_col;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties as _, Partitioning};
use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use parking_lot::Mutex;
use spillframe_spill::{Error as SpillError, PartitionId, PartitionStore, RemoteWork};
use tokio::sync::Semaphore;

use super::func::{BatchFn, FnError, Partition, PartitionFn, compact};
use super::handle::{JobHandle, JobState, ProgressUnit};
use super::pool::permit;
use crate::error::{Error, Result};
use crate::frame::LazyFrame;
use crate::session::Session;
use crate::stored::{StoreScanExec, StoredPartitions};
use crate::table::Table;

/// A custom merge: all partitions' results in, one table out.
pub type MergeFn = Arc<dyn Fn(Vec<Table>) -> std::result::Result<Table, FnError> + Send + Sync>;

/// How a map job's partitions are put together (Panda Farm's merge function).
#[derive(Clone, Default)]
pub enum Merge {
    /// One frame over all the partitions, in partition order (nothing is copied). It scans
    /// them in at most the session's `target_partitions`.
    #[default]
    Concat,
    /// The raw partitions: one frame each.
    None,
    /// A function of every partition's table (read into memory), run on the worker pool.
    Custom(MergeFn),
}

impl Merge {
    /// A custom merge.
    pub fn custom<E: Into<FnError>>(
        f: impl Fn(Vec<Table>) -> std::result::Result<Table, E> + Send + Sync + 'static,
    ) -> Merge {
        Merge::Custom(Arc::new(move |tables| f(tables).map_err(Into::into)))
    }
}

impl fmt::Debug for Merge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Merge::Concat => "Concat",
            Merge::None => "None",
            Merge::Custom(_) => "Custom",
        })
    }
}

/// The result of a map job, shaped by its [`Merge`].
#[derive(Debug)]
pub enum Merged {
    /// [`Merge::Concat`]: one lazy frame over the stored partitions.
    Frame(LazyFrame),
    /// [`Merge::None`]: one lazy frame per partition, in partition order.
    Partitions(Vec<LazyFrame>),
    /// [`Merge::Custom`]: the merge function's table.
    Table(Table),
}

impl Merged {
    /// The frame of a [`Merge::Concat`] job.
    pub fn into_frame(self) -> Result<LazyFrame> {
        match self {
            Merged::Frame(f) => Ok(f),
            other => Err(Error::InvalidArgument(format!(
                "the job's merge produced {}, not one frame; use Merge::Concat",
                other.kind()
            ))),
        }
    }

    /// The partitions of a [`Merge::None`] job.
    pub fn into_partitions(self) -> Result<Vec<LazyFrame>> {
        match self {
            Merged::Partitions(p) => Ok(p),
            other => Err(Error::InvalidArgument(format!(
                "the job's merge produced {}, not partitions; use Merge::None",
                other.kind()
            ))),
        }
    }

    /// The whole result as one table, whatever the merge.
    pub fn collect(self) -> Result<Table> {
        match self {
            Merged::Frame(f) => f.collect(),
            Merged::Table(t) => Ok(t),
            Merged::Partitions(parts) => {
                let mut schema = None;
                let mut batches = Vec::new();
                for p in parts {
                    let t = p.collect()?;
                    if schema.is_none() {
                        schema = Some(Arc::clone(t.schema()));
                    }
                    batches.extend(t.into_batches());
                }
                Ok(Table::new(
                    schema.unwrap_or_else(|| Arc::new(Schema::empty())),
                    batches,
                ))
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Merged::Frame(_) => "one frame",
            Merged::Partitions(_) => "separate partitions",
            Merged::Table(_) => "a table",
        }
    }
}

#[derive(Clone)]
enum Work {
    Partitions(Arc<dyn PartitionFn>),
    Batches {
        f: Arc<dyn BatchFn>,
        batch_size: usize,
        concurrency: usize,
    },
}

/// A map job being set up: [`LazyFrame::map_partitions`], [`LazyFrame::map_batches`] or
/// [`LazyFrame::parallelize`]. [`submit`](Self::submit) starts it and returns a handle;
/// [`collect`](Self::collect) runs it and waits.
#[must_use = "a map job does nothing until it is submitted or collected"]
pub struct MapJob {
    frame: LazyFrame,
    work: Work,
    partitions: Option<usize>,
    /// Hash-partition on these columns (with `partitions`) instead of round robin.
    keys: Vec<String>,
    /// Columns each partition's output is sorted by (the caller's promise).
    sorted_by: Vec<String>,
    schema: Option<SchemaRef>,
    name: String,
    merge: Merge,
    /// The name the function is registered under, when it came from the registry: on a
    /// cluster, partitions that live on a peer are then mapped there.
    registered: Option<String>,
}

impl fmt::Debug for MapJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapJob")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .field("merge", &self.merge)
            .finish()
    }
}

impl LazyFrame {
    /// Runs `f` on each partition of the frame (Dask's `map_partitions`). The function gets a
    /// whole [`Partition`] and returns its replacement. Functions run on the session's worker
    /// pool, never on the threads that execute plans.
    pub fn map_partitions(&self, f: impl PartitionFn) -> MapJob {
        self.map_partitions_shared(Arc::new(f), "map_partitions")
    }

    /// [`map_partitions`](Self::map_partitions) with a function held in an `Arc` (for
    /// example one from the [`FunctionRegistry`](super::FunctionRegistry)).
    pub fn map_partitions_shared(&self, f: Arc<dyn PartitionFn>, name: &str) -> MapJob {
        MapJob::new(self, Work::Partitions(f), name)
    }

    /// Runs `f` on batches of `batch_size` rows (Ray Data's `map_batches`), at most
    /// `concurrency` at a time, streaming: the input is read only as fast as the function
    /// keeps up. Zero for either means the default: the session's batch size, and one call
    /// per worker of the pool.
    pub fn map_batches(&self, f: impl BatchFn, batch_size: usize, concurrency: usize) -> MapJob {
        self.map_batches_shared(Arc::new(f), batch_size, concurrency, "map_batches")
    }

    /// [`map_batches`](Self::map_batches) with a function held in an `Arc`.
    pub fn map_batches_shared(
        &self,
        f: Arc<dyn BatchFn>,
        batch_size: usize,
        concurrency: usize,
        name: &str,
    ) -> MapJob {
        let session = self.session();
        let batch_size = if batch_size == 0 {
            session.settings().batch_size
        } else {
            batch_size
        };
        let concurrency = if concurrency == 0 {
            session.worker_pool().threads()
        } else {
            concurrency
        };
        let work = Work::Batches {
            f,
            batch_size,
            concurrency,
        };
        MapJob::new(self, work, name)
    }

    /// Splits the frame into `n_partitions` and runs `f` on each (Panda Farm's
    /// `parallelize`). Submit it, watch [`JobHandle::progress`], and take the result merged
    /// as set by [`MapJob::merge`].
    pub fn parallelize(&self, f: impl PartitionFn, n_partitions: usize) -> MapJob {
        let mut job = self.map_partitions_shared(Arc::new(f), "parallelize");
        job.partitions = Some(n_partitions);
        job
    }
}

impl MapJob {
    fn new(frame: &LazyFrame, work: Work, name: &str) -> Self {
        MapJob {
            frame: frame.clone(),
            work,
            partitions: None,
            keys: Vec::new(),
            sorted_by: Vec::new(),
            schema: None,
            name: name.to_string(),
            merge: Merge::Concat,
            registered: None,
        }
    }

    /// Marks the job's function as the one registered under `name` (see
    /// [`FunctionRegistry`](super::FunctionRegistry)), so that partitions living on peers are
    /// mapped by the peers' function of that name.
    pub(crate) fn registered(mut self, name: &str) -> Self {
        self.registered = Some(name.to_string());
        self
    }

    /// Names the job (shown in errors, [`Session::jobs`] and progress bars).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Declares the output schema. Without it, the schema of the first output is used, and
    /// every output must have the same column names and types.
    pub fn schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Splits the input into `n` partitions first (round robin over its batches).
    pub fn partitions(mut self, n: usize) -> Self {
        self.partitions = Some(n);
        self
    }

    /// Splits the input into `n` partitions by a hash of `columns`, so that the rows of one
    /// key value all reach the same call (Dask's `shuffle(on=...)` before `map_partitions`).
    pub fn partition_by<S: AsRef<str>>(mut self, columns: &[S], n: usize) -> Self {
        self.keys = columns.iter().map(|c| c.as_ref().to_string()).collect();
        self.partitions = Some(n);
        self
    }

    /// Declares that the function's output for each partition is sorted by `columns`
    /// (ascending, nulls last). The result's scans report that order, so sorting the result
    /// by it is a streaming merge of the partitions instead of a full sort, and the
    /// partitions are not joined together. The job does not check the promise.
    pub fn sorted_by<S: AsRef<str>>(mut self, columns: &[S]) -> Self {
        self.sorted_by = columns.iter().map(|c| c.as_ref().to_string()).collect();
        self
    }

    /// How the partitions are merged (default [`Merge::Concat`]).
    pub fn merge(mut self, merge: Merge) -> Self {
        self.merge = merge;
        self
    }

    /// Plans the input and starts the job.
    pub fn submit(self) -> Result<JobHandle<Merged>> {
        if self.partitions == Some(0) {
            return Err(Error::InvalidArgument(format!(
                "{}: the number of partitions must be at least 1",
                self.name
            )));
        }
        let query = self.frame.query()?;
        let mut plan = Arc::clone(query.plan());
        // Repartitioned here, on the physical plan, after every optimizer rule: a logical
        // repartition may be replaced by the optimizer, and the hash split is a promise.
        if let Some(n) = self.partitions {
            if !self.keys.is_empty() {
                let schema = plan.schema();
                let keys = self
                    .keys
                    .iter()
                    .map(|k| {
                        physical_col(k, &schema).map_err(|_| Error::ColumnNotFound {
                            column: k.clone(),
                            available: describe(&schema),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                plan = Arc::new(RepartitionExec::try_new(plan, Partitioning::Hash(keys, n))?);
            } else if plan.output_partitioning().partition_count() != n {
                plan = Arc::new(RepartitionExec::try_new(
                    plan,
                    Partitioning::RoundRobinBatch(n),
                )?);
            }
        }
        let session = self.frame.session().clone();
        let n = plan.output_partitioning().partition_count();
        let unit = match self.work {
            Work::Partitions(_) => ProgressUnit::Partitions,
            Work::Batches { .. } => ProgressUnit::Batches,
        };
        let name = self.name.clone();
        let handle = JobHandle::spawn(&session, name, unit, |job| {
            if unit == ProgressUnit::Partitions {
                job.set_total(n as u64);
            }
            let run = Run {
                session: session.clone(),
                store: session.store().clone(),
                job,
                plan,
                task: query.task_context(),
                declared: self.schema.clone(),
                sorted_by: self.sorted_by.clone(),
                first: Mutex::new(None),
                registered: self.registered.clone(),
                limiter: super::pool::WorkerPool::limiter(match &self.work {
                    Work::Partitions(_) => session.worker_pool().threads(),
                    Work::Batches { concurrency, .. } => *concurrency,
                }),
            };
            run.drive(self.work, self.merge)
        });
        Ok(handle)
    }

    /// Runs the job, waits for it, and returns its result as one frame.
    pub fn collect(self) -> Result<LazyFrame> {
        self.merge(Merge::Concat).submit()?.result()?.into_frame()
    }
}

/// Everything the partition tasks of one map job share.
struct Run {
    session: Session,
    store: PartitionStore,
    job: Arc<JobState>,
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    declared: Option<SchemaRef>,
    sorted_by: Vec<String>,
    /// The schema of the first output, when none was declared.
    first: Mutex<Option<SchemaRef>>,
    /// The function's registered name: partitions on peers are mapped there.
    registered: Option<String>,
    limiter: Arc<Semaphore>,
}

/// One input partition of a map job, in the store.
struct Input {
    /// The stored partitions it belongs to (for reading, and rebuilding from lineage).
    parts: Arc<StoredPartitions>,
    id: PartitionId,
}

impl Run {
    async fn drive(self, work: Work, merge: Merge) -> Result<Merged> {
        let run = Arc::new(self);
        let n = run.plan.output_partitioning().partition_count();
        let tasks = (0..n).map(|p| {
            let run = Arc::clone(&run);
            let work = work.clone();
            async move {
                match work {
                    Work::Partitions(f) => run.map_partition(p, f).await,
                    Work::Batches {
                        f,
                        batch_size,
                        concurrency,
                    } => run.map_batches(p, f, batch_size, concurrency).await,
                }
            }
        });
        let outputs = futures::future::try_join_all(tasks).await?;
        let schema = match run.output_schema() {
            Some(s) => s,
            None => run.infer_schema(&work).await?,
        };
        let parts: Vec<StoredPartitions> = outputs
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    StoredPartitions::new(run.store.clone(), Arc::clone(&schema), vec![vec![]])
                })
            })
            .collect();
        run.merge(parts, schema, merge).await
    }

    fn output_schema(&self) -> Option<SchemaRef> {
        self.declared.clone().or_else(|| self.first.lock().clone())
    }

    /// The schema outputs must have: the declared one, else the first seen. A batch whose
    /// columns and types match but whose nullability or metadata differ is relabelled.
    ///
    /// Outputs are stored in batches of at most the session's batch size, each with its own
    /// buffers: operators that read them later (a sort) then grow their memory a batch at a
    /// time, as they do over any scan, and can spill in time.
    fn conform(&self, batch: RecordBatch, at: &str) -> Result<Vec<RecordBatch>> {
        let batch = self.relabel(compact(batch)?, at)?;
        let size = self.session.settings().batch_size.max(1);
        let rows = batch.num_rows();
        if rows <= size {
            return Ok(vec![batch]);
        }
        (0..rows)
            .step_by(size)
            .map(|offset| Ok(compact(batch.slice(offset, size.min(rows - offset)))?))
            .collect()
    }

    fn relabel(&self, batch: RecordBatch, at: &str) -> Result<RecordBatch> {
        let expected = {
            let mut first = self.first.lock();
            match (&self.declared, &*first) {
                (Some(s), _) | (None, Some(s)) => Arc::clone(s),
                (None, None) => {
                    *first = Some(batch.schema());
                    return Ok(batch);
                }
            }
        };
        if batch.schema() == expected {
            return Ok(batch);
        }
        let same_columns = batch.schema().fields().len() == expected.fields().len()
            && batch
                .schema()
                .fields()
                .iter()
                .zip(expected.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        let mismatch = |why: String| Error::UserFunction {
            job: self.job.name().to_string(),
            at: at.to_string(),
            source: Arc::new(std::io::Error::other(why)),
        };
        if !same_columns {
            return Err(mismatch(format!(
                "it returned columns [{}], but the job's output has [{}] ({})",
                describe(&batch.schema()),
                describe(&expected),
                if self.declared.is_some() {
                    "the declared schema"
                } else {
                    "the first output's schema; declare one with .schema() if outputs differ"
                }
            )));
        }
        RecordBatch::try_new(expected, batch.columns().to_vec())
            .map_err(|e| mismatch(format!("its output does not fit the job's schema: {e}")))
    }

    async fn map_partition(
        &self,
        p: usize,
        f: Arc<dyn PartitionFn>,
    ) -> Result<Option<StoredPartitions>> {
        let input = self.input(p).await?;
        if let Some((out, bytes, _)) = self.map_remote(p, &input, None).await? {
            let stored = self.store_output(p, out)?;
            self.job.advance(1, bytes);
            return Ok(stored);
        }
        let batches = input.parts.read_or_rebuild(input.id).await?;
        let partition = Partition::new(p, self.plan.schema(), batches);
        let bytes = partition.bytes();
        let permit = permit(&self.limiter).await?;
        let out = self
            .session
            .worker_pool()
            .run_user(&self.job, permit, format!("partition {p}"), move || {
                f.call(partition)
            })
            .await?;
        drop(input);
        let stored = self.store_output(p, out)?;
        self.job.advance(1, bytes);
        Ok(stored)
    }

    /// Partition `p` of the input in the store: the stored partition itself when the plan
    /// is a bare scan of stored partitions, one per output partition (a frame from
    /// `from_batches`, `cache` or another job); otherwise the plan's partition streamed into a
    /// new stored partition, which is removed (files deleted) when the returned input is
    /// dropped, however the task ends.
    async fn input(&self, p: usize) -> Result<Input> {
        if let Some(scan) = self.plan.downcast_ref::<StoreScanExec>()
            && scan.projection().is_none()
            && let Some([id]) = scan.parts().groups().get(p).map(Vec::as_slice)
        {
            return Ok(Input {
                parts: Arc::clone(scan.parts()),
                id: *id,
            });
        }
        let schema = self.plan.schema();
        let id = self.store.create(
            Arc::clone(&schema),
            Some(format!("job '{}' input, partition {p}", self.job.name())),
        );
        let parts = Arc::new(StoredPartitions::new(
            self.store.clone(),
            schema,
            vec![vec![id]],
        ));
        let mut stream = self.plan.execute(p, Arc::clone(&self.task))?;
        while let Some(batch) = stream.next().await {
            self.store.append(id, batch?)?;
        }
        Ok(Input { parts, id })
    }

    /// Runs the registered function over `input` on the peer holding it, if the job's
    /// function is registered and the partition lives wholly on a peer (under the cluster's
    /// `spread` policy every finished partition does; otherwise those evicted there). Returns
    /// the output, the input's bytes and its rows; `None` means run it here.
    ///
    /// A partition lost with its peer is rebuilt from its lineage first, when it has one.
    async fn map_remote(
        &self,
        p: usize,
        input: &Input,
        batch_size: Option<usize>,
    ) -> Result<Option<(Vec<RecordBatch>, u64, u64)>> {
        let (Some(name), Some(_)) = (&self.registered, self.store.remote()) else {
            return Ok(None);
        };
        let id = input.id;
        // Finished: under `spread` it goes to a peer now.
        self.store.seal(id)?;
        let info = self.store.info(id)?;
        let bytes = info.memory_bytes + info.disk_bytes + info.peer_bytes;
        let ran = input
            .parts
            .with_rebuild(id, || {
                let store = self.store.clone();
                let name = name.clone();
                async move {
                    if store.remote_copies(id)?.is_none() {
                        return Ok(None);
                    }
                    StoredPartitions::off_runtime(move || {
                        let work = RemoteWork::Function {
                            name: &name,
                            index: p,
                            batch_size,
                        };
                        store.run_remote(id, work)
                    })
                    .await
                    .map(Some)
                }
            })
            .await;
        match ran.map_err(Error::from) {
            Ok(out) => Ok(out.map(|batches| (batches, bytes, info.rows))),
            // The peer answered with an error: the function failed there, or it has no
            // function of that name.
            Err(Error::Spill(e)) if matches!(&*e, SpillError::Remote(r) if !r.lost) => {
                Err(Error::UserFunction {
                    job: self.job.name().to_string(),
                    at: format!("partition {p}"),
                    source: e,
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn map_batches(
        &self,
        p: usize,
        f: Arc<dyn BatchFn>,
        batch_size: usize,
        concurrency: usize,
    ) -> Result<Option<StoredPartitions>> {
        // A registered function on a cluster: the partition is stored first, to learn where
        // it lives, and mapped there when that is a peer; otherwise it streams from the store.
        let mut input = None;
        let mut stream = if self.registered.is_some() && self.store.remote().is_some() {
            let stored = self.input(p).await?;
            if let Some((out, bytes, rows)) = self.map_remote(p, &stored, Some(batch_size)).await? {
                let mut output = Output::new(self, p);
                let calls = rows.div_ceil(batch_size.max(1) as u64);
                output.push_all(out, calls, bytes)?;
                return Ok(output.finish());
            }
            let scan = StoreScanExec::single(Arc::clone(&stored.parts), None, stored.id)?;
            input = Some(stored);
            scan.execute(0, Arc::clone(&self.task))?
        } else {
            self.plan.execute(p, Arc::clone(&self.task))?
        };
        let mut chunker = Rechunker::new(self.plan.schema(), batch_size);
        let mut in_flight = FuturesOrdered::new();
        let mut output = Output::new(self, p);
        let mut seq = 0usize;
        loop {
            let next = stream.next().await;
            let ended = next.is_none();
            let chunks = match next {
                Some(batch) => chunker.push(batch?)?,
                None => chunker.finish()?,
            };
            for chunk in chunks {
                // At most `concurrency` batches of this partition wait for their turn to be
                // stored; the semaphore bounds the whole job's calls in flight.
                if in_flight.len() >= concurrency
                    && let Some(done) = in_flight.next().await
                {
                    output.push(done?)?;
                }
                let bytes = chunk.get_array_memory_size() as u64;
                let permit = permit(&self.limiter).await?;
                let f = Arc::clone(&f);
                let call = self.session.worker_pool().run_user(
                    &self.job,
                    permit,
                    format!("partition {p}, batch {seq}"),
                    move || f.call(chunk).map(|b| (b, bytes)),
                );
                in_flight.push_back(call);
                seq += 1;
            }
            if ended {
                break;
            }
        }
        while let Some(done) = in_flight.next().await {
            output.push(done?)?;
        }
        drop(input);
        Ok(output.finish())
    }

    /// Stores one partition's output, checking its schema.
    fn store_output(
        &self,
        p: usize,
        batches: Vec<RecordBatch>,
    ) -> Result<Option<StoredPartitions>> {
        let at = format!("partition {p}");
        let mut stored = Vec::with_capacity(batches.len());
        for b in batches {
            stored.extend(self.conform(b, &at)?);
        }
        let batches = stored;
        let Some(schema) = batches.first().map(|b| b.schema()) else {
            return Ok(None);
        };
        let id = self
            .store
            .put(Arc::clone(&schema), batches, Some(self.output_lineage(p)))?;
        Ok(Some(StoredPartitions::new(
            self.store.clone(),
            schema,
            vec![vec![id]],
        )))
    }

    fn output_lineage(&self, p: usize) -> String {
        format!("job '{}' output, partition {p}", self.job.name())
    }

    /// With no output at all (an empty input) and no declared schema, the schema is what the
    /// function makes of an empty input.
    async fn infer_schema(&self, work: &Work) -> Result<SchemaRef> {
        let input = self.plan.schema();
        let permit = permit(&self.limiter).await?;
        let empty: Result<Vec<RecordBatch>> = match work {
            Work::Partitions(f) => {
                let f = Arc::clone(f);
                let part = Partition::new(0, Arc::clone(&input), Vec::new());
                self.session
                    .worker_pool()
                    .run_user(&self.job, permit, "an empty input".into(), move || {
                        f.call(part)
                    })
                    .await
            }
            Work::Batches { f, .. } => {
                let f = Arc::clone(f);
                let batch = RecordBatch::new_empty(input);
                self.session
                    .worker_pool()
                    .run_user(&self.job, permit, "an empty input".into(), move || {
                        f.call(batch).map(|b| vec![b])
                    })
                    .await
            }
        };
        match empty {
            Ok(batches) if !batches.is_empty() => Ok(batches[0].schema()),
            Ok(_) => Err(Error::InvalidArgument(format!(
                "job '{}': the input has no rows and the function returned no batches for an \
                 empty input, so the output schema is unknown; declare it with .schema()",
                self.job.name()
            ))),
            Err(e) => Err(Error::InvalidArgument(format!(
                "job '{}': the input has no rows, and inferring the output schema by calling \
                 the function on an empty input failed ({e}); declare it with .schema()",
                self.job.name()
            ))),
        }
    }

    async fn merge(
        &self,
        parts: Vec<StoredPartitions>,
        schema: SchemaRef,
        merge: Merge,
    ) -> Result<Merged> {
        match merge {
            Merge::Concat => {
                // Sorted partitions stay apart: joined, they would no longer be sorted.
                let max_groups = if self.sorted_by.is_empty() {
                    self.session.settings().target_partitions
                } else {
                    usize::MAX
                };
                let all = StoredPartitions::combine(self.store.clone(), schema, parts, max_groups)
                    .with_ordering(self.sorted_by.clone());
                Ok(Merged::Frame(
                    self.session.frame_over_stored(all, Vec::new())?,
                ))
            }
            Merge::None => parts
                .into_iter()
                .map(|p| {
                    let p = p.with_ordering(self.sorted_by.clone());
                    self.session.frame_over_stored(p, Vec::new())
                })
                .collect::<Result<Vec<_>>>()
                .map(Merged::Partitions),
            Merge::Custom(f) => {
                let mut tables = Vec::with_capacity(parts.len());
                for p in &parts {
                    let mut batches = Vec::new();
                    for id in p.groups().iter().flatten() {
                        batches.extend(self.store.read(*id)?);
                    }
                    tables.push(Table::new(Arc::clone(&schema), batches));
                }
                let permit = permit(&self.limiter).await?;
                let table = self
                    .session
                    .worker_pool()
                    .run_user(&self.job, permit, "the merge".into(), move || f(tables))
                    .await?;
                Ok(Merged::Table(table))
            }
        }
    }
}

/// One partition's `map_batches` output, stored in order as it arrives.
struct Output<'a> {
    run: &'a Run,
    p: usize,
    stored: Option<StoredPartitions>,
    seq: usize,
}

impl<'a> Output<'a> {
    fn new(run: &'a Run, p: usize) -> Self {
        Output {
            run,
            p,
            stored: None,
            seq: 0,
        }
    }

    fn push(&mut self, (batch, bytes): (RecordBatch, u64)) -> Result<()> {
        self.store(batch)?;
        self.run.job.advance(1, bytes);
        Ok(())
    }

    /// Stores the outputs of `calls` calls made elsewhere (on a peer), over `bytes` of input.
    fn push_all(&mut self, batches: Vec<RecordBatch>, calls: u64, bytes: u64) -> Result<()> {
        for batch in batches {
            self.store(batch)?;
        }
        self.run.job.advance(calls, bytes);
        Ok(())
    }

    fn store(&mut self, batch: RecordBatch) -> Result<()> {
        let at = format!("partition {}, batch {}", self.p, self.seq);
        self.seq += 1;
        let store = &self.run.store;
        for batch in self.run.conform(batch, &at)? {
            let stored = match &mut self.stored {
                Some(s) => s,
                None => {
                    let id = store.create(batch.schema(), Some(self.run.output_lineage(self.p)));
                    self.stored.insert(StoredPartitions::new(
                        store.clone(),
                        batch.schema(),
                        vec![vec![id]],
                    ))
                }
            };
            store.append(stored.groups()[0][0], batch)?;
        }
        Ok(())
    }

    fn finish(self) -> Option<StoredPartitions> {
        self.stored
    }
}

/// Cuts a stream of batches into batches of exactly `size` rows (the last may be shorter).
pub(crate) struct Rechunker {
    schema: SchemaRef,
    size: usize,
    pending: Vec<RecordBatch>,
    rows: usize,
}

impl Rechunker {
    pub(crate) fn new(schema: SchemaRef, size: usize) -> Self {
        Rechunker {
            schema,
            size: size.max(1),
            pending: Vec::new(),
            rows: 0,
        }
    }

    pub(crate) fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        self.rows += batch.num_rows();
        self.pending.push(batch);
        let mut out = Vec::new();
        while self.rows >= self.size {
            out.push(self.take(self.size)?);
        }
        Ok(out)
    }

    pub(crate) fn finish(&mut self) -> Result<Vec<RecordBatch>> {
        if self.rows == 0 {
            return Ok(Vec::new());
        }
        Ok(vec![self.take(self.rows)?])
    }

    /// Removes the first `n` pending rows as one batch.
    fn take(&mut self, n: usize) -> Result<RecordBatch> {
        let mut parts = Vec::new();
        let mut need = n;
        while need > 0 {
            let first = self.pending.remove(0);
            if first.num_rows() <= need {
                need -= first.num_rows();
                parts.push(first);
            } else {
                parts.push(first.slice(0, need));
                self.pending
                    .insert(0, first.slice(need, first.num_rows() - need));
                need = 0;
            }
        }
        self.rows -= n;
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        Ok(arrow::compute::concat_batches(&self.schema, &parts)?)
    }
}

fn describe(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field};

    fn batch(values: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn values(batches: &[RecordBatch]) -> Vec<Vec<i64>> {
        batches
            .iter()
            .map(|b| {
                let a = b.column(0).as_any().downcast_ref::<Int64Array>();
                a.map(|a| (0..a.len()).map(|i| a.value(i)).collect())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn rechunker_cuts_exact_sizes_across_batches() -> Result<()> {
        let b = batch(0..1);
        let mut r = Rechunker::new(b.schema(), 4);
        let mut out = r.push(batch(0..3))?;
        assert!(out.is_empty());
        out.extend(r.push(batch(3..10))?);
        out.extend(r.push(batch(10..11))?);
        out.extend(r.finish()?);
        assert_eq!(
            values(&out),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10]]
        );
        assert!(r.finish()?.is_empty());
        Ok(())
    }
}
