//! `RpcConfig`: certificates, addresses, limits and timeouts shared by servers and clients.
//! Setters never fail or clamp; `validate` (called by `bind` and `connect`) names any value
//! out of range and the setter that fixes it.
//!
//! Longer than 500 lines: a setter with its documented default for every setting of every
//! layer, and all their checks, kept in one file so that every limit is found in one place.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::error::RpcError;
use crate::transport::{
    CipherSuite, CongestionControl, DevPki, EndpointSettings, Identity, IdentitySource, TlsSettings, TrustSource,
};
use crate::wire::Limits;

/// Configuration of a server or client: TLS material, bind address, limits and timeouts.
///
/// Built as the rpcnet 0.1 book shows, from files:
///
/// ```no_run
/// use std::time::Duration;
/// use rpcnet::RpcConfig;
/// // A server: `cert_path` is its certificate chain, `key_path` its private key.
/// let server = RpcConfig::new("certs/server.pem", "127.0.0.1:0")
///     .with_key_path("certs/server-key.pem")
///     .with_server_name("localhost")
///     .with_keep_alive_interval(Duration::from_secs(30));
/// // A client: `cert_path` is the certificate (or CA) it trusts.
/// let client = RpcConfig::new("certs/ca.pem", "127.0.0.1:0").with_server_name("localhost");
/// ```
///
/// or, for development, with a certificate for `localhost` from the development CA that the
/// processes of this user share (see [`DevPki`]), and no files to manage:
///
/// ```
/// let config = rpcnet::RpcConfig::dev("127.0.0.1:0");
/// assert_eq!(config.server_name(), "localhost");
/// ```
///
/// Certificate verification is always on; there is no setting that turns it off.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// The socket, QUIC parameters and TLS material, as the transport reads them.
    pub(crate) endpoint: EndpointSettings,
    pub(crate) server_name: String,
    pub(crate) limits: Limits,
    pub(crate) max_in_flight_calls: usize,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_address: usize,
    /// `None`: twice the largest frame, and at least 32 MiB.
    pub(crate) max_buffered_per_connection: Option<usize>,
    pub(crate) default_timeout: Option<Duration>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) handshake_idle_timeout: Duration,
    pub(crate) shutdown_grace_period: Duration,
    /// Why the address given to `new` is unusable, for `validate` to report.
    bind_addr_error: Option<String>,
    /// Why the development CA was refused, for `validate` to report.
    dev_ca_error: Option<RpcError>,
}

impl RpcConfig {
    /// A configuration from certificate files, as in rpcnet 0.1.
    ///
    /// For a server, `cert_path` is its PEM certificate chain (add the key with
    /// [`with_key_path`](Self::with_key_path)). For a client, it is the PEM certificate or
    /// CA that the client trusts. `bind_addr` is the local address: use port 0 to let the
    /// OS choose.
    ///
    /// `bind_addr` is an IP address and port (`"127.0.0.1:0"`, `"[::1]:0"`) or a host
    /// name and port (`"localhost:8080"`), resolved here, once. Of a name's addresses the
    /// first IPv4 one is taken, else the first: `localhost` then binds where peers given
    /// `127.0.0.1` find it, also on hosts without IPv6. An address that is not of this form
    /// or does not resolve is reported by [`validate`](Self::validate) (and so by `bind`
    /// and `connect`), naming the address.
    pub fn new(cert_path: impl Into<PathBuf>, bind_addr: impl AsRef<str>) -> Self {
        let (bind_addr, bind_addr_error) = match resolve_bind_addr(bind_addr.as_ref()) {
            Ok(addr) => (addr, None),
            Err(err) => (SocketAddr::from(([0, 0, 0, 0], 0)), Some(err)),
        };
        Self {
            endpoint: EndpointSettings {
                bind_addr,
                udp_buffer_size: 4 * 1024 * 1024,
                max_udp_payload_size: None,
                // Why these two: see `with_mtu_upper_bound` and `with_receive_window`.
                mtu_upper_bound: 65_527,
                receive_window: 4 * 1024 * 1024,
                stream_receive_window: None,
                congestion: CongestionControl::Cubic,
                max_concurrent_streams: 256,
                idle_timeout: Duration::from_secs(30),
                keep_alive_interval: Some(Duration::from_secs(10)),
                tls: TlsSettings { cert_path: cert_path.into(), ..TlsSettings::default() },
            },
            server_name: "localhost".to_owned(),
            limits: Limits::default(),
            max_in_flight_calls: 10_000,
            max_connections: 1_024,
            max_connections_per_address: 128,
            max_buffered_per_connection: None,
            default_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(5),
            request_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            handshake_idle_timeout: Duration::from_secs(10),
            shutdown_grace_period: Duration::from_secs(10),
            bind_addr_error,
            dev_ca_error: None,
        }
    }

