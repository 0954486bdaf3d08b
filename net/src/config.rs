//! `cluster.toml`: the peers, how they are trusted, the token, budgets and the placement
//! policy.
//!
//! ```toml
//! [cluster]
//! token_file = "token"          # the application token every connection must present
//! trust = "ca"                  # "ca": certificates signed by `ca`; "pinned": exactly the listed certificates
//! ca = "ca.pem"
//! placement = "peers-before-disk"
//! heartbeat_ms = 1000
//! peer_timeout_ms = 5000
//! retries = 2
//! max_frame = "16MiB"
//!
//! [driver]
//! cert = "driver.pem"
//! key = "driver.key"
//!
//! [[peer]]
//! name = "a"
//! addr = "127.0.0.1:7301"
//! cert = "a.pem"
//! key = "a.key"
//! memory = "1GiB"
//! ```
//!
//! Relative paths are relative to the file's directory. Unknown keys are errors, and every
//! error names the field at fault.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The environment variable naming the cluster file (the engine's constant).
pub use spillframe_engine::config::CLUSTER_ENV;

/// The smallest token accepted, in characters.
pub const MIN_TOKEN_LEN: usize = 16;

/// How peers and the driver recognise each other's certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Every certificate must be signed by this cluster CA (a PEM file).
    Ca(PathBuf),
    /// Exactly the certificates listed in the file (the driver's and each peer's) are accepted.
    Pinned,
}

/// Where partitions go when a session has a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Partitions stay in local memory while they fit; when the store must evict, they move
    /// to the peer with the most free budget, and to local disk only when no peer has room.
    PeersBeforeDisk,
    /// Materialised partitions are spread over the peers by free budget from the start, so
    /// partition-local work runs on every peer.
    Spread,
}

impl FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "peers-before-disk" => Ok(Placement::PeersBeforeDisk),
            "spread" => Ok(Placement::Spread),
            other => Err(format!(
                "unknown placement '{other}'; expected 'peers-before-disk' or 'spread'"
            )),
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::PeersBeforeDisk => "peers-before-disk",
            Placement::Spread => "spread",
        })
    }
}

/// A certificate and its private key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate.
    pub cert: PathBuf,
    /// The private key. Peers other than oneself have none in the file.
    pub key: Option<PathBuf>,
}

/// One peer of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Its name, unique in the cluster; also the name in its certificate.
    pub name: String,
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    /// Its certificate, and its key when this file is used to start it.
    pub identity: Identity,
    /// The memory it offers to the cluster, in bytes.
    pub memory: u64,
    /// Where it spills; the system's temporary directory when absent.
    pub spill_dir: Option<PathBuf>,
}

/// A parsed and checked cluster file.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// The application token.
    pub token: String,
    /// How certificates are checked.
    pub trust: Trust,
    /// The placement policy.
    pub placement: Placement,
    /// Whether partitions with no lineage are placed on two peers, so that losing one peer
    /// loses none of them.
    pub replicate: bool,
    /// How often the driver pings each peer.
    pub heartbeat: Duration,
    /// A peer silent for this long is taken as lost.
    pub peer_timeout: Duration,
    /// How many times lost work is rebuilt before the query fails.
    pub retries: u32,
    /// The largest frame accepted on a connection, in bytes.
    pub max_frame: u64,
    /// The driver's certificate and key.
    pub driver: Identity,
    /// The peers.
    pub peers: Vec<PeerConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    cluster: RawCluster,
    driver: RawIdentity,
    #[serde(default)]
    peer: Vec<RawPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    token_file: String,
    trust: String,
    ca: Option<String>,
    placement: Option<String>,
    replicate: Option<bool>,
    heartbeat_ms: Option<u64>,
    peer_timeout_ms: Option<u64>,
    retries: Option<u32>,
    max_frame: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    cert: String,
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    name: String,
    addr: String,
    cert: String,
    key: Option<String>,
    memory: String,
    spill_dir: Option<String>,
}

