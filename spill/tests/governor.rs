use spillframe_spill::{MachineMemory, MemoryGovernor, MemoryLimit};

#[test]
fn parses_byte_sizes_and_fractions() {
    // Expected values computed by hand: GiB = 2^30, MB = 10^6.
    assert_eq!(
        "2GiB".parse::<MemoryLimit>().unwrap(),
        MemoryLimit::Bytes(2 * 1024 * 1024 * 1024)
    );
    assert_eq!(
        "512 MB".parse::<MemoryLimit>().unwrap(),
        MemoryLimit::Bytes(512_000_000)
    );
    assert_eq!(
        "64MiB".parse::<MemoryLimit>().unwrap(),
        MemoryLimit::Bytes(64 << 20)
    );
    assert_eq!(
        "1048576".parse::<MemoryLimit>().unwrap(),
        MemoryLimit::Bytes(1 << 20)
    );
    assert_eq!(
        "50%".parse::<MemoryLimit>().unwrap(),
        MemoryLimit::Fraction(0.5)
    );
    assert_eq!(
        "0.25".parse::<MemoryLimit>().unwrap(),
        MemoryLimit::Fraction(0.25)
    );
}

#[test]
fn rejects_bad_limits_with_the_value_in_the_message() {
    for bad in ["", "lots", "150%", "0%", "0", "1.5", "-3GiB", "12 parsecs"] {
        let err = bad.parse::<MemoryLimit>().unwrap_err().to_string();
        assert!(err.contains("invalid memory limit"), "{bad:?}: {err}");
        assert!(err.contains(&format!("'{bad}'")), "{bad:?}: {err}");
    }
}

#[test]
fn fraction_resolves_against_machine_memory() {
    assert_eq!(MemoryLimit::Fraction(0.5).resolve(1000), 500);
    assert_eq!(MemoryLimit::Bytes(123).resolve(1000), 123);
    let machine = MachineMemory::detect().unwrap();
    assert!(machine.physical > 0);
    assert!(machine.usable() <= machine.physical);
}

#[test]
fn pool_refuses_past_the_limit_and_records_the_peak() {
    use datafusion::execution::memory_pool::MemoryConsumer;
    let gov = MemoryGovernor::new(1000);
    let pool = gov.pool();
    let r = MemoryConsumer::new("test")
        .with_can_spill(true)
        .register(&pool);
    r.try_grow(600).unwrap();
    assert_eq!(gov.reserved(), 600);
    let err = r.try_grow(600).unwrap_err().to_string();
    assert!(
        err.contains("test"),
        "error should name the consumer: {err}"
    );
    r.shrink(500);
    assert_eq!(gov.reserved(), 100);
    assert_eq!(gov.peak(), 600);
    gov.reset_peak();
    r.try_grow(50).unwrap();
    assert_eq!(gov.peak(), 150);
}

mod sharing_pool {
    use std::sync::Arc;

    use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
    use spillframe_spill::SharingPool;

    const MIB: usize = 1 << 20;

    fn pool(limit: usize) -> Arc<dyn MemoryPool> {
        Arc::new(SharingPool::new(limit))
    }

    fn spilling(pool: &Arc<dyn MemoryPool>, name: &str) -> MemoryReservation {
        MemoryConsumer::new(name)
            .with_can_spill(true)
            .register(pool)
    }

    /// Two busy aggregates among four idle spilling consumers: DataFusion's fair pool caps
    /// each at a sixth of the limit (170 MiB of 1 GiB); here both may hold 400 MiB, since
    /// nobody else needs it.
    #[test]
    fn busy_consumers_borrow_what_idle_ones_leave() {
        let pool = pool(1024 * MIB);
        let _idle: Vec<_> = (0..4)
            .map(|i| spilling(&pool, &format!("RepartitionExec[{i}]")))
            .collect();
        let a = spilling(&pool, "FinalHashAggregateStream[0]");
        let b = spilling(&pool, "FinalHashAggregateStream[1]");
        for _ in 0..40 {
            a.try_grow(10 * MIB).unwrap();
            b.try_grow(10 * MIB).unwrap();
        }
        assert_eq!(pool.reserved(), 800 * MIB);
        // An eighth of the limit stays free for phase changes: 896 MiB is the most lent.
        let err = a.try_grow(100 * MIB).unwrap_err().to_string();
        assert!(err.contains("kept for the others"), "{err}");
        // That refusal made `a` spill: memory is short now, and nobody borrows.
        let err = a.try_grow(40 * MIB).unwrap_err().to_string();
        assert!(err.contains("memory is short"), "{err}");
    }

