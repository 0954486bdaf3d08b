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

#[test]
fn map_partitions_failures_name_the_piece_and_empty_frames_keep_their_columns() {
    use arrow::array::RecordBatch;
    let s = session();
    let df = read_parquet(
        &s,
        super::conformance::fixtures().join("inputs/small.parquet"),
    )
    .unwrap();
    let err = df
        .map_partitions(0, |b: RecordBatch| Ok::<_, std::io::Error>(b))
        .unwrap_err()
        .to_string();
    assert!(err.contains("npartitions"), "{err}");

    // 8 rows in 3 pieces (3, 3, 2 rows): the piece holding rows 6 and 7 fails.
    let err = df
        .map_partitions(3, |b: RecordBatch| {
            if b.num_rows() == 2 {
                Err(std::io::Error::other("two rows are not enough"))
            } else {
                Ok(b)
            }
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("piece 2") && err.contains("two rows are not enough"),
        "{err}"
    );

    // Pieces come back in order, whatever the function does to each.
    let tagged = df
        .map_partitions(3, |b: RecordBatch| b.project(&[3]))
        .unwrap()
        .to_table()
        .unwrap();
    let d = tagged.column("d").unwrap();
    let d = d
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    assert_eq!(d.values().to_vec(), (1..=8).collect::<Vec<i64>>());

    // No rows: the function still decides the columns.
    let empty = df
        .head(0)
        .unwrap()
        .map_partitions(2, |b: RecordBatch| b.project(&[0, 3]))
        .unwrap()
        .to_table()
        .unwrap();
    assert_eq!(empty.num_rows(), 0);
    assert_eq!(empty.column_names(), ["a", "d"]);
}

/// `shift`, `diff` and `pct_change` at the ends of int64. Hand-computed: `diff` and
/// `pct_change` work in float64, so `0 - i64::MIN` is 2^63, where pandas' int64 subtraction
/// wraps to -2^63 (pandas 2.2.3 prints -9.223372036854776e18).
#[test]
fn shift_diff_and_pct_change_at_the_ends_of_int64_do_not_overflow() {
    use arrow::array::{Array, AsArray, Int64Array};
    use arrow::datatypes::Float64Type;
    use std::sync::Arc;
    let s = session();
    let df = DataFrame::from_columns(
        &s,
        vec![(
            "v",
            Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])) as _,
        )],
    )
    .unwrap();
    let v = df.col("v").unwrap();
    // float64, as pandas gives for an integer column with a missing value.
    let shifted = v.shift(1).unwrap().to_array().unwrap();
    let shifted = shifted.as_primitive::<Float64Type>();
    assert!(shifted.is_null(0) || shifted.value(0).is_nan());
    assert_eq!(
        (shifted.value(1), shifted.value(2)),
        (-(2f64.powi(63)), 0.0)
    );
    let diff = v.diff(1).unwrap().to_array().unwrap();
    let diff = diff.as_primitive::<Float64Type>();
    assert!(diff.is_null(0) || diff.value(0).is_nan());
    assert_eq!(diff.value(1), 2f64.powi(63));
    assert_eq!(diff.value(2), i64::MAX as f64);
    let pct = v.pct_change(1).unwrap().to_array().unwrap();
    let pct = pct.as_primitive::<Float64Type>();
    assert_eq!(pct.value(1), -1.0);
    assert_eq!(pct.value(2), f64::INFINITY);
}
