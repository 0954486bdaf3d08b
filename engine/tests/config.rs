use std::path::Path;

use spillframe_engine::{MemoryLimit, Session, Settings};

#[test]
fn environment_variables_are_parsed_and_named_in_errors() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let s = Settings::from_vars(vars(&[
        ("SPILLFRAME_MEMORY_LIMIT", "1GiB"),
        ("SPILLFRAME_TARGET_PARTITIONS", "3"),
        ("SPILLFRAME_SPILL_DIR", "/tmp/x"),
    ]))
    .unwrap();
    assert_eq!(s.memory_limit, Some(MemoryLimit::Bytes(1 << 30)));
    assert_eq!(s.target_partitions, Some(3));
    assert_eq!(s.spill_dir.as_deref(), Some(Path::new("/tmp/x")));

    let err = Settings::from_vars(vars(&[("SPILLFRAME_MEMORY_LIMIT", "huge")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SPILLFRAME_MEMORY_LIMIT") && err.contains("huge"),
        "{err}"
    );
    let err = Settings::from_vars(vars(&[("SPILLFRAME_BATCH_SIZE", "0")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_size") && err.contains("SPILLFRAME_BATCH_SIZE"),
        "{err}"
    );
}

#[test]
fn config_file_is_parsed_and_errors_name_the_field() {
    let p = Path::new("spillframe.toml");
    let s = Settings::from_toml("memory_limit = \"25%\"\ntarget_partitions = 2\n", p).unwrap();
    assert_eq!(s.memory_limit, Some(MemoryLimit::Fraction(0.25)));
    assert_eq!(s.target_partitions, Some(2));
    let s = Settings::from_toml("memory_limit = 1048576\n", p).unwrap();
    assert_eq!(s.memory_limit, Some(MemoryLimit::Bytes(1 << 20)));

    let err = Settings::from_toml("memory_limt = \"1GiB\"\n", p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("memory_limt") && err.contains("spillframe.toml"),
        "{err}"
    );
    let err = Settings::from_toml("target_partitions = -1\n", p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("target_partitions") && err.contains("-1"),
        "{err}"
    );
    let err = Settings::from_toml("memory_limit = \"2 parsecs\"\n", p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("memory_limit") && err.contains("2 parsecs"),
        "{err}"
    );
    let err = Settings::from_toml("batch_size = \"many\"\n", p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch_size"), "{err}");
}

#[test]
fn precedence_builder_over_env_over_file() {
    let builder = Settings {
        target_partitions: Some(7),
        ..Default::default()
    };
    let env = Settings {
        target_partitions: Some(5),
        batch_size: Some(100),
        ..Default::default()
    };
    let file = Settings {
        batch_size: Some(200),
        memory_limit: Some(MemoryLimit::Bytes(1234)),
        ..Default::default()
    };
    let merged = builder.or(env.or(file));
    assert_eq!(merged.target_partitions, Some(7));
    assert_eq!(merged.batch_size, Some(100));
    assert_eq!(merged.memory_limit, Some(MemoryLimit::Bytes(1234)));
}

#[test]
fn session_resolves_defaults_and_rejects_bad_builder_values() {
    let s = Session::builder().ignore_environment().build().unwrap();
    // Default: half of usable memory.
    let machine = spillframe_spill::MachineMemory::detect().unwrap();
    assert_eq!(s.memory_limit(), machine.usable() / 2);
    assert!(s.spill_dir().is_dir());
    let dir = s.spill_dir().to_path_buf();
    drop(s);
    assert!(!dir.exists(), "spill directory removed on drop");

    let err = Session::builder()
        .ignore_environment()
        .target_partitions(0)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("target_partitions"), "{err}");
    let err = Session::builder()
        .ignore_environment()
        .memory_fraction(1.5)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("memory_limit"), "{err}");
}

#[test]
fn a_cluster_comes_from_the_environment_or_the_file_relative_to_it() {
    let s =
        Settings::from_vars(|k| (k == "SPILLFRAME_CLUSTER").then(|| "/etc/c.toml".into())).unwrap();
    assert_eq!(s.cluster.as_deref(), Some(Path::new("/etc/c.toml")));
    let s = Settings::from_toml(
        "cluster = \"cluster/cluster.toml\"\n",
        Path::new("/srv/x/spillframe.toml"),
    )
    .unwrap();
    assert_eq!(
        s.cluster.as_deref(),
        Some(Path::new("/srv/x/cluster/cluster.toml"))
    );
}

#[test]
fn a_cluster_without_a_connector_is_an_error_naming_the_setting_and_the_fix() {
    // No connector is installed in this test binary (the facade installs net's).
    let err = Session::builder()
        .ignore_environment()
        .memory_limit_bytes(64 << 20)
        .cluster("/nowhere/cluster.toml")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cluster")
            && err.contains("/nowhere/cluster.toml")
            && err.contains("enable_cluster"),
        "{err}"
    );
}
