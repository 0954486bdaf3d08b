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
