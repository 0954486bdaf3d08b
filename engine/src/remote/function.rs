//! Registered functions run where a partition lives: the peer's half of a map job.
//!
//! The driver sends the name of a function (see [`crate::jobs::registry`]) and the partition's
//! key; the peer looks the name up in its session's registry, reads the partition from its
//! own store and runs the function on its own worker pool, and the output travels back.
//! Partition functions get the whole partition, as [`LazyFrame::map_partitions`] does
//! locally; batch functions get it cut into batches of the requested size, run in parallel
//! over the pool, with their outputs in input order.
//!
//! [`LazyFrame::map_partitions`]: crate::LazyFrame::map_partitions

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rayon::prelude::*;
use spillframe_spill::PartitionId;

use crate::error::{Error, Result};
use crate::jobs::func::{FnError, Partition, guarded};
use crate::jobs::map::Rechunker;
use crate::jobs::registry::Registered;
use crate::session::Session;

/// Runs the function registered as `name` in `session` over partition `id` of its store, and
/// returns the output's schema and batches. With `batch_size`, `name` must be a batch
/// function; without, a partition function, which sees the partition as number `index` (its
/// index in the driver's job). Blocks; call it off async threads.
///
/// An unknown name is [`Error::UnknownFunction`] (listing what is registered); a function's
/// error or panic is [`Error::UserFunction`] with `at` naming the partition (and batch).
pub fn run_function_blocking(
    session: &Session,
    id: PartitionId,
    index: usize,
    name: &str,
    batch_size: Option<usize>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let registry = session.functions();
    let function = match batch_size {
        None => Registered::Partitions(registry.partitions(name)?),
        Some(_) => Registered::Batches(registry.batches(name)?),
    };
    let store = session.store();
    let schema = store.schema(id)?;
    let batches = store.read(id)?;
    let failed = |at: String| {
        let job = name.to_string();
        move |source: FnError| Error::UserFunction {
            job,
            at,
            source: Arc::from(source),
        }
    };
    let outputs = match function {
        Registered::Partitions(f) => {
            let partition = Partition::new(index, Arc::clone(&schema), batches);
            session
                .worker_pool()
                .install(move || guarded(|| f.call(partition)))?
                .map_err(failed(format!("partition {index}")))?
        }
        Registered::Batches(f) => {
            let mut chunker = Rechunker::new(Arc::clone(&schema), batch_size.unwrap_or(1));
            let mut chunks = Vec::new();
            for b in batches {
                chunks.extend(chunker.push(b)?);
            }
            chunks.extend(chunker.finish()?);
            let results: Vec<std::result::Result<RecordBatch, FnError>> =
                session.worker_pool().install(move || {
                    chunks
                        .into_par_iter()
                        .map(|chunk| guarded(|| f.call(chunk)))
                        .collect()
                })?;
            results
                .into_iter()
                .enumerate()
                .map(|(seq, r)| r.map_err(failed(format!("partition {index}, batch {seq}"))))
                .collect::<Result<Vec<_>>>()?
        }
    };
    let Some(first) = outputs.first() else {
        return Ok((schema, outputs));
    };
    // One IPC stream carries one schema: outputs that differ only in nullability or
    // metadata are relabelled, as the driver would do.
    let out_schema = first.schema();
    let outputs = outputs
        .into_iter()
        .map(|b| {
            if b.schema() == out_schema {
                return Ok(b);
            }
            RecordBatch::try_new(Arc::clone(&out_schema), b.columns().to_vec()).map_err(|e| {
                Error::UserFunction {
                    job: name.to_string(),
                    at: format!("partition {index}"),
                    source: Arc::new(std::io::Error::other(format!(
                        "its outputs do not share one schema: {e}"
                    ))),
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((out_schema, outputs))
}
