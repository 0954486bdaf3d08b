//! # spillframe-engine
//!
//! The engine of spillframe: a [`Session`] that owns a DataFusion context under a memory
//! limit, and a lazy, Polars-shaped [`LazyFrame`] whose plans run out of core.
//!
//! - [`session`]: settings, runtime, memory pool and spill directory;
//! - [`config`]: settings from the builder, environment and config file;
//! - [`source`]: files, directories and globs of Parquet, CSV, JSON and Arrow IPC;
//! - [`frame`]: the lazy frame: transformations and actions;
//! - [`expr`]: Polars-style expression methods over DataFusion's `Expr`;
//! - [`exec`]: running a plan with progress and metrics (peak memory, bytes spilled);
//! - [`partitioned`]: the out-of-core path for what DataFusion cannot spill (hash joins,
//!   window partitions, holistic aggregates): hash-partition into the partition store, then
//!   run bucket by bucket; [`partitioned::rule`] picks it from size estimates;
//! - [`stored`]: tables and scans over the partition store;
//! - [`table`]: the owned result type and the `df!` macro;
//! - [`remote`]: the engine's side of a cluster: fragments that run where partitions live,
//!   and the connector that turns a `cluster.toml` into the store's remote tier;
//! - [`jobs`]: user functions over partitions and batches (`map_partitions`, `map_batches`,
//!   `parallelize`), PiCloud-style `call`/`map`, and job handles with progress and cancel;
//! - `testing` (feature `testing`, for tests only): a remote tier of in-process peers that
//!   runs fragments and functions through [`remote`] as a cluster peer would.
//!
//! ```
//! use spillframe_engine::prelude::*;
//! let session = Session::builder().memory_limit_bytes(64 << 20).ignore_environment().build()?;
//! let t = df!("k" => ["a", "b", "a"], "v" => [1i64, 2, 3])?;
//! let out = t
//!     .lazy(&session)?
//!     .group_by(["k"])
//!     .agg([col("v").sum().alias("s")])
//!     .sort(["k"], SortMultipleOptions::default())
//!     .collect()?;
//! assert_eq!(out.shape(), (2, 2));
//! # Ok::<(), spillframe_engine::Error>(())
//! ```

pub mod checked;
pub mod checked_sum;
pub mod config;
pub mod error;
pub mod exec;
pub mod expr;
pub mod frame;
pub mod jobs;
mod output;
pub mod partitioned;
pub mod remote;
pub mod session;
pub mod source;
pub mod stored;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::Settings;
pub use error::{Error, Result};
pub use exec::{Progress, Query, QueryMetrics};
pub use expr::{ExprExt, IntoExpr, col, cols, len};
pub use frame::{BatchIter, JoinType, LazyFrame, LazyGroupBy, SortMultipleOptions, concat};
pub use jobs::{JobHandle, JobId, JobProgress, JobStatus, Merge, Merged, Partition};
pub use session::{Session, SessionBuilder, SessionSettings};
pub use source::{CsvOptions, FileFormat};
pub use spillframe_spill::{Compression, MemoryLimit};
pub use table::{Preview, Table};

/// Everything a typical program needs, in one import.
pub mod prelude {
    pub use crate::df;
    pub use crate::expr::{ExprExt, IntoExpr, col, cols, len};
    pub use crate::frame::{JoinType, LazyFrame, SortMultipleOptions, concat};
    pub use crate::session::Session;
    pub use crate::table::Table;
    pub use datafusion::logical_expr::Expr;
    pub use datafusion::prelude::lit;
}
