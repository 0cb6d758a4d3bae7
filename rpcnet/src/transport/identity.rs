//! `Identity`: a certificate chain and its private key, from PEM files or memory.

use std::fmt;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::RpcError;

/// A certificate chain (leaf first) and the private key of its leaf: what a server presents,
/// or a client under mutual TLS.
pub struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Identity {
    /// An identity from DER certificates (leaf first) and a DER private key.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self { chain, key }
    }

    /// Parses PEM text: one or more certificates, and one private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, RpcError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RpcError::Config(format!("cannot parse certificate PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| RpcError::Config(format!("cannot parse private key PEM: {e}")))?;
        Self::checked(chain, key, "the PEM text")
    }

    /// Reads PEM files: a certificate chain and its private key.
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, RpcError> {
        let chain = read_certificates(cert_path)?;
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|e| RpcError::Config(format!("cannot read private key from {}: {e}", key_path.display())))?;
        Self::checked(chain, key, &cert_path.display().to_string())
    }

    fn checked(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, from: &str) -> Result<Self, RpcError> {
        if chain.is_empty() {
            return Err(RpcError::Config(format!("no certificate found in {from}")));
        }
        Ok(Self { chain, key })
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Identity").field("certificates", &self.chain.len()).finish_non_exhaustive()
    }
}

/// Reads every certificate of a PEM file; an empty file is an error.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, RpcError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| RpcError::Config(format!("cannot read certificates from {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(RpcError::Config(format!("no certificate found in {}", path.display())));
    }
    Ok(certs)
}
