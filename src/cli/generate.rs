//! `spillframe gen`: benchmark data.

use std::path::PathBuf;

use clap::Subcommand;

use super::parse_rows;
use super::progress::count_bar;
use crate::datagen::{GeneratedFile, h2o, tpch};
use crate::error::Result;

/// What to generate.
#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// The db-benchmark groupby table `x` (id1..id6, v1..v3) as DIR/x.parquet.
    H2oGroupby {
        /// Rows, e.g. 1e7.
        #[arg(long, value_parser = parse_rows)]
        rows: u64,
        /// Groups of the large-group keys (K).
        #[arg(long, default_value_t = 100)]
        k: u64,
        /// Percentage of null values per column.
        #[arg(long, default_value_t = 0)]
        nas: u8,
        /// RNG seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "data/h2o-groupby")]
        out: PathBuf,
    },
    /// The db-benchmark join tables x, small, medium and big as DIR/<table>.parquet.
    H2oJoin {
        /// Rows of x and big, e.g. 1e7.
        #[arg(long, value_parser = parse_rows)]
        rows: u64,
        /// RNG seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "data/h2o-join")]
        out: PathBuf,
    },
    /// TPC-H tables as DIR/<table>/part-N.parquet.
    Tpch {
        /// Scale factor (1 = about 1 GB of raw data).
        #[arg(long)]
        scale: f64,
        /// Output directory.
        #[arg(long, default_value = "data/tpch")]
        out: PathBuf,
    },
}

/// Runs `spillframe gen`.
pub(super) fn run(cmd: GenCommand) -> Result<()> {
    let started = std::time::Instant::now();
    let files = match cmd {
        GenCommand::H2oGroupby {
            rows,
            k,
            nas,
            seed,
            out,
        } => {
            let bar = count_bar(rows, "h2o-groupby");
            let spec = h2o::GroupbySpec { rows, k, nas, seed };
            let f = h2o::generate_groupby(&spec, &out, &|d, _| bar.set_position(d));
            bar.finish_and_clear();
            f?
        }
        GenCommand::H2oJoin { rows, seed, out } => {
            let (a, b, c, d) = h2o::join_sizes(rows);
            let bar = count_bar(a + b + c + d, "h2o-join");
            let f = h2o::generate_join(&h2o::JoinSpec { rows, seed }, &out, &|d, _| {
                bar.set_position(d)
            });
            bar.finish_and_clear();
            f?
        }
        GenCommand::Tpch { scale, out } => {
            let bar = count_bar(0, "tpch");
            let f = tpch::generate(scale, &out, &|d, t| {
                bar.set_length(t);
                bar.set_position(d)
            });
            bar.finish_and_clear();
            f?
        }
    };
    print_files(&files);
    eprintln!("generated in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn print_files(files: &[GeneratedFile]) {
    let mut by_table: Vec<(String, u64, usize, PathBuf)> = Vec::new();
    for f in files {
        match by_table.iter_mut().find(|t| t.0 == f.table) {
            Some(t) => {
                t.1 += f.rows;
                t.2 += 1;
            }
            None => by_table.push((
                f.table.clone(),
                f.rows,
                1,
                if f.path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
                {
                    f.path.parent().map(|p| p.to_path_buf()).unwrap_or_default()
                } else {
                    f.path.clone()
                },
            )),
        }
    }
    for (table, rows, n, path) in by_table {
        println!(
            "{table:<10} {rows:>12} rows  {n:>3} file(s)  {}",
            path.display()
        );
    }
}
