//! `docs/jobs.md` shows code cut from `examples/`: every block marked
//! `<!-- examples/<file>#<anchor> -->` must be the text between that file's
//! `// ANCHOR: <anchor>` and `// ANCHOR_END: <anchor>` lines (less their indentation), so the
//! docs show code that compiles.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn anchor(file: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(root().join(file)).ok()?;
    let start = format!("// ANCHOR: {name}");
    let end = format!("// ANCHOR_END: {name}");
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != start)
        .skip(1)
        .take_while(|l| l.trim() != end)
        .collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()?;
    Some(
        lines
            .iter()
            .map(|l| l.get(indent..).unwrap_or("").trim_end())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[test]
fn jobs_doc_code_is_the_examples_code() {
    let doc = std::fs::read_to_string(root().join("docs/jobs.md")).expect("docs/jobs.md");
    let mut checked = 0;
    let mut blocks = 0;
    let lines: Vec<&str> = doc.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("```rust") {
            blocks += 1;
        }
        let Some(marker) = line
            .strip_prefix("<!-- ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let (file, name) = marker.split_once('#').expect("marker is <file>#<anchor>");
        assert_eq!(
            lines.get(i + 1),
            Some(&"```rust"),
            "{marker}: no code block"
        );
        let code: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| **l != "```")
            .copied()
            .collect();
        let want = anchor(file, name).unwrap_or_else(|| panic!("no anchor {name} in {file}"));
        assert_eq!(
            code.join("\n"),
            want,
            "docs/jobs.md block {marker} differs from {file}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} blocks checked");
    assert_eq!(
        checked, blocks,
        "every Rust block in docs/jobs.md comes from an example"
    );
}
