//! What the transport is told: where TLS material comes from, and the socket and QUIC
//! parameters of an endpoint. `RpcConfig` fills these in; the transport reads nothing else,
//! so it knows nothing of the layers above it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use super::resumption::SharedClientTls;
use super::{CongestionControl, Identity};

/// Where a TLS identity (certificate chain and private key) comes from.
#[derive(Debug, Clone)]
pub(crate) enum IdentitySource {
    /// PEM files, read when the server binds or the client connects.
    Files { cert: PathBuf, key: PathBuf },
    /// Already in memory.
    Memory(Identity),
}

/// Where trusted certificates (trust anchors) come from.
#[derive(Debug, Clone)]
pub(crate) enum TrustSource {
    /// A PEM file with one or more certificates.
    File(PathBuf),
    /// Already in memory.
    Memory(Vec<CertificateDer<'static>>),
}

/// TLS material of an endpoint. As in the rpcnet 0.1 book, `cert_path` is a server's own
/// certificate chain (with `key_path`) and the certificate a client trusts; the in-memory
/// fields take precedence over the files.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    pub(crate) cert_path: PathBuf,
    pub(crate) key_path: Option<PathBuf>,
    /// A server's identity in memory.
    pub(crate) identity: Option<Identity>,
    /// A client's trust anchors in memory.
    pub(crate) trust: Option<Vec<CertificateDer<'static>>>,
    /// Mutual TLS, server side: the CAs a client certificate must come from.
    pub(crate) client_ca: Option<TrustSource>,
    /// Mutual TLS, client side: the identity presented.
    pub(crate) client_identity: Option<IdentitySource>,
    /// The TLS 1.3 cipher suites offered or accepted, most preferred first; `None`: all
    /// that the crypto provider offers, in its order.
    pub(crate) cipher_suites: Option<Vec<rustls::CipherSuite>>,
    /// Session resumption with 0-RTT: a client sends early data, a server accepts it.
    pub(crate) early_data: bool,
    /// With 0-RTT, a client's TLS configuration and saved sessions, shared by the endpoints
    /// made from clones of one configuration, so that a new client resumes where an earlier
    /// one left off. `None`: each endpoint has its own.
    pub(crate) client_sessions: Option<Arc<SharedClientTls>>,
}

impl TlsSettings {
    /// Sessions saved from now on are not shared with the endpoints that shared them so far
    /// (they were made under another trust).
    pub(crate) fn fresh_sessions(&mut self) {
        if self.client_sessions.is_some() {
            self.client_sessions = Some(Arc::default());
        }
    }
}

/// The UDP socket and QUIC parameters of an endpoint, server or client.
#[derive(Debug, Clone)]
pub(crate) struct EndpointSettings {
    pub(crate) bind_addr: SocketAddr,
    pub(crate) udp_buffer_size: usize,
    /// A fixed packet size: QUIC starts with it and never probes past it.
    pub(crate) max_udp_payload_size: Option<u16>,
    /// Without a fixed size: QUIC starts at 1,200 bytes and probes the path up to this.
    pub(crate) mtu_upper_bound: u16,
    /// Bytes a peer may send on one connection ahead of what the application has read.
    pub(crate) receive_window: u32,
    /// The same for one stream; `None`: the connection's window, up to 2 MiB.
    pub(crate) stream_receive_window: Option<u32>,
    pub(crate) congestion: CongestionControl,
    /// Calls (bidirectional streams) a peer may have open at once on a server's connection.
    pub(crate) max_concurrent_streams: u32,
    pub(crate) idle_timeout: Duration,
    pub(crate) keep_alive_interval: Option<Duration>,
    pub(crate) tls: TlsSettings,
}
