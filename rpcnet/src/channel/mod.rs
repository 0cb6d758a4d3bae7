//! `Channel`: where a typed client's calls go. One server through an `RpcClient`, or,
//! with balancing, one endpoint of many picked per call. `ClientBuilder` makes one.

mod builder;

pub use builder::{ClientBuilder, TypedClient};

use bytes::Bytes;

use crate::{CallOptions, RpcClient, RpcError, RpcStream};

/// The calls of a typed client, with the options they carry.
///
/// Generated clients (`XClient`) wrap one; cloning is cheap and shares connections.
#[derive(Debug, Clone)]
pub struct Channel {
    target: Target,
    options: CallOptions,
}

#[derive(Debug, Clone)]
enum Target {
    /// One server.
    Single(RpcClient),
}

impl Channel {
    /// A channel to the one server `client` is connected to.
    pub fn single(client: RpcClient) -> Self {
        Self { target: Target::Single(client), options: CallOptions::default() }
    }

    /// The same channel whose calls use `options` (deadline, ...).
    pub fn with_options(&self, options: CallOptions) -> Self {
        Self { target: self.target.clone(), options }
    }

    /// The options every call of this channel uses.
    pub fn options(&self) -> CallOptions {
        self.options
    }

    // `idempotent` matters once calls can be retried on another endpoint.
    pub(crate) async fn unary(&self, method: &str, idempotent: bool, payload: Bytes) -> Result<Bytes, RpcError> {
        let _ = idempotent;
        match &self.target {
            Target::Single(client) => client.call_with(method, payload, self.options).await,
        }
    }

    pub(crate) async fn server_streaming(
        &self,
        method: &str,
        idempotent: bool,
        payload: Bytes,
    ) -> Result<RpcStream<Bytes>, RpcError> {
        let _ = idempotent;
        match &self.target {
            Target::Single(client) => client.server_streaming_with(method, payload, self.options).await,
        }
    }

    pub(crate) async fn client_streaming(
        &self,
        method: &str,
        idempotent: bool,
        requests: RpcStream<Bytes>,
    ) -> Result<Bytes, RpcError> {
        let _ = idempotent;
        match &self.target {
            Target::Single(client) => client.client_streaming_with(method, requests, self.options).await,
        }
    }

    pub(crate) async fn bidi_streaming(
        &self,
        method: &str,
        idempotent: bool,
        requests: RpcStream<Bytes>,
    ) -> Result<RpcStream<Bytes>, RpcError> {
        let _ = idempotent;
        match &self.target {
            Target::Single(client) => client.bidi_streaming_with(method, requests, self.options).await,
        }
    }
}

impl From<RpcClient> for Channel {
    fn from(client: RpcClient) -> Self {
        Self::single(client)
    }
}