    /// A development configuration: the server presents a certificate for `localhost`
    /// (and 127.0.0.1, ::1) signed by the development CA, and a client trusts exactly that
    /// CA. The CA is shared by the processes of this user on this machine, so a server and
    /// a client in two terminals trust each other; it is kept in a per-user directory
    /// (see [`DevPki`] for where, and `RPCNET_DEV_CA_DIR` to move it), made on first use
    /// with a warning. A stored CA that is unsafe (its key readable by others) is refused:
    /// [`validate`](Self::validate), and so `bind` and `connect`, say why.
    ///
    /// Never use it in production: anyone who can read the CA's key can impersonate any
    /// development server. `bind_addr` is read as by [`new`](Self::new).
    pub fn dev(bind_addr: impl AsRef<str>) -> Self {
        let mut config = Self::new(PathBuf::new(), bind_addr);
        match DevPki::try_get() {
            Ok(pki) => {
                config.endpoint.tls.identity = Some(pki.server_identity().clone());
                config.endpoint.tls.trust = Some(vec![pki.ca_certificate().clone()]);
            }
            Err(err) => config.dev_ca_error = Some(err),
        }
        config
    }

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

    /// A client sends a keep-alive this often so its idle connections stay open. Default
    /// 10 s; `None` lets idle connections close after the idle timeout, and the client
    /// reconnects on its next call. A server never sends keep-alives, whatever this says:
    /// keeping a connection is its client's choice, and a server's idle timeout
    /// ([`with_idle_timeout`](Self::with_idle_timeout)) reclaims connections whose client
    /// went quiet. The value still has to be less than the idle timeout.
    pub fn with_keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.endpoint.keep_alive_interval = interval.into();
        self
    }

    /// The local address to bind. Default: the one given to [`new`](Self::new), which this
    /// replaces (and with it any error in that one).
    pub fn with_bind_addr(mut self, bind_addr: SocketAddr) -> Self {
        self.endpoint.bind_addr = bind_addr;
        self.bind_addr_error = None;
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

    /// Largest message (frame payload) sent or accepted, in bytes. Default 16 MiB; range
    /// 64 B to 1 GiB. A larger frame fails with [`RpcError::FrameTooLarge`] before anything
    /// is allocated for it.
    pub fn with_max_frame_size(mut self, bytes: u32) -> Self {
        self.limits.max_frame_len = bytes;
        self
    }

    /// Largest request head accepted, in bytes. Default 8 KiB; range 64 B to 64 KiB - 1.
    pub fn with_max_head_size(mut self, bytes: u16) -> Self {
        self.limits.max_head_len = bytes;
        self
    }

    /// Most metadata entries accepted in one request head. Default 32.
    pub fn with_max_metadata_entries(mut self, entries: u8) -> Self {
        self.limits.max_metadata_entries = entries;
        self
    }

    /// Calls (QUIC streams) one client connection may have open at once on a server.
    /// Further calls wait on the client until one finishes. Default 256; at least 1.
    pub fn with_max_concurrent_streams(mut self, streams: u32) -> Self {
        self.endpoint.max_concurrent_streams = streams;
        self
    }

    /// Calls a server runs at once over all connections; more are refused at once with
    /// [`RpcError::Overloaded`]. Default 10,000; at least 1.
    pub fn with_max_in_flight_calls(mut self, calls: usize) -> Self {
        self.max_in_flight_calls = calls;
        self
    }

    /// Connections a server keeps at once; further handshakes are refused. Default 1,024.
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Deadline of a unary or client-streaming call that sets none itself. Default 30 s;
    /// `None` waits forever. Streaming responses have no default deadline.
    pub fn with_default_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.default_timeout = timeout.into();
        self
    }

    /// How long a client waits for a connection (handshake included). Default 5 s.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A connection with no traffic for this long is closed. Default 30 s; must exceed the
    /// keep-alive interval, and be below QUIC's limit of 2^62 ms. Both sides announce
    /// theirs and the shorter applies. Also named
    /// [`with_max_idle_timeout`](Self::with_max_idle_timeout).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.idle_timeout = timeout;
        self
    }

    /// The same setting as [`with_idle_timeout`](Self::with_idle_timeout), under the name of
    /// QUIC's transport parameter (`max_idle_timeout`) and of the rpcnet 0.1 book.
    pub fn with_max_idle_timeout(self, timeout: Duration) -> Self {
        self.with_idle_timeout(timeout)
    }

    /// Server side: the longest a request head (and a unary request message) may take to
    /// arrive, whatever the deadline, and the longest any request frame once begun (in
    /// streaming calls too) may go without a byte, so a peer that stops sending mid-frame
    /// frees its stream even on a call without a deadline. Default 10 s.
    pub fn with_request_read_timeout(mut self, timeout: Duration) -> Self {
        self.request_read_timeout = timeout;
        self
    }

    /// Server side: the longest a response write may go without the peer taking a byte
    /// (and the longest a finished reply may wait for the peer's acknowledgement). A call
    /// whose client does not read is then reset, with its permit and buffers freed; a slow
    /// but steady reader is not cut off. The call's deadline bounds the write as well.
    /// Default 10 s.
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Server side: a connection that opens no call within this time of its handshake is
    /// closed, so silent connections cannot hold the server's connection places. Clients
    /// reconnect on their next call. Default 10 s.
    pub fn with_handshake_idle_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_idle_timeout = timeout;
        self
    }

    /// Server side: connections one peer IP address may hold at once; more are refused at
    /// once. Default 128; at least 1. Both limits apply: one above
    /// [`with_max_connections`](Self::with_max_connections) is never reached.
    pub fn with_max_connections_per_address(mut self, connections: usize) -> Self {
        self.max_connections_per_address = connections;
        self
    }

    /// Server side: bytes of partly received request frames that the calls of one
    /// connection may hold together. A call whose next frame does not fit waits (QUIC flow
    /// control then holds its sender back) until others finish theirs; a frame stalled by
    /// its sender is cut off by the request read timeout. Default: twice the largest frame
    /// ([`with_max_frame_size`](Self::with_max_frame_size)), at least 32 MiB (so 32 MiB at
    /// the default frame size); a value set here must be at least the largest frame plus
    /// its 5-byte header. Each call may hold up to 64 KiB more before its frame's size is
    /// known.
    pub fn with_max_buffered_per_connection(mut self, bytes: usize) -> Self {
        self.max_buffered_per_connection = Some(bytes);
        self
    }

    /// The bytes of partial frames one connection may hold; see
    /// [`with_max_buffered_per_connection`](Self::with_max_buffered_per_connection).
    pub fn max_buffered_per_connection(&self) -> usize {
        let largest_frame = self.limits.max_frame_len as usize + crate::wire::FRAME_HEADER_LEN;
        self.max_buffered_per_connection.unwrap_or((2 * largest_frame).max(32 << 20))
    }

    /// Server side: how long a graceful shutdown lets calls in flight finish (and their
    /// replies be acknowledged) before it closes every connection. Default 10 s.
    pub fn with_shutdown_grace_period(mut self, grace: Duration) -> Self {
        self.shutdown_grace_period = grace;
        self
    }

    /// Send and receive buffer of the UDP socket, in bytes. Default 4 MiB: kernel defaults
    /// drop packets when many large calls arrive at once. The kernel may grant less
    /// (`net.core.rmem_max`).
    pub fn with_udp_buffer_size(mut self, bytes: usize) -> Self {
        self.endpoint.udp_buffer_size = bytes;
        self
    }

    /// A fixed packet size: the UDP payload QUIC starts with and never probes past. Unset by
    /// default, which starts at QUIC's safe 1,200 bytes and probes the path up to
    /// [`with_mtu_upper_bound`](Self::with_mtu_upper_bound). Set it only on paths known to
    /// carry it (up to 65,507 on IPv4 loopback): a path that drops such packets never
    /// completes a handshake. Range 1,200 to 65,527.
    pub fn with_max_udp_payload_size(mut self, bytes: u16) -> Self {
        self.endpoint.max_udp_payload_size = Some(bytes);
        self
    }

    /// The largest UDP payload path MTU discovery probes for. Default 65,527, UDP's
    /// largest. Packets start at 1,200 bytes, which every path carries, and grow as probes
    /// get through, so each path finds its own size (1,452 on Ethernet, 8,952 on jumbo
    /// frames, 65,495 on IPv4 loopback): fewer, larger packets cost less CPU per byte. A
    /// path that starts losing the larger packets is noticed and the size falls back to
    /// 1,200 (black-hole detection). A lower bound makes the search on an ordinary
    /// 1,500-byte path lose fewer probes (~230 KB per connection every 10 minutes at the
    /// default); 1,452 is quinn's own, for Ethernet. Range 1,200 to 65,527;
    /// [`with_max_udp_payload_size`](Self::with_max_udp_payload_size) takes precedence.
    pub fn with_mtu_upper_bound(mut self, bytes: u16) -> Self {
        self.endpoint.mtu_upper_bound = bytes;
        self
    }

    /// The most a peer may send on one connection ahead of what the application has read,
    /// over all its streams (QUIC's connection flow-control window), and so the most quinn
    /// buffers for a connection; the same figure bounds what is kept of this side's own
    /// writes until acknowledged, and one stream may take up to 2 MiB of it. Default 4 MiB:
    /// the default UDP buffer ([`with_udp_buffer_size`](Self::with_udp_buffer_size)), so a
    /// peer's burst fits in the socket (with 16 MiB or no bound, 16 calls of 1 MiB lost
    /// packets there and ran slower); it covers 1 Gbit/s at 32 ms round trips, and a
    /// server's worst case is `4 MiB x` [`with_max_connections`](Self::with_max_connections)
    /// (plus the calls its handlers hold). Raise it with the UDP buffer for long fat paths.
    /// Range 64 KiB to 1 GiB.
    pub fn with_receive_window(mut self, bytes: u32) -> Self {
        self.endpoint.receive_window = bytes;
        self
    }

    /// The connection's receive window: the same setting as
    /// [`with_receive_window`](Self::with_receive_window), under the name that sets it apart
    /// from [`with_stream_receive_window`](Self::with_stream_receive_window). Default 4 MiB;
    /// range 64 KiB to 1 GiB, and at least the stream window.
    pub fn with_connection_receive_window(self, bytes: u32) -> Self {
        self.with_receive_window(bytes)
    }

    /// The most a peer may send on one stream (one call) ahead of what the application has
    /// read (QUIC's stream flow-control window). Default: the connection's window, up to
    /// 2 MiB (so 2 MiB at the default 4 MiB), so a 1 MiB message goes out without waiting
    /// for credit while one stalled call cannot take the whole connection's window. Range 1
    /// byte to the connection's window (a `u32` always fits QUIC's 62-bit limit).
    pub fn with_stream_receive_window(mut self, bytes: u32) -> Self {
        self.endpoint.stream_receive_window = Some(bytes);
        self
    }

    /// The congestion controller of this side's connections. Default
    /// [`CongestionControl::Cubic`] (quinn's default, and what rpcnet's measurements ran).
    /// Each side controls only what it sends: a server's choice governs its responses.
    pub fn with_congestion_control(mut self, controller: CongestionControl) -> Self {
        self.endpoint.congestion = controller;
        self
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

    /// The certificate path given to [`new`](Self::new).
    pub fn cert_path(&self) -> &Path {
        &self.endpoint.tls.cert_path
    }

    /// The private key path, if set.
    pub fn key_path(&self) -> Option<&Path> {
        self.endpoint.tls.key_path.as_deref()
    }

    /// The local address to bind (`0.0.0.0:0` if the one given to [`new`](Self::new) was
    /// unusable: [`validate`](Self::validate) says why).
    pub fn bind_addr(&self) -> SocketAddr {
        self.endpoint.bind_addr
    }

    /// The name expected in the server's certificate.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The keep-alive interval, if any.
    pub fn keep_alive_interval(&self) -> Option<Duration> {
        self.endpoint.keep_alive_interval
    }

    /// The wire limits this configuration enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The deadline of calls that set none.
    pub fn default_timeout(&self) -> Option<Duration> {
        self.default_timeout
    }

    /// Checks every value against its range. `bind` and `connect` call this first.
    pub fn validate(&self) -> Result<(), RpcError> {
        fn out_of_range(what: &str, value: impl std::fmt::Debug, range: &str, setter: &str) -> RpcError {
            RpcError::Config(format!("{what} is {value:?}, must be {range}: fix it with RpcConfig::{setter}"))
        }
        if let Some(err) = &self.bind_addr_error {
            return Err(RpcError::Config(err.clone()));
        }
        if let Some(err) = &self.dev_ca_error {
            return Err(err.clone());
        }
        let limits = &self.limits;
        if !(64..=1 << 30).contains(&limits.max_frame_len) {
            return Err(out_of_range("max frame size", limits.max_frame_len, "64 B to 1 GiB", "with_max_frame_size"));
        }
        if limits.max_head_len < 64 {
            return Err(out_of_range("max head size", limits.max_head_len, "at least 64 B", "with_max_head_size"));
        }
        if self.endpoint.max_concurrent_streams == 0 {
            return Err(out_of_range("max concurrent streams", 0, "at least 1", "with_max_concurrent_streams"));
        }
        if self.max_in_flight_calls == 0 {
            return Err(out_of_range("max in-flight calls", 0, "at least 1", "with_max_in_flight_calls"));
        }
        if self.max_connections == 0 {
            return Err(out_of_range("max connections", 0, "at least 1", "with_max_connections"));
        }
        if self.max_connections_per_address == 0 {
            return Err(out_of_range(
                "max connections per address",
                0,
                "at least 1",
                "with_max_connections_per_address",
            ));
        }
        let largest_frame = limits.max_frame_len as usize + crate::wire::FRAME_HEADER_LEN;
        if let Some(buffered) = self.max_buffered_per_connection
            && buffered < largest_frame
        {
            return Err(out_of_range(
                "max buffered per connection",
                buffered,
                "at least the max frame size plus 5 bytes",
                "with_max_buffered_per_connection",
            ));
        }
        for (what, value, setter) in [
            ("connect timeout", self.connect_timeout, "with_connect_timeout"),
            ("idle timeout", self.endpoint.idle_timeout, "with_idle_timeout"),
            ("request read timeout", self.request_read_timeout, "with_request_read_timeout"),
            ("write timeout", self.write_timeout, "with_write_timeout"),
            ("handshake idle timeout", self.handshake_idle_timeout, "with_handshake_idle_timeout"),
        ] {
            if value.is_zero() {
                return Err(out_of_range(what, value, "more than zero", setter));
            }
        }
        if let Some(keep_alive) = self.endpoint.keep_alive_interval
            && (keep_alive.is_zero() || keep_alive >= self.endpoint.idle_timeout)
        {
            return Err(out_of_range(
                "keep-alive interval",
                keep_alive,
                "more than zero and less than the idle timeout",
                "with_keep_alive_interval",
            ));
        }
        if self.endpoint.udp_buffer_size < 64 * 1024 {
            return Err(out_of_range(
                "UDP buffer size",
                self.endpoint.udp_buffer_size,
                "at least 64 KiB",
                "with_udp_buffer_size",
            ));
        }
        if let Some(size) = self.endpoint.max_udp_payload_size
            && !(1200..=65_527).contains(&size)
        {
            return Err(out_of_range("max UDP payload size", size, "1200 to 65527", "with_max_udp_payload_size"));
        }
        if !(1200..=65_527).contains(&self.endpoint.mtu_upper_bound) {
            return Err(out_of_range(
                "MTU upper bound",
                self.endpoint.mtu_upper_bound,
                "1200 to 65527",
                "with_mtu_upper_bound",
            ));
        }
        if !(64 * 1024..=1 << 30).contains(&self.endpoint.receive_window) {
            return Err(out_of_range(
                "receive window",
                self.endpoint.receive_window,
                "64 KiB to 1 GiB",
                "with_receive_window",
            ));
        }
        if let Some(stream) = self.endpoint.stream_receive_window
            && (stream == 0 || stream > self.endpoint.receive_window)
        {
            return Err(out_of_range(
                "stream receive window",
                stream,
                &format!("1 byte to the connection's window ({} bytes)", self.endpoint.receive_window),
                "with_stream_receive_window",
            ));
        }
        if quinn::IdleTimeout::try_from(self.endpoint.idle_timeout).is_err() {
            return Err(out_of_range(
                "idle timeout",
                self.endpoint.idle_timeout,
                "below QUIC's limit of 2^62 ms",
                "with_idle_timeout",
            ));
        }
        if let Some(suites) = &self.endpoint.tls.cipher_suites {
            crate::transport::check_cipher_suites(suites)
                .map_err(|why| RpcError::Config(format!("{why}: fix it with RpcConfig::with_cipher_suites")))?;
        }
        Ok(())
    }
}

