use spillframe_engine::prelude::*;

use crate::common::*;

fn people(s: &Session) -> LazyFrame {
    s.read_csv(data("people.csv")).unwrap()
}

#[test]
fn filter_keeps_matching_rows() {
    let s = session();
    let t = people(&s)
        .filter(col("age").gt(lit(30)))
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_matches(&t, "filter_age_gt_30.csv");
}

#[test]
fn with_columns_replace_and_add_from_the_input() {
    let s = session();
    let t = people(&s)
        .with_columns([
            (col("salary") * lit(2.0)).alias("salary"),
            (col("age") + lit(1)).alias("age_next"),
        ])
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_matches(&t, "with_columns.csv");
}

#[test]
fn with_column_takes_the_alias_as_name() {
    let s = session();
    let t = people(&s)
        .with_column(lit(1).alias("one"))
        .select(["id", "one"])
        .limit(2)
        .collect()
        .unwrap();
    assert_eq!(t.column_names(), ["id", "one"]);
    assert_eq!(column(&t, "one"), nums(&[1.0, 1.0]));
}

#[test]
fn select_rename_and_drop_shape_the_columns() {
    let s = session();
    let lf = people(&s);
    assert_eq!(
        lf.clone().select(["name", "id"]).columns().unwrap(),
        ["name", "id"]
    );
    assert_eq!(
        lf.clone()
            .rename(["id", "city"], ["pid", "town"])
            .columns()
            .unwrap(),
        ["pid", "name", "dept", "age", "salary", "town"]
    );
    assert_eq!(
        lf.drop(["salary", "dept"]).columns().unwrap(),
        ["id", "name", "age", "city"]
    );
}

#[test]
fn group_by_aggregations_match_pandas() {
    let s = session();
    let t = people(&s)
        .group_by(["dept"])
        .agg([
            col("salary").sum().alias("salary_sum"),
            col("salary").mean().alias("salary_mean"),
            col("age").min().alias("age_min"),
            col("age").max().alias("age_max"),
            col("age").count().alias("age_count"),
            col("city").n_unique().alias("city_n_unique"),
            col("salary").median().alias("salary_median"),
            col("salary").std(1).alias("salary_std"),
            len(),
        ])
        .sort(
            ["dept"],
            SortMultipleOptions::default().with_nulls_last(true),
        )
        .collect()
        .unwrap();
    assert_matches(&t, "groupby_dept.csv");
}

#[test]
fn std_and_var_with_any_ddof() {
    // Hand-computed: values 2, 4, 4, 4, 5, 5, 7, 9 have mean 5 and squared deviations
    // summing to 32, so var(ddof=0) = 4, var(ddof=1) = 32/7, var(ddof=2) = 32/6.
    let s = session();
    let t = df!("v" => [2.0f64, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
        .unwrap()
        .lazy(&s)
        .unwrap()
        .select([
            col("v").var(0).alias("v0"),
            col("v").var(1).alias("v1"),
            col("v").var(2).alias("v2"),
            col("v").std(0).alias("s0"),
            col("v").quantile(0.5).alias("q50"),
        ])
        .collect()
        .unwrap();
    assert_rows(
        rows(&t),
        vec![nums(&[4.0, 32.0 / 7.0, 32.0 / 6.0, 2.0, 4.5])],
        "var/std",
    );
}

#[test]
fn sort_by_several_keys_with_directions_and_null_placement() {
    let s = session();
    let t = people(&s)
        .sort(
            ["dept", "age", "id"],
            SortMultipleOptions::default()
                .with_order_descending_multi([false, true, false])
                .with_nulls_last_multi([true, false, false]),
        )
        .collect()
        .unwrap();
    assert_matches(&t, "sort_dept_asc_nulls_last_age_desc_nulls_first.csv");

    let t = people(&s)
        .sort(
            ["salary", "id"],
            SortMultipleOptions::default()
                .with_order_descending_multi([true, false])
                .with_nulls_last(true),
        )
        .collect()
        .unwrap();
    assert_matches(&t, "sort_salary_desc.csv");
}

#[test]
fn limit_head_and_slice() {
    let s = session();
    let sorted = people(&s).sort(["id"], SortMultipleOptions::default());
    assert_eq!(
        column(&sorted.clone().limit(3).collect().unwrap(), "id"),
        nums(&[1.0, 2.0, 3.0])
    );
    assert_eq!(
        column(&sorted.clone().head(1).collect().unwrap(), "id"),
        nums(&[1.0])
    );
    assert_eq!(
        column(&sorted.slice(4, 2).collect().unwrap(), "id"),
        nums(&[5.0, 6.0])
    );
}

#[test]
fn unique_and_distinct() {
    let s = session();
    let t = people(&s)
        .select(["dept", "city"])
        .unique::<&str>(None)
        .sort(
            ["dept", "city"],
            SortMultipleOptions::default().with_nulls_last(true),
        )
        .collect()
        .unwrap();
    assert_matches(&t, "unique_dept_city.csv");
    // One row per dept (4 distinct values including null), whichever row is kept.
    let t = people(&s).unique(Some(vec!["dept"])).collect().unwrap();
    assert_eq!(t.height(), 4);
    assert_eq!(t.width(), 6);
    let t = people(&s).select(["city"]).distinct().collect().unwrap();
    assert_eq!(t.height(), 4);
}

#[test]
fn union_and_concat_stack_rows() {
    let s = session();
    let a = people(&s).filter(col("id").lt_eq(lit(4)));
    let b = people(&s).filter(col("id").gt(lit(10)));
    let t = a
        .clone()
        .union(b.clone())
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_eq!(column(&t, "id"), nums(&[1.0, 2.0, 3.0, 4.0, 11.0, 12.0]));
    let t = concat([a.clone(), b, a]).unwrap().collect().unwrap();
    assert_eq!(t.height(), 10);
}

#[test]
fn describe_matches_pandas() {
    let s = session();
    let t = people(&s).select(["age", "salary"]).describe().unwrap();
    let (_, exp) = expected("describe.csv");
    let stat = |name: &str| {
        exp.iter()
            .find(|r| r[0] == Cell::Text(name.into()))
            .unwrap()[1..]
            .to_vec()
    };
    let ours = |name: &str| {
        rows(&t)
            .into_iter()
            .find(|r| r[0] == Cell::Text(name.into()))
            .unwrap()[1..]
            .to_vec()
    };
    assert_eq!(ours("count"), stat("count"));
    for (ours_name, pandas_name) in [
        ("mean", "mean"),
        ("std", "std"),
        ("min", "min"),
        ("max", "max"),
        ("median", "50%"),
    ] {
        let (a, b) = (ours(ours_name), stat(pandas_name));
        for (x, y) in a.iter().zip(&b) {
            match (x, y) {
                (Cell::Num(x), Cell::Num(y)) => {
                    assert!((x - y).abs() < 1e-6, "{ours_name}: {x} vs {y}")
                }
                _ => panic!("{ours_name}: {a:?} vs {b:?}"),
            }
        }
    }
}
