//! `RpcConfig`'s certificates and TLS: the server's identity, what a client trusts and
//! the name it checks, mutual TLS, cipher suites, and 0-RTT.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use super::RpcConfig;
use crate::transport::{CipherSuite, DevPki, Identity, IdentitySource, TrustSource};

impl RpcConfig {
    /// The private key file (PEM) that matches `cert_path`, for a server.
    pub fn with_key_path(mut self, key_path: impl Into<PathBuf>) -> Self {
        self.endpoint.tls.key_path = Some(key_path.into());
        self
    }

    /// The name the client expects in the server's certificate. Default `"localhost"`.
    pub fn with_server_name(mut self, server_name: impl Into<String>) -> Self {
        self.server_name = server_name.into();
        self
    }

    /// An in-memory identity for a server to present, instead of `cert_path`/`key_path`.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.endpoint.tls.identity = Some(identity);
        self
    }

    /// In-memory certificates a client trusts, instead of the file at `cert_path`.
    pub fn with_trusted_certificates(mut self, certs: Vec<CertificateDer<'static>>) -> Self {
        self.endpoint.tls.trust = Some(certs);
        self
    }

    /// Mutual TLS, server side: require every client to present a certificate signed by a CA
    /// in this PEM file. Connections without one fail their handshake.
    pub fn with_client_ca_path(mut self, ca_path: impl Into<PathBuf>) -> Self {
        self.endpoint.tls.client_ca = Some(TrustSource::File(ca_path.into()));
        self
    }

    /// Mutual TLS, server side: require client certificates signed by one of these CAs.
    pub fn with_client_ca_certificates(mut self, certs: Vec<CertificateDer<'static>>) -> Self {
        self.endpoint.tls.client_ca = Some(TrustSource::Memory(certs));
        self
    }

    /// Mutual TLS, client side: present this certificate chain and key (PEM files).
    pub fn with_client_identity_paths(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.endpoint.tls.client_identity = Some(IdentitySource::Files { cert: cert.into(), key: key.into() });
        self
    }

    /// Mutual TLS, client side: present this in-memory identity.
    pub fn with_client_identity(mut self, identity: Identity) -> Self {
        self.endpoint.tls.client_identity = Some(IdentitySource::Memory(identity));
        self
    }

    /// Development mutual TLS: servers require a certificate from the development CA and
    /// clients present one (`rpcnet-dev-client`). See [`dev`](Self::dev).
    pub fn with_dev_client_auth(mut self) -> Self {
        let pki = match DevPki::try_get() {
            Ok(pki) => pki,
            Err(err) => {
                self.dev_ca_error = Some(err);
                return self;
            }
        };
        let ca = vec![pki.ca_certificate().clone()];
        self.with_client_ca_certificates(ca).with_client_identity(pki.client_identity().clone())
    }

    /// The TLS 1.3 cipher suites this side offers (a client) or accepts (a server), most
    /// preferred first. Default: all three of ring's, AES-128-GCM, AES-256-GCM and
    /// ChaCha20-Poly1305, in that order. The list may not be empty, and each entry must be
    /// one of those three (`TLS13_AES_128_CCM_8_SHA256`, which QUIC forbids, and TLS 1.2
    /// suites are errors). QUIC's Initial packets are always protected with AES-128-GCM
    /// (RFC 9001), whatever this list says; the handshake negotiates only from the list, so
    /// two sides with no suite in common fail it.
    ///
    /// ```
    /// use rpcnet::{CipherSuite, RpcConfig};
    /// let config = RpcConfig::dev("127.0.0.1:0").with_cipher_suites(&[
    ///     CipherSuite::TLS13_AES_128_GCM_SHA256,
    ///     CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    /// ]);
    /// config.validate().unwrap();
    /// ```
    pub fn with_cipher_suites(mut self, suites: &[CipherSuite]) -> Self {
        self.endpoint.tls.cipher_suites = Some(suites.to_vec());
        self
    }

    /// Session resumption with 0-RTT (the rpcnet 0.1 book's `with_session_tickets_enabled`).
    /// Default off.
    ///
    /// A server then keeps sessions (up to 4,096, in memory) for clients to resume and
    /// accepts early data (rustls' `max_early_data_size` is `u32::MAX`, the one value QUIC
    /// allows); it cannot be combined with mutual TLS on a server (bind fails), since early
    /// calls would run before the client's certificate is checked.
    ///
    /// A client saves the sessions its servers give it, in a store shared by every client
    /// made from clones of this configuration (256 servers), and resumes with 0-RTT: when
    /// it connects (or reconnects) to a server it has a session for, `connect` returns at
    /// once and calls start before the handshake completes. Only idempotent unary calls
    /// ([`CallOptions::with_idempotent`](crate::CallOptions::with_idempotent), or methods
    /// marked `#[rpc(idempotent)]`) are sent in early data, which an attacker on the path
    /// could replay; every other call waits for the handshake. If the server rejects the
    /// early data (it lost the session, say after a restart), the idempotent calls sent in
    /// it are sent again after the handshake, unseen by the caller. The server's certificate
    /// is not shown again on a resumed handshake: the session stands for the one it was
    /// made with.
    ///
    /// ```
    /// let config = rpcnet::RpcConfig::dev("127.0.0.1:0").with_zero_rtt(true);
    /// config.validate().unwrap();
    /// ```
    pub fn with_zero_rtt(mut self, enabled: bool) -> Self {
        self.endpoint.tls.early_data = enabled;
        self.endpoint.tls.client_sessions = enabled.then(Arc::default);
        self
    }

    /// Whether 0-RTT is on ([`with_zero_rtt`](Self::with_zero_rtt)).
    pub fn zero_rtt(&self) -> bool {
        self.endpoint.tls.early_data
    }
}
