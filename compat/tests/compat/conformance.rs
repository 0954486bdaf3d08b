//! Every case against the answer pandas gave, in memory and under a tiny memory limit.

use std::path::PathBuf;

use spillframe_compat::conformance::{Inputs, cases::CASES, check};
use spillframe_engine::Session;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/compat")
}

fn run_all(session: &Session) -> Vec<String> {
    let inputs = Inputs::load(session, &fixtures().join("inputs")).expect("inputs load");
    let expected = fixtures().join("expected");
    let only = std::env::var("COMPAT_CASE").ok();
    let mut failures = Vec::new();
    for case in CASES {
        if only.as_deref().is_some_and(|o| o != case.id) {
            continue;
        }
        if let Err(e) = check(case, &inputs, &expected) {
            failures.push(format!("{}: {e}", case.id));
        }
    }
    failures
}

#[test]
fn cases_match_pandas() {
    let session = Session::builder()
        .memory_limit_bytes(256 << 20)
        .ignore_environment()
        .build()
        .unwrap();
    let failures = run_all(&session);
    assert!(
        failures.is_empty(),
        "{} cases differ from pandas:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
