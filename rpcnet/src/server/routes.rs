//! `Routes`: method names mapped to handlers of the four call kinds, and the `Service` trait
//! through which a typed service adds its methods to a server.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use rustc_hash::FxHashMap;

use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::{CallKind, Payload};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Handlers as the server runs them: requests as they arrived ([`Payload`]), responses
/// ready to frame. Raw-bytes handlers are adapted to these on registration; typed ones are
/// built on them (`crate::typed`), decoding and encoding with their service's codec.
pub(crate) type UnaryFn = dyn Fn(Payload) -> BoxFuture<Result<OutgoingMessage, RpcError>> + Send + Sync;
pub(crate) type ServerStreamingFn = dyn Fn(Payload) -> BoxFuture<RpcStream<OutgoingMessage>> + Send + Sync;
pub(crate) type ClientStreamingFn =
    dyn Fn(RpcStream<Payload>) -> BoxFuture<Result<OutgoingMessage, RpcError>> + Send + Sync;
pub(crate) type BidiStreamingFn = dyn Fn(RpcStream<Payload>) -> BoxFuture<RpcStream<OutgoingMessage>> + Send + Sync;

/// One registered method.
#[derive(Clone)]
pub(crate) enum Handler {
    Unary(Arc<UnaryFn>),
    ServerStreaming(Arc<ServerStreamingFn>),
    ClientStreaming(Arc<ClientStreamingFn>),
    BidiStreaming(Arc<BidiStreamingFn>),
}