/// A bind address from `host:port` or an IP literal (see [`RpcConfig::new`]); the error
/// names the address and how to write one.
fn resolve_bind_addr(addr: &str) -> Result<SocketAddr, String> {
    // A literal needs no lookup.
    if let Ok(literal) = addr.parse() {
        return Ok(literal);
    }
    let advice = "write it as \"127.0.0.1:0\", \"[::1]:0\" or \"localhost:0\" (port 0: any free port)";
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|e| format!("bind address `{addr}` is not a usable `host:port` ({e}): {advice}"))?
        .collect();
    resolved
        .iter()
        .find(|candidate| candidate.is_ipv4())
        .or_else(|| resolved.first())
        .copied()
        .ok_or_else(|| format!("bind address `{addr}` resolves to no address: {advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        let config = RpcConfig::new("cert.pem", "127.0.0.1:0");
        config.validate().expect("defaults must validate");
        assert_eq!(config.limits().max_frame_len, 16 * 1024 * 1024);
        assert_eq!(config.default_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(config.server_name(), "localhost");
        assert_eq!(config.max_buffered_per_connection(), 2 * ((16 << 20) + 5), "two frames with headers");
        let large = config.with_max_frame_size(64 << 20);
        assert_eq!(large.max_buffered_per_connection(), 2 * ((64 << 20) + 5), "follows the largest frame");
        large.validate().expect("raising the frame size alone stays valid");
    }

    #[test]
    fn a_buffer_smaller_than_a_frame_is_refused() {
        let err = RpcConfig::new("c", "127.0.0.1:0").with_max_buffered_per_connection(1 << 20).validate().unwrap_err();
        assert!(err.to_string().contains("with_max_buffered_per_connection"), "got {err}");
    }

    #[test]
    fn out_of_range_values_name_their_setter() {
        let err = RpcConfig::new("c", "127.0.0.1:0").with_max_frame_size(10).validate().unwrap_err();
        assert!(err.to_string().contains("with_max_frame_size"), "got {err}");
        let err = RpcConfig::new("c", "127.0.0.1:0")
            .with_keep_alive_interval(Duration::from_secs(60))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("with_keep_alive_interval"), "got {err}");
        let err = RpcConfig::new("c", "127.0.0.1:0").with_mtu_upper_bound(1199).validate().unwrap_err();
        assert!(err.to_string().contains("with_mtu_upper_bound"), "got {err}");
        let err = RpcConfig::new("c", "127.0.0.1:0").with_receive_window(1024).validate().unwrap_err();
        assert!(err.to_string().contains("with_receive_window"), "got {err}");
        let err = RpcConfig::new("c", "127.0.0.1:0").with_stream_receive_window(0).validate().unwrap_err();
        assert!(err.to_string().contains("with_stream_receive_window"), "got {err}");
        let err = RpcConfig::new("c", "127.0.0.1:0")
            .with_connection_receive_window(1 << 20)
            .with_stream_receive_window(2 << 20)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("connection's window (1048576"), "a stream above its connection: {err}");
        let err = RpcConfig::new("c", "127.0.0.1:0").with_cipher_suites(&[]).validate().unwrap_err();
        assert!(err.to_string().contains("with_cipher_suites"), "got {err}");
        let tls12 = [CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
        let err = RpcConfig::new("c", "127.0.0.1:0").with_cipher_suites(&tls12).validate().unwrap_err();
        assert!(err.to_string().contains("not a TLS 1.3 suite"), "got {err}");
        let err = RpcConfig::new("c", "127.0.0.1:0")
            .with_max_idle_timeout(Duration::from_secs(u64::MAX / 1000))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("2^62"), "got {err}");
        let err = RpcConfig::new("c", "127.0.0.1:0").with_max_in_flight_calls(0).validate().unwrap_err();
        assert!(matches!(err, RpcError::Config(_)));
    }

    #[test]
    fn a_bind_address_is_a_literal_or_a_host_name_with_a_port() {
        assert_eq!(RpcConfig::new("c", "[::1]:7").bind_addr(), "[::1]:7".parse::<SocketAddr>().unwrap());
        assert_eq!(RpcConfig::dev("127.0.0.1:0").bind_addr(), "127.0.0.1:0".parse::<SocketAddr>().unwrap());
        let named = RpcConfig::new("c", "localhost:8080");
        named.validate().expect("a host name with a port is a bind address");
        assert!(named.bind_addr().ip().is_loopback() && named.bind_addr().port() == 8080, "{}", named.bind_addr());
    }

    #[test]
    fn a_bad_bind_address_is_a_configuration_error_naming_it() {
        for bad in ["nonsense", "localhost", "127.0.0.1", "localhost:http", "127.0.0.1:99999", ""] {
            let err = RpcConfig::new("c", bad).validate().unwrap_err();
            assert!(
                matches!(&err, RpcError::Config(m) if m.contains(&format!("`{bad}`")) && m.contains("localhost:0")),
                "`{bad}` must be refused with advice: {err:?}"
            );
            let err = RpcConfig::dev(bad).validate().unwrap_err();
            assert!(matches!(err, RpcError::Config(_)), "dev reads its address as new does: {err:?}");
        }
        let fixed = RpcConfig::new("c", "nonsense").with_bind_addr("127.0.0.1:0".parse().unwrap());
        fixed.validate().expect("with_bind_addr replaces the unusable address");
    }
}