impl ClusterConfig {
    /// Reads and checks a cluster file (and the token file it names).
    pub fn load(path: impl AsRef<Path>) -> Result<ClusterConfig> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io("reading cluster config", &path, e))?;
        ClusterConfig::parse(&path, &text)
    }

    /// The cluster file named by `SPILLFRAME_CLUSTER`, if set.
    pub fn from_env() -> Result<Option<ClusterConfig>> {
        match std::env::var_os(CLUSTER_ENV) {
            Some(p) if !p.is_empty() => ClusterConfig::load(PathBuf::from(p)).map(Some),
            _ => Ok(None),
        }
    }

    /// Parses `text` as the contents of the file at `path` (relative paths resolve against
    /// its directory).
    pub fn parse(path: &Path, text: &str) -> Result<ClusterConfig> {
        let bad = |field: &str, reason: String| Error::Config {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let field = e
                .span()
                .and_then(|span| field_at(text, span.start))
                .unwrap_or_default();
            bad(&field, e.message().to_string())
        })?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let resolve = |p: &str| {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { base.join(p) }
        };

        let token_path = resolve(&raw.cluster.token_file);
        let token = std::fs::read_to_string(&token_path)
            .map_err(|e| {
                bad(
                    "cluster.token_file",
                    format!("cannot read '{}': {e}", token_path.display()),
                )
            })?
            .trim()
            .to_string();
        if token.len() < MIN_TOKEN_LEN {
            return Err(bad(
                "cluster.token_file",
                format!(
                    "the token in '{}' has {} characters; at least {MIN_TOKEN_LEN} are needed",
                    token_path.display(),
                    token.len()
                ),
            ));
        }
        let trust = match (raw.cluster.trust.as_str(), &raw.cluster.ca) {
            ("ca", Some(ca)) => Trust::Ca(resolve(ca)),
            ("ca", None) => {
                return Err(bad(
                    "cluster.ca",
                    "trust = \"ca\" needs the CA certificate's path in `ca`".into(),
                ));
            }
            ("pinned", None) => Trust::Pinned,
            ("pinned", Some(_)) => {
                return Err(bad(
                    "cluster.ca",
                    "trust = \"pinned\" pins each certificate; remove `ca` or use trust = \"ca\""
                        .into(),
                ));
            }
            (other, _) => {
                return Err(bad(
                    "cluster.trust",
                    format!("unknown trust '{other}'; expected 'ca' or 'pinned'"),
                ));
            }
        };
        let placement = match &raw.cluster.placement {
            Some(p) => p.parse().map_err(|r| bad("cluster.placement", r))?,
            None => Placement::PeersBeforeDisk,
        };
        let positive_ms = |field: &str, v: Option<u64>, default: u64| match v {
            Some(0) => Err(bad(field, "must be greater than zero".into())),
            Some(ms) => Ok(Duration::from_millis(ms)),
            None => Ok(Duration::from_millis(default)),
        };
        let heartbeat = positive_ms("cluster.heartbeat_ms", raw.cluster.heartbeat_ms, 1000)?;
        let peer_timeout =
            positive_ms("cluster.peer_timeout_ms", raw.cluster.peer_timeout_ms, 5000)?;
        if peer_timeout <= heartbeat {
            return Err(bad(
                "cluster.peer_timeout_ms",
                format!(
                    "{} ms is not longer than heartbeat_ms ({} ms); a peer would be lost between two heartbeats",
                    peer_timeout.as_millis(),
                    heartbeat.as_millis()
                ),
            ));
        }
        let max_frame = match &raw.cluster.max_frame {
            Some(s) => parse_size(s).map_err(|r| bad("cluster.max_frame", r))?,
            None => crate::protocol::DEFAULT_MAX_FRAME as u64,
        };
        if !(crate::protocol::MIN_MAX_FRAME as u64..=u32::MAX as u64).contains(&max_frame) {
            return Err(bad(
                "cluster.max_frame",
                format!(
                    "{max_frame} bytes is outside {}..={}",
                    crate::protocol::MIN_MAX_FRAME,
                    u32::MAX
                ),
            ));
        }

        let driver = Identity {
            cert: resolve(&raw.driver.cert),
            key: raw.driver.key.as_deref().map(resolve),
        };
        if raw.peer.is_empty() {
            return Err(bad("peer", "the cluster lists no [[peer]]".into()));
        }
        let mut names = HashSet::new();
        let mut addrs = HashSet::new();
        let mut peers = Vec::with_capacity(raw.peer.len());
        for (i, p) in raw.peer.iter().enumerate() {
            let field = |f: &str| format!("peer[{i}].{f}");
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(
                    &field("name"),
                    format!(
                        "'{}' is not a valid name; use letters, digits, '-' and '_'",
                        p.name
                    ),
                ));
            }
            if !names.insert(p.name.clone()) {
                return Err(bad(
                    &field("name"),
                    format!("'{}' is used by two peers", p.name),
                ));
            }
            let addr: SocketAddr = p.addr.parse().map_err(|e| {
                bad(
                    &field("addr"),
                    format!("'{}' is not an address like 127.0.0.1:7301: {e}", p.addr),
                )
            })?;
            if !addrs.insert(addr) {
                return Err(bad(&field("addr"), format!("{addr} is used by two peers")));
            }
            let memory = parse_size(&p.memory).map_err(|r| bad(&field("memory"), r))?;
            peers.push(PeerConfig {
                name: p.name.clone(),
                addr,
                identity: Identity {
                    cert: resolve(&p.cert),
                    key: p.key.as_deref().map(resolve),
                },
                memory,
                spill_dir: p.spill_dir.as_deref().map(resolve),
            });
        }
        Ok(ClusterConfig {
            path: path.to_path_buf(),
            token,
            trust,
            placement,
            replicate: raw.cluster.replicate.unwrap_or(false),
            heartbeat,
            peer_timeout,
            retries: raw.cluster.retries.unwrap_or(2),
            max_frame,
            driver,
            peers,
        })
    }

    /// The peer called `name`.
    pub fn peer(&self, name: &str) -> Result<&PeerConfig> {
        self.peers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::UnknownPeer {
                name: name.to_string(),
                known: self.peer_names().join(", "),
            })
    }

    /// The peers' names, in file order.
    pub fn peer_names(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.name.clone()).collect()
    }
}

