//! Data sources: resolving files, directories and globs, and reading them with DataFusion.

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::error::DataFusionError;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};

use crate::error::{Error, Result};

/// File formats spillframe reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row (by default).
    Csv,
    /// Newline-delimited JSON.
    Json,
    /// Arrow IPC file format.
    Ipc,
}

impl FileFormat {
    /// The name used in messages.
    pub fn name(&self) -> &'static str {
        match self {
            FileFormat::Parquet => "Parquet",
            FileFormat::Csv => "CSV",
            FileFormat::Json => "JSON",
            FileFormat::Ipc => "Arrow IPC",
        }
    }

    /// File extensions (without the dot) recognised for this format.
    pub fn extensions(&self) -> &'static [&'static str] {
        match self {
            FileFormat::Parquet => &["parquet", "pq"],
            FileFormat::Csv => &["csv", "tsv"],
            FileFormat::Json => &["json", "ndjson", "jsonl"],
            FileFormat::Ipc => &["arrow", "ipc", "feather"],
        }
    }

    /// The format of a path from its extension. For a directory, the format of the first
    /// data file found inside it.
    pub fn detect(path: &str) -> Result<FileFormat> {
        let p = Path::new(path);
        if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files);
            files.sort();
            if let Some(f) = files.iter().find_map(|f| Self::from_extension(f)) {
                return Ok(f);
            }
            return Err(Error::InvalidArgument(format!(
                "cannot tell the format of directory '{path}': it holds no .parquet, .csv, \
                 .json or .arrow files"
            )));
        }
        Self::from_extension(p).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "cannot tell the format of '{path}' from its extension; expected one of \
                 .parquet, .csv, .json, .ndjson, .arrow, .ipc"
            ))
        })
    }

    /// The format a path's extension names, if any (the one table of extensions).
    pub fn from_extension(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        [
            FileFormat::Parquet,
            FileFormat::Csv,
            FileFormat::Json,
            FileFormat::Ipc,
        ]
        .into_iter()
        .find(|f| f.extensions().contains(&ext.as_str()))
    }
}

/// Options for reading CSV.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// Whether the first line holds column names (default true).
    pub has_header: bool,
    /// Field delimiter (default `b','`; `.tsv` files default to tab).
    pub delimiter: Option<u8>,
    /// Rows read to infer the schema (default 1000).
    pub infer_schema_rows: usize,
    /// An explicit schema, which skips inference.
    pub schema: Option<SchemaRef>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            has_header: true,
            delimiter: None,
            infer_schema_rows: 1000,
            schema: None,
        }
    }
}

/// Anything that names one or more data paths: a `&str`, `String`, `&Path`, `PathBuf`, or a
/// slice, array or `Vec` of them. Each path may be a file, a directory or a glob.
pub trait DataPaths {
    /// The paths as strings.
    fn to_paths(&self) -> Vec<String>;
}

impl DataPaths for &str {
    fn to_paths(&self) -> Vec<String> {
        vec![self.to_string()]
    }
}
impl DataPaths for String {
    fn to_paths(&self) -> Vec<String> {
        vec![self.clone()]
    }
}
impl DataPaths for &String {
    fn to_paths(&self) -> Vec<String> {
        vec![(*self).clone()]
    }
}
impl DataPaths for &Path {
    fn to_paths(&self) -> Vec<String> {
        vec![self.to_string_lossy().into_owned()]
    }
}
impl DataPaths for PathBuf {
    fn to_paths(&self) -> Vec<String> {
        vec![self.to_string_lossy().into_owned()]
    }
}
impl DataPaths for &PathBuf {
    fn to_paths(&self) -> Vec<String> {
        vec![self.to_string_lossy().into_owned()]
    }
}
impl<T: DataPaths> DataPaths for &[T] {
    fn to_paths(&self) -> Vec<String> {
        self.iter().flat_map(|p| p.to_paths()).collect()
    }
}
impl<T: DataPaths> DataPaths for Vec<T> {
    fn to_paths(&self) -> Vec<String> {
        self.iter().flat_map(|p| p.to_paths()).collect()
    }
}
impl<T: DataPaths, const N: usize> DataPaths for [T; N] {
    fn to_paths(&self) -> Vec<String> {
        self.iter().flat_map(|p| p.to_paths()).collect()
    }
}

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

