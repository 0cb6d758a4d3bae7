//! `Channel`: where a typed client's calls go. One server through an `RpcClient`, or many
//! endpoints behind a balancer (`balanced.rs`, with `members.rs`, suspects and pings in
//! `health.rs` and the retry budget in `retry.rs`). `ClientBuilder` makes either.

mod balanced;
mod builder;
mod health;
mod members;
mod retry;
mod source;

pub use builder::{ClientBuilder, TypedClient};
pub use members::EndpointStats;
pub use source::EndpointSource;

#[cfg(feature = "cluster")]
pub(crate) use health::to_suspects;

/// Retries a balanced channel allows each second whatever its retry ratio.
pub(crate) const DEFAULT_MIN_RETRIES_PER_SECOND: u32 = 10;

use std::sync::Arc;

use bytes::Bytes;

use self::balanced::Balanced;
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
    /// Many endpoints behind a balancer.
    Balanced(Arc<Balanced>),
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

    pub(crate) fn balanced(balanced: Arc<Balanced>) -> Self {
        Self { target: Target::Balanced(balanced), options: CallOptions::default() }
    }

    /// Each endpoint of a balanced channel with its live load and counters; empty for a
    /// channel to one server.
    pub fn endpoint_stats(&self) -> Vec<EndpointStats> {
        match &self.target {
            Target::Single(_) => Vec::new(),
            Target::Balanced(balanced) => balanced.endpoint_stats(),
        }
    }

    /// `idempotent`: the method was marked `#[rpc(idempotent)]`, so a balanced channel may
    /// repeat a call whose server died before answering. Streaming calls are never repeated
    /// once their streams started.
    pub(crate) async fn unary(&self, method: &str, idempotent: bool, payload: Bytes) -> Result<Bytes, RpcError> {
        match &self.target {
            Target::Single(client) => client.call_with(method, payload, self.options).await,
            Target::Balanced(balanced) => balanced.unary(method, idempotent, payload, self.options).await,
        }
    }

    pub(crate) async fn server_streaming(&self, method: &str, payload: Bytes) -> Result<RpcStream<Bytes>, RpcError> {
        match &self.target {
            Target::Single(client) => client.server_streaming_with(method, payload, self.options).await,
            Target::Balanced(balanced) => balanced.server_streaming(method, payload, self.options).await,
        }
    }

    pub(crate) async fn client_streaming(&self, method: &str, requests: RpcStream<Bytes>) -> Result<Bytes, RpcError> {
        match &self.target {
            Target::Single(client) => client.client_streaming_with(method, requests, self.options).await,
            Target::Balanced(balanced) => balanced.client_streaming(method, requests, self.options).await,
        }
    }

    pub(crate) async fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<Bytes>,
    ) -> Result<RpcStream<Bytes>, RpcError> {
        match &self.target {
            Target::Single(client) => client.bidi_streaming_with(method, requests, self.options).await,
            Target::Balanced(balanced) => balanced.bidi_streaming(method, requests, self.options).await,
        }
    }
}

impl From<RpcClient> for Channel {
    fn from(client: RpcClient) -> Self {
        Self::single(client)
    }
}
