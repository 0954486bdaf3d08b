//! The per-partition function shared by the `panda_farm` and `peer_functions` examples.
// Written as a user would write it (`pub`), though each example includes it as a module.
#![allow(unreachable_pub)]

use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use spillframe::jobs::Partition;

// ANCHOR: function
/// The per-partition function: the partition's rows with a score column added.
pub fn score(p: Partition) -> Result<RecordBatch, arrow::error::ArrowError> {
    let batch = p.concat()?;
    let x = batch.column(1).as_primitive::<Float64Type>();
    let score: Float64Array = x.iter().map(|v| v.map(|v| (v * 0.5).sin())).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
        Field::new("score", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::clone(batch.column(0)),
            Arc::clone(batch.column(1)),
            Arc::new(score),
        ],
    )
}
// ANCHOR_END: function
