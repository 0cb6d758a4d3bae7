//! rustls configurations for QUIC: TLS 1.3 only, certificates always verified, mutual TLS
//! when the configuration asks for it.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{CipherSuite, RootCertStore};

use super::Identity;
use super::identity::read_certificates;
use super::resumption::ClientTlsInputs;
use super::server_cert::ServerCertificate;
use super::settings::{IdentitySource, TlsSettings, TrustSource};
use crate::error::RpcError;

/// The ALPN protocol name: a peer that does not offer it is refused during the handshake.
pub(crate) const ALPN: &[u8] = b"rpcnet/1";

/// Sessions a server with 0-RTT keeps for clients to resume (a few hundred bytes each).
const SERVER_SESSIONS: usize = 4096;

/// The crypto provider: ring's, with every TLS 1.3 suite it has unless `suites` picks some.
fn provider(suites: Option<&[CipherSuite]>) -> Result<Arc<CryptoProvider>, RpcError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = suites {
        check_cipher_suites(suites).map_err(RpcError::Config)?;
        let offered = std::mem::take(&mut provider.cipher_suites);
        provider.cipher_suites =
            suites.iter().filter_map(|wanted| offered.iter().find(|s| s.suite() == *wanted).copied()).collect();
    }
    Ok(Arc::new(provider))
}

/// Whether `suites` is a usable choice of cipher suites: not empty, each a TLS 1.3 suite
/// the crypto provider (ring) implements, none twice. `Err` says which is wrong.
pub(crate) fn check_cipher_suites(suites: &[CipherSuite]) -> Result<(), String> {
    if suites.is_empty() {
        return Err("the list of cipher suites is empty: leave it unset for all of them".into());
    }
    let offered = rustls::crypto::ring::default_provider().cipher_suites;
    for (i, wanted) in suites.iter().enumerate() {
        let tls13 = offered.iter().find(|s| s.suite() == *wanted).is_some_and(|s| s.tls13().is_some());
        if !tls13 {
            let why = if format!("{wanted:?}").starts_with("TLS13_") {
                "is not implemented by ring (rpcnet's crypto provider)"
            } else {
                "is not a TLS 1.3 suite, and rpcnet speaks TLS 1.3 only"
            };
            return Err(format!("cipher suite {wanted:?} {why}; choose among {:?}", tls13_suites()));
        }
        if suites[..i].contains(wanted) {
            return Err(format!("cipher suite {wanted:?} is listed twice"));
        }
    }
    Ok(())
}

/// The TLS 1.3 suites ring offers, in its order of preference.
fn tls13_suites() -> Vec<CipherSuite> {
    let offered = rustls::crypto::ring::default_provider().cipher_suites;
    offered.iter().filter(|s| s.tls13().is_some()).map(|s| s.suite()).collect()
}

/// The suite of QUIC's Initial packets. RFC 9001 (section 5.2) fixes it to AES-128-GCM
/// whatever the handshake negotiates, so it is taken from the provider apart from the
/// configured list: a list without AES-128-GCM still protects its Initial packets, as QUIC
/// requires, and negotiates only what it lists.
fn initial_suite() -> Result<rustls::quic::Suite, RpcError> {
    rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|suite| suite.quic_suite())
        .ok_or_else(|| RpcError::Internal("bug in rpcnet: ring has no QUIC suite AES-128-GCM".into()))
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

