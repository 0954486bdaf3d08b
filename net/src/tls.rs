//! TLS for the cluster: rustls on the ring provider, TLS 1.3 only, both sides authenticated,
//! no 0-RTT.
//!
//! Two ways to trust certificates, chosen in `cluster.toml`:
//! - **ca**: every certificate must chain to the cluster CA (webpki's verifiers). A peer's
//!   certificate must also carry the peer's name, which the connecting side checks.
//! - **pinned**: exactly the certificates listed in the file are accepted: a peer's
//!   certificate must be byte-for-byte the one listed under its name, and a connecting side
//!   must present the driver's or a peer's certificate. The handshake signatures are still
//!   verified, so holding a copy of a certificate without its key does not help. Pinned
//!   certificates are trusted as listed, whatever their validity dates.
//!
//! 0-RTT stays off: the configs are built here from rustls' defaults, where early data is
//! disabled, and handed to quinn unchanged.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::DistinguishedName;
use rustls::SignatureScheme;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use crate::config::{ClusterConfig, Identity, Trust};
use crate::error::{Error, Result};
use crate::protocol::ALPN;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            Error::Tls(format!(
                "reading certificates from '{}': {e}",
                path.display()
            ))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::Tls(format!(
                "reading certificates from '{}': {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "'{}' holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| Error::Tls(format!("reading the private key '{}': {e}", path.display())))
}

fn own_identity(
    identity: &Identity,
    whose: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let key = identity.key.as_deref().ok_or_else(|| {
        Error::Tls(format!(
            "the cluster file gives no private key (`key`) for {whose}"
        ))
    })?;
    Ok((load_certs(&identity.cert)?, load_key(key)?))
}

/// The certificates a side trusts.
enum Anchors {
    Ca(Arc<rustls::RootCertStore>),
    Pinned(Arc<Pins>),
}

/// The pinned certificates: each peer's by name, plus the driver's.
#[derive(Debug)]
struct Pins {
    peers: HashMap<String, CertificateDer<'static>>,
    clients: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

fn anchors(config: &ClusterConfig) -> Result<Anchors> {
    match &config.trust {
        Trust::Ca(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots.add(cert).map_err(|e| {
                    Error::Tls(format!("the CA certificate '{}': {e}", ca.display()))
                })?;
            }
            Ok(Anchors::Ca(Arc::new(roots)))
        }
        Trust::Pinned => {
            let first = |path: &Path| -> Result<CertificateDer<'static>> {
                Ok(load_certs(path)?.swap_remove(0))
            };
            let mut peers = HashMap::new();
            let mut clients = vec![first(&config.driver.cert)?];
            for p in &config.peers {
                let cert = first(&p.identity.cert)?;
                clients.push(cert.clone());
                peers.insert(p.name.clone(), cert);
            }
            Ok(Anchors::Pinned(Arc::new(Pins {
                peers,
                clients,
                algorithms: provider().signature_verification_algorithms,
            })))
        }
    }
}

/// quinn's transport settings: keep-alives at the heartbeat, and the idle timeout at the
/// peer timeout, so a silent peer's connection fails on its own.
fn transport(config: &ClusterConfig) -> Result<Arc<quinn::TransportConfig>> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(config.heartbeat));
    let idle = quinn::IdleTimeout::try_from(config.peer_timeout)
        .map_err(|e| Error::Tls(format!("peer_timeout_ms: {e}")))?;
    t.max_idle_timeout(Some(idle));
    Ok(Arc::new(t))
}

/// The QUIC server configuration of the peer `name`.
pub fn server_config(config: &ClusterConfig, name: &str) -> Result<quinn::ServerConfig> {
    let peer = config.peer(name)?;
    let (chain, key) = own_identity(&peer.identity, &format!("peer '{name}'"))?;
    let verifier: Arc<dyn ClientCertVerifier> = match anchors(config)? {
        Anchors::Ca(roots) => {
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| Error::Tls(format!("client verifier: {e}")))?
        }
        Anchors::Pinned(pins) => Arc::new(PinnedClients(pins)),
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            Error::Tls(format!(
                "peer '{name}': certificate '{}' and its key: {e}",
                peer.identity.cert.display()
            ))
        })?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(transport(config)?);
    Ok(server)
}

/// The QUIC client configuration of a side presenting `identity` (the driver's, or a peer's
/// when peers talk to each other).
pub fn client_config(config: &ClusterConfig, identity: &Identity) -> Result<quinn::ClientConfig> {
    let (chain, key) = own_identity(identity, &format!("'{}'", identity.cert.display()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match anchors(config)? {
        Anchors::Ca(roots) => builder.with_webpki_verifier(
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| Error::Tls(format!("server verifier: {e}")))?,
        ),
        Anchors::Pinned(pins) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServers(pins))),
    };
    let mut tls = builder.with_client_auth_cert(chain, key).map_err(|e| {
        Error::Tls(format!(
            "certificate '{}' and its key: {e}",
            identity.cert.display()
        ))
    })?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(quic));
    client.transport_config(transport(config)?);
    Ok(client)
}

/// A peer's server name in TLS: its cluster name.
pub fn server_name(peer: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(peer.to_string())
        .map_err(|e| Error::Tls(format!("'{peer}' cannot be a TLS server name: {e}")))
}

/// The handshake-signature methods both pinned verifiers share: TLS 1.2 is refused (QUIC is
/// TLS 1.3 only), TLS 1.3 signatures are checked with the provider's algorithms.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::Tls13RequiredForQuic,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.algorithms.supported_schemes()
        }
    };
}

/// Checks a server's certificate against the one pinned for its name.
#[derive(Debug)]
struct PinnedServers(Arc<Pins>);

impl ServerCertVerifier for PinnedServers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let name = server_name.to_str();
        match self.0.peers.get(name.as_ref()) {
            Some(pinned) if pinned.as_ref() == end_entity.as_ref() => {
                Ok(ServerCertVerified::assertion())
            }
            Some(_) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            )),
        }
    }

    handshake_signatures!();
}

/// Accepts exactly the driver's and the peers' pinned certificates from clients.
#[derive(Debug)]
struct PinnedClients(Arc<Pins>);

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        if self
            .0
            .clients
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    handshake_signatures!();
}