fn is_data_file(path: &Path, format: FileFormat) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'));
    !hidden
        && path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            format
                .extensions()
                .contains(&e.to_ascii_lowercase().as_str())
        })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The data files of `format` under `dir`, recursively.
fn data_files_in(dir: &Path, format: FileFormat) -> Vec<PathBuf> {
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.retain(|f| is_data_file(f, format));
    v
}

/// Expands globs and directories into a sorted list of existing data files.
///
/// An explicit file is used whatever its extension; directories and globs contribute the
/// files with one of the format's extensions, skipping hidden files (`.x`, `_SUCCESS`).
pub fn resolve(paths: &[String], format: FileFormat) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::InvalidArgument("no input paths were given".into()));
    }
    let mut files = Vec::new();
    for path in paths {
        let found: Vec<PathBuf> = if is_glob(path) {
            let matches = glob::glob(path).map_err(|e| {
                Error::InvalidArgument(format!("invalid glob pattern '{path}': {e}"))
            })?;
            matches
                .filter_map(|m| m.ok())
                .flat_map(|p| {
                    if p.is_dir() {
                        data_files_in(&p, format)
                    } else {
                        vec![p]
                    }
                })
                .collect()
        } else {
            let p = PathBuf::from(path);
            if p.is_file() {
                vec![p]
            } else if p.is_dir() {
                data_files_in(&p, format)
            } else {
                return Err(Error::FileNotFound { path: p });
            }
        };
        if found.is_empty() {
            return Err(Error::NoFiles {
                pattern: path.clone(),
                format: format.name(),
            });
        }
        let mut found = found;
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Reads resolved files into a DataFusion frame.
pub(crate) async fn read(
    ctx: &SessionContext,
    format: FileFormat,
    files: &[PathBuf],
    csv: &CsvOptions,
) -> Result<DataFrame, DataFusionError> {
    let urls: Vec<String> = files
        .iter()
        .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()))
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    // The files are resolved already; an empty extension accepts each of them as it is.
    match format {
        FileFormat::Parquet => {
            let opts = ParquetReadOptions {
                file_extension: "",
                ..Default::default()
            };
            ctx.read_parquet(urls, opts).await
        }
        FileFormat::Csv => {
            let tsv = files
                .first()
                .and_then(|f| f.extension())
                .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
            let delimiter = csv.delimiter.unwrap_or(if tsv { b'\t' } else { b',' });
            let mut opts = CsvReadOptions::new()
                .has_header(csv.has_header)
                .delimiter(delimiter)
                .schema_infer_max_records(csv.infer_schema_rows)
                .file_extension("");
            if let Some(schema) = &csv.schema {
                opts = opts.schema(schema.as_ref());
            }
            ctx.read_csv(urls, opts).await
        }
        FileFormat::Json => {
            let opts = JsonReadOptions {
                file_extension: "",
                ..Default::default()
            };
            ctx.read_json(urls, opts).await
        }
        FileFormat::Ipc => {
            let opts = ArrowReadOptions {
                file_extension: "",
                ..Default::default()
            };
            ctx.read_arrow(urls, opts).await
        }
    }
}

/// Adds the source files to an error raised while reading them, so the message names them.
pub(crate) fn with_file_context(e: DataFusionError, files: &[PathBuf]) -> Error {
    let err = Error::from(e);
    match describe_files(files) {
        Some(files) => Error::Read {
            files,
            source: Box::new(err),
        },
        None => err,
    }
}

/// "'a.csv'" or "one of 'a.csv', 'b.csv', ..." for messages.
pub(crate) fn describe_files(files: &[PathBuf]) -> Option<String> {
    match files {
        [] => None,
        [one] => Some(format!("'{}'", one.display())),
        many => {
            let shown: Vec<String> = many
                .iter()
                .take(3)
                .map(|f| format!("'{}'", f.display()))
                .collect();
            let more = if many.len() > 3 {
                format!(" and {} more", many.len() - 3)
            } else {
                String::new()
            };
            Some(format!("one of {}{more}", shown.join(", ")))
        }
    }
}
