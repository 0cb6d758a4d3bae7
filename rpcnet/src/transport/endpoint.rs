//! quinn endpoints on UDP sockets with large buffers, the transport parameters every
//! rpcnet connection uses, and `ClientEndpoint`, the socket a client's connections share.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use quinn::{AckFrequencyConfig, EndpointConfig, MtuDiscoveryConfig, Runtime, TokioRuntime, TransportConfig, VarInt};
use rustls::pki_types::CertificateDer;
use socket2::{Domain, Protocol, Socket, Type};

use super::server_cert::ServerCertificate;
use super::settings::{EndpointSettings, TlsSettings};
use super::split_sends::SplitSends;
use super::tls;
use crate::error::RpcError;

/// Application close code of a server that shuts down gracefully.
pub(crate) const SHUTDOWN_CODE: VarInt = VarInt::from_u32(0);

/// Transport parameters from the configuration. A server (`is_server`) accepts streams and
/// sends no keep-alives; a client opens streams and keeps its connections alive.
fn transport(config: &EndpointSettings, is_server: bool) -> Result<TransportConfig, RpcError> {
    let mut transport = TransportConfig::default();
    let streams = if is_server { VarInt::from_u32(config.max_concurrent_streams) } else { VarInt::from_u32(0) };
    transport.max_concurrent_bidi_streams(streams);
    transport.max_concurrent_uni_streams(VarInt::from_u32(0));
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .map_err(|_| RpcError::Config("idle timeout is too large for QUIC".into()))?;
    transport.max_idle_timeout(Some(idle));
    // Keeping a connection is the client's choice: a server that pinged its idle clients
    // would keep every connection it ever accepted open forever. Its idle timeout reclaims
    // connections whose client went quiet or away.
    transport.keep_alive_interval(if is_server { None } else { config.keep_alive_interval });
    if let Some(size) = config.max_udp_payload_size {
        transport.initial_mtu(size);
        let mut mtu = MtuDiscoveryConfig::default();
        mtu.upper_bound(size);
        transport.mtu_discovery_config(Some(mtu));
        // The congestion window starts at 10 packets of 1472 bytes: above that, not one
        // packet of the larger size fits in it, and the handshake never starts.
        transport.congestion_controller_factory(config.congestion.factory(Some(10 * u64::from(size))));
    } else {
        transport.congestion_controller_factory(config.congestion.factory(None));
        // Packets start at QUIC's 1,200 bytes, which every path carries, and PLPMTUD (RFC
        // 8899) probes up to the bound: a lost probe costs only itself, and black-hole
        // detection (quinn keeps it on) falls back to 1,200 when a path shrinks later.
        // The default bound is 65,527, UDP's largest payload, not Ethernet's 1,452: each
        // path then finds its own size, 1,452 on Ethernet, 8,952 on jumbo frames, 65,495 on
        // IPv4 loopback. CPU goes per packet (~4 µs client and server at 1,452 bytes): on
        // loopback raw quinn at 16 KiB x 64 went from 74 to 28 µs per call with the bound at
        // 65,527, 38 at 8,952 and 46 at 16,384 (a 16 KiB call then needs two packets).
        // The price: on a 1,500-byte path the search loses about 30 probes (~230 KB) per
        // connection every 10 minutes, and quinn's receive buffer reserves bound x 64 GRO
        // segments x 32 slots of address space per endpoint (touched only as used).
        let mut mtu = MtuDiscoveryConfig::default();
        mtu.upper_bound(config.mtu_upper_bound);
        transport.mtu_discovery_config(Some(mtu));
    }
    // The initial congestion window stays RFC 9002's ~10 packets of 1,472 bytes: packets
    // grow only after discovery, by when slow start has opened the window, and quinn keeps
    // the window at two packets of the current size at least, so large packets never stall.
    // Flow control bounds memory: a peer may have at most `receive_window` bytes on a
    // connection that the application has not read, over all its streams; quinn buffers no
    // more. One stream may take up to 2 MiB of it (unless configured otherwise), so a 1 MiB
    // call is sent without waiting for credit while a stalled stream cannot hold the whole
    // window.
    let receive_window = config.receive_window;
    let stream_window = config.stream_receive_window.unwrap_or(receive_window.min(STREAM_RECEIVE_WINDOW));
    transport.receive_window(VarInt::from_u32(receive_window));
    transport.stream_receive_window(VarInt::from_u32(stream_window));
    // What is kept of this side's own writes until acknowledged: the same bound as what the
    // peer may leave with us.
    transport.send_window(u64::from(receive_window));
    // Ask the peer to acknowledge every 4th packet rather than every 2nd: fewer ACKs to
    // build, send, receive and process. 3 stays below the initial window of 10 packets,
    // so slow start never waits for the delayed-ACK timer; the peer's max ACK delay and
    // immediate ACKs on reordering (which signal loss) stay as they are. Measured on raw
    // quinn (65,527 bound): 16 KiB x 64 34k calls/s against 28k without, 1 MiB x 1 ~720
    // against ~280 (a threshold of 10 was no better, shorter ACK delays were worse).
    let mut ack = AckFrequencyConfig::default();
    ack.ack_eliciting_threshold(VarInt::from_u32(ACK_ELICITING_THRESHOLD));
    transport.ack_frequency_config(Some(ack));
    // GSO and GRO: one system call for up to 10 packets each way (`SplitSends` keeps a
    // batch within what one UDP send may carry).
    transport.enable_segmentation_offload(true);
    Ok(transport)
}

