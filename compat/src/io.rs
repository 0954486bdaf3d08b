//! Reading and writing files, pandas-style: rows keep their file order.

use std::path::Path;

use spillframe_engine::{QueryMetrics, Session};

use crate::error::Result;
use crate::frame::DataFrame;

/// Reads a CSV file (header row, comma-separated, types inferred), rows in file order.
pub fn read_csv(session: &Session, path: impl AsRef<Path>) -> Result<DataFrame> {
    let p = path.as_ref().to_string_lossy().to_string();
    DataFrame::from_lazy(&session.read_csv(p.as_str())?)
}

/// Reads a Parquet file (or directory of files), rows in file order.
pub fn read_parquet(session: &Session, path: impl AsRef<Path>) -> Result<DataFrame> {
    let p = path.as_ref().to_string_lossy().to_string();
    DataFrame::from_lazy(&session.read_parquet(p.as_str())?)
}

impl DataFrame {
    /// Writes the rows, in order, to a CSV file with a header (no index column).
    pub fn to_csv(&self, path: impl AsRef<Path>) -> Result<QueryMetrics> {
        Ok(self.to_lazy()?.write_csv(path)?)
    }

    /// Writes the rows, in order, to a Parquet file (no index column).
    pub fn to_parquet(&self, path: impl AsRef<Path>) -> Result<QueryMetrics> {
        Ok(self.to_lazy()?.write_parquet(path)?)
    }
}
