//! `Context`: what a handler may know about the call it serves (method, deadline, peer,
//! metadata). The server sets it for the call's task, so any code the handler runs reads
//! it with [`Context::current`]; response metadata set there goes back with the response.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::peer::{Peer, PeerIdentity};
use crate::metadata::{Metadata, MetadataError, MetadataValue};
use crate::wire::Limits;

tokio::task_local! {
    static CURRENT: CallScope;
}

/// What the task of one call carries: its context and the response metadata set so far.
pub(crate) struct CallScope {
    context: Context,
    response: RefCell<Metadata>,
    /// The server's limits, which response metadata must fit as a request head does.
    limits: Limits,
}

impl CallScope {
    pub(crate) fn new(context: Context, limits: Limits) -> Self {
        Self { context, response: RefCell::new(Metadata::new()), limits }
    }

    fn insert_response(&self, key: &str, value: MetadataValue) -> Result<(), MetadataError> {
        let mut candidate = self.response.borrow().clone();
        candidate.insert(key, value)?;
        let (entries, max_entries) = (candidate.len(), usize::from(self.limits.max_metadata_entries));
        if entries > max_entries {
            return Err(MetadataError::OverLimit(format!("{entries} entries, at most {max_entries}")));
        }
        let (len, max_len) = (candidate.wire_len(), usize::from(self.limits.max_head_len));
        if len > max_len {
            return Err(MetadataError::OverLimit(format!("{len} bytes, at most {max_len}")));
        }
        *self.response.borrow_mut() = candidate;
        Ok(())
    }

    /// Runs `call` with this scope as its task's.
    pub(crate) async fn run<F: Future>(self, call: F) -> F::Output {
        CURRENT.scope(self, call).await
    }
}

/// Whether the current call has response metadata to send (false outside a call).
pub(crate) fn has_response_metadata() -> bool {
    CURRENT.try_with(|scope| !scope.response.borrow().is_empty()).unwrap_or(false)
}

/// The response metadata set so far in the current call, taken (empty outside a call):
/// the server sends it with its first response frame.
pub(crate) fn take_response_metadata() -> Metadata {
    CURRENT.try_with(|scope| std::mem::take(&mut *scope.response.borrow_mut())).unwrap_or_default()
}

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

    /// The context of the call this task serves, or `None` outside a call (in a task the
    /// handler spawned, for example: pass the context along instead).
    pub fn current() -> Option<Context> {
        CURRENT.try_with(|scope| scope.context.clone()).ok()
    }

    /// Runs `f` on the current call's context without cloning it; `None` outside a call.
    pub fn with_current<R>(f: impl FnOnce(&Context) -> R) -> Option<R> {
        CURRENT.try_with(|scope| f(&scope.context)).ok()
    }

    /// Adds an entry to the current call's response metadata, which goes back with the
    /// response's first frame (so a streaming handler sets it before its first message;
    /// once that is sent, later entries are not). Fails if the entry breaks the rules of
    /// [`Metadata::insert`], if the response metadata would exceed the server's limits
    /// (as many entries and bytes as a request head may carry), or outside a call.
    pub fn insert_response_metadata(key: &str, value: impl Into<MetadataValue>) -> Result<(), MetadataError> {
        let value = value.into();
        CURRENT.try_with(|scope| scope.insert_response(key, value)).map_err(|_| MetadataError::OutsideCall)?
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
