//! Ray Data's `map_batches` with a predictor class: a model loaded once per worker, applied to
//! batches of a fixed size, at most `concurrency` at a time, streaming from Parquet.
//!
//! `cargo run --example ray_predictor`

use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use spillframe::jobs::Stateful;
use spillframe::prelude::*;

// ANCHOR: predictor
/// Stands in for an expensive model (weights read from disk, a session to a GPU).
struct Model {
    weights: Vec<f64>,
}

impl Model {
    fn load() -> Result<Model, std::io::Error> {
        Ok(Model {
            weights: vec![0.25, -1.5, 3.0],
        })
    }

    fn predict(&self, batch: RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
        let x = batch.column(0).as_primitive::<Float64Type>();
        let y: Float64Array = x
            .iter()
            .map(|v| v.map(|v| self.weights[0] + self.weights[1] * v + self.weights[2] * v * v))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("prediction", DataType::Float64, true),
        ]));
        RecordBatch::try_new(schema, vec![Arc::clone(batch.column(0)), Arc::new(y)])
    }
}
// ANCHOR_END: predictor

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let session = Session::builder().memory_limit_bytes(64 << 20).build()?;
    let ds =
        df!("x" => (0..1_000_000).map(|i| i as f64 / 1e6).collect::<Vec<f64>>())?.lazy(&session)?;

    // ANCHOR: workflow
    // ds.map_batches(Predictor, batch_size=4096, concurrency=2)
    let predictor = Stateful::batches(Model::load, |model: &mut Model, batch: RecordBatch| {
        model.predict(batch)
    });
    let predictions = ds.map_batches(predictor, 4096, 2).collect()?;
    // ANCHOR_END: workflow

    let out = predictions
        .group_by(Vec::<&str>::new())
        .agg([len().alias("rows"), col("prediction").mean().alias("mean")])
        .collect()?;
    println!("{out}");
    Ok(())
}
