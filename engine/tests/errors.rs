use spillframe_engine::Error;
use spillframe_engine::prelude::*;

use crate::common::*;

#[test]
fn missing_file_is_named() {
    let s = session();
    let err = s.read_parquet("/no/such/file.parquet").unwrap_err();
    assert!(matches!(err, Error::FileNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("/no/such/file.parquet"), "{err}");
    let err = s.read_csv("/no/such/dir/*.csv").unwrap_err().to_string();
    assert!(err.contains("/no/such/dir/*.csv"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = s.read_parquet(empty.path()).unwrap_err().to_string();
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
}

#[test]
fn missing_column_is_named_at_the_action() {
    let s = session();
    let lf = s.read_csv(data("people.csv")).unwrap();
    let err = lf
        .clone()
        .select(["nope"])
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    let err = lf
        .clone()
        .filter(col("agee").gt(lit(3)))
        .count()
        .unwrap_err()
        .to_string();
    assert!(err.contains("agee"), "{err}");
    let err = lf
        .clone()
        .drop(["salery"])
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("salery") && err.contains("salary"), "{err}");
    let err = lf
        .clone()
        .rename(["x"], ["y"])
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("'x'"), "{err}");
    let err = lf
        .clone()
        .sort(["missing_key"], SortMultipleOptions::default())
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing_key"), "{err}");
    let o = s.read_csv(data("orders.csv")).unwrap();
    let err = lf
        .inner_join(o, ["id"], ["pid"])
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("pid"), "{err}");
}

#[test]
fn type_mismatch_is_reported() {
    let s = session();
    let lf = s.read_csv(data("people.csv")).unwrap();
    let err = lf
        .clone()
        .filter(col("name").gt(lit(3)).and(col("city")))
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        err.to_lowercase().contains("boolean") || err.contains("Utf8"),
        "{err}"
    );
    let a = df!("a" => [1i64]).unwrap().lazy(&s).unwrap();
    let b = df!("b" => [1i64]).unwrap().lazy(&s).unwrap();
    let err = a.union(b).collect().unwrap_err().to_string();
    assert!(err.contains("[a]") && err.contains("[b]"), "{err}");
}

#[test]
fn malformed_csv_names_the_file() {
    let s = session();
    let path = data("bad.csv");
    let result = s.read_csv(&path).and_then(|lf| lf.collect());
    let err = result.unwrap_err().to_string();
    assert!(err.contains("bad.csv"), "{err}");
    assert!(err.to_lowercase().contains("csv"), "{err}");
}

#[test]
fn errors_leave_the_session_usable() {
    let s = session();
    let lf = s.read_csv(data("people.csv")).unwrap();
    assert!(lf.clone().select(["nope"]).collect().is_err());
    assert_eq!(lf.count().unwrap(), 12);
}

#[test]
fn bad_api_arguments_are_errors() {
    let s = session();
    let lf = s.read_csv(data("people.csv")).unwrap();
    let err = lf
        .clone()
        .sort(
            ["id", "age"],
            SortMultipleOptions::default().with_order_descending_multi([true, false, true]),
        )
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 descending"), "{err}");
    let err = lf
        .clone()
        .join(lf.clone(), ["id"], ["id", "age"], JoinType::Inner)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 left keys but 2 right keys"), "{err}");
    assert!(s.from_batches(vec![]).is_err());
    assert!(df!("a" => [1i64, 2], "b" => [1i64]).is_err());
}

#[test]
fn a_sql_set_of_a_runtime_setting_spillframe_owns_is_refused() {
    let s = session();
    for (sql, ours) in [
        (
            "SET datafusion.runtime.memory_limit = '100M'",
            "memory_limit",
        ),
        (
            "set datafusion.runtime.temp_directory to '/tmp'",
            "spill_dir",
        ),
        (
            "SET datafusion.runtime.max_temp_directory_size = '1G'",
            "max_spill",
        ),
    ] {
        let err = s.sql(sql).collect().unwrap_err();
        assert!(matches!(err, Error::Setting { .. }), "{sql}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("datafusion.runtime.") && text.contains(ours),
            "{sql}: {text}"
        );
    }
    // The limit is spillframe's still, and sorts and other settings work as before.
    let limit = s.memory_limit();
    let t = s
        .sql("SELECT x FROM (VALUES (3), (1), (2)) AS t(x) ORDER BY x")
        .collect()
        .unwrap();
    assert_eq!(t.num_rows(), 3);
    assert_eq!(s.governor().limit(), limit);
    s.sql("SET datafusion.execution.batch_size = 1024")
        .collect()
        .unwrap();
}
