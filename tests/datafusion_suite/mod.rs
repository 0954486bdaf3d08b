//! DataFusion's own sqllogictest suite, run through spillframe's session.
//!
//! The `datafusion-sqllogictest` package (pinned to our DataFusion version) ships its
//! `test_files/` and `data/`. Each file runs, record by record, with DataFusion's own engine
//! (`datafusion_sqllogictest::DataFusion`, so values are formatted the way the suite expects)
//! in these modes ([`contexts::Mode`]):
//!
//! - `plain`: DataFusion's own test context (four partitions, no memory limit), the baseline;
//! - `plain-one-partition`: the same at one partition, the baseline of `one-partition`;
//! - `defaults`: spillframe's session with its defaults (four partitions, like the suite);
//! - `tiny`: spillframe under 4 MiB with forced partitioning;
//! - `one-partition`: spillframe on one partition;
//! - `plain-tiny` (by hand only): DataFusion alone under 4 MiB, for the pass counts in
//!   docs/benchmarks.md.
//!
//! spillframe's sessions get the tables and functions DataFusion's harness registers for the
//! file. Every record that passes in a mode's baseline must pass in that mode, or be listed in
//! `tests/datafusion_suite/known_differences.txt` (`modes file:line reason`; see its header).
//! A listed record that passes fails the run too, so the list only shrinks.
//!
//! The suite writes files (`COPY`, `INSERT` into external tables) under `test_files/scratch`
//! relative to the working directory, and reads `data/` and `test_files/` relative to it. So
//! the package is copied into a temporary directory and the suite runs in a child process (this
//! test binary again, with only [`child`]) whose working directory is that copy; the other
//! tests' working directory is untouched.
//!
//! Environment: `DF_SUITE_FILTER=text` runs only files whose path contains `text`;
//! `DF_SUITE_MODES=a,b` picks modes; `DF_SUITE_BLESS=1` rewrites the list from the run (new
//! entries get a reason guessed from the failure, to be checked by hand);
//! `DF_SUITE_JOBS` (default 2) files run at once; `DF_SUITE_TIMEOUT` seconds a record
//! (default 120); `DF_SUITE_DIR` the package directory (default: found in cargo's registry).

mod contexts;
mod known;
mod run;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use contexts::Mode;

/// The package's version: the same as the DataFusion spillframe builds on.
const PACKAGE: &str = "datafusion-sqllogictest-55.2.0";

/// Where cargo unpacked the package (it is a dev-dependency, so it is there once the tests
/// build).
fn package_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DF_SUITE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let src = home.join("registry/src");
    let found = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("cargo's registry sources ({}): {e}", src.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(PACKAGE))
        .find(|p| p.join("test_files").is_dir());
    found.unwrap_or_else(|| {
        panic!(
            "{PACKAGE} is not unpacked under {}; set DF_SUITE_DIR",
            src.display()
        )
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn known_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/datafusion_suite/known_differences.txt")
}

/// Runs the suite in a child process working in a copy of the package, and fails if the child
/// found a new difference (or a listed one that has gone).
#[test]
fn datafusion_suite_passes_in_every_mode() {
    let package = package_dir();
    let work = tempfile::tempdir().unwrap();
    copy_dir(&package.join("test_files"), &work.path().join("test_files"));
    copy_dir(&package.join("data"), &work.path().join("data"));
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "datafusion_suite::child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .current_dir(work.path())
        .env("DF_SUITE_CHILD", "1")
        .env("DF_SUITE_ROOT", work.path())
        .spawn()
        .expect("the suite's child process");
    // The whole suite takes minutes; a hang past this is a failure, not a stuck CI job.
    let limit = Duration::from_secs(45 * 60);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!(
                "DataFusion's suite did not finish within {} minutes",
                limit.as_secs() / 60
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "DataFusion's suite found differences (see the child's output above): {status}"
    );
}

/// The suite itself; run by [`datafusion_suite_passes_in_every_mode`] in its own working
/// directory.
#[test]
#[ignore = "run by datafusion_suite_passes_in_every_mode in a child process"]
fn child() {
    assert!(
        std::env::var_os("DF_SUITE_CHILD").is_some(),
        "run through datafusion_suite_passes_in_every_mode (it sets the working directory)"
    );
    let root = PathBuf::from(std::env::var("DF_SUITE_ROOT").unwrap());
    let env_num = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let modes: Vec<Mode> = match std::env::var("DF_SUITE_MODES") {
        Ok(list) => list
            .split(',')
            .map(|m| Mode::from_name(m.trim()).unwrap_or_else(|| panic!("unknown mode {m}")))
            .collect(),
        Err(_) => vec![
            Mode::Plain,
            Mode::Defaults,
            Mode::Tiny,
            Mode::PlainOnePartition,
            Mode::OnePartition,
        ],
    };
    let filter = std::env::var("DF_SUITE_FILTER").ok();
    let files = run::test_files(&root, filter.as_deref());
    assert!(
        files.len() > 100 || filter.is_some(),
        "only {} files",
        files.len()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(run::run_all(
        &root,
        &files,
        &modes,
        env_num("DF_SUITE_JOBS", 2) as usize,
        Duration::from_secs(env_num("DF_SUITE_TIMEOUT", 120)),
    ));
    for (m, r) in &results {
        let count = |f: fn(&run::Outcome) -> bool| r.values().filter(|(_, o)| f(o)).count();
        eprintln!(
            "datafusion suite: {}: {} of {} records passed; of them, with no ORDER BY, {} gave \
             the rows in another order and {} other rows under a LIMIT",
            m.name(),
            count(run::Outcome::passed),
            r.len(),
            count(|o| *o == run::Outcome::OtherOrder),
            count(|o| *o == run::Outcome::OtherRows),
        );
    }
    let listed = known::Known::read(&known_path());
    let report = known::compare(&results, &listed, filter.is_none());
    if std::env::var_os("DF_SUITE_BLESS").is_some() {
        known::bless(&known_path(), &results, &listed);
        eprintln!("datafusion suite: wrote {}", known_path().display());
        return;
    }
    assert!(
        report.is_empty(),
        "{} problems with DataFusion's suite:\n{}",
        report.len(),
        report.join("\n")
    );
}
