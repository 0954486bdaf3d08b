//! Real memory: a child process runs queries over data about nine times its memory limit, and
//! its peak resident set size (the kernel's `VmHWM`, printed on the summary line) must stay
//! under the limit plus a documented overhead above an idle process.
//!
//! The overhead covers what the memory pool does not count (see `docs/architecture.md`):
//! batches in flight, Parquet decoding buffers, mapped spill-file pages, allocator slack.

use std::process::Command;

use bytesize::ByteSize;

/// The memory limit of the constrained runs.
const LIMIT: &str = "16MiB";
/// Allowed RSS above an idle process plus the limit.
const OVERHEAD: u64 = 64 << 20;

/// `program` with the settings that would change the default memory limit removed.
fn without_limit_settings(program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env_remove("SPILLFRAME_CONFIG")
        .env_remove("SPILLFRAME_MEMORY_LIMIT");
    command
}

/// Runs the CLI; returns (peak RSS, bytes spilled) from its summary line.
fn run(args: &[&str]) -> (u64, u64) {
    let (rss, spilled, _) = run_printing(args);
    (rss, spilled)
}

/// Runs the CLI; returns (peak RSS, bytes spilled) from its summary line and what it printed.
fn run_printing(args: &[&str]) -> (u64, u64, String) {
    let out = without_limit_settings(env!("CARGO_BIN_EXE_spillframe"))
        .args(args)
        .output()
        .expect("run spillframe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed:\n{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.contains("peak RSS"))
        .unwrap_or_else(|| panic!("no summary with peak RSS in:\n{stderr}"));
    let field = |name: &str| -> u64 {
        let rest = &summary[summary.find(name).expect(name) + name.len()..];
        let value: String = rest
            .trim_start()
            .split(' ')
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        value
            .parse::<ByteSize>()
            .unwrap_or_else(|e| panic!("cannot parse {name} '{value}' in '{summary}': {e}"))
            .0
    };
    (
        field("peak RSS"),
        field("spilled"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn peak_rss_stays_near_the_limit_on_data_nine_times_larger() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("g");
    let table = crate::common::gen_groupby("2e6", &data);
    let target = dir.path().join("out.parquet");
    let target = target.to_str().unwrap();

    let (idle, _) = run(&["sql", "SELECT 1", "--memory-limit", LIMIT]);
    let ceiling = idle + ByteSize::mib(16).0 + OVERHEAD;
    // 2e6 rows of 9 columns take well over 100 MiB in memory (the Parquet file is 33 MB).
    for query in [
        // a grace hash join whose sides are both far over the limit
        "SELECT a.id3, a.v1, b.v2 FROM x a JOIN x b ON a.id3 = b.id3 AND a.id1 = b.id1",
        // a partitioned window
        "SELECT id2, id4, v3, row_number() OVER (PARTITION BY id3 ORDER BY v3) AS rn FROM x",
        // a holistic aggregate with many groups
        "SELECT id3, median(v3) AS m, count(DISTINCT id1) AS d FROM x GROUP BY id3",
    ] {
        let (rss, spilled) = run(&[
            "sql",
            query,
            "-t",
            &table,
            "--memory-limit",
            LIMIT,
            "--out",
            target,
        ]);
        assert!(spilled > 0, "{query}: nothing spilled");
        assert!(
            rss <= ceiling,
            "{query}: peak RSS {} over {} (idle {} + limit {LIMIT} + overhead {})",
            ByteSize(rss),
            ByteSize(ceiling),
            ByteSize(idle),
            ByteSize(OVERHEAD)
        );
    }
}

/// Printing a result far larger than the limit keeps only the rows shown: the result
/// streams past the printer (before, every batch was collected first, and this run reached
/// 357 MiB of RSS under a 16 MiB limit).
#[test]
fn printing_a_large_result_holds_only_the_rows_shown() {
    let dir = tempfile::tempdir().unwrap();
    let table = crate::common::gen_groupby("2e6", &dir.path().join("g"));
    let (idle, _) = run(&["sql", "SELECT 1", "--memory-limit", LIMIT]);
    let ceiling = idle + ByteSize::mib(16).0 + OVERHEAD;
    let (rss, _, printed) = run_printing(&[
        "sql",
        "SELECT * FROM x LIMIT 9223372036854775807",
        "-t",
        &table,
        "--memory-limit",
        LIMIT,
        "--max-rows",
        "6",
    ]);
    assert!(printed.starts_with("shape: (2000000, 9)\n"), "{printed}");
    assert!(printed.contains("… 1999994 more rows …"), "{printed}");
    // 4 head rows, 2 tail rows, a header and borders.
    assert_eq!(
        printed.lines().filter(|l| l.starts_with("| id")).count(),
        1 + 6,
        "{printed}"
    );
    assert!(
        rss <= ceiling,
        "printing: peak RSS {} over {} (idle {} + limit {LIMIT} + overhead {})",
        ByteSize(rss),
        ByteSize(ceiling),
        ByteSize(idle),
        ByteSize(OVERHEAD)
    );
}

/// A query that fits spills nothing, with several operators registered at once (a join's
/// build sides, partial and final aggregates, a window's and the final sort, repartitions),
/// and `--log-level debug` shows each memory consumer's peak grant, none of them refused.
#[test]
fn a_query_that_fits_spills_nothing_and_logs_every_grant() {
    let dir = tempfile::tempdir().unwrap();
    let table = crate::common::gen_groupby("2e6", &dir.path().join("g"));
    let out = without_limit_settings(env!("CARGO_BIN_EXE_spillframe"))
        .args([
            "sql",
            "SELECT a.id1, count(*) AS n, sum(b.v1) AS s, \
               rank() OVER (ORDER BY sum(b.v1) DESC) AS r \
             FROM x a JOIN (SELECT id3, v1 FROM x WHERE id4 < 10) b ON a.id3 = b.id3 \
             GROUP BY a.id1 ORDER BY s DESC, a.id1",
            "-t",
            &table,
            "--memory-limit",
            "1GiB",
            "--log-level",
            "spillframe_spill=debug",
            "--max-rows",
            "3",
        ])
        .output()
        .expect("run spillframe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed:\n{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a redirected log:\n{stderr}"
    );
    let summary = stderr.lines().find(|l| l.contains("peak memory")).unwrap();
    assert!(summary.contains("spilled 0 B in 0 files"), "{summary}");
    let grants: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("memory consumer done"))
        .collect();
    for consumer in [
        "HashJoinInput",
        "PartialHashAggregateStream",
        "FinalHashAggregateStream",
        "ExternalSorter[",
        "RepartitionExec",
    ] {
        assert!(
            grants
                .iter()
                .any(|l| l.contains(&format!("consumer=\"{consumer}")) && l.contains("peak=")),
            "no grant logged for {consumer}:\n{stderr}"
        );
    }
    assert!(
        grants.iter().all(|l| l.contains("refused=0")),
        "a consumer was refused while the query fits:\n{stderr}"
    );
}

/// A cgroup v1 memory group made for a test, removed on drop.
struct MemoryGroup {
    dir: std::path::PathBuf,
}

impl MemoryGroup {
    /// A group under the v1 memory controller limited to `bytes`, or `None` without one
    /// (no v1 controller, or not root).
    fn create(bytes: u64) -> Option<MemoryGroup> {
        let root = std::path::Path::new("/sys/fs/cgroup/memory");
        let dir = root.join(format!("spillframe-test-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let group = MemoryGroup { dir };
        std::fs::write(group.dir.join("memory.limit_in_bytes"), bytes.to_string()).ok()?;
        Some(group)
    }
}

impl Drop for MemoryGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Inside a 256 MiB cgroup v1 memory group, the default limit (half the usable memory) is
/// 128 MiB, not half the machine: the process's own group is read, not only the root's.
#[test]
fn the_default_limit_follows_the_process_cgroup_v1_limit() {
    let Some(group) = MemoryGroup::create(256 << 20) else {
        assert!(
            std::env::var_os("SPILLFRAME_TEST_NO_CGROUP").is_some(),
            "making a cgroup v1 memory group failed: this test needs root and a writable \
             /sys/fs/cgroup/memory (CI has both); set SPILLFRAME_TEST_NO_CGROUP=1 to skip it \
             on purpose"
        );
        eprintln!("skipped on purpose (SPILLFRAME_TEST_NO_CGROUP)");
        return;
    };
    // The shell moves itself into the group, then becomes spillframe.
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {} sql 'SELECT 1 AS one'",
        group.dir.display(),
        env!("CARGO_BIN_EXE_spillframe")
    );
    let out = without_limit_settings("sh")
        .args(["-c", &script])
        .output()
        .expect("run spillframe in the group");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed:\n{stderr}");
    assert!(
        stderr.contains("of 128.0 MiB limit"),
        "the default limit should be half the group's 256 MiB:\n{stderr}"
    );
}