/// Packets the peer may receive before it must acknowledge.
const ACK_ELICITING_THRESHOLD: u32 = 3;

/// Most of the connection's receive window one stream may use, unless configured.
pub(crate) const STREAM_RECEIVE_WINDOW: u32 = 2 * 1024 * 1024;

/// The endpoint settings: the largest UDP payload it accepts follows the configured packet
/// size or the MTU discovery bound, or its receive buffers would cut larger packets short
/// (a handshake with 16 KiB packets then never completes), and the peer, told this limit,
/// would never probe past it.
fn endpoint_config(config: &EndpointSettings) -> Result<EndpointConfig, RpcError> {
    let mut endpoint = EndpointConfig::default();
    let (size, setter) = match config.max_udp_payload_size {
        Some(size) => (size, "with_max_udp_payload_size"),
        None => (config.mtu_upper_bound, "with_mtu_upper_bound"),
    };
    // quinn's default (1,472) already accepts anything up to Ethernet's size.
    if size > 1472 || config.max_udp_payload_size.is_some() {
        endpoint.max_udp_payload_size(size).map_err(|_| {
            RpcError::Config(format!("max UDP payload size {size} is out of range 1200 to 65527 ({setter})"))
        })?;
    }
    Ok(endpoint)
}

/// A quinn endpoint on `socket`, behind `SplitSends`.
fn new_endpoint(
    config: &EndpointSettings,
    server_config: Option<quinn::ServerConfig>,
    socket: std::net::UdpSocket,
) -> Result<quinn::Endpoint, RpcError> {
    let fail =
        |e: std::io::Error| RpcError::Config(format!("cannot start a QUIC endpoint on {}: {e}", config.bind_addr));
    let runtime = Arc::new(TokioRuntime);
    let socket = Arc::new(SplitSends::new(runtime.wrap_udp_socket(socket).map_err(fail)?));
    quinn::Endpoint::new_with_abstract_socket(endpoint_config(config)?, server_config, socket, runtime).map_err(fail)
}

/// A UDP socket with the configured send and receive buffers.
fn udp_socket(addr: SocketAddr, buffer_size: usize) -> Result<std::net::UdpSocket, RpcError> {
    let io = |what: &'static str| move |e: std::io::Error| RpcError::Config(format!("cannot {what} {addr}: {e}"));
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(io("open a UDP socket for"))?;
    // The kernel may cap these (net.core.rmem_max); a smaller buffer still works, it only
    // drops more packets under bursts, so failing here would be worse than going on.
    if let Err(e) = socket.set_recv_buffer_size(buffer_size) {
        tracing::debug!(%addr, error = %e, "cannot set the UDP receive buffer size");
    }
    if let Err(e) = socket.set_send_buffer_size(buffer_size) {
        tracing::debug!(%addr, error = %e, "cannot set the UDP send buffer size");
    }
    socket.bind(&addr.into()).map_err(io("bind"))?;
    Ok(socket.into())
}

/// A server endpoint bound to `config.bind_addr`, and the certificate it presents.
pub(crate) fn server_endpoint(
    config: &EndpointSettings,
) -> Result<(quinn::Endpoint, Arc<ServerCertificate>), RpcError> {
    let (crypto, certificate) = tls::server_crypto(&config.tls)?;
    let mut server_config = quinn::ServerConfig::with_crypto(crypto);
    server_config.transport_config(Arc::new(transport(config, true)?));
    let socket = udp_socket(config.bind_addr, config.udp_buffer_size)?;
    Ok((new_endpoint(config, Some(server_config), socket)?, certificate))
}

