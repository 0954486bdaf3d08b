//! Job handles: status, progress, cancel, join and result, and the session's table of jobs
//! (so that a job can be looked up or killed by its id, PiCloud-style).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use parking_lot::{Condvar, Mutex};

use super::func::panic_message;
use crate::error::{Error, Result};
use crate::session::Session;

/// A job's id, unique within its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job-{}", self.0)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Submitted, not started.
    Queued,
    /// Running.
    Running,
    /// Finished with a result.
    Done,
    /// Finished with an error.
    Failed,
    /// Stopped by [`JobHandle::cancel`] (or [`Session::kill`]).
    Cancelled,
}

impl JobStatus {
    /// True once the job has stopped, whatever the outcome.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        })
    }
}

/// What a job's progress counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgressUnit {
    /// Partitions of `map_partitions` and `parallelize`.
    Partitions,
    /// Batches of `map_batches`.
    Batches,
    /// Items of [`Session::map`] (a [`Session::call`] is one item).
    Items,
    /// Input rows read by a query submitted as a job.
    Rows,
}

impl fmt::Display for ProgressUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgressUnit::Partitions => "partitions",
            ProgressUnit::Batches => "batches",
            ProgressUnit::Items => "items",
            ProgressUnit::Rows => "rows",
        })
    }
}

/// How far a job has got. `done` never decreases; when the job is done, `done == total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobProgress {
    /// Units finished.
    pub done: u64,
    /// Units in all, when known. `map_batches` learns its total only when its input ends.
    pub total: Option<u64>,
    /// What `done` and `total` count.
    pub unit: ProgressUnit,
    /// Bytes of input handed to the job's functions so far (Arrow memory size).
    pub bytes: u64,
}

impl JobProgress {
    /// `done / total`, when the total is known.
    pub fn fraction(&self) -> Option<f64> {
        self.total.map(|t| {
            if t == 0 {
                1.0
            } else {
                self.done as f64 / t as f64
            }
        })
    }
}

/// A snapshot of a job, as listed by [`Session::jobs`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    /// The id.
    pub id: JobId,
    /// The name given at submission (or the kind of job).
    pub name: String,
    /// The status.
    pub status: JobStatus,
    /// The progress.
    pub progress: JobProgress,
    /// The error, for a failed job.
    pub error: Option<String>,
}

const UNKNOWN: u64 = u64::MAX;

type ProgressProbe = Box<dyn Fn() -> (u64, Option<u64>) + Send + Sync>;

/// The state a job shares between its handle, its driver and the session's job table.
pub(crate) struct JobState {
    id: JobId,
    name: String,
    unit: ProgressUnit,
    status: Mutex<JobStatus>,
    finished: Condvar,
    done: AtomicU64,
    total: AtomicU64,
    bytes: AtomicU64,
    error: Mutex<Option<String>>,
    cancel: tokio::sync::watch::Sender<bool>,
    /// For jobs whose progress lives elsewhere (a query's rows read).
    probe: Mutex<Option<ProgressProbe>>,
}

impl JobState {
    /// The job's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Sets the total number of units.
    pub(crate) fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// Adds finished units and the bytes they took as input.
    pub(crate) fn advance(&self, units: u64, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.done.fetch_add(units, Ordering::Relaxed);
    }

    /// Reads progress from `probe` instead of the counters.
    pub(crate) fn set_probe(&self, probe: ProgressProbe) {
        *self.probe.lock() = Some(probe);
    }

    /// A receiver that sees the cancel flag; work on other threads checks it between units.
    pub(crate) fn cancel_flag(&self) -> tokio::sync::watch::Receiver<bool> {
        self.cancel.subscribe()
    }

    fn status(&self) -> JobStatus {
        *self.status.lock()
    }

