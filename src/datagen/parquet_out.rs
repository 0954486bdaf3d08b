//! Writing generated batches to a Parquet file.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::CHUNK_ROWS;
use crate::error::{Error, Result};

/// A Parquet file being written: one row group per [`write`](Self::write) of a chunk.
pub struct ParquetOut {
    path: PathBuf,
    tmp: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl ParquetOut {
    /// Starts writing `path` (through a temporary name, renamed on [`finish`](Self::finish), so
    /// an interrupted run never leaves a truncated file under the final name).
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("cannot create directory", dir, e))?;
        }
        let tmp = path.with_extension("parquet.partial");
        let file = File::create(&tmp).map_err(|e| Error::io("cannot create file", &tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(CHUNK_ROWS))
            .build();
        let writer =
            ArrowWriter::try_new(file, schema, Some(props)).map_err(|source| Error::Parquet {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(ParquetOut {
            path: path.to_path_buf(),
            tmp,
            writer,
            rows: 0,
        })
    }

    /// Appends a batch and closes the current row group.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let err = |source| Error::Parquet {
            path: self.path.clone(),
            source,
        };
        self.writer.write(batch).map_err(err)?;
        self.writer.flush().map_err(|source| Error::Parquet {
            path: self.path.clone(),
            source,
        })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Finishes the file and gives it its final name. Returns the rows written.
    pub fn finish(self) -> Result<u64> {
        self.writer.close().map_err(|source| Error::Parquet {
            path: self.path.clone(),
            source,
        })?;
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| Error::io("cannot rename generated file", &self.path, e))?;
        Ok(self.rows)
    }
}
