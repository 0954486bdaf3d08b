//! A Polars lazy pipeline ported to spillframe.
//!
//! The Polars original (Rust, polars 0.4x):
//!
//! ```text
//! use polars::prelude::*;
//!
//! let people = LazyCsvReader::new("fixtures/data/people.csv").finish()?;
//! let orders = LazyCsvReader::new("fixtures/data/orders.csv").finish()?;
//! let out = people
//!     .filter(col("age").gt(lit(25)))
//!     .with_columns([(col("salary") * lit(1.1)).alias("salary_raised")])
//!     .join(orders, [col("id")], [col("person_id")], JoinArgs::new(JoinType::Inner))
//!     .group_by([col("dept")])
//!     .agg([
//!         col("amount").sum().alias("total"),
//!         col("salary_raised").mean().alias("avg_salary"),
//!         len(),
//!     ])
//!     .sort(["total"], SortMultipleOptions::default().with_order_descending(true))
//!     .collect()?;
//! println!("{out}");
//! ```
//!
//! What changed: the import, a `Session` to read through, `read_csv` for `LazyCsvReader`,
//! and the join's `JoinArgs` becoming a `JoinType`. Run with
//! `cargo run --example polars_port`.

use spillframe::prelude::*;

fn main() -> Result<(), spillframe::EngineError> {
    let session = Session::builder().memory_limit_bytes(256 << 20).build()?;
    let root = env!("CARGO_MANIFEST_DIR");
    let people = session.read_csv(format!("{root}/fixtures/data/people.csv"))?;
    let orders = session.read_csv(format!("{root}/fixtures/data/orders.csv"))?;
    let out = people
        .filter(col("age").gt(lit(25)))
        .with_columns([(col("salary") * lit(1.1)).alias("salary_raised")])
        .join(orders, [col("id")], [col("person_id")], JoinType::Inner)
        .group_by([col("dept")])
        .agg([
            col("amount").sum().alias("total"),
            col("salary_raised").mean().alias("avg_salary"),
            len(),
        ])
        .sort(
            ["total"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .collect()?;
    println!("{out}");
    Ok(())
}
