//! Panda Farm's workflow with spillframe: `parallelize(df, fn, n_partitions)`, then
//! `progress(job)`, then `collect(job)` with a merge function.
//!
//! `cargo run --example panda_farm`

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Float64Type;
use spillframe::jobs::{Merge, Merged};
use spillframe::prelude::*;

#[path = "shared/score.rs"]
mod score;
use score::score;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let session = Session::builder().memory_limit_bytes(128 << 20).build()?;
    let n = 2_000_000i64;
    let df = df!(
        "k" => (0..n).map(|i| i % 10).collect::<Vec<i64>>(),
        "x" => (0..n).map(|i| i as f64 / 1000.0).collect::<Vec<f64>>()
    )?
    .lazy(&session)?;

    // ANCHOR: workflow
    // job = parallelize(df, score, n_partitions=8)
    let job = df.parallelize(score, 8).submit()?;
    // progress(job)
    while !job.status().is_finished() {
        let p = job.progress();
        println!("{} of {:?} {} done", p.done, p.total, p.unit);
        std::thread::sleep(Duration::from_millis(100));
    }
    // collect(job): concat by default; the result is a lazy frame over stored partitions.
    let scored = job.result()?.into_frame()?;
    println!("{} rows scored", scored.count()?);

    // collect(job, merge=None): the raw partitions.
    let parts = df
        .parallelize(score, 4)
        .merge(Merge::None)
        .submit()?
        .result()?
        .into_partitions()?;
    println!("{} partitions", parts.len());

    // collect(job, merge=custom): a function of every partition's table.
    let merged = df
        .parallelize(score, 4)
        .merge(Merge::custom(|tables: Vec<Table>| {
            let total: f64 = tables
                .iter()
                .flat_map(|t| t.batches().to_vec())
                .map(|b| {
                    b.column(2)
                        .as_primitive::<Float64Type>()
                        .iter()
                        .flatten()
                        .sum::<f64>()
                })
                .sum();
            df!("total_score" => [total])
        }))
        .submit()?
        .result()?;
    if let Merged::Table(t) = merged {
        println!("{t}");
    }
    // ANCHOR_END: workflow

    // ANCHOR: registry
    session.functions().register_partitions("score", score);
    let by_name = df.map_partitions_named("score")?.collect()?;
    // ANCHOR_END: registry
    println!("{} rows scored by name", by_name.count()?);

    // The same total with the engine, to check the custom merge.
    let check = scored
        .group_by(Vec::<&str>::new())
        .agg([col("score").sum().alias("total_score")])
        .collect()?;
    let k = check.batches()[0]
        .column(0)
        .as_primitive::<Float64Type>()
        .value(0);
    println!("checked against the engine: {k:.6}");
    Ok(())
}
