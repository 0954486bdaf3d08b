//! Benchmark data generators: the h2o.ai db-benchmark groupby and join tables, and TPC-H.
//!
//! All output is Parquet (Snappy, row groups of about a million rows), generated in parallel
//! chunks with a seeded RNG, so the same arguments always give the same files.

pub mod h2o;
mod parquet_out;
pub mod tpch;

use std::path::PathBuf;

pub use parquet_out::ParquetOut;

/// Rows per generated chunk (and per Parquet row group).
pub const CHUNK_ROWS: usize = 1 << 20;

/// A file written by a generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The table's name (`x`, `small`, `lineitem`, ...).
    pub table: String,
    /// The file.
    pub path: PathBuf,
    /// Rows written.
    pub rows: u64,
}

/// Called with (rows done, rows total) as generation proceeds.
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Sync);
