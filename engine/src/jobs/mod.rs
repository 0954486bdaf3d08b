//! Jobs: user functions over a frame's partitions and batches, and plain functions over items,
//! run on a rayon worker pool kept apart from the tokio runtime that executes plans, with
//! handles that report progress and can be cancelled.
//!
//! The workflows of the systems spillframe learns from:
//! - Panda Farm: [`LazyFrame::parallelize`], then [`JobHandle::progress`], then the result
//!   merged by a [`Merge`] (concat, none, or a custom function);
//! - PiCloud: [`Session::call`] and [`Session::map`], with `status`, `kill` and `join` on job
//!   handles or ids ([`Session::job`], [`Session::kill`]);
//! - Ray Data: [`LazyFrame::map_batches`] with a batch size and a concurrency, streaming with
//!   back-pressure, and functions whose state is built once per worker ([`Stateful`]).
//!
//! Modules:
//! - [`handle`]: job ids, status, progress, cancel, join, result; the session's job table;
//! - [`func`]: the function traits, [`Partition`], per-worker state, panic capture;
//! - [`map`]: `map_partitions`, `map_batches`, `parallelize` and merging;
//! - [`call`]: `call`, `map`, and queries submitted as jobs;
//! - [`registry`]: functions registered by name, for peers that run them where data lives;
//! - `pool`: the worker pool.
//!
//! Results of map jobs go into the partition store, so they spill like any other partition.
//!
//! [`Session::call`]: crate::Session::call
//! [`Session::map`]: crate::Session::map
//! [`Session::job`]: crate::Session::job
//! [`Session::kill`]: crate::Session::kill
//! [`LazyFrame::parallelize`]: crate::LazyFrame::parallelize
//! [`LazyFrame::map_batches`]: crate::LazyFrame::map_batches

pub mod call;
pub mod func;
pub mod handle;
pub mod map;
pub(crate) mod pool;
pub mod registry;

pub use func::{BatchFn, FnError, IntoBatches, Partition, PartitionFn, Stateful};
pub use handle::{JobHandle, JobId, JobInfo, JobProgress, JobStatus, ProgressUnit};
pub use map::{MapJob, Merge, Merged};
pub use registry::{FunctionRegistry, Registered};
