use std::collections::HashSet;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int32Type};
use spillframe::datagen::{h2o, tpch};
use spillframe::prelude::*;

fn session() -> Session {
    Session::builder()
        .memory_limit_bytes(256 << 20)
        .ignore_environment()
        .build()
        .unwrap()
}

fn ints(t: &Table, c: &str) -> Vec<i32> {
    let a = t.column(c).unwrap();
    a.as_primitive::<Int32Type>().iter().flatten().collect()
}

fn strings(t: &Table, c: &str) -> Vec<String> {
    let a = arrow::compute::cast(&t.column(c).unwrap(), &arrow::datatypes::DataType::Utf8).unwrap();
    a.as_string::<i32>()
        .iter()
        .flatten()
        .map(String::from)
        .collect()
}

#[test]
fn h2o_groupby_follows_the_published_rules() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200_000u64;
    let spec = h2o::GroupbySpec::new(n);
    let files = h2o::generate_groupby(&spec, dir.path(), &|_, _| {}).unwrap();
    assert_eq!(files[0].rows, n);
    let t = session()
        .read_parquet(&files[0].path)
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(t.shape(), (n as usize, 9));
    assert_eq!(
        t.column_names(),
        ["id1", "id2", "id3", "id4", "id5", "id6", "v1", "v2", "v3"]
    );
    let k = 100usize;
    let nk = (n / 100) as i32;
    for c in ["id1", "id2"] {
        let v: HashSet<String> = strings(&t, c).into_iter().collect();
        // 200k draws from 100 values: every value appears.
        assert_eq!(v.len(), k, "{c}");
        assert!(v.iter().all(|s| s.len() == 5 && s.starts_with("id")), "{c}");
    }
    let id3: HashSet<String> = strings(&t, "id3").into_iter().collect();
    assert!(id3.len() <= nk as usize && id3.len() > nk as usize * 9 / 10);
    assert!(id3.iter().all(|s| s.len() == 12));
    for (c, hi) in [
        ("id4", 100),
        ("id5", 100),
        ("id6", nk),
        ("v1", 5),
        ("v2", 15),
    ] {
        let v = ints(&t, c);
        assert_eq!(v.len(), n as usize, "{c} has no nulls");
        assert_eq!(*v.iter().min().unwrap(), 1, "{c}");
        assert_eq!(*v.iter().max().unwrap(), hi, "{c}");
    }
    let v3 = t.column("v3").unwrap();
    let v3 = v3.as_primitive::<Float64Type>();
    for x in v3.iter().flatten() {
        assert!((0.0..=100.0).contains(&x));
        assert!(
            ((x * 1e6).round() - x * 1e6).abs() < 1e-3,
            "6 decimals: {x}"
        );
    }
    // Same seed, same data.
    let again = h2o::groupby_chunk(&spec, 0, 10).unwrap();
    let first = h2o::groupby_chunk(&spec, 0, 10).unwrap();
    assert_eq!(again, first);
}

#[test]
fn h2o_groupby_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let spec = h2o::GroupbySpec {
        rows: 10_000,
        k: 10,
        nas: 5,
        seed: 1,
    };
    let files = h2o::generate_groupby(&spec, dir.path(), &|_, _| {}).unwrap();
    let t = session()
        .read_parquet(&files[0].path)
        .unwrap()
        .collect()
        .unwrap();
    for c in t.column_names() {
        assert_eq!(t.column(c).unwrap().null_count(), 500, "{c}: 5% of 10000");
    }
}

#[test]
fn h2o_join_tables_follow_the_published_rules() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100_000u64;
    let files =
        h2o::generate_join(&h2o::JoinSpec { rows: n, seed: 7 }, dir.path(), &|_, _| {}).unwrap();
    let rows: Vec<(String, u64)> = files.iter().map(|f| (f.table.clone(), f.rows)).collect();
    assert_eq!(
        rows,
        vec![
            ("x".into(), n),
            ("small".into(), 1),
            ("medium".into(), 100),
            ("big".into(), n)
        ]
    );
    let s = session();
    let read = |name: &str| {
        s.read_parquet(dir.path().join(format!("{name}.parquet")))
            .unwrap()
            .collect()
            .unwrap()
    };
    let (x, medium, big) = (read("x"), read("medium"), read("big"));
    assert_eq!(
        x.column_names(),
        ["id1", "id2", "id3", "id4", "id5", "id6", "v1"]
    );
    assert_eq!(medium.column_names(), ["id1", "id2", "id4", "id5", "v2"]);
    // id3 of x and of big: N keys drawn once each (sample_all with size = pool).
    let x3: HashSet<i32> = ints(&x, "id3").into_iter().collect();
    let b3: HashSet<i32> = ints(&big, "id3").into_iter().collect();
    assert_eq!(x3.len(), n as usize);
    assert_eq!(b3.len(), n as usize);
    // 90% of the keys are on both sides.
    assert_eq!(x3.intersection(&b3).count(), (n * 9 / 10) as usize);
    // Keys lie in 1..=1.1N.
    assert!(
        x3.iter()
            .chain(&b3)
            .all(|&k| k >= 1 && k as u64 <= n + n / 10)
    );
    // id2: N/1e3 = 100 keys per side, 90 shared.
    let x2: HashSet<i32> = ints(&x, "id2").into_iter().collect();
    let m2: HashSet<i32> = ints(&medium, "id2").into_iter().collect();
    assert_eq!(
        (x2.len(), m2.len(), x2.intersection(&m2).count()),
        (100, 100, 90)
    );
    // String ids mirror the integers.
    let id6 = strings(&x, "id6");
    assert_eq!(id6[0], format!("id{}", ints(&x, "id3")[0]));
    let v1 = x.column("v1").unwrap();
    assert!(
        v1.as_primitive::<Float64Type>()
            .iter()
            .flatten()
            .all(|v| (0.0..=100.0).contains(&v))
    );
}

#[test]
fn tpch_row_counts_at_scale_001() {
    let dir = tempfile::tempdir().unwrap();
    let files = tpch::generate(0.01, dir.path(), &|_, _| {}).unwrap();
    let count = |t: &str| {
        files
            .iter()
            .filter(|f| f.table == t)
            .map(|f| f.rows)
            .sum::<u64>()
    };
    // TPC-H specification row counts at SF 0.01 (lineitem from the reference dbgen).
    assert_eq!(count("nation"), 25);
    assert_eq!(count("region"), 5);
    assert_eq!(count("supplier"), 100);
    assert_eq!(count("customer"), 1_500);
    assert_eq!(count("part"), 2_000);
    assert_eq!(count("partsupp"), 8_000);
    assert_eq!(count("orders"), 15_000);
    assert_eq!(count("lineitem"), 60_175);
    let s = session();
    let li = s.read_parquet(dir.path().join("lineitem")).unwrap();
    assert_eq!(li.count().unwrap(), 60_175);
}
