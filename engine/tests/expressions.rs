use spillframe_engine::prelude::*;

use crate::common::*;

#[test]
fn expression_methods_match_pandas() {
    let s = session();
    let t = s
        .read_csv(data("people.csv"))
        .unwrap()
        .select([
            col("id"),
            col("city")
                .is_in([lit("oslo"), lit("lima")])
                .alias("in_set"),
            col("age").is_between(lit(28), lit(40)).alias("between"),
            col("salary").fill_null(lit(0.0)).alias("filled"),
            col("name").str_contains("o").alias("has_o"),
            col("city").str_to_uppercase().alias("upper"),
            col("name").str_len().alias("name_len"),
        ])
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_matches(&t, "expressions.csv");
}

#[test]
fn comparison_and_arithmetic_chain() {
    // Hand-computed: a = 1..=5, keep a > 2 and a != 4, then b = a * 10 - 1.
    let s = session();
    let t = df!("a" => [1i64, 2, 3, 4, 5])
        .unwrap()
        .lazy(&s)
        .unwrap()
        .filter(col("a").gt(lit(2)).and(col("a").neq(lit(4))))
        .with_column((col("a") * lit(10) - lit(1)).alias("b"))
        .sort(["a"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_eq!(column(&t, "b"), nums(&[29.0, 49.0]));
}

#[test]
fn integer_overflow_is_an_error_not_a_wrapped_number() {
    let s = session();
    for sql in [
        "SELECT 9223372036854775807 + 1",
        "SELECT -9223372036854775807 - 2",
        "SELECT 4611686018427387904 * 2",
    ] {
        let e = s.sql(sql).collect().unwrap_err().to_string();
        assert!(e.to_lowercase().contains("overflow"), "{sql}: {e}");
    }
    // A column's value, not a constant, and through the DataFrame API.
    let t = df!("v" => [1i64, i64::MAX]).unwrap().lazy(&s).unwrap();
    let e = t
        .clone()
        .with_column((col("v") * lit(2)).alias("w"))
        .collect()
        .unwrap_err()
        .to_string();
    assert!(e.to_lowercase().contains("overflow"), "{e}");
    // Arithmetic that fits is unchanged, and keeps its name.
    let ok = s
        .sql("SELECT 9223372036854775806 + 1 AS a, 7 - 9, CAST(3 AS INT) * 4")
        .collect()
        .unwrap();
    let b = ok.to_batch().unwrap();
    let show = |i: usize| arrow::util::display::array_value_to_string(b.column(i), 0).unwrap();
    assert_eq!(show(0), "9223372036854775807");
    assert_eq!(show(1), "-2");
    assert_eq!(show(2), "12");
    assert_eq!(ok.column_names()[1], "Int64(7) - Int64(9)");
    // `sum` over integers too, through SQL and the DataFrame API, grouped or not; it keeps
    // its name, and a total that passes the 64-bit range on the way but ends inside it is
    // right (the partial sums are 128-bit).
    let e = t
        .clone()
        .select([col("v").sum().alias("s")])
        .collect()
        .unwrap_err()
        .to_string();
    assert!(e.contains("overflow in sum"), "{e}");
    let big = df!("k" => [1i64, 1, 1, 2], "v" => [i64::MAX, 1, -2, 5])
        .unwrap()
        .lazy(&s)
        .unwrap();
    s.register("big", &big).unwrap();
    let sums = s
        .sql("SELECT k, sum(v) FROM big GROUP BY k ORDER BY k")
        .collect()
        .unwrap();
    assert_eq!(sums.column_names(), ["k", "sum(big.v)"]);
    let b = sums.to_batch().unwrap();
    let show =
        |i: usize, r: usize| arrow::util::display::array_value_to_string(b.column(i), r).unwrap();
    assert_eq!(
        (show(1, 0), show(1, 1)),
        ((i64::MAX - 1).to_string(), "5".into())
    );
    let e = s
        .sql("SELECT sum(v) FROM big WHERE v > 0")
        .collect()
        .unwrap_err()
        .to_string();
    assert!(e.contains("overflow in sum"), "{e}");
    let e = s
        .sql("SELECT sum(CAST(v AS BIGINT UNSIGNED)) FROM big WHERE v > 0")
        .collect();
    // u64::MAX is 2^64 - 1, so i64::MAX + 1 + 5 fits in an unsigned sum.
    assert_eq!(lines_of(&e.unwrap()), [(i64::MAX as u64 + 6).to_string()]);
    // Floats are not integers: they still follow IEEE 754.
    let f = s.sql("SELECT 1e308 * 10").collect().unwrap();
    let v =
        arrow::util::display::array_value_to_string(f.to_batch().unwrap().column(0), 0).unwrap();
    assert_eq!(v, "inf");
}

/// Every row's first value as text.
fn lines_of(t: &Table) -> Vec<String> {
    let b = t.to_batch().unwrap();
    (0..b.num_rows())
        .map(|r| arrow::util::display::array_value_to_string(b.column(0), r).unwrap())
        .collect()
}
