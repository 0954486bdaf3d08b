//! `spillframe sql`: run one SQL query over files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use spillframe_engine::{FileFormat, Preview};

use super::SessionArgs;
use super::progress::ProgressReporter;
use crate::error::{Error, Result};

/// Arguments of `spillframe sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query.
    pub query: String,
    /// A table for the query: NAME=PATH, where PATH is a file, directory or glob of
    /// Parquet, CSV, JSON or Arrow files. Repeat for several tables.
    #[arg(long = "table", short = 't', value_name = "NAME=PATH")]
    pub tables: Vec<String>,
    /// Write the result to FILE instead of printing it; the format follows the extension
    /// (.parquet, .csv, .arrow).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the query plan without running the query.
    #[arg(long, conflicts_with = "analyze")]
    pub explain: bool,
    /// Run the query and print the plan with each operator's metrics.
    #[arg(long)]
    pub analyze: bool,
    /// Rows to print (the first and last ones of a longer result).
    #[arg(long, default_value_t = 40)]
    pub max_rows: usize,
    /// Session settings.
    #[command(flatten)]
    pub session: SessionArgs,
}

fn output_format(path: &std::path::Path) -> Result<FileFormat> {
    // The engine's table of extensions; JSON is read, not written.
    match FileFormat::from_extension(path) {
        Some(f @ (FileFormat::Parquet | FileFormat::Csv | FileFormat::Ipc)) => Ok(f),
        _ => Err(Error::argument(
            "--out",
            format!(
                "cannot tell the format of '{}'; use a .parquet, .csv or .arrow extension",
                path.display()
            ),
        )),
    }
}

/// Runs `spillframe sql`.
pub(super) fn run(args: SqlArgs) -> Result<()> {
    let out_format = args.out.as_deref().map(output_format).transpose()?;
    let mut tables = Vec::new();
    for t in &args.tables {
        let Some((name, path)) = t.split_once('=') else {
            return Err(Error::argument(
                "--table",
                format!("'{t}' is not NAME=PATH"),
            ));
        };
        if name.trim().is_empty() || path.trim().is_empty() {
            return Err(Error::argument(
                "--table",
                format!("'{t}' is not NAME=PATH"),
            ));
        }
        tables.push((name.trim().to_string(), path.trim().to_string()));
    }
    let session = args.session.builder().build()?;
    for (name, path) in &tables {
        session.register_path(name, path)?;
    }
    let frame = session.sql(&args.query);
    if args.explain {
        print!("{}", frame.explain(false)?);
        return Ok(());
    }
    let started = Instant::now();
    let query = Arc::new(match (&args.out, out_format) {
        (Some(path), Some(format)) => frame.write_query(format, path)?,
        _ => frame.query()?,
    });
    let reporter = ProgressReporter::follow(query.clone(), session.clone(), "query");
    let mut metrics = if let Some(path) = &args.out {
        let result = query.run();
        reporter.finish();
        let (batches, mut metrics) = result?;
        metrics.rows = spillframe_engine::frame::rows_written_by(&batches);
        eprintln!("wrote {}", path.display());
        metrics
    } else if args.analyze {
        // The result is counted and dropped: the plan with its metrics is what is shown.
        let result = query.run_each(|_| Ok(()));
        reporter.finish();
        let metrics = result?;
        println!("{}", query.display_plan(true));
        metrics
    } else {
        // The result streams past and only the rows shown are kept, so printing a result
        // larger than the memory limit holds no more than the query itself.
        let mut preview = Preview::new(frame.schema()?, args.max_rows);
        let result = query.run_each(|b| preview.push(b));
        reporter.finish();
        let metrics = result?;
        print!("{}", preview.format());
        metrics
    };
    metrics.elapsed = started.elapsed();
    eprintln!("{}", super::summary(&metrics));
    Ok(())
}
