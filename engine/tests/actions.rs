use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use spillframe_engine::prelude::*;

use crate::common::*;

#[test]
fn count_collect_and_stream_agree() {
    let s = session();
    let lf = s.read_csv(data("people.csv")).unwrap();
    assert_eq!(lf.count().unwrap(), 12);
    let t = lf.collect().unwrap();
    assert_eq!(t.shape(), (12, 6));
    let mut rows = 0;
    for b in lf.stream().unwrap() {
        rows += b.unwrap().num_rows();
    }
    assert_eq!(rows, 12);
}

#[test]
fn writes_round_trip_in_every_format() {
    let s = session();
    let lf = s.read_csv(data("people.csv")).unwrap();
    let expected = rows(
        &lf.clone()
            .sort(["id"], SortMultipleOptions::default())
            .collect()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("out/people.parquet");
    let csv = dir.path().join("people.csv");
    let ipc = dir.path().join("people.arrow");
    assert_eq!(lf.write_parquet(&pq).unwrap().rows, 12);
    assert_eq!(lf.write_csv(&csv).unwrap().rows, 12);
    assert_eq!(lf.write_ipc(&ipc).unwrap().rows, 12);
    assert!(pq.is_file() && csv.is_file() && ipc.is_file());
    for back in [
        s.read_parquet(&pq).unwrap(),
        s.read_csv(&csv).unwrap(),
        s.read_ipc(&ipc).unwrap(),
    ] {
        let t = back
            .sort(["id"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        assert_rows(rows(&t), expected.clone(), "round trip");
    }
    // The CSV has a header row and 12 data rows.
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().next().unwrap(), "id,name,dept,age,salary,city");
    assert_eq!(text.lines().count(), 13);
}

#[test]
fn df_macro_and_batches_build_frames() {
    let s = session();
    let t = df!(
        "k" => ["a", "b", "a", "c"],
        "v" => [1i64, 2, 3, 4],
        "w" => [Some(1.5f64), None, Some(2.5), None],
    )
    .unwrap();
    assert_eq!(t.shape(), (4, 3));
    let out = t
        .lazy(&s)
        .unwrap()
        .group_by(["k"])
        .agg([col("v").sum().alias("v"), col("w").sum().alias("w")])
        .sort(["k"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    // Hand-computed: a = 1 + 3, w = 1.5 + 2.5; b = 2, w null; c = 4, w null.
    assert_rows(
        rows(&out),
        vec![
            vec![Cell::Text("a".into()), Cell::Num(4.0), Cell::Num(4.0)],
            vec![Cell::Text("b".into()), Cell::Num(2.0), Cell::Null],
            vec![Cell::Text("c".into()), Cell::Num(4.0), Cell::Null],
        ],
        "df! groupby",
    );

    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let batch = |a: Vec<i64>, b: Vec<&str>| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(a)),
                Arc::new(StringArray::from(b)),
            ],
        )
        .unwrap()
    };
    let lf = s
        .from_batches(vec![
            batch(vec![1, 2], vec!["x", "y"]),
            batch(vec![3], vec!["z"]),
        ])
        .unwrap();
    let t = lf
        .select([col("n").sum().alias("total")])
        .collect()
        .unwrap();
    assert_eq!(column(&t, "total"), nums(&[6.0]));
}

#[test]
fn explain_shows_plans_and_metrics() {
    let s = session();
    let lf = s
        .read_csv(data("people.csv"))
        .unwrap()
        .group_by(["dept"])
        .agg([len()]);
    let plan = lf.explain(false).unwrap();
    assert!(
        plan.contains("Logical plan") && plan.contains("AggregateExec"),
        "{plan}"
    );
    let analyzed = lf.explain(true).unwrap();
    assert!(analyzed.contains("output_rows"), "{analyzed}");
    assert!(analyzed.contains("peak memory"), "{analyzed}");
}

#[test]
fn table_prints_with_shape_and_truncates_long_tables() {
    let s = session();
    let t = s.read_csv(data("people.csv")).unwrap().collect().unwrap();
    let text = t.to_string();
    assert!(text.starts_with("shape: (12, 6)"), "{text}");
    let short = t.format(4);
    assert!(short.contains("more rows"), "{short}");
}

/// A preview keeps the first two thirds and the last third of `max_rows` across batch
/// boundaries, and shows a result that fits whole.
#[test]
fn preview_keeps_the_first_and_last_rows_across_batches() {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
    let feed = |max_rows: usize| {
        let mut p = spillframe_engine::Preview::new(schema.clone(), max_rows);
        let mut next = 0i64;
        for len in [3, 1, 0, 5, 2] {
            let values: Vec<i64> = (next..next + len).collect();
            next += len;
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))])
                    .unwrap();
            p.push(batch).unwrap();
        }
        assert_eq!(p.rows(), 11);
        let text = p.format();
        let shown: Vec<i64> = text
            .lines()
            .filter_map(|l| l.trim_matches(|c| c == '|' || c == ' ').parse().ok())
            .collect();
        (shown, text)
    };
    // 7 rows: 6 from the head, 1 from the tail.
    let (shown, text) = feed(7);
    assert_eq!(shown, [0, 1, 2, 3, 4, 5, 10], "{text}");
    assert!(text.starts_with("shape: (11, 1)"), "{text}");
    assert!(text.contains("… 4 more rows …"), "{text}");
    // 9 rows: 6 and 3, the tail spanning two batches.
    let (shown, text) = feed(9);
    assert_eq!(shown, [0, 1, 2, 3, 4, 5, 8, 9, 10], "{text}");
    assert!(text.contains("… 2 more rows …"), "{text}");
    // All 11 fit: no marker.
    let (shown, text) = feed(11);
    assert_eq!(shown, (0..11).collect::<Vec<_>>(), "{text}");
    assert!(!text.contains("more rows"), "{text}");
}

#[test]
fn collect_inside_an_async_runtime_does_not_panic() {
    let s = session();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = rt.block_on(async {
        let lf = s.read_csv(data("people.csv")).unwrap();
        let a = lf.count().unwrap();
        let b = lf.collect_async().await.unwrap().height();
        a + b
    });
    assert_eq!(n, 24);
}
