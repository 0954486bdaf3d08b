//! # spillframe-compat
//!
//! pandas-style operations over spillframe, and the registry of which pandas operations are
//! supported, proven against pandas' own output.
//!
//! - [`frame`]: the [`DataFrame`] and its index model (a RangeIndex; see the module docs);
//! - [`series`]: the [`Series`], arithmetic, reductions, cumulative and rolling windows;
//! - [`groupby`]: [`GroupBy`] aggregations and per-row group operations;
//! - [`reshape`]: `merge`, `join`, `concat`, `melt`, `pivot_table`;
//! - [`stats`]: frame reductions, `agg`, `describe`, `quantile`, `corr`, `cov`;
//! - [`accessors`]: `.str` and `.dt`;
//! - [`io`]: `read_csv`, `read_parquet`, `to_csv`, `to_parquet`;
//! - [`partitions`]: `map_partitions` (Rust functions over contiguous pieces, run as an
//!   engine job) and `pipe`;
//! - [`registry`]: every public pandas name with its status here, rendered into
//!   `docs/supported_apis.md`;
//! - `conformance` (feature `conformance`, for tests): the cases that prove each supported
//!   entry against pandas.
//!
//! Everything but `map_partitions` is lazy, and everything runs on the engine, so the same code runs out of core under a memory
//! limit.
//!
//! ```
//! use spillframe_compat::prelude::*;
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, StringArray};
//! let session = Session::builder().memory_limit_bytes(64 << 20).ignore_environment().build()?;
//! let df = DataFrame::from_columns(&session, vec![
//!     ("k", Arc::new(StringArray::from(vec!["b", "a", "b"])) as _),
//!     ("v", Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
//! ])?;
//! let out = df.groupby(&["k"])?.sum()?.to_table()?;
//! assert_eq!(out.shape(), (2, 2));
//! # Ok::<(), spillframe_compat::Error>(())
//! ```

pub mod accessors;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod dtype;
pub mod error;
pub mod frame;
pub mod functions;
pub mod groupby;
pub mod io;
pub mod partitions;
pub mod positioned;
pub mod registry;
pub mod reshape;
pub mod series;
pub mod stats;
pub mod window;

pub use error::{Error, Result};
pub use frame::{DataFrame, How, Keep, NaPosition};
pub use groupby::GroupBy;
pub use io::{read_csv, read_parquet};
pub use reshape::{MergeHow, MergeOptions, concat};
pub use series::{Inclusive, Rolling, Series};
pub use window::RankMethod;

/// Everything a pandas-style program needs, in one import.
pub mod prelude {
    pub use crate::{
        DataFrame, GroupBy, How, Inclusive, Keep, MergeHow, MergeOptions, NaPosition, RankMethod,
        Series, concat, read_csv, read_parquet,
    };
    pub use datafusion::scalar::ScalarValue;
    pub use spillframe_engine::Session;
}
