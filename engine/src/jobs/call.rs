//! PiCloud's API on a session: `call` and `map` of plain functions, jobs looked up and killed
//! by id, and any query submitted as a job.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt as _;
use futures::stream::FuturesOrdered;

use super::func::FnError;
use super::handle::{JobHandle, JobId, JobInfo, ProgressUnit};
use super::pool::{WorkerPool, permit};
use crate::error::Result;
use arrow::array::RecordBatch;

use crate::exec::{Query, QueryMetrics};
use crate::frame::{LazyFrame, rows_written_by};
use crate::session::Session;
use crate::source::FileFormat;
use crate::table::Table;

impl Session {
    /// Runs `f` once on the worker pool, as a job (PiCloud's `call`).
    pub fn call<T, E, F>(&self, f: F) -> JobHandle<T>
    where
        F: FnOnce() -> std::result::Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<FnError>,
    {
        let session = self.clone();
        JobHandle::spawn(self, "call", ProgressUnit::Items, move |job| {
            job.set_total(1);
            async move {
                let limiter = WorkerPool::limiter(1);
                let permit = permit(&limiter).await?;
                let out = session
                    .worker_pool()
                    .run_user(&job, permit, "item 0".into(), move || {
                        f().map_err(Into::into)
                    })
                    .await?;
                job.advance(1, 0);
                Ok(out)
            }
        })
    }

    /// Runs `f` on every item on the worker pool, as a job (PiCloud's `map`). Results come
    /// back in the items' order; the first failure fails the job, naming the item.
    pub fn map<I, T, E, F>(&self, items: impl IntoIterator<Item = I>, f: F) -> JobHandle<Vec<T>>
    where
        I: Send + 'static,
        T: Send + 'static,
        E: Into<FnError>,
        F: Fn(I) -> std::result::Result<T, E> + Send + Sync + 'static,
    {
        let items: Vec<I> = items.into_iter().collect();
        let session = self.clone();
        let f = Arc::new(f);
        JobHandle::spawn(self, "map", ProgressUnit::Items, move |job| {
            job.set_total(items.len() as u64);
            async move {
                let pool = session.worker_pool();
                let limiter = WorkerPool::limiter(pool.threads());
                let mut in_flight = FuturesOrdered::new();
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    // Start no more than the pool can run, keeping results in order.
                    let permit = permit(&limiter).await?;
                    let f = Arc::clone(&f);
                    in_flight.push_back(pool.run_user(
                        &job,
                        permit,
                        format!("item {i}"),
                        move || f(item).map_err(Into::into),
                    ));
                    while in_flight.len() > pool.threads() {
                        if let Some(done) = in_flight.next().await {
                            out.push(done?);
                            job.advance(1, 0);
                        }
                    }
                }
                while let Some(done) = in_flight.next().await {
                    out.push(done?);
                    job.advance(1, 0);
                }
                Ok(out)
            }
        })
    }

    /// A job of this session by id: its status and progress (PiCloud's `status`).
    pub fn job(&self, id: JobId) -> Option<JobInfo> {
        self.job_table().get(id)
    }

    /// Every job of this session still remembered (running ones and the last finished ones).
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.job_table().list()
    }

    /// Cancels a job by id (PiCloud's `kill`). False when there is no such job or it had
    /// already finished.
    pub fn kill(&self, id: JobId) -> bool {
        self.job_table().kill(id)
    }
}

impl LazyFrame {
    /// Runs the query as a job; progress counts the input rows read.
    pub fn submit_collect(&self) -> Result<JobHandle<Table>> {
        let schema = self.schema()?;
        let query = self.query()?;
        Ok(spawn_query(
            self.session(),
            "collect".into(),
            query,
            |batches, _| Table::new(schema, batches),
        ))
    }

    /// Writes the result to `path` in `format` as a job; progress counts the input rows read.
    pub fn submit_write(
        &self,
        format: FileFormat,
        path: impl AsRef<Path>,
    ) -> Result<JobHandle<QueryMetrics>> {
        let query = self.write_query(format, path.as_ref())?;
        let name = format!("write {}", path.as_ref().display());
        Ok(spawn_query(
            self.session(),
            name,
            query,
            |batches, mut metrics| {
                metrics.rows = rows_written_by(&batches);
                metrics
            },
        ))
    }
}

/// Runs `query` as a job whose progress is the query's input rows read; `finish` makes the
/// result from the query's batches and metrics.
fn spawn_query<T: Send + 'static>(
    session: &Session,
    name: String,
    query: Query,
    finish: impl FnOnce(Vec<RecordBatch>, QueryMetrics) -> T + Send + 'static,
) -> JobHandle<T> {
    let query = Arc::new(query);
    JobHandle::spawn(session, name, ProgressUnit::Rows, move |job| {
        let watched = Arc::clone(&query);
        job.set_probe(Box::new(move || {
            let p = watched.progress();
            (p.rows_read, p.rows_total)
        }));
        async move {
            let (batches, metrics) = query.run_async().await?;
            Ok(finish(batches, metrics))
        }
    })
}
