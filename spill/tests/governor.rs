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
