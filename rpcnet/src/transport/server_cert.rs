//! `ServerCertificate`: the certificate and key a running server presents, swapped whole
//! when it is reloaded. Handshakes after the swap present the new one; connections already
//! open keep the session they made.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Identity;
use crate::error::RpcError;

/// What rustls asks for the certificate of each handshake. Reading it is one atomic load
/// (`ArcSwap`), so a reload never blocks a handshake, nor a handshake a reload.
pub(crate) struct ServerCertificate {
    current: ArcSwap<CertifiedKey>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertificate {
    /// The certificate of `identity`, checked as [`replace`](Self::replace) checks it.
    pub(crate) fn new(identity: Identity, provider: Arc<CryptoProvider>) -> Result<Self, RpcError> {
        let key = certified(identity, &provider)?;
        Ok(Self { current: ArcSwap::from_pointee(key), provider })
    }

    /// Presents `identity` from the next handshake on. Its key must load and match the
    /// public key of its leaf certificate; otherwise nothing changes.
    pub(crate) fn replace(&self, identity: Identity) -> Result<(), RpcError> {
        let key = certified(identity, &self.provider)?;
        self.current.store(Arc::new(key));
        Ok(())
    }

    /// The leaf certificate presented now.
    #[cfg(test)]
    pub(crate) fn leaf(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.current.load().cert[0].clone()
    }
}

/// A rustls certified key: the key loaded by the provider, and checked against the leaf.
fn certified(identity: Identity, provider: &CryptoProvider) -> Result<CertifiedKey, RpcError> {
    CertifiedKey::from_der(identity.chain, identity.key, provider)
        .map_err(|e| RpcError::Config(format!("the server certificate and key do not form a usable identity: {e}")))
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("ServerCertificate").field("chain", &self.current.load().cert.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::DevPki;

    #[test]
    fn a_key_that_does_not_match_is_refused_and_the_old_certificate_stays() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pki = DevPki::get();
        let certificate = ServerCertificate::new(pki.server_identity().clone(), provider).unwrap();
        let (a, b) = (pki.issue("a.test").unwrap(), pki.issue("b.test").unwrap());
        let mismatched = Identity::new(a.chain().to_vec(), b.key.clone_key());
        let err = certificate.replace(mismatched).unwrap_err();
        assert!(err.to_string().contains("do not form a usable identity"), "got {err}");
        assert_eq!(certificate.leaf(), pki.server_identity().chain()[0], "the old certificate stays");
        certificate.replace(a.clone()).unwrap();
        assert_eq!(certificate.leaf(), a.chain()[0], "the new certificate is presented");
    }
}
