//! Spill files: round trip (plain and compressed), checksum verification, the cap and cleanup.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use spillframe_spill::{Compression, DiskBudget, Error, SpillWriter};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn batch(start: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (start..start + n).collect();
    let names: Vec<Option<String>> = ids
        .iter()
        .map(|i| (i % 7 != 0).then(|| format!("row-{i}")))
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

#[test]
fn round_trips_in_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in [Compression::None, Compression::Lz4, Compression::Zstd]
        .into_iter()
        .enumerate()
    {
        let budget = Arc::new(DiskBudget::new(None));
        let path = dir.path().join(format!("f{i}.arrow"));
        let mut w = SpillWriter::create(path.clone(), &schema(), c, Arc::clone(&budget)).unwrap();
        let written = vec![batch(0, 1000), batch(1000, 10), batch(1010, 5000)];
        for b in &written {
            w.write(b).unwrap();
        }
        let file = w.finish().unwrap();
        assert_eq!(file.rows(), 6010);
        assert_eq!(budget.used(), file.bytes(), "{c}: bytes are charged");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), file.bytes());
        assert_eq!(file.read().unwrap(), written, "{c}: batches differ");
        drop(file);
        assert!(!path.exists(), "{c}: the file is deleted with its handle");
        assert_eq!(budget.used(), 0, "{c}: bytes are refunded");
    }
}

#[test]
fn lz4_files_are_smaller_on_repetitive_data() {
    let dir = tempfile::tempdir().unwrap();
    let size = |c: Compression, name: &str| {
        let mut w = SpillWriter::create(
            dir.path().join(name),
            &schema(),
            c,
            Arc::new(DiskBudget::new(None)),
        )
        .unwrap();
        w.write(&batch(0, 50_000)).unwrap();
        w.finish().unwrap().bytes()
    };
    let plain = size(Compression::None, "plain");
    let lz4 = size(Compression::Lz4, "lz4");
    assert!(lz4 < plain, "lz4 {lz4} bytes vs plain {plain}");
}

#[test]
fn a_corrupt_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.arrow");
    let mut w = SpillWriter::create(
        path.clone(),
        &schema(),
        Compression::None,
        Arc::new(DiskBudget::new(None)),
    )
    .unwrap();
    w.write(&batch(0, 2000)).unwrap();
    let file = w.finish().unwrap();
    // Flip one byte in the middle of the data.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let err = file.read().unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("c.arrow") && msg.contains("checksum"), "{msg}");
    // Truncation is caught too.
    std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    let msg = file.read().unwrap_err().to_string();
    assert!(msg.contains("c.arrow") && msg.contains("size"), "{msg}");
}

#[test]
fn the_cap_stops_a_write_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let budget = Arc::new(DiskBudget::new(Some(64 << 10)));
    let path = dir.path().join("big.arrow");
    let mut w = SpillWriter::create(
        path.clone(),
        &schema(),
        Compression::None,
        Arc::clone(&budget),
    )
    .unwrap();
    let err = w.write(&batch(0, 100_000)).unwrap_err();
    assert!(matches!(err, Error::SpillCapReached { .. }), "{err:?}");
    assert!(err.to_string().contains("max_spill"), "{err}");
    drop(w);
    assert!(!path.exists(), "the partial file is deleted");
    assert_eq!(budget.used(), 0, "its bytes are refunded");
    // A file under the cap still works afterwards.
    let mut w = SpillWriter::create(path.clone(), &schema(), Compression::None, budget).unwrap();
    w.write(&batch(0, 100)).unwrap();
    assert_eq!(w.finish().unwrap().read().unwrap(), vec![batch(0, 100)]);
}
