use spillframe_engine::prelude::*;
use spillframe_engine::{CsvOptions, FileFormat};

use crate::common::*;

fn sorted(lf: LazyFrame) -> Table {
    lf.select(["id", "name", "dept", "age", "salary", "city"])
        .sort(["id"], SortMultipleOptions::default())
        .collect()
        .unwrap()
}

#[test]
fn every_format_reads_the_same_rows() {
    let s = session();
    let csv = rows(&sorted(s.read_csv(data("people.csv")).unwrap()));
    assert_eq!(csv.len(), 12);
    for lf in [
        s.read_parquet(data("people.parquet")).unwrap(),
        s.read_json(data("people.json")).unwrap(),
        s.read_ipc(data("people.arrow")).unwrap(),
    ] {
        assert_rows(rows(&sorted(lf)), csv.clone(), "format");
    }
}

#[test]
fn directories_globs_and_lists_of_files() {
    let s = session();
    let dir = s.read_csv(data("parts")).unwrap();
    assert_eq!(dir.count().unwrap(), 12);
    let glob = s.read_csv(format!("{}/part-*.csv", data("parts"))).unwrap();
    assert_eq!(glob.count().unwrap(), 12);
    let list = s
        .read_csv(vec![data("parts/part-0.csv"), data("parts/part-2.csv")])
        .unwrap();
    let t = sorted(list);
    // np.array_split(12 rows, 3) puts ids 1-4, 5-8, 9-12 in the parts.
    assert_eq!(
        column(&t, "id"),
        nums(&[1.0, 2.0, 3.0, 4.0, 9.0, 10.0, 11.0, 12.0])
    );
}

#[test]
fn csv_options_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("semi.txt");
    std::fs::write(&path, "1;x\n2;y\n").unwrap();
    let s = session();
    let t = s
        .read_csv_with(
            &path,
            &CsvOptions {
                has_header: false,
                delimiter: Some(b';'),
                ..Default::default()
            },
        )
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(t.shape(), (2, 2));
}

#[test]
fn sql_over_registered_tables() {
    let s = session();
    s.register_path("people", &data("people.csv")).unwrap();
    let t = s
        .sql(
            "SELECT city, count(*) AS n, sum(salary) AS total FROM people WHERE age >= 30 \
             GROUP BY city ORDER BY n DESC, city",
        )
        .collect()
        .unwrap();
    assert_matches(&t, "sql_city_stats.csv");
    // A frame registered by the API joins SQL too.
    let lf = s
        .read_parquet(data("people.parquet"))
        .unwrap()
        .filter(col("id").lt(lit(3)));
    s.register("few", &lf).unwrap();
    assert_eq!(s.sql("SELECT * FROM few").count().unwrap(), 2);
}

#[test]
fn format_is_detected_from_the_extension() {
    assert_eq!(
        FileFormat::detect("a/b.parquet").unwrap(),
        FileFormat::Parquet
    );
    assert_eq!(FileFormat::detect("x.CSV").unwrap(), FileFormat::Csv);
    assert_eq!(FileFormat::detect("x.ndjson").unwrap(), FileFormat::Json);
    assert_eq!(FileFormat::detect("x.feather").unwrap(), FileFormat::Ipc);
    assert_eq!(FileFormat::detect(&data("parts")).unwrap(), FileFormat::Csv);
    let err = FileFormat::detect("x.xlsx").unwrap_err().to_string();
    assert!(err.contains("x.xlsx"), "{err}");
}
