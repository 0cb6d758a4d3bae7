//! `Context`: what a handler may know about the call it serves (method, deadline, peer,
//! metadata). The server runs the handler in the call's scope (`scope.rs`, which also has
//! [`Context::current`]); response metadata set there goes back with the response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::peer::{Peer, PeerIdentity};
use crate::metadata::Metadata;

/// One call as its handler sees it.
///
/// Inside a handler (and anything it awaits on the same task),
/// [`Context::current`] returns it:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcnet::RpcError> {
/// use rpcnet::server::Context;
/// let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
/// server.register("whoami", |_request| async move {
///     let context = Context::current().expect("inside a call");
///     let tenant = context.metadata().get_str("tenant").unwrap_or("none").to_owned();
///     Context::insert_response_metadata("served-by", "node-1").unwrap();
///     Ok(format!("{} for {tenant}", context.method()).into_bytes())
/// }).await;
/// # let (addr, handle) = server.spawn()?;
/// # let client = rpcnet::RpcClient::connect(addr, rpcnet::RpcConfig::dev("127.0.0.1:0")).await?;
/// # let _ = client;
/// # handle.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Context {
    method: Arc<str>,
    deadline: Option<Instant>,
    peer: Arc<Peer>,
    metadata: Metadata,
}

impl Context {
    pub(crate) fn new(method: Arc<str>, deadline: Option<Instant>, peer: Arc<Peer>, metadata: Metadata) -> Self {
        Self { method, deadline, peer, metadata }
    }

    /// The method's name on the wire, such as `"Calculator.add"`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The service's part of the method name (`"Calculator"`), or the whole name if it
    /// has no dot.
    pub fn service(&self) -> &str {
        self.method.rsplit_once('.').map_or(&self.method, |(service, _)| service)
    }

    /// When the caller stops waiting, if it set a deadline. The server fails the call with
    /// a timeout at that instant; a handler may check it to stop early.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long the caller still waits (zero once the deadline passed); `None` without a
    /// deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The client's address.
    pub fn peer_address(&self) -> SocketAddr {
        self.peer.address
    }

    /// The identity the client proved under mutual TLS; `None` without client certificates.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.peer.identity.as_ref()
    }

    /// The metadata the client sent.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}
