//! `Channel`: where a typed client's calls go. One server through an `RpcClient`, or many
//! endpoints behind a balancer (`balanced.rs`): the endpoint set (`endpoints.rs`,
//! `members.rs`), admission (`admission.rs`), retries (`retry.rs`), the call kinds
//! (`calls.rs`), over connections seen through a small trait (`connection.rs`).
//! `ClientBuilder` makes either kind; `EndpointSource` feeds a channel endpoints that change.

mod admission;
mod balanced;
mod builder;
mod calls;
mod connection;
mod endpoints;
mod members;
mod retry;
mod source;
#[cfg(test)]
mod tests;

pub use builder::{ClientBuilder, TypedClient};
pub use members::EndpointStats;
pub(crate) use retry::DEFAULT_MIN_RETRIES_PER_SECOND;
pub use source::EndpointSource;

use std::sync::Arc;

use self::balanced::Balanced;
use self::connection::QuicConnector;
use crate::client::{CallOptions, RpcClient};
use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::Payload;

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
    Balanced(Arc<Balanced<QuicConnector>>),
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
        self.options.clone()
    }

    fn balanced(balanced: Arc<Balanced<QuicConnector>>) -> Self {
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

    /// Trusts `certs` (certificates or CAs, DER) for the connections this channel makes
    /// from now on, to any of its endpoints (a balanced channel's endpoints share one client
    /// endpoint); open connections keep working. See [`RpcClient::reload_trust`].
    pub fn reload_trust(&self, certs: Vec<rustls::pki_types::CertificateDer<'static>>) -> Result<(), RpcError> {
        match &self.target {
            Target::Single(client) => client.reload_trust(certs),
            Target::Balanced(balanced) => balanced.connector().reload_trust(certs),
        }
    }

    /// `idempotent`: the method was marked `#[rpc(idempotent)]` (or the channel's options
    /// say so), so a balanced channel may repeat a call whose server died before answering,
    /// and a connection resumed with 0-RTT may send it in early data. Streaming calls are
    /// never repeated once their streams started, nor sent in early data.
    pub(crate) async fn unary(
        &self,
        method: &str,
        idempotent: bool,
        message: OutgoingMessage,
    ) -> Result<Payload, RpcError> {
        match &self.target {
            Target::Single(client) => {
                let now = tokio::time::Instant::now();
                let deadline = self.options.deadline(client.default_timeout(), now);
                let idempotent = idempotent || self.options.is_idempotent();
                client
                    .unary(
                        method,
                        message,
                        deadline,
                        now,
                        idempotent,
                        self.options.call_metadata(),
                        std::convert::identity,
                    )
                    .await
            }
            Target::Balanced(balanced) => balanced.unary(method, idempotent, message, &self.options).await,
        }
    }

    pub(crate) async fn server_streaming(
        &self,
        method: &str,
        message: OutgoingMessage,
    ) -> Result<RpcStream<Payload>, RpcError> {
        match &self.target {
            Target::Single(client) => {
                let now = tokio::time::Instant::now();
                client
                    .server_streaming(
                        method,
                        message,
                        self.options.deadline(None, now),
                        now,
                        self.options.call_metadata(),
                    )
                    .await
            }
            Target::Balanced(balanced) => balanced.server_streaming(method, message, &self.options).await,
        }
    }

    pub(crate) async fn client_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
    ) -> Result<Payload, RpcError> {
        match &self.target {
            Target::Single(client) => {
                let now = tokio::time::Instant::now();
                let deadline = self.options.deadline(client.default_timeout(), now);
                client.client_streaming(method, requests, deadline, now, self.options.call_metadata()).await
            }
            Target::Balanced(balanced) => balanced.client_streaming(method, requests, &self.options).await,
        }
    }

    pub(crate) async fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
    ) -> Result<RpcStream<Payload>, RpcError> {
        match &self.target {
            Target::Single(client) => {
                let now = tokio::time::Instant::now();
                client
                    .bidi_streaming(
                        method,
                        requests,
                        self.options.deadline(None, now),
                        now,
                        self.options.call_metadata(),
                    )
                    .await
            }
            Target::Balanced(balanced) => balanced.bidi_streaming(method, requests, &self.options).await,
        }
    }
}

impl From<RpcClient> for Channel {
    fn from(client: RpcClient) -> Self {
        Self::single(client)
    }
}
