//! The registry against pandas' API list, the cases, and the generated docs.

use std::collections::BTreeSet;

use spillframe_compat::conformance::cases::CASES;
use spillframe_compat::registry::{self, table::PANDAS_VERSION};

use super::conformance::fixtures;

#[test]
fn registry_lists_exactly_pandas_public_api() {
    let text = std::fs::read_to_string(fixtures().join("pandas_api.txt")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("# pandas {PANDAS_VERSION}").as_str())
    );
    let pandas: BTreeSet<String> = lines
        .map(|l| {
            let (kind, name) = l.split_once(' ').unwrap();
            format!("{kind}.{name}")
        })
        .collect();
    let ours: Vec<String> = registry::entries().iter().map(|e| e.full_name()).collect();
    let ours_set: BTreeSet<String> = ours.iter().cloned().collect();
    assert_eq!(
        ours.len(),
        ours_set.len(),
        "the registry lists a name twice"
    );
    let missing: Vec<_> = pandas.difference(&ours_set).collect();
    let extra: Vec<_> = ours_set.difference(&pandas).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from the registry: {missing:?}; not in pandas: {extra:?}"
    );
}

#[test]
fn offered_entries_have_cases_and_cases_prove_offered_entries() {
    let mut without = Vec::new();
    for e in registry::entries() {
        if e.status.is_offered() && e.cases().is_empty() {
            without.push(e.full_name());
        }
    }
    assert!(
        without.is_empty(),
        "Supported/Partial entries without a conformance case: {without:?}"
    );
    for case in CASES {
        assert!(!case.covers.is_empty(), "case {} covers no entry", case.id);
        for name in case.covers {
            let entry = registry::entries().iter().find(|e| e.full_name() == *name);
            match entry {
                Some(e) => assert!(
                    e.status.is_offered(),
                    "case {} covers {name}, which the registry does not offer",
                    case.id
                ),
                None => panic!(
                    "case {} covers {name}, which is not in the registry",
                    case.id
                ),
            }
        }
    }
    let (s, p, _, _) = registry::counts(None);
    assert!(s + p >= 120, "only {} operations are offered", s + p);
}

#[test]
fn every_case_has_a_pandas_answer_and_every_answer_a_case() {
    let ids: BTreeSet<&str> = CASES.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), CASES.len(), "duplicate case ids");
    let files: BTreeSet<String> = std::fs::read_dir(fixtures().join("expected"))
        .unwrap()
        .map(|f| {
            f.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".parquet")
                .to_string()
        })
        .collect();
    let ids: BTreeSet<String> = ids.into_iter().map(String::from).collect();
    let no_file: Vec<_> = ids.difference(&files).collect();
    let no_case: Vec<_> = files.difference(&ids).collect();
    assert!(
        no_file.is_empty() && no_case.is_empty(),
        "cases without a pandas answer: {no_file:?}; answers without a case: {no_case:?}"
    );
}

#[test]
fn supported_apis_doc_is_current() {
    let path = fixtures().join("../../docs/supported_apis.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let rendered = registry::markdown();
    if std::env::var_os("SPILLFRAME_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    assert!(
        current == rendered,
        "{} is stale; regenerate it with `SPILLFRAME_BLESS=1 cargo test -p spillframe-compat \
         --test compat supported_apis`",
        path.display()
    );
}

#[test]
fn compare_detects_differences() {
    use arrow::array::{ArrayRef, Float64Array, Int64Array};
    use std::sync::Arc;
    let t = |a: ArrayRef| spillframe_engine::Table::from_columns(vec![("v".into(), a)]).unwrap();
    let exp = |a: ArrayRef| t(a).to_batch().unwrap();
    let f = |v: Vec<Option<f64>>| Arc::new(Float64Array::from(v)) as ArrayRef;
    let compare = spillframe_compat::conformance::compare;
    assert!(
        compare(
            &t(f(vec![Some(1.0), None])),
            &exp(f(vec![Some(1.0), Some(f64::NAN)]))
        )
        .is_ok()
    );
    assert!(
        compare(
            &t(f(vec![Some(1.0), None])),
            &exp(f(vec![Some(1.0), Some(2.0)]))
        )
        .is_err()
    );
    assert!(compare(&t(f(vec![Some(1.0)])), &exp(f(vec![Some(1.0 + 1e-6)]))).is_err());
    let i = Arc::new(Int64Array::from(vec![1])) as ArrayRef;
    assert!(
        compare(&t(i), &exp(f(vec![Some(1.0)]))).is_err(),
        "int without nulls must not pass as float"
    );
    let renamed =
        spillframe_engine::Table::from_columns(vec![("w".into(), f(vec![Some(1.0)]))]).unwrap();
    assert!(compare(&renamed, &exp(f(vec![Some(1.0)]))).is_err());
}

/// Every Supported entry whose pandas callable takes parameters (`pandas_params.txt`, from
/// `pandas_api.py`) has at least two cases, except those still listed in `single_case.txt`;
/// that list only shrinks (an entry that gains its second case must leave it).
#[test]
fn supported_entries_with_parameters_have_two_cases() {
    let read = |name: &str| std::fs::read_to_string(fixtures().join(name)).unwrap();
    let with_params: BTreeSet<String> = read("pandas_params.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split(' ');
            Some(format!("{}.{}", it.next()?, it.next()?))
        })
        .collect();
    let short: BTreeSet<String> = registry::entries()
        .iter()
        .filter(|e| e.status == registry::Status::Supported)
        .filter(|e| with_params.contains(&e.full_name()) && e.cases().len() < 2)
        .map(|e| e.full_name())
        .collect();
    let path = fixtures().join("single_case.txt");
    if std::env::var_os("SPILLFRAME_BLESS").is_some() {
        let mut text = String::from(
            "# Supported entries whose pandas callable takes parameters but that have one case.\n\
             # compat/tests/compat/registry.rs fails for such an entry missing here, and for a\n\
             # listed one that has its second case: this list only shrinks.\n",
        );
        for n in &short {
            text.push_str(n);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        return;
    }
    let listed: BTreeSet<String> = read("single_case.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(String::from)
        .collect();
    let unlisted: Vec<_> = short.difference(&listed).collect();
    let done: Vec<_> = listed.difference(&short).collect();
    assert!(
        unlisted.is_empty() && done.is_empty(),
        "Supported entries with parameters and one case, not in single_case.txt: {unlisted:?}; \
         listed but no longer so (take them off): {done:?}"
    );
}
