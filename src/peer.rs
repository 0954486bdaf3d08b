//! Peers that run your own functions.
//!
//! Rust cannot send a closure to another process, so a map job on a cluster names its
//! function: the driver and every peer register the same functions under the same names in a
//! [`FunctionRegistry`], and a job made with
//! [`map_partitions_named`](crate::LazyFrame::map_partitions_named) or
//! [`map_batches_named`](crate::LazyFrame::map_batches_named) runs the function on the peer
//! that holds each partition. The built-in `spillframe peer` has no functions (it serves SQL
//! and expressions only); a peer that runs yours is your own program calling [`serve`]:
//!
//! ```no_run
//! use spillframe::jobs::{FunctionRegistry, Partition};
//! use spillframe::peer::{PeerOptions, serve};
//!
//! fn registry() -> FunctionRegistry {
//!     let registry = FunctionRegistry::new();
//!     registry.register_partitions("row_count", |p: Partition| p.concat());
//!     registry
//! }
//!
//! fn main() -> spillframe::Result<()> {
//!     // my-peer --config cluster.toml --name a
//!     serve(registry(), PeerOptions::from_args()?)
//! }
//! ```

use std::path::PathBuf;

pub use spillframe_engine::jobs::FunctionRegistry;
use spillframe_net::ClusterConfig;
pub use spillframe_net::peer::RunningPeer;

use crate::error::{Error, Result};

/// Which peer of which cluster file a process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOptions {
    /// The cluster file (`cluster.toml`).
    pub cluster: PathBuf,
    /// The peer's name in it.
    pub name: String,
}

impl PeerOptions {
    /// Peer `name` of the cluster file at `cluster`.
    pub fn new(cluster: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        PeerOptions {
            cluster: cluster.into(),
            name: name.into(),
        }
    }

    /// From the process's arguments, as the built-in `spillframe peer` takes them:
    /// `--config <cluster.toml> --name <peer>` (either may be written `--flag=value`), after
    /// any leading words that are not flags (a subcommand such as `peer`). Without
    /// `--config`, the cluster file is `$SPILLFRAME_CLUSTER`.
    pub fn from_args() -> Result<PeerOptions> {
        Self::parse(std::env::args().skip(1))
    }

    /// [`from_args`](Self::from_args) over the given arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<PeerOptions> {
        let mut cluster = None;
        let mut name = None;
        let mut args = args.into_iter().skip_while(|a| !a.starts_with("--"));
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (arg, None),
            };
            let slot = match flag.as_str() {
                "--config" => &mut cluster,
                "--name" => &mut name,
                other => {
                    return Err(Error::argument(
                        other,
                        "a peer takes --config <cluster.toml> and --name <peer>",
                    ));
                }
            };
            let value = match inline.or_else(|| args.next()) {
                Some(v) => v,
                None => return Err(Error::argument(&flag, "needs a value")),
            };
            *slot = Some(value);
        }
        let cluster =
            match cluster.or_else(|| std::env::var(spillframe_engine::config::CLUSTER_ENV).ok()) {
                Some(c) => PathBuf::from(c),
                None => {
                    return Err(Error::argument(
                        "--config",
                        "missing: pass the cluster file, or set SPILLFRAME_CLUSTER",
                    ));
                }
            };
        let name = name.ok_or_else(|| {
            Error::argument("--name", "missing: which peer of the cluster file this is")
        })?;
        Ok(PeerOptions { cluster, name })
    }
}

/// Starts the peer `config` with the functions of `registry`, and returns it running (on its
/// own threads) for the caller to stop or drop.
pub fn start(registry: FunctionRegistry, config: &PeerOptions) -> Result<RunningPeer> {
    let cluster = ClusterConfig::load(&config.cluster)?;
    Ok(RunningPeer::start_with(&cluster, &config.name, registry)?)
}

/// Runs the peer `config` with the functions of `registry` until the process receives Ctrl-C.
pub fn serve(registry: FunctionRegistry, config: PeerOptions) -> Result<()> {
    let names = registry.names();
    let peer = start(registry, &config)?;
    eprintln!(
        "peer '{}' listening on {} (udp) with functions [{}]; Ctrl-C stops it",
        peer.name(),
        peer.addr(),
        names.join(", ")
    );
    peer.run_until_interrupted()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<PeerOptions> {
        PeerOptions::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments_in_both_spellings() {
        let c = parse(&["--config", "c.toml", "--name=a"]).unwrap();
        assert_eq!(c, PeerOptions::new("c.toml", "a"));
        let c = parse(&["peer", "--name", "b", "--config=d.toml"]).unwrap();
        assert_eq!(c, PeerOptions::new("d.toml", "b"));
    }

    #[test]
    fn bad_arguments_are_named() {
        let e = parse(&["--config", "c.toml"]).unwrap_err().to_string();
        assert!(e.contains("--name"), "{e}");
        let e = parse(&["--config", "c.toml", "--nmae", "a"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--nmae"), "{e}");
        let e = parse(&["--config"]).unwrap_err().to_string();
        assert!(e.contains("needs a value"), "{e}");
    }
}
