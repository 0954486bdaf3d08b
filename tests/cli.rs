use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/data")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn spillframe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args(args)
        .env_remove("SPILLFRAME_CONFIG")
        .env_remove("SPILLFRAME_MEMORY_LIMIT")
        .output()
        .expect("run spillframe")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn sql_prints_a_table_and_a_summary() {
    let people = format!("people={}", fixture("people.csv"));
    let o = spillframe(&[
        "sql",
        "SELECT dept, count(*) AS n FROM people WHERE dept IS NOT NULL GROUP BY dept ORDER BY dept",
        "--table",
        &people,
        "--memory-limit",
        "64MiB",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // Hand-counted from people.csv: eng 4, hr 3, ops 3.
    assert!(out.contains("shape: (3, 2)"), "{out}");
    for row in ["| eng  | 4 |", "| hr   | 3 |", "| ops  | 3 |"] {
        assert!(out.contains(row), "{row} missing from\n{out}");
    }
    assert!(
        err.contains("3 rows in") && err.contains("peak memory") && err.contains("spilled"),
        "{err}"
    );
}

#[test]
fn sql_writes_the_format_of_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let people = format!("p={}", fixture("people.parquet"));
    for ext in ["parquet", "csv", "arrow"] {
        let out = dir.path().join(format!("out.{ext}"));
        let o = spillframe(&[
            "sql",
            "SELECT id, name FROM p WHERE id > 6",
            "-t",
            &people,
            "--out",
            out.to_str().unwrap(),
        ]);
        let (_, err) = text(&o);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("6 rows in"), "{err}");
        assert!(out.is_file());
    }
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7);
}

#[test]
fn explain_and_analyze() {
    let people = format!("p={}", fixture("people.csv"));
    let o = spillframe(&["sql", "SELECT count(*) FROM p", "-t", &people, "--explain"]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.contains("Physical plan"), "{out}");
    let o = spillframe(&["sql", "SELECT count(*) FROM p", "-t", &people, "--analyze"]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.contains("output_rows"), "{out}");
}

#[test]
fn bad_arguments_give_clear_errors_and_no_panic() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "sql".into(),
                "SELECT 1".into(),
                "--table".into(),
                "nopath".into(),
            ],
            "NAME=PATH",
        ),
        (
            vec![
                "sql".into(),
                "SELECT * FROM t".into(),
                "-t".into(),
                "t=/no/such.parquet".into(),
            ],
            "/no/such.parquet",
        ),
        (
            vec![
                "sql".into(),
                "SELECT 1".into(),
                "--memory-limit".into(),
                "lots".into(),
            ],
            "lots",
        ),
        (
            vec![
                "sql".into(),
                "SELECT 1".into(),
                "--out".into(),
                "result.xlsx".into(),
            ],
            "result.xlsx",
        ),
        (
            vec![
                "sql".into(),
                "SELECT nope FROM p".into(),
                "-t".into(),
                format!("p={}", fixture("people.csv")),
            ],
            "nope",
        ),
        (
            vec![
                "sql".into(),
                "SELECT * FROM b".into(),
                "-t".into(),
                format!("b={}", fixture("bad.csv")),
            ],
            "bad.csv",
        ),
        (
            vec![
                "gen".into(),
                "h2o-groupby".into(),
                "--rows".into(),
                "many".into(),
            ],
            "many",
        ),
        (vec!["frobnicate".into()], "frobnicate"),
    ];
    for (args, needle) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = spillframe(&refs);
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: '{needle}' not in: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn bad_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("spillframe.toml");
    std::fs::write(&cfg, "memory_limit = \"a lot\"\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args(["sql", "SELECT 1"])
        .env("SPILLFRAME_CONFIG", &cfg)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("memory_limit") && err.contains("a lot") && err.contains("spillframe.toml"),
        "{err}"
    );
}
