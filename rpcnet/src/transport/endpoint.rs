//! quinn endpoints on UDP sockets with large buffers, the transport parameters every
//! rpcnet connection uses, and `ClientEndpoint`, the socket a client's connections share.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use quinn::{EndpointConfig, MtuDiscoveryConfig, TokioRuntime, TransportConfig, VarInt};
use socket2::{Domain, Protocol, Socket, Type};

use super::settings::EndpointSettings;
use super::tls;
use crate::error::RpcError;

/// Application close code of a server that shuts down gracefully.
pub(crate) const SHUTDOWN_CODE: VarInt = VarInt::from_u32(0);

/// Transport parameters from the configuration; `accepts_calls` is false on clients, which
/// never accept streams from the server.
fn transport(config: &EndpointSettings, accepts_calls: bool) -> Result<TransportConfig, RpcError> {
    let mut transport = TransportConfig::default();
    let streams = if accepts_calls { VarInt::from_u32(config.max_concurrent_streams) } else { VarInt::from_u32(0) };
    transport.max_concurrent_bidi_streams(streams);
    transport.max_concurrent_uni_streams(VarInt::from_u32(0));
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .map_err(|_| RpcError::Config("idle timeout is too large for QUIC".into()))?;
    transport.max_idle_timeout(Some(idle));
    transport.keep_alive_interval(config.keep_alive_interval);
    if let Some(size) = config.max_udp_payload_size {
        transport.initial_mtu(size);
        let mut mtu = MtuDiscoveryConfig::default();
        mtu.upper_bound(size);
        transport.mtu_discovery_config(Some(mtu));
        // The congestion window starts at 10 packets of 1472 bytes: above that, not one
        // packet of the larger size fits in it, and the handshake never starts.
        let mut cubic = quinn::congestion::CubicConfig::default();
        cubic.initial_window(10 * u64::from(size));
        transport.congestion_controller_factory(Arc::new(cubic));
    }
    Ok(transport)
}

/// The endpoint settings: the largest UDP payload it accepts follows the configured packet
/// size, or its receive buffers would cut larger packets short (a handshake with 16 KiB
/// packets then never completes).
fn endpoint_config(config: &EndpointSettings) -> Result<EndpointConfig, RpcError> {
    let mut endpoint = EndpointConfig::default();
    if let Some(size) = config.max_udp_payload_size {
        endpoint.max_udp_payload_size(size).map_err(|_| {
            RpcError::Config(format!(
                "max UDP payload size {size} is out of range 1200 to 65527 (with_max_udp_payload_size)"
            ))
        })?;
    }
    Ok(endpoint)
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

/// A server endpoint bound to `config.bind_addr`.
pub(crate) fn server_endpoint(config: &EndpointSettings) -> Result<quinn::Endpoint, RpcError> {
    let mut server_config = quinn::ServerConfig::with_crypto(tls::server_crypto(&config.tls)?);
    server_config.transport_config(Arc::new(transport(config, true)?));
    let socket = udp_socket(config.bind_addr, config.udp_buffer_size)?;
    quinn::Endpoint::new(endpoint_config(config)?, Some(server_config), socket, Arc::new(TokioRuntime))
        .map_err(|e| RpcError::Config(format!("cannot start a QUIC endpoint on {}: {e}", config.bind_addr)))
}

/// A client-side QUIC endpoint (one UDP socket) that connections to several servers share;
/// closed when the last handle to it is gone.
#[derive(Clone)]
pub(crate) struct ClientEndpoint {
    inner: Arc<EndpointHandle>,
}

struct EndpointHandle(quinn::Endpoint);

impl Drop for EndpointHandle {
    fn drop(&mut self) {
        self.0.close(VarInt::from_u32(0), b"client closed");
    }
}

impl ClientEndpoint {
    /// A new endpoint bound to `config.bind_addr`, trusting what `config.tls` trusts.
    pub(crate) fn new(config: &EndpointSettings) -> Result<Self, RpcError> {
        let mut client_config = quinn::ClientConfig::new(tls::client_crypto(&config.tls)?);
        client_config.transport_config(Arc::new(transport(config, false)?));
        let socket = udp_socket(config.bind_addr, config.udp_buffer_size)?;
        let mut endpoint = quinn::Endpoint::new(endpoint_config(config)?, None, socket, Arc::new(TokioRuntime))
            .map_err(|e| RpcError::Config(format!("cannot start a QUIC endpoint on {}: {e}", config.bind_addr)))?;
        endpoint.set_default_client_config(client_config);
        Ok(Self { inner: Arc::new(EndpointHandle(endpoint)) })
    }

    pub(crate) fn quinn(&self) -> &quinn::Endpoint {
        &self.inner.0
    }
}

impl fmt::Debug for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientEndpoint").finish_non_exhaustive()
    }
}