/// How the server runs a call of one kind with the handler of its method.
#[derive(Clone, Copy)]
pub(crate) enum Route<'h> {
    Unary(&'h UnaryFn),
    ServerStreaming(&'h ServerStreamingFn),
    ClientStreaming(&'h ClientStreamingFn),
    BidiStreaming(&'h BidiStreamingFn),
    /// A server-streaming call to a bidirectional handler: its one request read as for a
    /// server-streaming call, handed over as a stream of one.
    BidiOneRequest(&'h BidiStreamingFn),
    /// A client-streaming call to a bidirectional handler, whose responses must then be
    /// exactly one.
    BidiOneResponse(&'h BidiStreamingFn),
}

impl Handler {
    /// The kind of call the handler was registered for.
    pub(crate) fn kind(&self) -> CallKind {
        match self {
            Self::Unary(_) => CallKind::Unary,
            Self::ServerStreaming(_) => CallKind::ServerStreaming,
            Self::ClientStreaming(_) => CallKind::ClientStreaming,
            Self::BidiStreaming(_) => CallKind::BidiStreaming,
        }
    }

    /// How a call of `kind` runs with this handler, or `None` if it cannot.
    ///
    /// A bidirectional handler serves every streaming kind, as rpcnet 0.1's one
    /// `register_streaming` did: a server-streaming call is a bidirectional call with one
    /// request, a client-streaming call one with exactly one response. Unary calls, and
    /// every call to the other handlers, must be of the registered kind: their handlers'
    /// types promise one request or one response.
    pub(crate) fn route(&self, kind: CallKind) -> Option<Route<'_>> {
        match (self, kind) {
            (Self::Unary(handler), CallKind::Unary) => Some(Route::Unary(handler.as_ref())),
            (Self::ServerStreaming(handler), CallKind::ServerStreaming) => {
                Some(Route::ServerStreaming(handler.as_ref()))
            }
            (Self::ClientStreaming(handler), CallKind::ClientStreaming) => {
                Some(Route::ClientStreaming(handler.as_ref()))
            }
            (Self::BidiStreaming(handler), CallKind::BidiStreaming) => Some(Route::BidiStreaming(handler.as_ref())),
            (Self::BidiStreaming(handler), CallKind::ServerStreaming) => Some(Route::BidiOneRequest(handler.as_ref())),
            (Self::BidiStreaming(handler), CallKind::ClientStreaming) => Some(Route::BidiOneResponse(handler.as_ref())),
            _ => None,
        }
    }
}

/// Method names and their handlers, on payloads as [`Bytes`].
///
/// [`RpcServer::register`](crate::RpcServer::register) and its streaming siblings add raw
/// `Vec<u8>` handlers here; generated services add theirs through [`Service`]. Registering a
/// name again replaces its handler.
#[derive(Default, Clone)]
pub struct Routes {
    /// Fx hashing: keys are the server's own method names, so a client can only look
    /// names up, never choose what collides; SipHash would cost more on every call.
    handlers: FxHashMap<Arc<str>, Handler>,
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.handlers.keys().map(|k| &**k).collect();
        names.sort();
        f.debug_struct("Routes").field("methods", &names).finish()
    }
}

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    #[track_caller]
    pub(crate) fn insert(&mut self, method: &str, handler: Handler) {
        assert!(
            !method.is_empty() && method.len() <= usize::from(u8::MAX),
            "method name `{method}` must be 1 to 255 bytes long: the wire format stores its length in one byte"
        );
        assert!(
            !method.starts_with(crate::wire::RESERVED_METHOD_PREFIX),
            "method name `{method}` starts with `{}`, which rpcnet reserves for its built-in methods: rename it",
            crate::wire::RESERVED_METHOD_PREFIX
        );
        self.insert_unchecked(method, handler);
    }

    fn insert_unchecked(&mut self, method: &str, handler: Handler) {
        if self.handlers.insert(method.into(), handler).is_some() {
            tracing::debug!(method, "handler replaced");
        }
    }

    /// Adds a unary handler.
    pub fn unary<F, Fut>(&mut self, method: &str, handler: F) -> &mut Self
    where
        F: Fn(Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, RpcError>> + Send + 'static,
    {
        self.insert(
            method,
            Handler::Unary(Arc::new(move |request: Payload| {
                let response = handler(request.into_bytes());
                Box::pin(async move { response.await.map(OutgoingMessage::Payload) })
            })),
        );
        self
    }

    /// Adds a server-streaming handler: one request, a stream of responses.
    pub fn server_streaming<F, Fut>(&mut self, method: &str, handler: F) -> &mut Self
    where
        F: Fn(Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RpcStream<Bytes>> + Send + 'static,
    {
        self.insert(
            method,
            Handler::ServerStreaming(Arc::new(move |request: Payload| {
                let responses = handler(request.into_bytes());
                Box::pin(async move { outgoing(responses.await) })
            })),
        );
        self
    }

    /// Adds a client-streaming handler: a stream of requests, one response.
    pub fn client_streaming<F, Fut>(&mut self, method: &str, handler: F) -> &mut Self
    where
        F: Fn(RpcStream<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, RpcError>> + Send + 'static,
    {
        self.insert(
            method,
            Handler::ClientStreaming(Arc::new(move |requests| {
                let response = handler(contiguous(requests));
                Box::pin(async move { response.await.map(OutgoingMessage::Payload) })
            })),
        );
        self
    }

    /// Adds a bidirectional streaming handler.
    pub fn bidi_streaming<F, Fut>(&mut self, method: &str, handler: F) -> &mut Self
    where
        F: Fn(RpcStream<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RpcStream<Bytes>> + Send + 'static,
    {
        self.insert(
            method,
            Handler::BidiStreaming(Arc::new(move |requests| {
                let responses = handler(contiguous(requests));
                Box::pin(async move { outgoing(responses.await) })
            })),
        );
        self
    }

    /// Moves every route of `other` into `self`.
    pub fn merge(&mut self, other: Routes) -> &mut Self {
        for (name, handler) in other.handlers {
            self.insert(&name, handler);
        }
        self
    }

    /// The registered method names, sorted.
    pub fn methods(&self) -> Vec<String> {
        let mut names: Vec<String> = self.handlers.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }

    /// The handler of `method` and its registered name (shared with each call's context).
    pub(crate) fn get(&self, method: &str) -> Option<(&Arc<str>, &Handler)> {
        self.handlers.get_key_value(method)
    }

    /// Adds the built-in methods (see [`crate::wire::PING_METHOD`]).
    pub(crate) fn with_builtins(mut self) -> Self {
        let pong: Arc<UnaryFn> = Arc::new(|_request| Box::pin(async { Ok(OutgoingMessage::Payload(Bytes::new())) }));
        self.insert_unchecked(crate::wire::PING_METHOD, Handler::Unary(pong));
        self
    }
}

/// Something that adds methods to a server: what `#[rpc_service]` generates as
/// `XServer<T>`, and what hand-written services implement.
///
/// ```
/// use rpcnet::server::{Routes, Service};
/// struct Health;
/// impl Service for Health {
///     fn routes(self) -> Routes {
///         let mut routes = Routes::new();
///         routes.unary("Health.check", |_req| async { Ok(bytes::Bytes::from_static(b"ok")) });
///         routes
///     }
/// }
/// let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
/// server.add_service(Health);
/// ```
pub trait Service {
    /// The routes of every method of the service.
    fn routes(self) -> Routes;
}

/// The one response of a stream that must have exactly one: the caller's decoder takes one
/// message and then the end, so the handler's end is awaited before the message is sent,
/// and a handler that yields none or a second one fails the call, saying so.
pub(crate) async fn exactly_one(
    mut responses: RpcStream<OutgoingMessage>,
    method: &str,
) -> Result<OutgoingMessage, RpcError> {
    let wrong = |what: &str| {
        RpcError::Protocol(format!(
            "method `{method}` was called as ClientStreaming, which takes exactly one response, but its \
             streaming handler {what}"
        ))
    };
    let Some(first) = responses.next().await else {
        return Err(wrong("ended without a response"));
    };
    let first = first?;
    match responses.next().await {
        None => Ok(first),
        Some(Err(err)) => Err(err),
        Some(Ok(_)) => Err(wrong("yielded a second one")),
    }
}

/// A request stream as raw handlers take it: each message in one piece.
fn contiguous(requests: RpcStream<Payload>) -> RpcStream<Bytes> {
    requests.map_messages(|payload| Ok(payload.into_bytes()))
}

/// A raw handler's response stream, ready to frame.
fn outgoing(responses: RpcStream<Bytes>) -> RpcStream<OutgoingMessage> {
    responses.map_messages(|payload| Ok(OutgoingMessage::Payload(payload)))
}

/// Adapts a raw `Bytes` request stream for handlers registered with `Vec<u8>` payloads.
pub(crate) fn vec_stream(requests: RpcStream<Bytes>) -> RpcStream<Vec<u8>> {
    requests.map_messages(|b| Ok(Vec::from(b)))
}

/// Adapts a handler's `Vec<u8>` response stream to the `Bytes` the server writes.
pub(crate) fn bytes_stream<S>(responses: S) -> RpcStream<Bytes>
where
    S: Stream<Item = Result<Vec<u8>, RpcError>> + Send + 'static,
{
    RpcStream::new(responses.map(|item| item.map(Bytes::from)))
}
