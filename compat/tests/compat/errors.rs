//! Bad input gives errors that name the thing at fault.

use spillframe_compat::prelude::*;

fn session() -> Session {
    Session::builder()
        .memory_limit_bytes(64 << 20)
        .ignore_environment()
        .build()
        .unwrap()
}

#[test]
fn missing_column_is_named() {
    let s = session();
    let df = read_parquet(
        &s,
        super::conformance::fixtures().join("inputs/small.parquet"),
    )
    .unwrap();
    let err = df.col("nope").unwrap_err().to_string();
    assert!(
        err.contains("'nope'") && err.contains("available columns: a, b, c, d"),
        "{err}"
    );
    let err = df.sort_values(&["zz"], &[true]).unwrap_err().to_string();
    assert!(err.contains("sort_values") && err.contains("'zz'"), "{err}");
}

#[test]
fn missing_file_is_named() {
    let s = session();
    let err = read_csv(&s, "/no/such/file.csv").unwrap_err().to_string();
    assert!(err.contains("/no/such/file.csv"), "{err}");
}