    /// Once one consumer has been refused (it spilled), memory is short: a borrower is refused
    /// its next request above the fair share, so it spills too and gives memory back.
    #[test]
    fn borrowing_stops_once_a_consumer_has_spilled() {
        let pool = pool(1024 * MIB);
        let a = spilling(&pool, "ExternalSorter[0]");
        let b = spilling(&pool, "ExternalSorter[1]");
        // The share is 512 MiB each; `a` borrows up to 800 MiB.
        a.try_grow(800 * MIB).unwrap();
        // `b` cannot get 300 MiB (only 224 MiB is free): it spills.
        assert!(b.try_grow(300 * MIB).is_err());
        b.try_grow(100 * MIB).unwrap();
        // From now on `a`, over its share, is refused even 1 MiB (though 124 MiB is free).
        let err = a.try_grow(MIB).unwrap_err().to_string();
        assert!(err.contains("memory is short"), "{err}");
        // Under its share it is served again.
        a.shrink(700 * MIB);
        a.try_grow(MIB).unwrap();
    }

    /// Under small limits (shares under 32 MiB) the pool is DataFusion's fair pool.
    #[test]
    fn small_shares_do_not_borrow() {
        let pool = pool(4 * MIB);
        let a = spilling(&pool, "FinalHashAggregateStream[0]");
        let _b = spilling(&pool, "FinalHashAggregateStream[1]");
        a.try_grow(2 * MIB).unwrap();
        let err = a.try_grow(1).unwrap_err().to_string();
        assert!(err.contains("its share is 2.0 MiB of 2"), "{err}");
    }

    /// Consumers that cannot spill (a sort's merge, a hash-join build side) are first come,
    /// first served within the limit, and what they hold comes off the spilling consumers'
    /// shares.
    #[test]
    fn unspillable_consumers_are_first_come_first_served() {
        let pool = pool(100 * MIB);
        let merge = MemoryConsumer::new("ExternalSorterMerge[0]").register(&pool);
        let build = MemoryConsumer::new("HashJoinInput").register(&pool);
        let sort = spilling(&pool, "ExternalSorter[1]");
        merge.try_grow(60 * MIB).unwrap();
        build.try_grow(20 * MIB).unwrap();
        assert!(build.try_grow(21 * MIB).is_err());
        // The sort's share is what is left: 20 MiB.
        sort.try_grow(20 * MIB).unwrap();
        assert!(sort.try_grow(1).is_err());
        assert_eq!(pool.reserved(), 100 * MIB);
    }

    /// Memory still held when a reservation is dropped goes back to the pool, and a dropped
    /// spilled consumer no longer makes memory short.
    #[test]
    fn dropping_consumers_returns_memory_and_ends_the_shortage() {
        let pool = pool(1024 * MIB);
        let a = spilling(&pool, "FinalHashAggregateStream[0]");
        let b = spilling(&pool, "FinalHashAggregateStream[1]");
        a.try_grow(600 * MIB).unwrap();
        assert!(b.try_grow(500 * MIB).is_err());
        drop(b);
        // `a` is the only spilling consumer left, so its share is the whole limit (with `b`
        // registered and spilled it was refused anything over 512 MiB).
        a.try_grow(400 * MIB).unwrap();
        drop(a);
        assert_eq!(pool.reserved(), 0);
    }

    /// Before the pool refuses anyone, it takes back the partition store's memory: the store
    /// evicts partitions to disk, and the request is granted. The store's own requests do not
    /// call back into it (it evicts by itself when refused).
    #[test]
    fn the_store_gives_memory_back_before_an_operator_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let governor = spillframe_spill::MemoryGovernor::new(8 * MIB as u64);
        let pool = governor.pool();
        let store = crate::store::store(dir.path(), 6 * MIB as u64, &pool);
        let (consumer, reclaim) = store.reclaimer();
        governor.set_reclaim(consumer, reclaim);
        // About 5.6 MiB of buckets waiting in the store (10 batches of 80 KB per partition).
        let ids: Vec<_> = (0..7)
            .map(|p| {
                let id = store.create(crate::store::schema(), None);
                for b in 0..10 {
                    store
                        .append(id, crate::store::batch(p * 100_000 + b * 10_000, 10_000))
                        .unwrap();
                }
                id
            })
            .collect();
        let held = store.metrics().memory_bytes;
        assert!(held > 5 * MIB as u64, "{held}");
        assert_eq!(store.metrics().evictions, 0);
        // A sort's merge, which cannot spill, needs 5 MiB: only about 2.4 MiB is free.
        let merge = MemoryConsumer::new("ExternalSorterMerge[0]").register(&pool);
        merge.try_grow(5 * MIB).unwrap();
        let after = store.metrics();
        assert!(after.evictions > 0, "{after:?}");
        assert!(pool.reserved() <= 8 * MIB, "{}", pool.reserved());
        // Nothing was lost: every partition reads back whole, from disk or memory.
        for (p, id) in ids.iter().enumerate() {
            let rows: usize = store.read(*id).unwrap().iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows, 100_000, "partition {p}");
        }
        // What cannot be freed is still refused: the merge cannot have more than the limit.
        assert!(merge.try_grow(4 * MIB).is_err());
    }
}