/// Parses a size such as "1GiB" or "512MB" (the spill crate's parser).
pub(crate) fn parse_size(text: &str) -> std::result::Result<u64, String> {
    spillframe_spill::parse_size(text)
}

/// The dotted name of the key whose value starts at or before byte `at`, from the last
/// `[table]` header and key before it: good enough to name the field in a parse error.
fn field_at(text: &str, at: usize) -> Option<String> {
    // Up to the end of the line holding `at`: the span starts at the key or at its value.
    let at = at.min(text.len());
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let before = &text[..end];
    let mut table = String::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    let mut key = None;
    for line in before.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let n = index.entry(name.to_string()).or_insert(usize::MAX);
            *n = n.wrapping_add(1);
            table = format!("{name}[{n}]");
            key = None;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_string();
            key = None;
        } else if let Some((k, _)) = line.split_once('=') {
            key = Some(k.trim().to_string());
        }
    }
    match (table.is_empty(), key) {
        (true, None) => None,
        (true, Some(k)) => Some(k),
        (false, None) => Some(table),
        (false, Some(k)) => Some(format!("{table}.{k}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, toml: &str) -> PathBuf {
        std::fs::write(dir.join("token"), "0123456789abcdef0123").unwrap();
        let p = dir.join("cluster.toml");
        std::fs::write(&p, toml).unwrap();
        p
    }

    const GOOD: &str = r#"
[cluster]
token_file = "token"
trust = "ca"
ca = "ca.pem"

[driver]
cert = "driver.pem"
key = "driver.key"

[[peer]]
name = "a"
addr = "127.0.0.1:7301"
cert = "a.pem"
memory = "1GiB"

[[peer]]
name = "b"
addr = "127.0.0.1:7302"
cert = "b.pem"
memory = "512MiB"
"#;

    #[test]
    fn parses_and_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        let c = ClusterConfig::load(write(dir.path(), GOOD)).unwrap();
        assert_eq!(c.trust, Trust::Ca(dir.path().join("ca.pem")));
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[1].memory, 512 << 20);
        assert_eq!(c.peers[0].identity.cert, dir.path().join("a.pem"));
        assert_eq!(c.placement, Placement::PeersBeforeDisk);
        assert_eq!(c.token, "0123456789abcdef0123");
    }

    fn error_of(toml: &str) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        match ClusterConfig::load(write(dir.path(), toml)) {
            Err(Error::Config { field, reason, .. }) => (field, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let (f, r) = error_of(&GOOD.replace("127.0.0.1:7302", "localhost"));
        assert_eq!(f, "peer[1].addr", "{r}");
        let (f, _) = error_of(&GOOD.replace("512MiB", "lots"));
        assert_eq!(f, "peer[1].memory");
        let (f, _) = error_of(&GOOD.replace("name = \"b\"", "name = \"a\""));
        assert_eq!(f, "peer[1].name");
        let (f, _) = error_of(&GOOD.replace("trust = \"ca\"", "trust = \"none\""));
        assert_eq!(f, "cluster.trust");
        let (f, _) = error_of(&GOOD.replace("ca = \"ca.pem\"\n", ""));
        assert_eq!(f, "cluster.ca");
        let (f, r) = error_of(&GOOD.replace("memory = \"1GiB\"", "memory = \"1GiB\"\nmemroy = 3"));
        assert_eq!(f, "peer[0].memroy", "{r}");
        assert!(r.contains("unknown field"), "{r}");
        let (f, _) =
            error_of(&GOOD.replace("trust = \"ca\"", "trust = \"ca\"\nheartbeat_ms = 9000"));
        assert_eq!(f, "cluster.peer_timeout_ms");
        let (f, _) = error_of(&GOOD.replace("token_file = \"token\"", "token_file = \"missing\""));
        assert_eq!(f, "cluster.token_file");
    }

    #[test]
    fn short_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), GOOD);
        std::fs::write(dir.path().join("token"), "short\n").unwrap();
        let e = ClusterConfig::load(p).unwrap_err().to_string();
        assert!(
            e.contains("cluster.token_file") && e.contains("5 characters"),
            "{e}"
        );
    }
}
