//! What a balanced channel needs of the connection to one endpoint, as two small
//! crate-private traits, so that its policies (admission, retries, ejection) are unit-tested
//! over a mock connection in paused time. `RpcClient` is the real one.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{CallMetadata, RpcClient};
use crate::config::RpcConfig;
use crate::deadline::Deadline;
use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::transport::{ClientEndpoint, OutgoingMessage};
use crate::wire::Payload;

/// Calls on one endpoint, each with its deadline fixed by the channel.
pub(crate) trait Connection: Clone + Send + Sync + 'static {
    /// `idempotent`: the call may run twice (it may then go out in 0-RTT early data).
    fn unary(
        &self,
        method: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        now: Instant,
        idempotent: bool,
        metadata: &CallMetadata,
    ) -> impl Future<Output = Result<Payload, RpcError>> + Send;

    fn server_streaming(
        &self,
        method: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> impl Future<Output = Result<RpcStream<Payload>, RpcError>> + Send;

    fn client_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> impl Future<Output = Result<Payload, RpcError>> + Send;

    fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> impl Future<Output = Result<RpcStream<Payload>, RpcError>> + Send;

    /// A sign of life and its round trip, waiting at most `timeout`.
    fn ping(&self, timeout: Duration) -> impl Future<Output = Result<Duration, RpcError>> + Send;

    /// Whether the connection is up now (pings leave the others alone).
    fn is_connected(&self) -> bool;

    /// Closes the connection for good: calls in flight end as lost, later calls fail at
    /// once as never sent.
    fn retire(&self);
}

/// Makes the connection to an endpoint, once per endpoint; a connection re-establishes
/// itself after it is lost.
pub(crate) trait Connector: Send + Sync + 'static {
    type Connection: Connection;

    fn connect(&self, addr: SocketAddr) -> impl Future<Output = Result<Self::Connection, RpcError>> + Send;
}

/// Connections over QUIC, all from one client endpoint (one UDP socket).
#[derive(Debug)]
pub(crate) struct QuicConnector {
    endpoint: ClientEndpoint,
    config: RpcConfig,
}

impl QuicConnector {
    pub(crate) fn new(config: RpcConfig) -> Result<Self, RpcError> {
        config.validate()?;
        Ok(Self { endpoint: ClientEndpoint::new(&config.endpoint)?, config })
    }

    /// Every endpoint's next connection trusts `certs`: they share this client endpoint.
    pub(crate) fn reload_trust(&self, certs: Vec<rustls::pki_types::CertificateDer<'static>>) -> Result<(), RpcError> {
        self.endpoint.reload_trust(certs)
    }
}

impl Connector for QuicConnector {
    type Connection = RpcClient;

    fn connect(&self, addr: SocketAddr) -> impl Future<Output = Result<RpcClient, RpcError>> + Send {
        RpcClient::connect_via(self.endpoint.clone(), addr, &self.config)
    }
}

impl Connection for RpcClient {
    fn unary(
        &self,
        method: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        now: Instant,
        idempotent: bool,
        metadata: &CallMetadata,
    ) -> impl Future<Output = Result<Payload, RpcError>> + Send {
        RpcClient::unary(self, method, message, deadline, now, idempotent, metadata, std::convert::identity)
    }

    fn server_streaming(
        &self,
        method: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> impl Future<Output = Result<RpcStream<Payload>, RpcError>> + Send {
        RpcClient::server_streaming(self, method, message, deadline, now, metadata)
    }

    fn client_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> impl Future<Output = Result<Payload, RpcError>> + Send {
        RpcClient::client_streaming(self, method, requests, deadline, now, metadata)
    }

    fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> impl Future<Output = Result<RpcStream<Payload>, RpcError>> + Send {
        RpcClient::bidi_streaming(self, method, requests, deadline, now, metadata)
    }

    fn ping(&self, timeout: Duration) -> impl Future<Output = Result<Duration, RpcError>> + Send {
        RpcClient::ping(self, timeout)
    }

    fn is_connected(&self) -> bool {
        RpcClient::is_connected(self)
    }

    fn retire(&self) {
        RpcClient::retire(self);
    }
}
