//! What a hostile or careless user tries: a query that fails while writing over an existing
//! file, an output path that cannot be written, absurd settings. Each must end in a clear
//! error naming what is at fault, never a panic or a hang, and lose nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the CLI with a time bound (a hang fails the test instead of blocking it).
fn spillframe(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args(args)
        .env_remove("SPILLFRAME_CONFIG")
        .env_remove("SPILLFRAME_MEMORY_LIMIT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spillframe");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("spillframe {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A CSV whose last row has too few fields: reading fails after 200,000 good rows.
fn bad_tail_csv(dir: &Path) -> PathBuf {
    let path = dir.join("rl.csv");
    let mut text = String::from("a,b,c\n");
    for i in 1..=200_000u64 {
        text.push_str(&format!("{i},{},x{i}\n", i * 2));
    }
    text.push_str("1,2\n");
    std::fs::write(&path, text).unwrap();
    path
}

/// Files in `dir` other than `keep`.
fn others(dir: &Path, keep: &[&Path]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !keep.contains(&p.as_path()))
        .collect()
}

#[test]
fn a_query_that_fails_while_writing_leaves_the_existing_output_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let csv = bad_tail_csv(dir.path());
    let table = format!("x={}", csv.display());
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut outs = Vec::new();
    for ext in ["parquet", "arrow", "csv"] {
        let out = out_dir.join(format!("o.{ext}"));
        std::fs::write(&out, "precious\n").unwrap();
        outs.push(out.clone());
        let out_arg = out.to_str().unwrap();
        // Fails late, after most rows were written.
        let o = spillframe(&["sql", "SELECT a, b FROM x", "-t", &table, "--out", out_arg]);
        assert_eq!(o.status.code(), Some(1), "{ext}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("rl.csv"),
            "{ext}: the error names the file: {}",
            stderr(&o)
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "precious\n",
            "{ext}: the old file changed"
        );
        // Fails at once (a bad column).
        let o = spillframe(&["sql", "SELECT nope FROM x", "-t", &table, "--out", out_arg]);
        assert_eq!(o.status.code(), Some(1), "{ext}: {}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "precious\n",
            "{ext}: the old file changed"
        );
        let keep: Vec<&Path> = outs.iter().map(PathBuf::as_path).collect();
        assert!(
            others(&out_dir, &keep).is_empty(),
            "{ext}: staging files were left: {:?}",
            others(&out_dir, &keep)
        );
    }
    // A successful write replaces the file, and leaves nothing else.
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "a\n3\n1\n2\n").unwrap();
    let out = &outs[2];
    let o = spillframe(&[
        "sql",
        "SELECT a FROM x ORDER BY a",
        "-t",
        &format!("x={}", good.display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out).unwrap(), "a\n1\n2\n3\n");
    let keep: Vec<&Path> = outs.iter().map(PathBuf::as_path).collect();
    assert!(
        others(&out_dir, &keep).is_empty(),
        "{:?}",
        others(&out_dir, &keep)
    );
}

#[test]
fn an_output_path_that_cannot_be_written_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "a\n1\n").unwrap();
    let table = format!("x={}", good.display());
    // /proc accepts no new files (this used to spin at 100% CPU forever).
    let o = spillframe(&[
        "sql",
        "SELECT a FROM x",
        "-t",
        &table,
        "--out",
        "/proc/o.csv",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("/proc/o.csv"), "{}", stderr(&o));
    // A directory is not a file.
    let o = spillframe(&[
        "sql",
        "SELECT a FROM x",
        "-t",
        &table,
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn absurd_settings_are_refused_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "a\n1\n").unwrap();
    let table = format!("x={}", good.display());
    let run = |flag: &str, value: &str| {
        spillframe(&[
            "sql",
            "SELECT a FROM x",
            "-t",
            &table,
            &format!("{flag}={value}"),
        ])
    };

    let o = run("--target-partitions", "100000");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("target_partitions") && stderr(&o).contains("1024"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

    let o = run("--memory-limit", "1PB");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("memory_limit") && stderr(&o).contains("more than this machine"),
        "{}",
        stderr(&o)
    );

    for (value, says) in [
        ("-1", "cannot be negative"),
        ("9999999999999999999999B", "larger than any machine"),
        ("0", "greater than zero"),
    ] {
        let o = run("--memory-limit", value);
        assert_eq!(o.status.code(), Some(2), "{value}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{value}: {}", stderr(&o));
    }
}

#[test]
fn read_errors_during_execution_name_the_file_and_no_wrong_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = bad_tail_csv(dir.path());
    let table = format!("x={}", csv.display());
    // Read in parallel byte ranges, the reader's line number counts from a range's start: it
    // is dropped rather than name the wrong line.
    let o = spillframe(&[
        "sql",
        "SELECT a, b FROM x",
        "-t",
        &table,
        "--target-partitions",
        "4",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&csv.display().to_string()), "{err}");
    assert!(
        err.contains("unknown line") && !err.contains("for line"),
        "{err}"
    );
    // Read whole, the true line is named: the header, 200,000 rows, then the bad one.
    let o = spillframe(&[
        "sql",
        "SELECT a, b FROM x",
        "-t",
        &table,
        "--target-partitions",
        "1",
    ]);
    let err = stderr(&o);
    assert!(
        err.contains(&csv.display().to_string()) && err.contains("line 200002"),
        "{err}"
    );

    // Parquet damaged in the middle of its data pages.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sql/data/fact.parquet");
    let bad = dir.path().join("damaged.parquet");
    let mut bytes = std::fs::read(src).unwrap();
    let mid = bytes.len() * 3 / 8;
    bytes[mid..mid + 64].fill(0xff);
    std::fs::write(&bad, bytes).unwrap();
    let o = spillframe(&[
        "sql",
        "SELECT sum(q), count(s) FROM x",
        "-t",
        &format!("x={}", bad.display()),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("damaged.parquet"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
