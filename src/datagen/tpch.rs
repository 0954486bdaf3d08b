//! TPC-H data through the `tpchgen` crate (a Rust port of the reference `dbgen`, which
//! produces byte-identical data), written as one directory of Parquet parts per table.

use std::path::Path;

use arrow::record_batch::RecordBatchReader;
use rayon::prelude::*;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

use super::{GeneratedFile, ParquetOut, ProgressFn};
use crate::error::{Error, Result};

/// The eight TPC-H tables.
pub const TABLES: [&str; 8] = [
    "nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem",
];

/// Rows per batch handed to the Parquet writer.
const BATCH_ROWS: usize = 64 * 1024;

/// Approximate rows per part file; big tables are split so parts generate in parallel.
const ROWS_PER_PART: f64 = 4_000_000.0;

/// Rows of each table at scale factor 1 (lineitem is approximate).
fn rows_at_sf1(table: &str) -> f64 {
    match table {
        "nation" => 25.0,
        "region" => 5.0,
        "part" => 200_000.0,
        "supplier" => 10_000.0,
        "partsupp" => 800_000.0,
        "customer" => 150_000.0,
        "orders" => 1_500_000.0,
        _ => 6_000_000.0,
    }
}

fn batches(table: &str, sf: f64, part: i32, parts: i32) -> Box<dyn RecordBatchReader + Send> {
    match table {
        "nation" => Box::new(
            NationArrow::new(NationGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "region" => Box::new(
            RegionArrow::new(RegionGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "part" => Box::new(
            PartArrow::new(PartGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "supplier" => Box::new(
            SupplierArrow::new(SupplierGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "partsupp" => Box::new(
            PartSuppArrow::new(PartSuppGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "customer" => Box::new(
            CustomerArrow::new(CustomerGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        "orders" => Box::new(
            OrderArrow::new(OrderGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
        _ => Box::new(
            LineItemArrow::new(LineItemGenerator::new(sf, part, parts)).with_batch_size(BATCH_ROWS),
        ),
    }
}

/// Writes every table at scale factor `sf` to `dir/<table>/part-<i>.parquet`.
pub fn generate(sf: f64, dir: &Path, progress: ProgressFn<'_>) -> Result<Vec<GeneratedFile>> {
    if !(sf > 0.0 && sf <= 1000.0) {
        return Err(Error::argument("--scale", "must be in (0, 1000]"));
    }
    let jobs: Vec<(&str, i32, i32)> = TABLES
        .iter()
        .flat_map(|&t| {
            let fixed = matches!(t, "nation" | "region");
            let parts = if fixed {
                1
            } else {
                ((rows_at_sf1(t) * sf / ROWS_PER_PART).ceil() as i32).max(1)
            };
            (1..=parts).map(move |p| (t, p, parts))
        })
        .collect();
    let total: f64 = TABLES
        .iter()
        .map(|t| {
            if matches!(*t, "nation" | "region") {
                rows_at_sf1(t)
            } else {
                rows_at_sf1(t) * sf
            }
        })
        .sum();
    let done = std::sync::atomic::AtomicU64::new(0);
    let files: Vec<Result<GeneratedFile>> = jobs
        .par_iter()
        .map(|&(table, part, parts)| {
            let path = dir.join(table).join(format!("part-{part}.parquet"));
            let mut iter = batches(table, sf, part, parts);
            let mut out = ParquetOut::create(&path, iter.schema())?;
            for batch in iter.by_ref() {
                let batch = batch?;
                out.write(&batch)?;
                let d = done.fetch_add(
                    batch.num_rows() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                progress(d + batch.num_rows() as u64, total as u64);
            }
            Ok(GeneratedFile {
                table: table.to_string(),
                rows: out.finish()?,
                path,
            })
        })
        .collect();
    files.into_iter().collect()
}
