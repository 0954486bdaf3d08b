//! Per-session spill directories with an owner lock, and the sweep of dead owners' leftovers.
//!
//! Layout under a base directory (by default `$TMPDIR/spillframe`):
//!
//! ```text
//! <base>/spillframe-<pid>-<unique>/      one per live session
//!        owner.lock                      exclusively locked while the session lives
//!        ...                             spill files (DataFusion's and the partition store's)
//! ```
//!
//! A directory is created under a hidden staging name, its lock taken, and only then renamed
//! to its final name, so a sweeper never sees a live directory without a held lock. The lock
//! is an OS advisory lock (`flock`), released by the kernel when the owner dies, however it
//! dies. At start, [`SpillDir::create`] sweeps every `spillframe-*` directory whose lock can
//! be taken: its owner is gone.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

const PREFIX: &str = "spillframe-";
const STAGING_PREFIX: &str = ".staging-spillframe-";
const LOCK_FILE: &str = "owner.lock";
/// A staging directory younger than this may belong to a process that is creating it right now.
const STAGING_GRACE: Duration = Duration::from_secs(60);

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Directories of dead owners that were removed.
    pub removed: Vec<PathBuf>,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// A spill directory owned by this process for as long as the value lives.
///
/// Dropping it removes the directory and everything in it.
#[derive(Debug)]
pub struct SpillDir {
    path: PathBuf,
    /// Held open (and locked) for the directory's lifetime.
    lock: Option<File>,
    /// Removes the directory if a signal stops the process.
    _on_signal: crate::cleanup::Registration,
}

impl SpillDir {
    /// Sweeps `base` of directories left by dead processes, then creates and locks a fresh
    /// directory for this session inside it.
    pub fn create(base: &Path) -> Result<(SpillDir, SweepReport)> {
        fs::create_dir_all(base)
            .map_err(|e| Error::io("cannot create spill directory", base, e))?;
        let report = sweep(base)?;
        if !report.removed.is_empty() {
            tracing::info!(
                removed = report.removed.len(),
                bytes = report.bytes_freed,
                base = %base.display(),
                "swept spill directories left by dead processes"
            );
        }

        let unique = format!(
            "{}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let staging = base.join(format!("{STAGING_PREFIX}{unique}"));
        let path = base.join(format!("{PREFIX}{unique}"));
        fs::create_dir(&staging)
            .map_err(|e| Error::io("cannot create spill directory", &staging, e))?;
        let lock = match lock_new(&staging) {
            Ok(lock) => lock,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        if let Err(e) = fs::rename(&staging, &path) {
            let _ = fs::remove_dir_all(&staging);
            return Err(Error::io("cannot create spill directory", &path, e));
        }
        tracing::debug!(path = %path.display(), "created spill directory");
        Ok((
            SpillDir {
                _on_signal: crate::cleanup::register(&path, crate::cleanup::Kind::Dir),
                path,
                lock: Some(lock),
            },
            report,
        ))
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes currently stored in the directory (spill files; the lock file is empty).
    pub fn used_bytes(&self) -> u64 {
        self.files()
            .iter()
            .filter_map(|f| fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Files in the directory other than the lock file, recursively.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_files(&self.path, &mut out);
        out.retain(|p| p.file_name().is_none_or(|n| n != LOCK_FILE));
        out
    }

    /// Removes the directory now, reporting any failure (dropping does the same silently).
    pub fn close(mut self) -> Result<()> {
        self.remove()
    }

    fn remove(&mut self) -> Result<()> {
        if self.lock.is_none() {
            return Ok(());
        }
        let result = fs::remove_dir_all(&self.path);
        // Release the lock only after the files are gone.
        self.lock = None;
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("cannot remove spill directory", &self.path, e)),
        }
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::warn!("{e}");
        }
    }
}

fn lock_new(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io("cannot create spill lock file", &lock_path, e))?;
    file.try_lock().map_err(|e| {
        let io = match e {
            TryLockError::Error(io) => io,
            TryLockError::WouldBlock => std::io::Error::other("already locked"),
        };
        Error::io("cannot lock spill directory", &lock_path, io)
    })?;
    // The pid is informational, for a person looking at the directory.
    let _ = writeln!(file, "{}", std::process::id());
    Ok(file)
}

/// Removes every directory in `base` whose owner is gone. Directories whose lock is held by a
/// live process (this one included) are left alone.
pub fn sweep(base: &Path) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let entries = match fs::read_dir(base) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(Error::io("cannot list spill directory", base, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let staging = name.starts_with(STAGING_PREFIX);
        if !(name.starts_with(PREFIX) || staging) {
            continue;
        }
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if staging && is_younger_than(&path, STAGING_GRACE) {
            continue;
        }
        if !owner_is_gone(&path) {
            continue;
        }
        let bytes = dir_size(&path);
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                report.bytes_freed += bytes;
                report.removed.push(path);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot sweep stale spill directory: {e}")
            }
        }
    }
    Ok(report)
}

/// True when nobody holds the directory's lock (or it has no lock file at all).
fn owner_is_gone(dir: &Path) -> bool {
    let lock_path = dir.join(LOCK_FILE);
    let file = match File::open(&lock_path) {
        Ok(f) => f,
        // A final-named directory always has a lock file; without one it is debris.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        Err(_) => return false,
    };
    match file.try_lock() {
        // We got it: the owner is dead. The lock is released when `file` drops, after removal
        // has been decided; nobody else can revive a directory of a dead pid.
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => false,
        Err(TryLockError::Error(_)) => false,
    }
}

fn is_younger_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d < age)
}

fn dir_size(dir: &Path) -> u64 {
    let mut files = Vec::new();
    collect_files(dir, &mut files);
    files
        .iter()
        .filter_map(|f| fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&path, out),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
}
