//! `Channel`: where a typed client's calls go. One server through an `RpcClient`, or many
//! endpoints behind a balancer (`balanced.rs`): the endpoint set (`endpoints.rs`,
//! `members.rs`), admission (`admission.rs`), retries (`retry.rs`), the call kinds
//! (`calls.rs`), over connections seen through a small trait (`connection.rs`).
//! `ClientBuilder` makes either kind; `EndpointSource` feeds a channel endpoints that change;
//! tower layers go around a channel's calls (`layers.rs`).

mod admission;
mod balanced;
mod builder;
mod calls;
mod connection;
mod endpoints;
mod layers;
mod members;
mod policy;
mod retry;
mod source;
#[cfg(test)]
mod tests;

pub use builder::{ClientBuilder, TypedClient};
pub use layers::{ClientCall, ClientReply, ClientService};
pub use members::EndpointStats;
pub use policy::{HedgeAfter, HedgePolicy, MethodPolicy};
pub(crate) use retry::DEFAULT_MIN_RETRIES_PER_SECOND;
pub use source::EndpointSource;

use std::sync::Arc;

use tokio::time::Instant;

use self::balanced::Balanced;
use self::connection::QuicConnector;
use self::layers::ClientLayers;
use crate::client::{CallOptions, RpcClient};
use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::{CallKind, Payload};

/// The calls of a typed client, with the options they carry.
///
/// Generated clients (`XClient`) wrap one; cloning is cheap and shares connections.
#[derive(Debug, Clone)]
pub struct Channel {
    target: Target,
    options: CallOptions,
    /// The tower layers around its calls, if any were added ([`Channel::layer`]).
    layers: Option<ClientLayers>,
}

#[derive(Debug, Clone)]
enum Target {
    /// One server.
    Single(RpcClient),
    /// Many endpoints behind a balancer.
    Balanced(Arc<Balanced<QuicConnector>>),
}

impl Channel {
    /// A channel to the one server `client` is connected to.
    pub fn single(client: RpcClient) -> Self {
        Self { target: Target::Single(client), options: CallOptions::default(), layers: None }
    }

    /// The same channel whose calls use `options` (deadline, ...).
    pub fn with_options(&self, options: CallOptions) -> Self {
        Self { target: self.target.clone(), options, layers: self.layers.clone() }
    }

    /// The options every call of this channel uses.
    pub fn options(&self) -> CallOptions {
        self.options.clone()
    }

    fn balanced(balanced: Arc<Balanced<QuicConnector>>) -> Self {
        Self { target: Target::Balanced(balanced), options: CallOptions::default(), layers: None }
    }

    /// Each endpoint of a balanced channel with its live load and counters; empty for a
    /// channel to one server.
    pub fn endpoint_stats(&self) -> Vec<EndpointStats> {
        match &self.target {
            Target::Single(_) => Vec::new(),
            Target::Balanced(balanced) => balanced.endpoint_stats(),
        }
    }

    /// Trusts `certs` (certificates or CAs, DER) for the connections this channel makes
    /// from now on, to any of its endpoints (a balanced channel's endpoints share one client
    /// endpoint); open connections keep working. See [`RpcClient::reload_trust`].
    pub fn reload_trust(&self, certs: Vec<rustls::pki_types::CertificateDer<'static>>) -> Result<(), RpcError> {
        match &self.target {
            Target::Single(client) => client.reload_trust(certs),
            Target::Balanced(balanced) => balanced.connector().reload_trust(certs),
        }
    }

    /// `policy`: what the method's `#[rpc(...)]` attributes say. Idempotent (by the method
    /// or the channel's options), a balanced channel may repeat a call whose server died
    /// before answering, and a connection resumed with 0-RTT may send it in early data. Streaming calls are
    /// never repeated once their streams started, nor sent in early data.
    pub(crate) async fn unary(
        &self,
        method: &str,
        policy: MethodPolicy,
        message: OutgoingMessage,
    ) -> Result<Payload, RpcError> {
        match &self.layers {
            None => self.target.unary(method, policy, message, &self.options).await,
            // Boxed: inline, the layers' future would be part of every call's.
            Some(layers) => {
                Box::pin(layers.call(ClientCall::new(method, policy, self.options.clone(), message))).await?.into_one()
            }
        }
    }

