//! pandas-style code on spillframe: the compat layer's names and semantics, run out of core.
//!
//! `cargo run --example pandas_style` (reads `fixtures/compat/inputs/sales.parquet`).

use spillframe::compat::prelude::*;

fn main() -> Result<(), spillframe::compat::Error> {
    let session = Session::builder().memory_limit_bytes(64 << 20).build()?;
    // df = pd.read_parquet("sales.parquet")
    let df = read_parquet(&session, "fixtures/compat/inputs/sales.parquet")?;
    // df = df[df["x"].notna() & (df["n"] > 0)]
    let df = df.loc(&df.col("x")?.notna()?)?;
    let df = df.loc(&df.col("n")?.gt(0i64)?)?;
    // df = df.assign(total=df["x"] + df["y"])
    let df = df.assign(vec![("total", df.col("x")?.add(&df.col("y")?)?)])?;
    // out = df.groupby("key").agg(total=("total", "sum"), rows=("id", "size")).reset_index()
    let out = df
        .groupby(&["key"])?
        .agg(&[("total", "total", "sum"), ("rows", "id", "size")])?;
    // out.sort_values("total", ascending=False).head(3)
    println!(
        "{}",
        out.sort_values(&["total"], &[false])?.head(3)?.to_table()?
    );
    // df["name"].str.strip().str.lower().value_counts().head(3)
    let names = df.col("name")?.str().strip()?.str().lower()?;
    println!(
        "{}",
        names
            .value_counts(false, true, false, true)?
            .head(3)?
            .to_table()?
    );
    Ok(())
}
