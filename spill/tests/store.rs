//! The partition store: eviction to disk under its budget, reads in append order, removal.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
use spillframe_spill::{Compression, DiskBudget, Location, PartitionStore, StoreConfig};

pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
}

pub(crate) fn batch(start: i64, n: i64) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from(
            (start..start + n).collect::<Vec<_>>(),
        ))],
    )
    .unwrap()
}

pub(crate) fn store(
    dir: &std::path::Path,
    budget: u64,
    pool: &Arc<dyn MemoryPool>,
) -> PartitionStore {
    store_with(dir, budget, pool, None)
}

pub(crate) fn store_with(
    dir: &std::path::Path,
    budget: u64,
    pool: &Arc<dyn MemoryPool>,
    remote: Option<Arc<dyn spillframe_spill::RemoteTier>>,
) -> PartitionStore {
    PartitionStore::new(
        StoreConfig {
            dir: dir.to_path_buf(),
            memory_budget: budget,
            compression: Compression::None,
            remote,
        },
        pool,
        Arc::new(DiskBudget::new(None)),
    )
}

#[test]
fn least_recently_used_partitions_are_evicted_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 30));
    // Room for about two 80 KB batches.
    let s = store(dir.path(), 200 << 10, &pool);
    let a = s
        .put(schema(), [batch(0, 10_000)], Some("a".into()))
        .unwrap();
    let b = s.put(schema(), [batch(100, 10_000)], None).unwrap();
    assert_eq!(s.info(a).unwrap().location, Location::Memory);
    // Touch `a`, so `b` is now the least recently used.
    s.read(a).unwrap();
    let c = s.put(schema(), [batch(200, 10_000)], None).unwrap();
    assert_eq!(s.info(b).unwrap().location, Location::Disk, "b was evicted");
    assert_eq!(s.info(a).unwrap().location, Location::Memory);
    assert_eq!(s.info(c).unwrap().location, Location::Memory);
    assert_eq!(s.metrics().evictions, 1);
    assert!(
        pool.reserved() as u64 <= 200 << 10,
        "the pool holds only memory-resident data"
    );
    // Appending to an evicted partition keeps the order: disk first, then memory.
    s.append(b, batch(5, 3)).unwrap();
    assert_eq!(s.info(b).unwrap().location, Location::MemoryAndDisk);
    assert_eq!(s.read(b).unwrap(), vec![batch(100, 10_000), batch(5, 3)]);
    assert_eq!(s.info(b).unwrap().rows, 10_003);
    assert_eq!(s.info(a).unwrap().lineage.as_deref(), Some("a"));
    // Removing deletes the files and releases memory.
    let files = s.info(b).unwrap().files;
    assert!(!files.is_empty() && files.iter().all(|f| f.exists()));
    s.remove(b);
    assert!(files.iter().all(|f| !f.exists()));
    assert!(s.read(b).is_err(), "a removed partition is gone");
    assert_eq!(s.take(a).unwrap(), vec![batch(0, 10_000)]);
    s.remove(c);
    assert_eq!(s.metrics().partitions, 0);
    assert_eq!(pool.reserved(), 0);
    assert_eq!(s.metrics().disk_bytes, 0);
}

#[test]
fn a_batch_larger_than_the_budget_goes_straight_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 30));
    let s = store(dir.path(), 10 << 10, &pool);
    let id = s.put(schema(), [batch(0, 50_000)], None).unwrap();
    assert_eq!(s.info(id).unwrap().location, Location::Disk);
    assert_eq!(s.read(id).unwrap(), vec![batch(0, 50_000)]);
    assert_eq!(pool.reserved(), 0);
}

#[test]
fn the_pool_refusing_memory_evicts_too() {
    let dir = tempfile::tempdir().unwrap();
    // The store's own budget is large, but the pool only grants 150 KB.
    let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(150 << 10));
    let s = store(dir.path(), 1 << 30, &pool);
    let a = s.put(schema(), [batch(0, 10_000)], None).unwrap();
    let b = s.put(schema(), [batch(1, 10_000)], None).unwrap();
    assert_eq!(s.info(a).unwrap().location, Location::Disk);
    assert_eq!(s.info(b).unwrap().location, Location::Memory);
    s.shrink_to(0).unwrap();
    assert_eq!(s.info(b).unwrap().location, Location::Disk);
    assert_eq!(pool.reserved(), 0);
    assert_eq!(s.read(b).unwrap(), vec![batch(1, 10_000)]);
}

#[test]
fn dropping_the_store_deletes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 30));
    let s = store(dir.path(), 1, &pool);
    let id = s.put(schema(), [batch(0, 1000)], None).unwrap();
    let files = s.info(id).unwrap().files;
    assert_eq!(files.len(), 1);
    drop(s);
    assert!(!files[0].exists());
}

#[test]
fn an_eviction_writes_several_partitions_into_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 30));
    // 40 partitions of one small batch each (about 8 KB), under a 160 KB budget: when it
    // fills, an eviction takes at least an eighth of the budget, so several partitions.
    let s = store(dir.path(), 160 << 10, &pool);
    let ids: Vec<_> = (0..40)
        .map(|i| s.put(schema(), [batch(i * 1000, 1000)], None).unwrap())
        .collect();
    let on_disk: Vec<_> = ids
        .iter()
        .map(|id| s.info(*id).unwrap())
        .filter(|i| i.location == Location::Disk)
        .collect();
    assert!(on_disk.len() >= 4, "{on_disk:?}");
    let mut files: Vec<_> = on_disk.iter().flat_map(|i| i.files.clone()).collect();
    files.sort();
    files.dedup();
    assert!(
        files.len() * 2 <= on_disk.len(),
        "{} partitions evicted into {} files",
        on_disk.len(),
        files.len()
    );
    assert_eq!(s.metrics().evictions as usize, on_disk.len());
    // Every partition reads back its own rows, from the shared files or from memory.
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.read(*id).unwrap(), vec![batch(i as i64 * 1000, 1000)]);
    }
    // A shared file stays while one of its partitions does, and goes with the last.
    let shared = &on_disk[0].files[0];
    let holders: Vec<_> = on_disk
        .iter()
        .filter(|i| i.files.contains(shared))
        .map(|i| i.id)
        .collect();
    assert!(holders.len() >= 2);
    for (k, id) in holders.iter().enumerate() {
        assert!(shared.exists());
        s.remove(*id);
        if k + 1 < holders.len() {
            let next = holders[k + 1];
            assert_eq!(s.read(next).unwrap().len(), 1);
        }
    }
    assert!(!shared.exists());
    for id in ids {
        s.remove(id);
    }
    assert_eq!(s.metrics().disk_bytes, 0);
    assert_eq!(pool.reserved(), 0);
}
