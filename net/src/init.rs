//! `spillframe cluster init`: keys, certificates, a token and a `cluster.toml` for N peers,
//! made with rcgen.
//!
//! With `trust = "ca"` it makes a cluster CA and signs one certificate per peer (naming the
//! peer) and one for the driver. With `trust = "pinned"` every certificate is self-signed and
//! the file pins each one. Private keys and the token are written readable by their owner
//! only. Every file is written into one directory; on a real cluster each machine needs the
//! cluster file, the token, the certificates, and its own key.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use ring::rand::SecureRandom;

use crate::error::{Error, Result};

/// How `init` should trust certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitTrust {
    /// A cluster CA signs every certificate.
    Ca,
    /// Self-signed certificates, each pinned in the file.
    Pinned,
}

/// What `cluster init` makes.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// How many peers.
    pub peers: usize,
    /// The address they listen on (one machine: 127.0.0.1).
    pub host: IpAddr,
    /// The first peer's UDP port; the others follow.
    pub base_port: u16,
    /// The memory each peer offers, e.g. "1GiB".
    pub memory: String,
    /// How certificates are trusted.
    pub trust: InitTrust,
    /// Overwrite existing files.
    pub force: bool,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            peers: 3,
            host: IpAddr::from([127, 0, 0, 1]),
            base_port: 7301,
            memory: "1GiB".into(),
            trust: InitTrust::Ca,
            force: false,
        }
    }
}

/// The name `init` gives the `i`-th peer (0-based): a, b, c, ... z, then p27, p28, ...
pub fn peer_name(i: usize) -> String {
    if i < 26 {
        ((b'a' + i as u8) as char).to_string()
    } else {
        format!("p{}", i + 1)
    }
}

fn cert_err(e: rcgen::Error) -> Error {
    Error::Certificates(e.to_string())
}

fn leaf_params(name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(vec![name.to_string()]).map_err(cert_err)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

/// Generates everything into `dir` and returns the path of the cluster file.
pub fn init_cluster(dir: &Path, options: &InitOptions) -> Result<PathBuf> {
    let bad = |option, reason: String| Error::InitOption { option, reason };
    if options.peers == 0 {
        return Err(bad("--peers", "at least one peer is needed".into()));
    }
    if options.base_port as usize + options.peers > u16::MAX as usize {
        return Err(bad(
            "--base-port",
            format!(
                "ports {}..{} do not fit below 65536",
                options.base_port,
                options.base_port as usize + options.peers
            ),
        ));
    }
    let memory = options.memory.trim();
    crate::config::parse_size(memory).map_err(|r| bad("--memory", r))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let cluster_file = dir.join("cluster.toml");
    let names: Vec<String> = (0..options.peers).map(peer_name).collect();
    let mut outputs = vec![cluster_file.clone(), dir.join("token")];
    outputs.push(dir.join("driver.pem"));
    outputs.push(dir.join("driver.key"));
    for n in &names {
        outputs.push(dir.join(format!("{n}.pem")));
        outputs.push(dir.join(format!("{n}.key")));
    }
    if options.trust == InitTrust::Ca {
        outputs.push(dir.join("ca.pem"));
        outputs.push(dir.join("ca.key"));
    }
    if !options.force
        && let Some(existing) = outputs.iter().find(|p| p.exists())
    {
        return Err(Error::io(
            "refusing to overwrite (pass --force)",
            existing,
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ));
    }

    let mut token = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut token)
        .map_err(|_| Error::Certificates("the system's random generator failed".into()))?;
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&dir.join("token"), &format!("{token}\n"))?;

    let mut everyone = vec!["driver".to_string()];
    everyone.extend(names.iter().cloned());
    match options.trust {
        InitTrust::Ca => {
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
            params
                .distinguished_name
                .push(DnType::CommonName, "spillframe cluster CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let ca_key = KeyPair::generate().map_err(cert_err)?;
            let ca_key_pem = ca_key.serialize_pem();
            let ca = CertifiedIssuer::self_signed(params, ca_key).map_err(cert_err)?;
            write_public(&dir.join("ca.pem"), &ca.pem())?;
            write_private(&dir.join("ca.key"), &ca_key_pem)?;
            for name in &everyone {
                let key = KeyPair::generate().map_err(cert_err)?;
                let cert = leaf_params(name)?.signed_by(&key, &ca).map_err(cert_err)?;
                write_public(&dir.join(format!("{name}.pem")), &cert.pem())?;
                write_private(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
            }
        }
        InitTrust::Pinned => {
            for name in &everyone {
                let key = KeyPair::generate().map_err(cert_err)?;
                let cert = leaf_params(name)?.self_signed(&key).map_err(cert_err)?;
                write_public(&dir.join(format!("{name}.pem")), &cert.pem())?;
                write_private(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
            }
        }
    }

    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Made by `spillframe cluster init`. Relative paths are relative to this file.\n\
         [cluster]\n\
         token_file = \"token\""
    );
    match options.trust {
        InitTrust::Ca => {
            let _ = writeln!(toml, "trust = \"ca\"\nca = \"ca.pem\"");
        }
        InitTrust::Pinned => {
            let _ = writeln!(toml, "trust = \"pinned\"");
        }
    }
    let _ = writeln!(
        toml,
        "placement = \"peers-before-disk\"\nreplicate = false\nheartbeat_ms = 1000\n\
         peer_timeout_ms = 5000\nretries = 2\nmax_frame = \"16MiB\"\n\n\
         [driver]\ncert = \"driver.pem\"\nkey = \"driver.key\""
    );
    for (i, name) in names.iter().enumerate() {
        let port = options.base_port as usize + i;
        let addr = std::net::SocketAddr::new(options.host, port as u16);
        let _ = writeln!(
            toml,
            "\n[[peer]]\nname = \"{name}\"\naddr = \"{addr}\"\ncert = \"{name}.pem\"\n\
             key = \"{name}.key\"\nmemory = \"{memory}\""
        );
    }
    write_public(&cluster_file, &toml)?;
    // What was written must load.
    crate::config::ClusterConfig::load(&cluster_file)?;
    Ok(cluster_file)
}

fn write_public(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("writing", path, e))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(path)
        .map_err(|e| Error::io("writing", path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io("writing", path, e))
}