    fn progress(&self) -> JobProgress {
        let (done, total) = match &*self.probe.lock() {
            Some(probe) => probe(),
            None => {
                let total = self.total.load(Ordering::Relaxed);
                (
                    self.done.load(Ordering::Relaxed),
                    (total != UNKNOWN).then_some(total),
                )
            }
        };
        JobProgress {
            done,
            total,
            unit: self.unit,
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    fn info(&self) -> JobInfo {
        JobInfo {
            id: self.id,
            name: self.name.clone(),
            status: self.status(),
            progress: self.progress(),
            error: self.error.lock().clone(),
        }
    }

    fn request_cancel(&self) -> bool {
        if self.status().is_finished() {
            return false;
        }
        self.cancel.send_replace(true);
        true
    }

    fn finish(&self, status: JobStatus, error: Option<String>) {
        if status == JobStatus::Done {
            // The work is complete: whatever the total was, it is what was done.
            let (done, _) = match &*self.probe.lock() {
                Some(probe) => probe(),
                None => (self.done.load(Ordering::Relaxed), None),
            };
            *self.probe.lock() = None;
            self.done.store(done, Ordering::Relaxed);
            self.total.store(done, Ordering::Relaxed);
        }
        *self.error.lock() = error;
        let mut s = self.status.lock();
        *s = status;
        self.finished.notify_all();
    }

    async fn cancelled(&self) {
        let mut rx = self.cancel.subscribe();
        // Only an error when the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// The session's table of jobs, by id.
#[derive(Default)]
pub(crate) struct JobTable {
    next: AtomicU64,
    jobs: Mutex<BTreeMap<JobId, Arc<JobState>>>,
}

/// Finished jobs kept for lookup by id; older ones are forgotten.
const KEEP_FINISHED: usize = 1000;

impl JobTable {
    fn create(&self, name: String, unit: ProgressUnit) -> Arc<JobState> {
        let id = JobId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let state = Arc::new(JobState {
            id,
            name,
            unit,
            status: Mutex::new(JobStatus::Queued),
            finished: Condvar::new(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(UNKNOWN),
            bytes: AtomicU64::new(0),
            error: Mutex::new(None),
            cancel: tokio::sync::watch::channel(false).0,
            probe: Mutex::new(None),
        });
        let mut jobs = self.jobs.lock();
        let finished: Vec<JobId> = jobs
            .iter()
            .filter(|(_, j)| j.status().is_finished())
            .map(|(id, _)| *id)
            .collect();
        for id in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            jobs.remove(id);
        }
        jobs.insert(id, Arc::clone(&state));
        state
    }

    pub(crate) fn get(&self, id: JobId) -> Option<JobInfo> {
        self.jobs.lock().get(&id).map(|j| j.info())
    }

    pub(crate) fn list(&self) -> Vec<JobInfo> {
        self.jobs.lock().values().map(|j| j.info()).collect()
    }

    pub(crate) fn kill(&self, id: JobId) -> bool {
        let job = self.jobs.lock().get(&id).cloned();
        job.is_some_and(|j| j.request_cancel())
    }
}

/// A submitted job. Cheap to clone; clones watch the same job. The result can be taken once.
pub struct JobHandle<T> {
    session: Session,
    state: Arc<JobState>,
    result: Arc<Mutex<Option<Result<T>>>>,
}

impl<T> Clone for JobHandle<T> {
    fn clone(&self) -> Self {
        JobHandle {
            session: self.session.clone(),
            state: Arc::clone(&self.state),
            result: Arc::clone(&self.result),
        }
    }
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.state.id)
            .field("name", &self.state.name)
            .field("status", &self.state.status())
            .finish()
    }
}

impl<T: Send + 'static> JobHandle<T> {
    /// Starts `make(state)` as a job on the session's runtime.
    ///
    /// The future is dropped as soon as the job is cancelled: whatever it holds (streams,
    /// stored partitions and their spill files) is released then.
    pub(crate) fn spawn<F>(
        session: &Session,
        name: impl Into<String>,
        unit: ProgressUnit,
        make: impl FnOnce(Arc<JobState>) -> F,
    ) -> JobHandle<T>
    where
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let state = session.job_table().create(name.into(), unit);
        let fut = make(Arc::clone(&state));
        let result = Arc::new(Mutex::new(None));
        let handle = JobHandle {
            session: session.clone(),
            state: Arc::clone(&state),
            result: Arc::clone(&result),
        };
        let job = Arc::clone(&state);
        session.spawn(async move {
            *job.status.lock() = JobStatus::Running;
            let run = AssertUnwindSafe(fut).catch_unwind();
            let out = tokio::select! {
                // Cancel wins when both are ready: the caller asked for it.
                biased;
                _ = job.cancelled() => Err(Error::Cancelled { job: job.name.clone() }),
                r = run => r.unwrap_or_else(|panic| Err(Error::UserFunction {
                    job: job.name.clone(),
                    at: "the job's driver".into(),
                    source: Arc::new(std::io::Error::other(panic_message(&panic))),
                })),
            };
            let (status, error) = match &out {
                Ok(_) => (JobStatus::Done, None),
                Err(Error::Cancelled { .. }) => (JobStatus::Cancelled, None),
                Err(e) => (JobStatus::Failed, Some(e.to_string())),
            };
            match &error {
                Some(e) => {
                    tracing::warn!(job = %job.id, name = %job.name, error = %e, "job failed")
                }
                None => tracing::debug!(job = %job.id, name = %job.name, %status, "job finished"),
            }
            // The result is in place before anyone is told the job has finished.
            *result.lock() = Some(out);
            job.finish(status, error);
        });
        handle
    }
}

impl<T> JobHandle<T> {
    /// The job's id; [`Session::job`] and [`Session::kill`] take it.
    pub fn id(&self) -> JobId {
        self.state.id
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Queued, running, done, failed or cancelled.
    pub fn status(&self) -> JobStatus {
        self.state.status()
    }

    /// Units done out of the total, and bytes processed. Monotonic.
    pub fn progress(&self) -> JobProgress {
        self.state.progress()
    }

    /// Asks the job to stop (PiCloud's `kill`). Work in flight is dropped, and the job's
    /// stored partitions and spill files are deleted. Returns false when the job had already
    /// finished.
    pub fn cancel(&self) -> bool {
        self.state.request_cancel()
    }

    /// The same as [`cancel`](Self::cancel).
    pub fn kill(&self) -> bool {
        self.cancel()
    }

    /// Waits until the job finishes, or until `timeout` passes (`None`: no limit). Returns the
    /// status at that moment, so a status that is not finished means the wait timed out.
    pub fn join(&self, timeout: Option<Duration>) -> JobStatus {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut status = self.state.status.lock();
        while !status.is_finished() {
            match deadline {
                None => self.state.finished.wait(&mut status),
                Some(d) => {
                    if self.state.finished.wait_until(&mut status, d).timed_out() {
                        break;
                    }
                }
            }
        }
        *status
    }

    /// Waits for the job and takes its result. The result can be taken once: later calls (on
    /// this handle or a clone) return an error.
    pub fn result(&self) -> Result<T> {
        self.join(None);
        self.result.lock().take().unwrap_or_else(|| {
            Err(Error::InvalidArgument(format!(
                "the result of {} ('{}') was already taken",
                self.state.id, self.state.name
            )))
        })
    }

    /// The session the job runs in.
    pub fn session(&self) -> &Session {
        &self.session
    }
}
