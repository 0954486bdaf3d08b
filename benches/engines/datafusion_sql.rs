//! Plain DataFusion, for the side-by-side benchmarks (`benches/run.sh`): the same DataFusion
//! version spillframe builds on, with its default settings (`SessionContext::new()`), no
//! memory limit and no spillframe code. Runs one SQL query over Parquet tables and writes the
//! result to Parquet.
//!
//! ```text
//! datafusion_sql --sql "SELECT ..." --table x=/data/x.parquet --out /tmp/result.parquet
//! ```
//!
//! Prints one JSON line: `{"rows": ..., "seconds": ...}` (seconds from planning to the last
//! row written).

use std::time::Instant;

use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sql = None;
    let mut tables = Vec::new();
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sql" => sql = Some(value),
            "--table" => {
                let (name, path) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--table {value}: expected NAME=PATH"))?;
                tables.push((name.to_string(), path.to_string()));
            }
            "--out" => out = Some(value),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let sql = sql.ok_or("--sql is required")?;
    let out = out.ok_or("--out is required")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let ctx = SessionContext::new();
        for (name, path) in &tables {
            ctx.register_parquet(name, path, ParquetReadOptions::default())
                .await?;
        }
        let started = Instant::now();
        let df = ctx.sql(&sql).await?;
        let written = df
            .write_parquet(
                &out,
                DataFrameWriteOptions::new().with_single_file_output(true),
                None,
            )
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let rows: u64 = written
            .iter()
            .map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::UInt64Array>()
                    .map_or(0, |a| a.iter().flatten().sum::<u64>())
            })
            .sum();
        println!("{{\"rows\": {rows}, \"seconds\": {seconds:.4}}}");
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
