//! A process killed in the middle of a spilling query leaves its spill directory behind; the
//! next session on the same base directory removes it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Directories of sessions under `base` that hold at least one spill file.
fn spilling_dirs(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("spillframe-"))
                && std::fs::read_dir(p).is_ok_and(|files| {
                    files
                        .flatten()
                        .any(|f| f.file_name().to_string_lossy() != "owner.lock")
                })
        })
        .collect()
}

#[test]
fn the_spill_directory_of_a_killed_process_is_swept_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("g");
    let base = dir.path().join("spill");
    let table = crate::common::gen_groupby("1e6", &data);
    // A self-join under 16 MiB: it spills for several seconds.
    let mut child = Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args([
            "sql",
            "SELECT a.id3, a.v1, b.v2 FROM x a JOIN x b ON a.id3 = b.id3",
            "-t",
            &table,
            "--memory-limit",
            "16MiB",
            "--out",
        ])
        .arg(dir.path().join("out.parquet"))
        .arg("--spill-dir")
        .arg(&base)
        .env_remove("SPILLFRAME_CONFIG")
        .env_remove("SPILLFRAME_MEMORY_LIMIT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let left = loop {
        let dirs = spilling_dirs(&base);
        if !dirs.is_empty() {
            break dirs;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the query ended ({status}) before it spilled");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no spill file within 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    assert!(
        left.iter().all(|d| d.exists()),
        "the killed process left {left:?}"
    );

    let session = spillframe_engine::Session::builder()
        .spill_dir(&base)
        .ignore_environment()
        .build()
        .unwrap();
    for d in &left {
        assert!(!d.exists(), "{} was not swept", d.display());
    }
    assert!(session.spill_dir().exists());
}
