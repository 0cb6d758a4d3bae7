//! The development PKI: a CA shared by the processes of one user on one machine (kept on
//! disk by `dev/store.rs`), and identities it signs for `localhost`, so demos and tests
//! need no certificate files, even with server and client in two terminals.

mod store;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use self::store::{DIR_ENV, StoreError};
use super::Identity;
use crate::error::RpcError;

/// A development certificate authority, shared by every process of the user on this
/// machine that uses it, and the identities it signs.
///
/// It signs a server identity valid for `localhost`, `127.0.0.1` and `::1`, a client identity
/// for mutual TLS, and any further identities ([`issue`](Self::issue)), for example one per
/// cluster node. Each process issues its own identities; all of them chain to the one CA,
/// so a server started in one terminal and a client in another trust each other.
///
/// **For development only.** The CA's key is kept in `$RPCNET_DEV_CA_DIR` if set, else in
/// `$XDG_DATA_HOME/rpcnet/dev-ca`, else `~/.local/share/rpcnet/dev-ca`, in `ca-key.pem`
/// (directory mode 0700, file 0600): anyone who can read it can impersonate any server
/// to clients in development mode. It is made the first time a process needs it, with a
/// warning naming the directory; two processes starting at once agree on one CA. It is
/// never used unless a program asks for it ([`RpcConfig::dev`](crate::RpcConfig::dev),
/// [`RpcConfig::with_dev_client_auth`](crate::RpcConfig::with_dev_client_auth) or
/// this type); certificates are verified as always.
///
/// - A key file that other users can read or write, a directory that they can write, or
///   a file that does not parse is refused: [`try_get`](Self::try_get) returns why (and
///   `RpcConfig::validate` reports it), naming the fix.
/// - If the directory cannot be made or written (no `HOME`, a read-only file system),
///   the CA is made in memory for this process alone, with a warning: everything within
///   the process works, but other processes will not trust it.
///
/// The workspace's `.cargo/config.toml` points `RPCNET_DEV_CA_DIR` at
/// `target/rpcnet-dev-ca`, so that its tests and examples leave the home directory alone.
///
/// ```
/// let pki = rpcnet::transport::DevPki::try_get().unwrap();
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
    /// The development PKI of this user on this machine, loaded (or made) on first use in
    /// the process. An error says why the stored CA was refused and how to fix it.
    pub fn try_get() -> Result<&'static DevPki, RpcError> {
        static PKI: OnceLock<Result<DevPki, RpcError>> = OnceLock::new();
        PKI.get_or_init(DevPki::shared).as_ref().map_err(Clone::clone)
    }

    /// The development PKI, as [`try_get`](Self::try_get).
    ///
    /// # Panics
    ///
    /// If the stored CA is refused (see [`try_get`](Self::try_get)), with the reason and
    /// its fix.
    #[track_caller]
    pub fn get() -> &'static DevPki {
        match Self::try_get() {
            Ok(pki) => pki,
            Err(err) => panic!("{err}"),
        }
    }

    /// The CA kept in the shared directory, or one of this process's own where there is none.
    fn shared() -> Result<Self, RpcError> {
        let Some(dir) = store::shared_dir() else {
            tracing::warn!(
                "neither {DIR_ENV} nor HOME is set: the development CA is this process's own, and other \
                 processes will not trust its certificates"
            );
            return Ok(Self::in_memory());
        };
        match Self::stored_in(&dir) {
            Ok(pki) => Ok(pki),
            Err(StoreError::Unwritable(reason)) => {
                tracing::warn!(
                    "{reason}: the development CA is this process's own, and other processes will not trust its \
                     certificates; set {DIR_ENV} to a writable directory to share one"
                );
                Ok(Self::in_memory())
            }
            Err(StoreError::Refused(reason)) => Err(RpcError::Config(reason)),
        }
    }

    /// The CA stored in `dir`, made there if there is none yet.
    fn stored_in(dir: &Path) -> Result<Self, StoreError> {
        let (pem, created) = store::load_or_create(dir, new_ca_pem)?;
        let pki = Self::from_ca_pem(pem).map_err(|e| {
            StoreError::Refused(format!(
                "cannot use the development CA in {}: {e}; delete the directory to make a new CA",
                dir.join(store::FILE).display()
            ))
        })?;
        if created {
            tracing::warn!(
                dir = %dir.display(),
                "created a development CA for RpcConfig::dev, for development only: every process of this user \
                 that uses development mode trusts it; never use it in production"
            );
        } else {
            tracing::debug!(dir = %dir.display(), "using the development CA");
        }
        Ok(pki)
    }

    /// A CA of this process alone.
    fn in_memory() -> Self {
        Self::from_ca_pem(new_ca_pem()).expect("bug in rpcnet: a new development CA does not parse")
    }

    /// The PKI of a CA stored as PEM (its certificate, then its PKCS#8 key), with fresh
    /// identities signed by it.
    fn from_ca_pem(pem: String) -> Result<Self, String> {
        let ca = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("no CA certificate: {e}"))?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("no CA key: {e}"))?;
        let key = KeyPair::try_from(key.secret_pkcs8_der()).map_err(|e| format!("unusable CA key: {e}"))?;
        // What a leaf names as its issuer comes from these parameters, which are those the
        // CA certificate was made with (`ca_params`), and its key identifier from the key.
        let issuer = Issuer::new(ca_params(), key);
        let certificate_end = pem.find("-----END CERTIFICATE-----").map_or(0, |at| at + 25);
        let ca_pem = format!("{}\n", &pem[..certificate_end]);
        let issued = |name, names: &[&str]| issue(&issuer, name, names).map_err(|e| format!("cannot sign: {e}"));
        let (server, server_pem) = issued("localhost", &["localhost", "127.0.0.1", "::1"])?;
        let (client, _) = issued("rpcnet-dev-client", &["rpcnet-dev-client"])?;
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

/// The parameters of every development CA: the subject its leaves name as their issuer.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names to check");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "rpcnet development CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// A new CA as it is stored: its certificate, then its key, as PEM.
fn new_ca_pem() -> String {
    let make = || -> Result<String, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
    };
    make().expect("bug in rpcnet: cannot generate the development CA")
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
    fn two_loads_of_one_directory_share_the_ca_and_issue_identities_of_their_own() {
        let dir = std::env::temp_dir().join(format!("rpcnet-devpki-shared-{}", std::process::id()));
        let first = DevPki::stored_in(&dir).unwrap();
        let second = DevPki::stored_in(&dir).unwrap();
        assert_eq!(first.ca_certificate(), second.ca_certificate(), "one CA for every load");
        assert_eq!(first.ca_pem, second.ca_pem);
        assert!(first.ca_pem.starts_with("-----BEGIN CERTIFICATE-----") && !first.ca_pem.contains("PRIVATE KEY"));
        assert_ne!(first.server.chain, second.server.chain, "each load signs identities of its own");
        std::fs::write(dir.join(store::FILE), "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
        match DevPki::stored_in(&dir) {
            Err(StoreError::Refused(message)) => assert!(message.contains("delete the directory"), "{message}"),
            other => panic!("a CA that does not parse must be refused, got {:?}", other.map(|_| ())),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

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
