//! The worker pool user functions run on: a rayon pool, apart from the tokio runtime that
//! executes plans, so CPU-heavy functions cannot starve DataFusion's I/O and operators.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::func::{FnError, guarded};
use super::handle::JobState;
use crate::error::{Error, Result};

/// A rayon pool built on first use, with `threads` workers named `spillframe-job-N`.
pub(crate) struct WorkerPool {
    threads: usize,
    pool: OnceLock<std::result::Result<rayon::ThreadPool, String>>,
}

impl WorkerPool {
    pub(crate) fn new(threads: usize) -> Self {
        WorkerPool {
            threads: threads.max(1),
            pool: OnceLock::new(),
        }
    }

    /// Workers in the pool.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    fn pool(&self) -> Result<&rayon::ThreadPool> {
        self.pool
            .get_or_init(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.threads)
                    .thread_name(|i| format!("spillframe-job-{i}"))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Runtime(format!("cannot start the job worker pool: {e}")))
    }

    /// Runs the user function `f` on the pool, holding `permit` until it returns. The work
    /// starts now; the returned future only waits for it.
    ///
    /// A function that fails or panics becomes [`Error::UserFunction`] naming `at`. Work that
    /// had not started when the job was cancelled is skipped.
    pub(crate) fn run_user<T: Send + 'static>(
        &self,
        job: &Arc<JobState>,
        permit: OwnedSemaphorePermit,
        at: String,
        f: impl FnOnce() -> std::result::Result<T, FnError> + Send + 'static,
    ) -> impl Future<Output = Result<T>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = self.pool().map(|pool| {
            let cancelled = job.cancel_flag();
            pool.spawn(move || {
                let _permit = permit;
                if *cancelled.borrow() {
                    return;
                }
                let _ = tx.send(guarded(f));
            });
        });
        let name = job.name().to_string();
        async move {
            started?;
            match rx.await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(source)) => Err(Error::UserFunction {
                    job: name,
                    at,
                    source: Arc::from(source),
                }),
                // The task was skipped: the job was cancelled.
                Err(_) => Err(Error::Cancelled { job: name }),
            }
        }
    }

    /// Runs `f` on the pool and waits for it (for code that is already off the async
    /// threads, such as a peer's blocking worker). `f` may use rayon's parallel iterators,
    /// which then run on the pool's workers.
    pub(crate) fn install<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        Ok(self.pool()?.install(f))
    }

    /// A semaphore bounding work in flight to `concurrency` (at least one).
    pub(crate) fn limiter(concurrency: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(concurrency.max(1)))
    }
}

/// Waits for a permit of `limiter`.
pub(crate) async fn permit(limiter: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit> {
    Arc::clone(limiter)
        .acquire_owned()
        .await
        .map_err(|_| Error::Runtime("the job's work limiter was closed".into()))
}
