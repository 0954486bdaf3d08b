//! # spillframe
//!
//! A DataFrame engine for data larger than memory, on Apache DataFusion and Arrow. The same
//! code runs on 1 GB and on 100 GB: queries run under a memory limit and spill to disk.
//!
//! This facade crate re-exports the public API of the engine and holds what sits on top of it:
//! the `spillframe` command line ([`cli`]), the benchmark data generators ([`datagen`]) and the
//! demo ([`demo`]).
//!
//! ```
//! use spillframe::prelude::*;
//! let session = Session::builder().memory_limit_bytes(64 << 20).ignore_environment().build()?;
//! let out = df!("k" => ["a", "b", "a"], "v" => [1i64, 2, 3])?
//!     .lazy(&session)?
//!     .group_by(["k"])
//!     .agg([col("v").sum().alias("total")])
//!     .sort(["k"], SortMultipleOptions::default())
//!     .collect()?;
//! println!("{out}");
//! # Ok::<(), spillframe::EngineError>(())
//! ```

pub mod cli;
pub mod datagen;
pub mod demo;
pub mod error;
pub mod peer;

pub use error::{Error, Result};
/// The engine's error type (what `Session` and `LazyFrame` return).
pub use spillframe_engine::Error as EngineError;
/// Jobs: `map_partitions`, `map_batches`, `parallelize`, `call`/`map`, handles and the
/// function registry (see `docs/jobs.md`).
pub use spillframe_engine::jobs;
pub use spillframe_engine::{
    BatchIter, CsvOptions, ExprExt, FileFormat, IntoExpr, JobHandle, JobId, JobProgress, JobStatus,
    JoinType, LazyFrame, LazyGroupBy, MemoryLimit, Merge, Merged, Partition, Progress, Query,
    QueryMetrics, Session, SessionBuilder, SessionSettings, Settings, SortMultipleOptions, Table,
    col, cols, concat, df, len,
};

/// Everything a typical program needs, in one import.
pub mod prelude {
    pub use spillframe_engine::prelude::*;
}

/// Direct access to the engine, spill, cluster and pandas-style compat crates.
pub use spillframe_compat as compat;
pub use spillframe_engine as engine;
pub use spillframe_net as net;
pub use spillframe_spill as spill;

/// Lets sessions use a peer cluster: with this called once at start, a session built with
/// [`SessionBuilder::cluster`], or with `SPILLFRAME_CLUSTER` or a `cluster` key in
/// `spillframe.toml` set, places partitions on the peers of that `cluster.toml` and runs
/// partition-local work there. Without a cluster configured it changes nothing, so it is safe
/// to call always. (The engine does not depend on the network crate; this wires them.)
/// Calling it again does nothing.
///
/// ```
/// spillframe::enable_cluster();
/// let session = spillframe::Session::builder().ignore_environment().build()?;
/// assert!(session.store().remote().is_none(), "no cluster configured: all local");
/// # Ok::<(), spillframe::EngineError>(())
/// ```
pub fn enable_cluster() {
    spillframe_engine::remote::install_connector(std::sync::Arc::new(spillframe_net::NetConnector));
}

/// The user guide's code blocks, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/user-guide.md")]
pub struct UserGuideDoctests;
