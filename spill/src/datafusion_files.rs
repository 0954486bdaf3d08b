//! DataFusion's own spill files (the runs of external sorts, spilled aggregate states,
//! repartition and sort-merge-join buffers), created in the session's spill directory and
//! charged to its [`DiskBudget`].
//!
//! DataFusion 55 lets a runtime's disk manager create its temporary files through a
//! [`TempFileFactory`]. With [`DataFusionSpillFiles`] as that factory, a session has one cap
//! over every spill byte, whichever layer writes it, and reaching the cap (or a full disk)
//! is this crate's typed [`Error::SpillCapReached`] (or [`Error::DiskFull`]) naming the file,
//! carried inside the I/O error that DataFusion's IPC writer sees; [`Error::find_in`] finds it
//! again under whatever DataFusion and Arrow wrapped it in. DataFusion's own cap
//! (`max_temp_directory_size`) is then unused.
//!
//! The files are Arrow IPC streams written by DataFusion; this module only stores bytes. It
//! reads them back the way DataFusion's default files do: through `tokio::fs`, which blocks
//! per read call rather than holding a thread for a file's lifetime, in 128 KiB chunks.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::error::Result as DataFusionResult;
use datafusion::execution::{SpillFile, SpillWriter, TempFileFactory};
use futures::{Stream, StreamExt as _};

use crate::error::Error;
use crate::file::{DiskBudget, io_error};

/// Read chunk of a spill file; DataFusion's default files use the same.
const READ_CHUNK: usize = 128 << 10;

/// The [`TempFileFactory`] of a session's DataFusion runtime: files in the spill directory,
/// charged to the session's [`DiskBudget`].
#[derive(Debug)]
pub struct DataFusionSpillFiles {
    dir: PathBuf,
    budget: Arc<DiskBudget>,
    next: AtomicU64,
}

impl DataFusionSpillFiles {
    /// A factory writing into `dir` (the session's spill directory) under `budget`.
    pub fn new(dir: impl Into<PathBuf>, budget: Arc<DiskBudget>) -> Self {
        DataFusionSpillFiles {
            dir: dir.into(),
            budget,
            next: AtomicU64::new(0),
        }
    }
}

impl TempFileFactory for DataFusionSpillFiles {
    fn create_temp_file(&self, description: &str) -> DataFusionResult<Arc<dyn SpillFile>> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("datafusion-{n}.arrows"));
        File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_error("cannot create spill file", &path, e).into_datafusion())?;
        tracing::trace!(path = %path.display(), description, "DataFusion spill file created");
        Ok(Arc::new(BudgetedFile {
            path,
            budget: Arc::clone(&self.budget),
            bytes: Arc::new(AtomicU64::new(0)),
        }))
    }
}

/// One DataFusion spill file. Dropping the last handle deletes it and refunds its bytes.
#[derive(Debug)]
struct BudgetedFile {
    path: PathBuf,
    budget: Arc<DiskBudget>,
    /// Bytes written, shared with the file's writers.
    bytes: Arc<AtomicU64>,
}

impl SpillFile for BudgetedFile {
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn size(&self) -> Option<u64> {
        Some(self.bytes.load(Ordering::Relaxed))
    }

    fn read_stream(
        &self,
    ) -> DataFusionResult<Pin<Box<dyn Stream<Item = DataFusionResult<Bytes>> + Send>>> {
        let path = self.path.clone();
        let opened = futures::stream::once(async move {
            tokio::fs::File::open(&path)
                .await
                .map_err(|e| io_error("cannot read spill file", &path, e).into_datafusion())
                .map(|f| (f, path))
        });
        Ok(Box::pin(opened.flat_map(
            |opened| -> Pin<Box<dyn Stream<Item = DataFusionResult<Bytes>> + Send>> {
                match opened {
                    Ok((file, path)) => Box::pin(
                        tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).map(
                            move |r| {
                                r.map_err(|e| {
                                    io_error("cannot read spill file", &path, e).into_datafusion()
                                })
                            },
                        ),
                    ),
                    Err(e) => Box::pin(futures::stream::once(async move { Err(e) })),
                }
            },
        )))
    }

    fn open_writer(&self) -> DataFusionResult<Box<dyn SpillWriter>> {
        let file = File::options()
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error("cannot write spill file", &self.path, e).into_datafusion())?;
        Ok(Box::new(BudgetedWriter {
            file,
            path: self.path.clone(),
            budget: Arc::clone(&self.budget),
            bytes: Arc::clone(&self.bytes),
        }))
    }
}

impl Drop for BudgetedFile {
    fn drop(&mut self) {
        self.budget
            .refund_datafusion(self.bytes.swap(0, Ordering::Relaxed));
        let _ = fs::remove_file(&self.path);
    }
}

/// Appends to a [`BudgetedFile`], charging every byte to the budget before writing it.
struct BudgetedWriter {
    file: File,
    path: PathBuf,
    budget: Arc<DiskBudget>,
    bytes: Arc<AtomicU64>,
}

impl Write for BudgetedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len() as u64;
        self.budget
            .charge_datafusion(len, &self.path)
            .map_err(Error::into_io)?;
        if let Err(e) = self.file.write_all(buf) {
            self.budget.refund_datafusion(len);
            return Err(io_error("cannot write spill file", &self.path, e).into_io());
        }
        self.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .flush()
            .map_err(|e| io_error("cannot write spill file", &self.path, e).into_io())
    }
}

impl SpillWriter for BudgetedWriter {
    fn finish(&mut self) -> DataFusionResult<()> {
        Ok(())
    }
}
