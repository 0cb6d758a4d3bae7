//! `RpcConfig`: certificates, addresses, limits and timeouts shared by servers and clients.
//! Setters never fail or clamp; `validate` (called by `bind` and `connect`) names any value
//! out of range and the setter that fixes it. The setters live by topic: `tls.rs`,
//! `limits.rs` and `quic.rs`; the checks in `validate.rs`.

mod limits;
mod quic;
#[cfg(test)]
mod tests;
mod tls;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RpcError;
use crate::transport::{CongestionControl, DevPki, EndpointSettings, TlsSettings};
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

    /// The local address to bind. Default: the one given to [`new`](Self::new), which this
    /// replaces (and with it any error in that one).
    pub fn with_bind_addr(mut self, bind_addr: SocketAddr) -> Self {
        self.endpoint.bind_addr = bind_addr;
        self.bind_addr_error = None;
        self
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
