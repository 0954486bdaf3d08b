//! Every case against the answer pandas gave, in memory and under a tiny memory limit.

use std::path::PathBuf;

use spillframe_compat::conformance::{Inputs, cases::CASES, check};
use spillframe_compat::frame::spilled_bytes;
use spillframe_engine::Session;

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/compat")
}

/// Runs every case (or the one named by `COMPAT_CASE`); returns the failures and the ids of
/// the cases that spilled.
fn run_all(session: &Session) -> (Vec<String>, Vec<&'static str>) {
    let inputs = Inputs::load(session, &fixtures().join("inputs")).expect("inputs load");
    let expected = fixtures().join("expected");
    let only = std::env::var("COMPAT_CASE").ok();
    let mut failures = Vec::new();
    let mut spilled = Vec::new();
    for case in CASES {
        if only.as_deref().is_some_and(|o| o != case.id) {
            continue;
        }
        let before = spilled_bytes(session);
        if let Err(e) = check(case, &inputs, &expected) {
            failures.push(format!("{}: {e}", case.id));
        }
        if spilled_bytes(session) > before {
            spilled.push(case.id);
        }
    }
    (failures, spilled)
}

#[test]
fn cases_match_pandas() {
    let session = Session::builder()
        .memory_limit_bytes(256 << 20)
        .ignore_environment()
        .build()
        .unwrap();
    let (failures, _) = run_all(&session);
    assert!(
        failures.is_empty(),
        "{} cases differ from pandas:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The same cases under a 1 MiB limit (the input is about 400 KiB in memory), with joins and
/// windows forced through the partition store.
#[test]
fn cases_match_pandas_out_of_core() {
    let session = Session::builder()
        .memory_limit_bytes(1 << 20)
        .batch_size(128)
        .target_partitions(2)
        .force_partitioned(true)
        .ignore_environment()
        .build()
        .unwrap();
    let (failures, spilled) = run_all(&session);
    assert!(
        failures.is_empty(),
        "{} cases differ from pandas out of core:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "out-of-core parity: {} bytes spilled, by {} cases: {}",
        spilled_bytes(&session),
        spilled.len(),
        spilled.join(", ")
    );
    // The full-width cases hold more than the limit, so they must have spilled. (Cases over
    // a few columns of 5000 rows fit in 1 MiB; below 1 MiB some sorts cannot run at all.)
    for id in ["read_parquet", "frame_rank"] {
        assert!(
            spilled.contains(&id),
            "case {id} did not spill under the tiny limit"
        );
    }
}
