//! `spillframe cluster init | status` and `spillframe peer`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use spillframe_net::protocol::message::{Hello, PeerStatus};
use spillframe_net::{ClusterConfig, InitOptions, InitTrust, PeerClient, RunningPeer};

use crate::error::{Error, Result};

/// `spillframe cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Generate keys, certificates, a token and cluster.toml for N peers.
    Init(InitArgs),
    /// Show the peers that are up, their memory and spill use, and their partitions.
    Status(StatusArgs),
}

/// How `cluster init` trusts certificates.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TrustArg {
    /// A cluster CA signs every certificate.
    Ca,
    /// Self-signed certificates, each pinned in cluster.toml.
    Pinned,
}

/// Arguments of `spillframe cluster init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Directory to write into (created if needed).
    #[arg(long, default_value = "cluster")]
    pub dir: PathBuf,
    /// How many peers.
    #[arg(long, default_value_t = 3)]
    pub peers: usize,
    /// The address the peers listen on (one per peer can be edited in cluster.toml).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The first peer's UDP port; the next peers take the next ports.
    #[arg(long, default_value_t = 7301)]
    pub base_port: u16,
    /// The memory each peer offers.
    #[arg(long, default_value = "1GiB")]
    pub memory: String,
    /// How certificates are trusted.
    #[arg(long, value_enum, default_value = "ca")]
    pub trust: TrustArg,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `spillframe cluster status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The cluster file (default: $SPILLFRAME_CLUSTER, then ./cluster.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// List every partition on every peer.
    #[arg(long)]
    pub partitions: bool,
}

/// Arguments of `spillframe peer`.
#[derive(Debug, Clone, Args)]
pub struct PeerArgs {
    /// The cluster file.
    #[arg(long)]
    pub config: PathBuf,
    /// Which peer of the file this process is.
    #[arg(long)]
    pub name: String,
}

/// Runs `spillframe cluster ...`.
pub(super) fn run(cmd: ClusterCommand) -> Result<()> {
    match cmd {
        ClusterCommand::Init(args) => init(args),
        ClusterCommand::Status(args) => status(args),
    }
}

fn init(args: InitArgs) -> Result<()> {
    let path = spillframe_net::init_cluster(
        &args.dir,
        &InitOptions {
            peers: args.peers,
            host: args.host,
            base_port: args.base_port,
            memory: args.memory,
            trust: match args.trust {
                TrustArg::Ca => InitTrust::Ca,
                TrustArg::Pinned => InitTrust::Pinned,
            },
            force: args.force,
        },
    )?;
    let config = ClusterConfig::load(&path)?;
    let path = path.canonicalize().unwrap_or(path);
    println!("wrote {}", path.display());
    for p in &config.peers {
        println!(
            "  peer {} at {}: spillframe peer --config {} --name {}",
            p.name,
            p.addr,
            path.display(),
            p.name
        );
    }
    println!(
        "then: export SPILLFRAME_CLUSTER={} && spillframe cluster status",
        path.display()
    );
    Ok(())
}

/// Runs `spillframe peer` until Ctrl-C.
pub(super) fn peer(args: PeerArgs) -> Result<()> {
    let config = ClusterConfig::load(&args.config)?;
    let peer = RunningPeer::start(&config, &args.name)?;
    let memory = config.peer(&args.name)?.memory;
    eprintln!(
        "peer '{}' listening on {} (udp) with {} of memory; Ctrl-C stops it",
        peer.name(),
        peer.addr(),
        bytesize::ByteSize(memory)
    );
    peer.run_until_interrupted()?;
    Ok(())
}

/// The cluster file: the flag, then `$SPILLFRAME_CLUSTER`, then `./cluster.toml`.
fn locate(explicit: Option<PathBuf>) -> Result<ClusterConfig> {
    if let Some(p) = explicit {
        return Ok(ClusterConfig::load(p)?);
    }
    if let Some(c) = ClusterConfig::from_env()? {
        return Ok(c);
    }
    let local = PathBuf::from("cluster.toml");
    if local.exists() {
        return Ok(ClusterConfig::load(local)?);
    }
    Err(Error::argument(
        "--config",
        "no cluster file: pass --config, set SPILLFRAME_CLUSTER, or run in a directory with cluster.toml",
    ))
}

fn status(args: StatusArgs) -> Result<()> {
    let config = locate(args.config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::argument("(runtime)", e.to_string()))?;
    let results = rt.block_on(async {
        let endpoint = spillframe_net::client_endpoint(&config, &config.driver)?;
        let hello = Hello {
            token: config.token.clone(),
            from: "status".into(),
            session: 0,
            build: env!("CARGO_PKG_VERSION").into(),
        };
        let timeout = config.peer_timeout.min(Duration::from_secs(5));
        let probes = config.peers.iter().map(|p| {
            let endpoint = endpoint.clone();
            let hello = hello.clone();
            let max_frame = config.max_frame as usize;
            async move {
                let client = PeerClient::connect(&endpoint, p, &hello, max_frame, timeout).await?;
                let rtt = client.ping().await?;
                let status = client.status().await?;
                client.close();
                Ok::<_, spillframe_net::Error>((rtt, status))
            }
        });
        let results = futures::future::join_all(probes).await;
        endpoint.wait_idle().await;
        Ok::<_, spillframe_net::Error>(results)
    })?;
    let up = results.iter().filter(|r| r.is_ok()).count();
    println!(
        "cluster {}: {} peers, {} up",
        config.path.display(),
        config.peers.len(),
        up
    );
    println!(
        "{:<8} {:<22} {:<5} {:>8} {:>22} {:>12} {:>12} {:>10} {:>10} {:>8}",
        "peer",
        "address",
        "state",
        "rtt",
        "memory used / limit",
        "partitions",
        "spilled",
        "fragments",
        "functions",
        "uptime"
    );
    let size = |b: u64| bytesize::ByteSize(b).to_string();
    for (p, r) in config.peers.iter().zip(&results) {
        match r {
            Ok((rtt, s)) => println!(
                "{:<8} {:<22} {:<5} {:>8} {:>22} {:>12} {:>12} {:>10} {:>10} {:>8}",
                p.name,
                p.addr.to_string(),
                "up",
                format!("{:.1} ms", rtt.as_secs_f64() * 1e3),
                format!("{} / {}", size(s.memory_used), size(s.memory_limit)),
                s.partitions.len(),
                size(s.spilled_bytes),
                s.fragments_run,
                s.functions_run,
                format!("{}s", s.uptime_secs)
            ),
            Err(e) => println!(
                "{:<8} {:<22} {:<5} {}",
                p.name,
                p.addr.to_string(),
                "down",
                crate::cli::error_chain(e)
            ),
        }
    }
    if args.partitions {
        for (rtt_status, p) in results.iter().zip(&config.peers) {
            if let Ok((_, s)) = rtt_status {
                print_partitions(&p.name, s);
            }
        }
    }
    if up < config.peers.len() {
        let names: Vec<&str> = config
            .peers
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_err())
            .map(|(p, _)| p.name.as_str())
            .collect();
        return Err(Error::PeersDown {
            down: names.len(),
            total: config.peers.len(),
            names: names.join(", "),
        });
    }
    Ok(())
}

fn print_partitions(peer: &str, s: &PeerStatus) {
    println!(
        "\nfunctions on {peer}: {}",
        match s.functions.as_slice() {
            [] => "none (SQL and expressions only)".to_string(),
            names => names.join(", "),
        }
    );
    println!("partitions on {peer}:");
    if s.partitions.is_empty() {
        println!("  (none)");
    }
    for part in &s.partitions {
        println!(
            "  session {:>20} partition {:>6}: {:>10} rows {:>12} {:<11} {}",
            part.session,
            part.partition,
            part.rows,
            bytesize::ByteSize(part.bytes).to_string(),
            part.location,
            part.lineage.as_deref().unwrap_or("")
        );
    }
}