/// A client-side QUIC endpoint (one UDP socket) that connections to several servers share;
/// closed when the last handle to it is gone. Its TLS settings can change
/// ([`reload_trust`](Self::reload_trust)) for the connections it makes next.
#[derive(Clone)]
pub(crate) struct ClientEndpoint {
    inner: Arc<EndpointHandle>,
}

struct EndpointHandle {
    endpoint: quinn::Endpoint,
    transport: Arc<TransportConfig>,
    /// What the next connection is made with, and the TLS settings it was built from. Read
    /// once per connection, never per call.
    client: Mutex<(quinn::ClientConfig, TlsSettings)>,
}

impl Drop for EndpointHandle {
    fn drop(&mut self) {
        self.endpoint.close(VarInt::from_u32(0), b"client closed");
    }
}

impl ClientEndpoint {
    /// A new endpoint bound to `config.bind_addr`, trusting what `config.tls` trusts.
    pub(crate) fn new(config: &EndpointSettings) -> Result<Self, RpcError> {
        let transport = Arc::new(transport(config, false)?);
        let client = client_config(&config.tls, &transport)?;
        let socket = udp_socket(config.bind_addr, config.udp_buffer_size)?;
        let endpoint = new_endpoint(config, None, socket)?;
        let client = Mutex::new((client, config.tls.clone()));
        Ok(Self { inner: Arc::new(EndpointHandle { endpoint, transport, client }) })
    }

    /// Starts a connection to `addr`, expecting `server_name` in its certificate.
    pub(crate) fn connect(&self, addr: SocketAddr, server_name: &str) -> Result<quinn::Connecting, RpcError> {
        let client = self.inner.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).0.clone();
        self.inner
            .endpoint
            .connect_with(client, addr, server_name)
            .map_err(|e| RpcError::Connection(format!("cannot connect to {addr} as `{server_name}`: {e}")))
    }

    /// Connections made from now on trust `certs` instead (connections open now keep the
    /// trust they were verified with). TLS sessions saved for resumption are dropped with
    /// the old trust: a resumed session would skip verifying the server against the new.
    pub(crate) fn reload_trust(&self, certs: Vec<CertificateDer<'static>>) -> Result<(), RpcError> {
        let mut client = self.inner.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut tls = client.1.clone();
        tls.trust = Some(certs);
        tls.fresh_sessions();
        *client = (client_config(&tls, &self.inner.transport)?, tls);
        Ok(())
    }
}

/// The quinn client configuration of `tls` over `transport`.
fn client_config(tls: &TlsSettings, transport: &Arc<TransportConfig>) -> Result<quinn::ClientConfig, RpcError> {
    let mut client = quinn::ClientConfig::new(tls::client_crypto(tls)?);
    client.transport_config(transport.clone());
    Ok(client)
}

impl fmt::Debug for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientEndpoint").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RpcConfig;

    /// quinn's `TransportConfig` has no getters; its `Debug` lists every field.
    fn debug(config: &RpcConfig, is_server: bool) -> String {
        format!("{:?}", transport(&config.endpoint, is_server).unwrap())
    }

    #[test]
    fn only_clients_send_keep_alives() {
        let config = RpcConfig::new("c", "127.0.0.1:0");
        assert!(debug(&config, true).contains("keep_alive_interval: None"), "{}", debug(&config, true));
        assert!(debug(&config, false).contains("keep_alive_interval: Some(10s)"), "{}", debug(&config, false));
    }

    #[test]
    fn memory_per_connection_is_bounded_by_the_receive_window() {
        let config = RpcConfig::new("c", "127.0.0.1:0").with_receive_window(1 << 20);
        let server = debug(&config, true);
        assert!(server.contains("receive_window: 1048576"), "{server}");
        assert!(server.contains("stream_receive_window: 1048576"), "a stream never gets more: {server}");
        assert!(server.contains("send_window: 1048576"), "{server}");
        let default = debug(&RpcConfig::new("c", "127.0.0.1:0"), true);
        assert!(default.contains("stream_receive_window: 2097152"), "default 2 MiB per stream: {default}");
        assert!(default.contains("receive_window: 4194304"), "default 4 MiB: {default}");
        assert!(default.contains("upper_bound: 65527"), "{default}");
    }

    #[test]
    fn stream_and_connection_windows_are_set_apart() {
        let config = RpcConfig::new("c", "127.0.0.1:0")
            .with_connection_receive_window(8 << 20)
            .with_stream_receive_window(512 << 10);
        let client = debug(&config, false);
        assert!(client.contains("stream_receive_window: 524288"), "{client}");
        assert!(client.contains(" receive_window: 8388608"), "{client}");
    }
}