    pub(crate) async fn server_streaming(
        &self,
        method: &str,
        message: OutgoingMessage,
    ) -> Result<RpcStream<Payload>, RpcError> {
        match &self.layers {
            None => self.target.server_streaming(method, message, &self.options).await,
            Some(layers) => {
                let call = ClientCall::streaming(method, CallKind::ServerStreaming, self.options.clone(), Ok(message));
                layers.call(call).await?.into_stream()
            }
        }
    }

    pub(crate) async fn client_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
    ) -> Result<Payload, RpcError> {
        match &self.layers {
            None => self.target.client_streaming(method, requests, &self.options).await,
            Some(layers) => {
                let call =
                    ClientCall::streaming(method, CallKind::ClientStreaming, self.options.clone(), Err(requests));
                layers.call(call).await?.into_one()
            }
        }
    }

    pub(crate) async fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
    ) -> Result<RpcStream<Payload>, RpcError> {
        match &self.layers {
            None => self.target.bidi_streaming(method, requests, &self.options).await,
            Some(layers) => {
                let call = ClientCall::streaming(method, CallKind::BidiStreaming, self.options.clone(), Err(requests));
                layers.call(call).await?.into_stream()
            }
        }
    }
}

/// The four call kinds on a target, with the options of the call.
impl Target {
    // `async fn`s awaited at once, not plain functions returning an `Either` of the two
    // futures: moved through the `Either`, the client's future (about 1 KiB) was copied
    // twice a call (callgrind, typed 64 B x 64: about 320 instructions of `memcpy`).
    async fn unary(
        &self,
        method: &str,
        policy: MethodPolicy,
        message: OutgoingMessage,
        options: &CallOptions,
    ) -> Result<Payload, RpcError> {
        match self {
            Target::Single(client) => {
                let now = Instant::now();
                // The call's own deadline, else the method's, else the client's default.
                let deadline = options.deadline(policy.deadline().or(client.default_timeout()), now);
                let idempotent = policy.is_idempotent() || options.is_idempotent();
                let metadata = options.call_metadata();
                client.unary(method, message, deadline, now, idempotent, metadata, std::convert::identity).await
            }
            Target::Balanced(balanced) => balanced.unary(method, policy, message, options).await,
        }
    }

    async fn server_streaming(
        &self,
        method: &str,
        message: OutgoingMessage,
        options: &CallOptions,
    ) -> Result<RpcStream<Payload>, RpcError> {
        match self {
            Target::Single(client) => {
                let now = Instant::now();
                let deadline = options.deadline(None, now);
                client.server_streaming(method, message, deadline, now, options.call_metadata()).await
            }
            Target::Balanced(balanced) => balanced.server_streaming(method, message, options).await,
        }
    }

    async fn client_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        options: &CallOptions,
    ) -> Result<Payload, RpcError> {
        match self {
            Target::Single(client) => {
                let now = Instant::now();
                let deadline = options.deadline(client.default_timeout(), now);
                client.client_streaming(method, requests, deadline, now, options.call_metadata()).await
            }
            Target::Balanced(balanced) => balanced.client_streaming(method, requests, options).await,
        }
    }

    async fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        options: &CallOptions,
    ) -> Result<RpcStream<Payload>, RpcError> {
        match self {
            Target::Single(client) => {
                let now = Instant::now();
                let deadline = options.deadline(None, now);
                client.bidi_streaming(method, requests, deadline, now, options.call_metadata()).await
            }
            Target::Balanced(balanced) => balanced.bidi_streaming(method, requests, options).await,
        }
    }
}

impl From<RpcClient> for Channel {
    fn from(client: RpcClient) -> Self {
        Self::single(client)
    }
}
