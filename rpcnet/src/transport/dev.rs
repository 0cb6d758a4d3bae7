//! The development PKI: a CA made once per process, and identities it signs for
//! `localhost`, so demos and tests need no certificate files.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::Identity;
use crate::error::RpcError;

/// A development certificate authority, created in memory the first time it is used and
/// shared by everything in the process.
///
/// It signs a server identity valid for `localhost`, `127.0.0.1` and `::1`, a client identity
/// for mutual TLS, and any further identities ([`issue`](Self::issue)), for example one per
/// cluster node. For development and tests only: its key lives in process memory.
///
/// ```
/// let pki = rpcnet::transport::DevPki::get();
/// let node = pki.issue("node-7").unwrap();
/// assert_eq!(node.chain().len(), 1);
/// ```
pub struct DevPki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    server: Identity,
    /// The server identity as PEM (certificate, key), for `write_pem_files`.
    server_pem: (String, String),
    client: Identity,
}

impl std::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPki").finish_non_exhaustive()
    }
}

impl DevPki {
    /// The process-wide development PKI, built on first use (a few milliseconds).
    pub fn get() -> &'static DevPki {
        static PKI: OnceLock<DevPki> = OnceLock::new();
        PKI.get_or_init(|| DevPki::generate().expect("bug in rpcnet: cannot generate the development CA"))
    }

    fn generate() -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "rpcnet development CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let ca = cert.der().clone();
        let ca_pem = cert.pem();
        let issuer = Issuer::new(params, key);
        let (server, server_pem) = issue(&issuer, "localhost", &["localhost", "127.0.0.1", "::1"])?;
        let (client, _) = issue(&issuer, "rpcnet-dev-client", &["rpcnet-dev-client"])?;
        Ok(Self { ca, ca_pem, issuer, server, server_pem, client })
    }

    /// The CA certificate: what a client (or, under mutual TLS, a server) trusts.
    pub fn ca_certificate(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    /// The server identity for `localhost`, `127.0.0.1` and `::1`.
    pub fn server_identity(&self) -> &Identity {
        &self.server
    }

    /// A client identity (`rpcnet-dev-client`) for mutual TLS.
    pub fn client_identity(&self) -> &Identity {
        &self.client
    }

    /// A new identity signed by the CA, valid for `name` (a DNS name or IP address), as both
    /// server and client certificate.
    pub fn issue(&self, name: &str) -> Result<Identity, RpcError> {
        issue(&self.issuer, name, &[name])
            .map(|(identity, _)| identity)
            .map_err(|e| RpcError::Config(format!("cannot issue a development certificate for `{name}`: {e}")))
    }

    /// Writes the CA (`ca.pem`) and the server identity (`server.pem`, `server-key.pem`)
    /// into `dir`, so another process can use them through [`crate::RpcConfig::new`].
    /// Returns the path of the CA file.
    pub fn write_pem_files(&self, dir: &Path) -> Result<PathBuf, RpcError> {
        let io = |e: std::io::Error| RpcError::Config(format!("cannot write to {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, &self.ca_pem).map_err(io)?;
        std::fs::write(dir.join("server.pem"), &self.server_pem.0).map_err(io)?;
        std::fs::write(dir.join("server-key.pem"), &self.server_pem.1).map_err(io)?;
        Ok(ca_path)
    }
}

/// Signs a new identity; also returns it as PEM (certificate, key).
fn issue(
    issuer: &Issuer<'static, KeyPair>,
    common_name: &str,
    names: &[&str],
) -> Result<(Identity, (String, String)), rcgen::Error> {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    let pem = (cert.pem(), key.serialize_pem());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((Identity::new(vec![cert.der().clone()], key), pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_parse_back_into_the_same_identity() {
        let dir = std::env::temp_dir().join(format!("rpcnet-devpki-{}", std::process::id()));
        let pki = DevPki::get();
        let ca_path = pki.write_pem_files(&dir).unwrap();
        let ca = super::super::identity::read_certificates(&ca_path).unwrap();
        assert_eq!(ca, vec![pki.ca_certificate().clone()], "ca.pem must hold the CA certificate");
        let server = Identity::from_pem_files(&dir.join("server.pem"), &dir.join("server-key.pem")).unwrap();
        assert_eq!(server.chain, pki.server_identity().chain);
        assert_eq!(server.key.secret_der(), pki.server_identity().key.secret_der());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
