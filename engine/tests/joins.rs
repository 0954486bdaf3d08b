use spillframe_engine::prelude::*;

use crate::common::*;

fn frames(s: &Session) -> (LazyFrame, LazyFrame) {
    (
        s.read_csv(data("people.csv")).unwrap(),
        s.read_csv(data("orders.csv")).unwrap(),
    )
}

#[test]
fn single_key_joins_match_pandas_merge() {
    let s = session();
    for (how, file) in [
        (JoinType::Inner, "join_inner.csv"),
        (JoinType::Left, "join_left.csv"),
        (JoinType::Right, "join_right.csv"),
        (JoinType::Full, "join_full.csv"),
    ] {
        let (p, o) = frames(&s);
        let t = p.join(o, ["id"], ["person_id"], how).collect().unwrap();
        assert_matches_unordered(&t, file);
    }
}

#[test]
fn multi_key_join() {
    let s = session();
    let (p, o) = frames(&s);
    let t = p
        .inner_join(o, ["id", "dept"], ["person_id", "dept"])
        .collect()
        .unwrap();
    assert_matches_unordered(&t, "join_inner_multi.csv");
}

#[test]
fn semi_and_anti_joins_keep_left_columns() {
    let s = session();
    let (p, o) = frames(&s);
    let t = p
        .clone()
        .join(o.clone(), ["id"], ["person_id"], JoinType::Semi)
        .collect()
        .unwrap();
    assert_matches_unordered(&t, "join_semi.csv");
    let t = p
        .join(o, ["id"], ["person_id"], JoinType::Anti)
        .collect()
        .unwrap();
    assert_matches_unordered(&t, "join_anti.csv");
}

#[test]
fn cross_join_pairs_every_row() {
    // Hand-computed: 3 x 2 pairs; the clashing column gets the suffix.
    let s = session();
    let a = df!("k" => [1i64, 2, 3]).unwrap().lazy(&s).unwrap();
    let b = df!("k" => [10i64, 20]).unwrap().lazy(&s).unwrap();
    let t = a
        .cross_join(b)
        .with_column((col("k") + col("k_right")).alias("sum"))
        .sort(["k", "k_right"], SortMultipleOptions::default())
        .collect()
        .unwrap();
    assert_eq!(t.column_names(), ["k", "k_right", "sum"]);
    assert_eq!(
        column(&t, "sum"),
        nums(&[11.0, 21.0, 12.0, 22.0, 13.0, 23.0])
    );
}

#[test]
fn self_join_works() {
    let s = session();
    let (p, _) = frames(&s);
    let t = p.clone().inner_join(p, ["id"], ["id"]).collect().unwrap();
    assert_eq!(t.height(), 12);
    assert!(t.column_names().contains(&"name_right"));
}
