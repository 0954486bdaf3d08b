//! Comparing spillframe's rows with DuckDB's expected lines.
//!
//! A row is its values joined by spaces, split into tokens on white space (so both sides
//! split a value the same way). Tokens are equal when their text is, or when both are numbers
//! within a relative 1e-7 (DuckDB and DataFusion add floats in different orders, and write
//! them differently: `1e+300` and `1e300`), or both NaN. Unordered results are sorted by a
//! canonical form of their tokens first.

use std::cmp::Ordering;

const RELATIVE: f64 = 1e-7;

fn number(token: &str) -> Option<f64> {
    match token {
        "NaN" | "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => token.parse::<f64>().ok(),
    }
}

fn same(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    // Exact integers compare exactly (f64 cannot tell large ones apart).
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return x == y;
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) if x.is_nan() || y.is_nan() => x.is_nan() && y.is_nan(),
        (Some(x), Some(y)) if x.is_infinite() || y.is_infinite() => x == y,
        (Some(x), Some(y)) => (x - y).abs() <= RELATIVE * x.abs().max(y.abs()) + 1e-12,
        _ => false,
    }
}

/// A sort key for a token: numbers by value (rounded to 6 significant digits, so values
/// within the tolerance sort together), then text.
#[derive(PartialEq, PartialOrd)]
enum Key {
    Num(f64),
    Text(String),
}

fn key(token: &str) -> Key {
    match number(token) {
        Some(x) if x.is_nan() => Key::Num(f64::MAX),
        Some(0.0) => Key::Num(0.0),
        Some(x) if x.is_finite() => {
            let digits = 5 - x.abs().log10().floor() as i32;
            let scale = 10f64.powi(digits.clamp(-300, 300));
            Key::Num((x * scale).round() / scale)
        }
        Some(x) => Key::Num(x),
        None => Key::Text(token.to_string()),
    }
}

fn cmp_rows(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match key(x).partial_cmp(&key(y)) {
            Some(Ordering::Equal) | None => continue,
            Some(o) => return o,
        }
    }
    a.len().cmp(&b.len())
}

fn tokens(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

/// Compares actual rows with expected lines; `sorted` compares them as multisets.
pub(super) fn rows(
    actual: &[Vec<String>],
    expected: &[String],
    sorted: bool,
) -> Result<(), String> {
    let mut got: Vec<Vec<String>> = actual.iter().map(|r| tokens(&r.join(" "))).collect();
    let mut want: Vec<Vec<String>> = expected.iter().map(|l| tokens(l)).collect();
    if sorted {
        got.sort_by(|a, b| cmp_rows(a, b));
        want.sort_by(|a, b| cmp_rows(a, b));
    }
    let show = |rows: &[Vec<String>]| {
        let mut s: Vec<String> = rows.iter().take(12).map(|r| r.join(" ")).collect();
        if rows.len() > 12 {
            s.push(format!("... {} rows in all", rows.len()));
        }
        s.join("\n    ")
    };
    if got.len() != want.len() {
        return Err(format!(
            "{} rows, expected {}\n  got:\n    {}\n  expected:\n    {}",
            got.len(),
            want.len(),
            show(&got),
            show(&want)
        ));
    }
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if g.len() != w.len() || g.iter().zip(w).any(|(a, b)| !same(a, b)) {
            return Err(format!(
                "row {i} differs\n  got:      {}\n  expected: {}",
                g.join(" "),
                w.join(" ")
            ));
        }
    }
    Ok(())
}

#[test]
fn numbers_within_tolerance_and_nan_compare_equal() {
    assert!(same("1e+300", "1e300"));
    assert!(same("0.30000000000000004", "0.3"));
    assert!(same("NaN", "nan"));
    assert!(!same("NaN", "1"));
    assert!(!same("1.0001", "1"));
    assert!(!same("9000000000000000001", "9000000000000000000"));
    assert!(same("2021", "2021.0"));
    assert!(!same("abc", "abd"));
    assert!(
        rows(
            &[vec!["b".into()], vec!["a".into()]],
            &["a".into(), "b".into()],
            true
        )
        .is_ok()
    );
    assert!(
        rows(
            &[vec!["b".into()], vec!["a".into()]],
            &["a".into(), "b".into()],
            false
        )
        .is_err()
    );
}
