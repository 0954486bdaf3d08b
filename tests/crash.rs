//! A process killed in the middle of a spilling query leaves its spill directory behind; the
//! next session on the same base directory removes it. SIGINT and SIGTERM remove it at once,
//! with the staged output file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// Starts a self-join under 16 MiB, which spills for several seconds, writing to `out` with
/// spill files under `base`; returns once the process has spilled, with its spilling
/// directories.
fn start_spilling_join(table: &str, out: &Path, base: &Path) -> (Child, Vec<PathBuf>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args([
            "sql",
            "SELECT a.id3, a.v1, b.v2 FROM x a JOIN x b ON a.id3 = b.id3",
            "-t",
            table,
            "--memory-limit",
            "16MiB",
            "--out",
        ])
        .arg(out)
        .arg("--spill-dir")
        .arg(base)
        .env_remove("SPILLFRAME_CONFIG")
        .env_remove("SPILLFRAME_MEMORY_LIMIT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let dirs = spilling_dirs(base);
        if !dirs.is_empty() {
            return (child, dirs);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the query ended ({status}) before it spilled");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no spill file within 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_spill_directory_of_a_killed_process_is_swept_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("g");
    let base = dir.path().join("spill");
    let table = crate::common::gen_groupby("1e6", &data);
    let (mut child, left) = start_spilling_join(&table, &dir.path().join("out.parquet"), &base);
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

/// Entries of `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigint_and_sigterm_remove_the_spill_directory_and_the_staged_output() {
    let dir = tempfile::tempdir().unwrap();
    let table = crate::common::gen_groupby("1e6", &dir.path().join("g"));
    for signal in ["INT", "TERM"] {
        let base = dir.path().join(format!("spill-{signal}"));
        let out_dir = dir.path().join(format!("out-{signal}"));
        std::fs::create_dir(&out_dir).unwrap();
        let out = out_dir.join("out.parquet");
        std::fs::write(&out, "precious").unwrap();
        let (mut child, _) = start_spilling_join(&table, &out, &base);
        let signo = if signal == "INT" {
            libc::SIGINT
        } else {
            libc::SIGTERM
        };
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: kill(2) with the pid of a child this test started and still waits for.
        assert_eq!(unsafe { libc::kill(pid, signo) }, 0, "kill SIG{signal}");
        let waited = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if waited.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("SIG{signal}: the process did not exit within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(130), "SIG{signal}: {status}");
        assert!(
            named(&base, "spillframe-").is_empty(),
            "SIG{signal} left spill directories: {:?}",
            named(&base, "spillframe-")
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"precious", "SIG{signal}");
        assert_eq!(
            named(&out_dir, ""),
            vec![out.clone()],
            "SIG{signal} left staging files"
        );
    }
}
