//! Output files are written whole or not at all.
//!
//! A write (`write_parquet`, `spillframe sql --out`) goes to a hidden staging file beside the
//! target, `.<name>.spillframe-<pid>-<n>.partial.<ext>`, which is renamed over the target only
//! when the query has succeeded. A failed, cancelled or interrupted write leaves an existing
//! target untouched and removes the staging file (and the `#<n>` temporaries DataFusion's
//! object store makes beside it); the staging file is registered with
//! [`spillframe_spill::cleanup`], so a signal handler removes it too.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spillframe_spill::cleanup::{self, Kind, Registration};

use crate::error::{Error, Result};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A staging file for one output file.
#[derive(Debug)]
pub(crate) struct StagedOutput {
    staging: PathBuf,
    target: PathBuf,
    committed: AtomicBool,
    _on_signal: Registration,
}

impl StagedOutput {
    /// Creates the staging file beside `target` (an absolute path), which checks that the
    /// directory is writable before any work is done.
    pub(crate) fn create(target: &Path) -> Result<StagedOutput> {
        let dir = target.parent().unwrap_or(Path::new("/"));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "the output path '{}' names no file",
                    target.display()
                ))
            })?;
        if target.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "the output path '{}' is a directory; name a file",
                target.display()
            )));
        }
        let ext = target
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let staging = dir.join(format!(
            ".{name}.spillframe-{}-{}.partial{ext}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .map_err(|e| Error::io("cannot write the output file", target, e))?;
        Ok(StagedOutput {
            _on_signal: cleanup::register(&staging, Kind::File),
            staging,
            target: target.to_path_buf(),
            committed: AtomicBool::new(false),
        })
    }

    /// The file the write is for.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// Where the query writes.
    pub(crate) fn staging(&self) -> &Path {
        &self.staging
    }

    /// Moves the finished file over the target.
    pub(crate) fn commit(&self) -> Result<()> {
        if let Err(e) = std::fs::rename(&self.staging, &self.target) {
            self.abandon();
            return Err(Error::io(
                "cannot move the finished output into place",
                &self.target,
                e,
            ));
        }
        self.committed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Removes what a failed write left in the staging file; the target is untouched.
    pub(crate) fn abandon(&self) {
        if let Err(e) = cleanup::remove(&self.staging, Kind::File) {
            tracing::warn!("cannot remove staging file {}: {e}", self.staging.display());
        }
    }
}

impl Drop for StagedOutput {
    fn drop(&mut self) {
        if !self.committed.load(Ordering::Relaxed) {
            self.abandon();
        }
    }
}
