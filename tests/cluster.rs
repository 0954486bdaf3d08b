//! `spillframe cluster init`, `spillframe peer` and `spillframe cluster status`, as a
//! newcomer runs them (docs/cluster.md): real peer processes on loopback, one killed and
//! restarted.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn spillframe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args(args)
        .env_remove("SPILLFRAME_CLUSTER")
        .output()
        .expect("run spillframe")
}

/// Peer processes, killed when dropped.
struct Peers(Vec<Option<Child>>);

impl Drop for Peers {
    fn drop(&mut self) {
        for c in self.0.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_peer(config: &Path, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args(["peer", "--config"])
        .arg(config)
        .args(["--name", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a peer")
}

/// A base port with `n` free UDP ports after it on 127.0.0.1.
fn free_ports(n: u16) -> u16 {
    let seed = std::process::id() as u16;
    (0..200u16)
        .map(|i| 20_000 + (seed.wrapping_mul(7).wrapping_add(i * 97)) % 40_000)
        .find(|&base| (0..n).all(|k| UdpSocket::bind(("127.0.0.1", base + k)).is_ok()))
        .expect("free ports")
}

/// Runs `cluster status` until `done` holds for its output (at most 30 s).
fn status_until(config: &Path, done: impl Fn(&Output) -> bool) -> Output {
    let start = Instant::now();
    loop {
        let o = spillframe(&["cluster", "status", "--config", config.to_str().unwrap()]);
        if done(&o) || start.elapsed() > Duration::from_secs(30) {
            return o;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn init_start_three_peers_status_kill_and_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_ports(3).to_string();
    let cdir = dir.path().join("c");
    let o = spillframe(&[
        "cluster",
        "init",
        "--dir",
        cdir.to_str().unwrap(),
        "--peers",
        "3",
        "--base-port",
        &base,
        "--memory",
        "256MiB",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let config = cdir.join("cluster.toml");
    for f in ["ca.pem", "token", "driver.pem", "a.key", "c.pem"] {
        assert!(cdir.join(f).exists(), "{f} missing");
    }
    let mut peers = Peers(
        ["a", "b", "c"]
            .iter()
            .map(|n| Some(start_peer(&config, n)))
            .collect(),
    );
    let o = status_until(&config, |o| o.status.success());
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("3 peers, 3 up"), "{out}");
    assert!(out.contains("256.0 MiB"), "{out}");

    // Kill b as a crash would.
    let mut b = peers.0[1].take().unwrap();
    b.kill().unwrap();
    b.wait().unwrap();
    let o = status_until(&config, |o| !o.status.success());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("3 peers, 2 up"), "{out}");
    assert!(out.contains("1 of 3 peers are down: b"), "{out}");

    // Restarted, it is back.
    peers.0[1] = Some(start_peer(&config, "b"));
    let o = status_until(&config, |o| o.status.success());
    assert!(text(&o).contains("3 peers, 3 up"), "{}", text(&o));
}

#[test]
fn cluster_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("c");
    let d = cdir.to_str().unwrap();
    assert!(
        spillframe(&["cluster", "init", "--dir", d, "--peers", "2"])
            .status
            .success()
    );
    // Not overwritten by accident.
    let o = spillframe(&["cluster", "init", "--dir", d]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--force"), "{}", text(&o));

    let config = cdir.join("cluster.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("127.0.0.1:7302", "127.0.0.1")).unwrap();
    let o = spillframe(&["cluster", "status", "--config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("peer[1].addr"), "{}", text(&o));
    std::fs::write(
        &config,
        good.replace("memory = \"1GiB\"", "memory = \"lots\""),
    )
    .unwrap();
    let o = spillframe(&["peer", "--config", config.to_str().unwrap(), "--name", "a"]);
    assert!(text(&o).contains("peer[0].memory"), "{}", text(&o));
    std::fs::write(&config, &good).unwrap();
    let o = spillframe(&["peer", "--config", config.to_str().unwrap(), "--name", "zz"]);
    assert!(
        text(&o).contains("no peer named 'zz'") && text(&o).contains("a, b"),
        "{}",
        text(&o)
    );

    let o = Command::new(env!("CARGO_BIN_EXE_spillframe"))
        .args(["cluster", "status"])
        .env_remove("SPILLFRAME_CLUSTER")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("SPILLFRAME_CLUSTER"), "{}", text(&o));
}

#[test]
fn a_session_with_a_bad_cluster_file_says_which_file_and_field() {
    spillframe::enable_cluster();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let err = spillframe::Session::builder()
        .ignore_environment()
        .memory_limit_bytes(64 << 20)
        .cluster(&missing)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");

    let bad = dir.path().join("cluster.toml");
    std::fs::write(
        &bad,
        "[cluster]\ntoken_file = \"token\"\nplacement = \"everywhere\"\n",
    )
    .unwrap();
    let err = spillframe::Session::builder()
        .ignore_environment()
        .memory_limit_bytes(64 << 20)
        .cluster(&bad)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cluster.toml") && err.contains("`trust`"),
        "the error names the file and the missing field: {err}"
    );
}
