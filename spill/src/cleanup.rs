//! Paths to remove if the process is told to stop (SIGINT, SIGTERM).
//!
//! Spill directories and staged output files remove themselves when dropped. A signal ends
//! the process without running destructors, so each of them is also registered here while it
//! lives, and the program's signal handler calls [`remove_all_for_exit`] before it exits.
//! (After a `kill -9`, which no handler sees, the next session's sweep of the spill base
//! removes directories whose owner is dead; see [`crate::dir`].)
//!
//! Removing a running query's spill directory makes the query fail, and a writer that sees
//! its input end may then finish its temporary and rename it onto the staging name, after
//! the handler removed that. So the handler waits (a bounded time) for the program's main
//! thread to report, with [`settle`], that its work has ended, removing the staged files
//! again meanwhile and once more at the end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

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
/// Set when a signal handler has begun to end the process.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Whether the main thread's work has ended since the handler began, and its wake-up.
static SETTLED: Mutex<bool> = Mutex::new(false);
static SETTLED_CHANGED: Condvar = Condvar::new();

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

/// For the program's main thread, when its work has ended, well or not, before it reports an
/// error or exits. While a signal handler is ending the process it tells the handler and
/// never returns (the handler ends the process); otherwise it returns at once.
pub fn settle() {
    if !EXITING.load(Ordering::SeqCst) {
        return;
    }
    *SETTLED.lock() = true;
    SETTLED_CHANGED.notify_all();
    loop {
        std::thread::park();
    }
}

/// For a signal handler, just before it ends the process: removes every registered path,
/// then waits up to `wait` for the main thread to [`settle`], removing the staged files
/// every 20 ms meanwhile, and once more at the end. Returns how many paths were registered.
pub fn remove_all_for_exit(wait: Duration) -> usize {
    EXITING.store(true, Ordering::SeqCst);
    let files: Vec<PathBuf> = registered()
        .into_iter()
        .filter(|(_, k)| *k == Kind::File)
        .map(|(p, _)| p)
        .collect();
    let n = remove_all();
    let deadline = Instant::now() + wait;
    let mut settled = SETTLED.lock();
    while !*settled && Instant::now() < deadline {
        SETTLED_CHANGED.wait_for(&mut settled, Duration::from_millis(20));
        for f in &files {
            let _ = remove(f, Kind::File);
        }
    }
    drop(settled);
    for f in &files {
        let _ = remove(f, Kind::File);
    }
    n
}

fn registered() -> Vec<(PathBuf, Kind)> {
    REGISTERED
        .lock()
        .as_ref()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default()
}

/// Removes every registered path now, and returns how many were registered.
fn remove_all() -> usize {
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
