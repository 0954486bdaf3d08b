use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type};
use spillframe::MemoryLimit;
use spillframe::demo::{DemoArgs, dataset, run_queries};

#[test]
fn demo_runs_out_of_core_and_spills() {
    let data = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let args = DemoArgs {
        rows: 800_000,
        memory_limit: MemoryLimit::Bytes(16 << 20),
        data_dir: Some(data.path().to_path_buf()),
        regenerate: false,
        target_partitions: Some(2),
        spill_dir: Some(spill.path().to_path_buf()),
    };
    let file = dataset(&args, true).unwrap();
    // The data in memory is several times the limit.
    let unlimited = spillframe::Session::builder()
        .ignore_environment()
        .build()
        .unwrap();
    let in_memory: usize = unlimited
        .read_parquet(&file)
        .unwrap()
        .collect()
        .unwrap()
        .batches()
        .iter()
        .map(|b| b.get_array_memory_size())
        .sum();
    assert!(in_memory > 3 * (16 << 20), "data in memory: {in_memory} B");
    let report = run_queries(&args, &file).unwrap();
    assert_eq!(report.steps.len(), 5);
    assert!(report.spilled_bytes() > 0, "the sort spilled");
    // Sorted output had every row.
    assert_eq!(report.steps[3].2.rows, 800_000);
    // First groupby: 5 groups shown, lens sum to at most N.
    assert_eq!(report.steps[0].1.height(), 5);
    // The map_batches step: bands 0..5 of v3 (uniform in [0, 100)), each mean inside its band.
    let bands = &report.steps[4].1;
    assert_eq!(bands.column_names(), ["v3_band", "rows", "v3_mean"]);
    let band = bands.column("v3_band").unwrap();
    let rows = bands.column("rows").unwrap();
    let mean = bands.column("v3_mean").unwrap();
    let band = band.as_primitive::<Int64Type>();
    let rows = rows.as_primitive::<Int64Type>();
    let mean = mean.as_primitive::<Float64Type>();
    assert_eq!(band.values().to_vec(), vec![0, 1, 2, 3, 4]);
    for i in 0..5 {
        // 800 000 rows in 10 bands: about 80 000 each.
        assert!(
            (70_000..90_000).contains(&rows.value(i)),
            "band {i}: {}",
            rows.value(i)
        );
        let lo = 10.0 * i as f64;
        assert!(mean.value(i) > lo && mean.value(i) < lo + 10.0);
    }
    // Spill files are gone afterwards.
    let leftovers: Vec<_> = walk(spill.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
