//! rustls configurations for QUIC: TLS 1.3 only, certificates always verified, mutual TLS
//! when the configuration asks for it.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;

use super::Identity;
use super::identity::read_certificates;
use super::settings::{IdentitySource, TlsSettings, TrustSource};
use crate::error::RpcError;

/// The ALPN protocol name: a peer that does not offer it is refused during the handshake.
pub(crate) const ALPN: &[u8] = b"rpcnet/1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: &str) -> impl FnOnce(rustls::Error) -> RpcError + '_ {
    move |e| RpcError::Config(format!("{what}: {e}"))
}

fn root_store(certs: Vec<CertificateDer<'static>>, what: &str) -> Result<RootCertStore, RpcError> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(tls_error(what))?;
    }
    Ok(roots)
}

fn load_trust(source: &TrustSource) -> Result<Vec<CertificateDer<'static>>, RpcError> {
    match source {
        TrustSource::File(path) => read_certificates(path),
        TrustSource::Memory(certs) if certs.is_empty() => {
            Err(RpcError::Config("the list of trusted certificates is empty".into()))
        }
        TrustSource::Memory(certs) => Ok(certs.clone()),
    }
}

/// The identity a server presents: in memory, or `cert_path` + `key_path`.
fn server_identity(config: &TlsSettings) -> Result<Identity, RpcError> {
    if let Some(identity) = &config.identity {
        return Ok(identity.clone());
    }
    let Some(key_path) = &config.key_path else {
        return Err(RpcError::Config(format!(
            "a server needs the private key of {}: set it with RpcConfig::with_key_path, or use RpcConfig::dev",
            config.cert_path.display()
        )));
    };
    Identity::from_pem_files(&config.cert_path, key_path)
}

/// TLS for a server endpoint.
pub(crate) fn server_crypto(config: &TlsSettings) -> Result<Arc<QuicServerConfig>, RpcError> {
    let identity = server_identity(config)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error("TLS 1.3 is unavailable"))?;
    let builder = match &config.client_ca {
        Some(source) => {
            let roots = root_store(load_trust(source)?, "invalid client CA certificate")?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| RpcError::Config(format!("cannot build the client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut tls = builder
        .with_single_cert(identity.chain, identity.key)
        .map_err(tls_error("the server certificate and key do not form a usable identity"))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicServerConfig::try_from(tls)
        .map_err(|e| RpcError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
    Ok(Arc::new(quic))
}

/// TLS for a client endpoint.
pub(crate) fn client_crypto(config: &TlsSettings) -> Result<Arc<QuicClientConfig>, RpcError> {
    let trusted = match &config.trust {
        Some(certs) => load_trust(&TrustSource::Memory(certs.clone()))?,
        None => read_certificates(&config.cert_path)?,
    };
    let roots = root_store(trusted, "invalid trusted certificate")?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error("TLS 1.3 is unavailable"))?
        .with_root_certificates(roots);
    let mut tls = match &config.client_identity {
        Some(source) => {
            let identity = match source {
                IdentitySource::Files { cert, key } => Identity::from_pem_files(cert, key)?,
                IdentitySource::Memory(identity) => identity.clone(),
            };
            builder
                .with_client_auth_cert(identity.chain, identity.key)
                .map_err(tls_error("the client certificate and key do not form a usable identity"))?
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls)
        .map_err(|e| RpcError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
    Ok(Arc::new(quic))
}
