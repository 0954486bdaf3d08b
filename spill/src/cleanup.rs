//! Paths to remove if the process is told to stop (SIGINT, SIGTERM).
//!
//! Spill directories and staged output files remove themselves when dropped. A signal ends
//! the process without running destructors, so each of them is also registered here while it
//! lives, and the program's signal handler calls [`remove_all`] before it exits. (After a
//! `kill -9`, which no handler sees, the next session's sweep of the spill base removes
//! directories whose owner is dead; see [`crate::dir`].)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// What a registered path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory, removed with everything in it.
    Dir,
    /// A file, removed together with the `<file>#<n>` temporaries that writers make beside it.
    File,
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static REGISTERED: Mutex<Option<HashMap<u64, (PathBuf, Kind)>>> = Mutex::new(None);

/// Keeps a path registered for removal on a signal; dropping it unregisters the path (it does
/// not remove it: its owner does).
#[derive(Debug)]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(map) = REGISTERED.lock().as_mut() {
            map.remove(&self.0);
        }
    }
}

/// Registers `path` for removal by [`remove_all`].
pub fn register(path: &Path, kind: Kind) -> Registration {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    REGISTERED
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(id, (path.to_path_buf(), kind));
    Registration(id)
}

/// Removes `path` as [`Kind`] says; a path that is already gone is not an error.
pub fn remove(path: &Path, kind: Kind) -> std::io::Result<()> {
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    match kind {
        Kind::Dir => gone(std::fs::remove_dir_all(path)),
        Kind::File => {
            if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                let prefix = format!("{}#", name.to_string_lossy());
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for e in entries.flatten() {
                        if e.file_name().to_string_lossy().starts_with(&prefix) {
                            let _ = std::fs::remove_file(e.path());
                        }
                    }
                }
            }
            gone(std::fs::remove_file(path))
        }
    }
}

/// Removes every registered path now, and returns how many were registered. For a signal
/// handler, just before the process exits.
pub fn remove_all() -> usize {
    let paths: Vec<(PathBuf, Kind)> = REGISTERED
        .lock()
        .as_mut()
        .map(|m| m.drain().map(|(_, v)| v).collect())
        .unwrap_or_default();
    // Directories first, files last and twice: other threads keep running until the process
    // exits, and a writer may move a finished temporary onto its staging name meanwhile.
    let (dirs, files): (Vec<_>, Vec<_>) = paths.iter().partition(|(_, k)| *k == Kind::Dir);
    for (path, kind) in dirs.iter().chain(&files).chain(&files) {
        if let Err(e) = remove(path, *kind) {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
    paths.len()
}
