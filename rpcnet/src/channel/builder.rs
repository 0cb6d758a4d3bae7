//! `ClientBuilder`: how a typed client is made, for one server or for many.

use std::marker::PhantomData;
use std::net::SocketAddr;

use super::Channel;
use crate::{RpcClient, RpcConfig, RpcError};

/// A typed client made from a [`Channel`]: what `#[rpc_service]` generates as `XClient`.
pub trait TypedClient: Sized {
    /// The client whose calls go through `channel`.
    fn from_channel(channel: Channel) -> Self;
}

/// Builds a typed client: `XClient::builder().endpoints([a, b]).config(c).connect().await`.
#[derive(Debug)]
pub struct ClientBuilder<C> {
    endpoints: Vec<SocketAddr>,
    config: Option<RpcConfig>,
    client: PhantomData<fn() -> C>,
}

impl<C> Default for ClientBuilder<C> {
    fn default() -> Self {
        Self { endpoints: Vec::new(), config: None, client: PhantomData }
    }
}

impl<C: TypedClient> ClientBuilder<C> {
    /// A builder with no endpoints and the development configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the servers to call.
    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.endpoints.extend(endpoints);
        self
    }

    /// Adds one server to call.
    pub fn endpoint(mut self, endpoint: SocketAddr) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// The configuration of every connection (trust, limits, timeouts). Default:
    /// [`RpcConfig::dev`] on `127.0.0.1:0`.
    pub fn config(mut self, config: RpcConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Connects and returns the client.
    pub async fn connect(self) -> Result<C, RpcError> {
        let config = self.config.unwrap_or_else(|| RpcConfig::dev("127.0.0.1:0"));
        match self.endpoints.as_slice() {
            [] => Err(RpcError::NoEndpointAvailable { filter: None, known: 0, healthy: 0 }),
            [addr] => Ok(C::from_channel(Channel::single(RpcClient::connect(*addr, config).await?))),
            _ => Err(RpcError::Config("several endpoints need a balancer; this build has none yet".into())),
        }
    }
}