/// TLS for a server endpoint, and the certificate it presents (which can be replaced).
pub(crate) fn server_crypto(config: &TlsSettings) -> Result<(Arc<QuicServerConfig>, Arc<ServerCertificate>), RpcError> {
    let identity = server_identity(config)?;
    let provider = provider(config.cipher_suites.as_deref())?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error("TLS 1.3 is unavailable"))?;
    let builder = match &config.client_ca {
        Some(source) => {
            let roots = root_store(load_trust(source)?, "invalid client CA certificate")?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| RpcError::Config(format!("cannot build the client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let certificate = Arc::new(ServerCertificate::new(identity, provider)?);
    let mut tls = builder.with_cert_resolver(certificate.clone());
    tls.alpn_protocols = vec![ALPN.to_vec()];
    if config.early_data {
        // 0-RTT data is read before the client's Finished, so before a client certificate
        // is checked: with mutual TLS a server would serve calls from unverified clients.
        if config.client_ca.is_some() {
            return Err(RpcError::Config(
                "0-RTT cannot be combined with mutual TLS on a server: early calls would run before the client \
                 certificate is checked; drop RpcConfig::with_zero_rtt or the client CA"
                    .into(),
            ));
        }
        // QUIC allows no other value (RFC 9001, section 4.6.1): the limit is QUIC's flow control.
        tls.max_early_data_size = u32::MAX;
        // Sessions are kept here (stateful resumption): a ticket's session is taken out when
        // it is used for 0-RTT, so early data cannot be replayed to this server.
        tls.session_storage = ServerSessionMemoryCache::new(SERVER_SESSIONS);
    }
    let quic = QuicServerConfig::with_initial(Arc::new(tls), initial_suite()?)
        .map_err(|e| RpcError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
    Ok((Arc::new(quic), certificate))
}

/// TLS for a client endpoint. With 0-RTT on, endpoints made from clones of one
/// configuration share it (and its saved sessions) while it would be built the same.
pub(crate) fn client_crypto(config: &TlsSettings) -> Result<Arc<QuicClientConfig>, RpcError> {
    let trusted = match &config.trust {
        Some(certs) => load_trust(&TrustSource::Memory(certs.clone()))?,
        None => read_certificates(&config.cert_path)?,
    };
    let identity = match &config.client_identity {
        Some(IdentitySource::Files { cert, key }) => Some(Identity::from_pem_files(cert, key)?),
        Some(IdentitySource::Memory(identity)) => Some(identity.clone()),
        None => None,
    };
    match &config.client_sessions {
        Some(shared) => {
            let inputs = ClientTlsInputs::new(&trusted, identity.as_ref(), config.cipher_suites.as_deref());
            shared.get_or_build(inputs, || build_client_crypto(config, trusted, identity))
        }
        None => build_client_crypto(config, trusted, identity),
    }
}

fn build_client_crypto(
    config: &TlsSettings,
    trusted: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
) -> Result<Arc<QuicClientConfig>, RpcError> {
    let roots = root_store(trusted, "invalid trusted certificate")?;
    let builder = rustls::ClientConfig::builder_with_provider(provider(config.cipher_suites.as_deref())?)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error("TLS 1.3 is unavailable"))?
        .with_root_certificates(roots);
    let mut tls = match identity {
        Some(identity) => builder
            .with_client_auth_cert(identity.chain, identity.key)
            .map_err(tls_error("the client certificate and key do not form a usable identity"))?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // Sessions are resumed with rustls' own store (on by default, 256 servers); 0-RTT also
    // sends early data on them.
    tls.enable_early_data = config.early_data;
    let quic = QuicClientConfig::with_initial(Arc::new(tls), initial_suite()?)
        .map_err(|e| RpcError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
    Ok(Arc::new(quic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tls13_suites_of_ring_are_accepted_once_each() {
        assert!(check_cipher_suites(&[CipherSuite::TLS13_CHACHA20_POLY1305_SHA256]).is_ok());
        let all = tls13_suites();
        assert_eq!(all.len(), 3, "ring's TLS 1.3 suites: {all:?}");
        assert!(check_cipher_suites(&all).is_ok());
        let err = check_cipher_suites(&[]).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = check_cipher_suites(&[CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]).unwrap_err();
        assert!(err.contains("not a TLS 1.3 suite"), "{err}");
        let err = check_cipher_suites(&[CipherSuite::TLS13_AES_128_CCM_8_SHA256]).unwrap_err();
        assert!(err.contains("not implemented by ring"), "{err}");
        let twice = [CipherSuite::TLS13_AES_256_GCM_SHA384, CipherSuite::TLS13_AES_256_GCM_SHA384];
        assert!(check_cipher_suites(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn the_provider_offers_the_chosen_suites_in_the_chosen_order() {
        let chosen = [CipherSuite::TLS13_CHACHA20_POLY1305_SHA256, CipherSuite::TLS13_AES_128_GCM_SHA256];
        let chosen_provider = provider(Some(&chosen)).unwrap();
        let offered: Vec<_> = chosen_provider.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(offered, chosen);
        assert_eq!(
            provider(None).unwrap().cipher_suites.len(),
            rustls::crypto::ring::default_provider().cipher_suites.len()
        );
    }
}
