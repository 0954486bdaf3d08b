//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `spillframe gen h2o-groupby --rows ROWS --out DIR` and returns the table argument
/// `x=DIR/x.parquet` for `spillframe sql`.
pub(crate) fn gen_groupby(rows: &str, dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args(["gen", "h2o-groupby", "--rows", rows, "--out"])
        .arg(dir)
        .output()
        .expect("run spillframe gen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: PathBuf = dir.join("x.parquet");
    format!("x={}", file.display())
}
