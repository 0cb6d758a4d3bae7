//! `Peer`: who is at the other end of a connection, learnt once when the connection is
//! accepted: its address and, under mutual TLS, the identity in its verified certificate.
//! Every call of the connection shares it.

use std::net::SocketAddr;

use rustls::pki_types::CertificateDer;

/// The identity a client proved with its certificate under mutual TLS
/// ([`RpcConfig::with_client_auth`](crate::RpcConfig)): read from the certificate the
/// server verified, so it cannot be claimed without the matching private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub(crate) certificate: CertificateDer<'static>,
    pub(crate) subject: String,
    pub(crate) common_name: Option<String>,
    pub(crate) dns_names: Vec<String>,
    pub(crate) uris: Vec<String>,
}

impl PeerIdentity {
    /// The certificate's subject, as an RFC 4514 string (`CN=billing,O=Example`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's common name, if it has one.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The DNS names among the certificate's subject alternative names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The URIs among the certificate's subject alternative names (SPIFFE ids, for example).
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The certificate as it was received (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }
}

/// The other end of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) address: SocketAddr,
    pub(crate) identity: Option<PeerIdentity>,
}

impl Peer {
    /// The peer of an accepted connection.
    pub(crate) fn of(connection: &quinn::Connection) -> Self {
        Self { address: connection.remote_address(), identity: None }
    }
}
