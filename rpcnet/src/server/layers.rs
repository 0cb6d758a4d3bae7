//! Middleware on the server: tower `Layer`s around each routed call. A call reaches them as
//! a `ServerCall` (its context and its request, read off the stream) and leaves as a
//! `ServerReply`; the innermost service runs the method's handler.

use std::fmt;
use std::task::{Context as TaskContext, Poll};

use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::context::Context;
use super::routes::{BoxFuture, Handler, exactly_one};
use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::{CallKind, Payload};

/// The service a server's layers wrap: what [`RpcServer::layer`](super::RpcServer::layer)
/// hands each layer, already wrapped in the layers added before it.
/// A layer added with [`RpcServer::layer`](super::RpcServer::layer) goes around every call
/// of the server, and around the layers added before it (so the last one added sees a call
/// first): authentication, rate or concurrency limits, timeouts, logging. It sees each call
/// as a [`ServerCall`] (its [`Context`] and its request) once the request's head is read and
/// the call admitted, and may answer it itself; an error it returns goes to the caller as
/// an [`RpcError`] (tower's `Elapsed` as a timeout, its load shedding as overloaded, an
/// `RpcError` as it is). The built-in ping passes through the layers too.
///
/// One instance of the layered service serves every call: each call waits for it to be
/// ready in the order calls arrive, so a limit's state counts every call of every client,
/// and a layer need not be `Clone` (tower's `RateLimit` works as it is).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcnet::RpcError> {
/// use std::time::Duration;
/// let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
/// server.register("echo", |payload| async move { Ok(payload) }).await;
/// server.layer(tower::limit::ConcurrencyLimitLayer::new(64));
/// server.layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)));
/// # let (_addr, handle) = server.spawn()?;
/// # handle.shutdown().await;
/// # Ok(()) }
/// ```
pub type ServerService = BoxService<ServerCall, ServerReply, RpcError>;

/// One call as the server's layers see it: its [`Context`] (method, deadline, peer,
/// metadata) and its request, which only the handler reads.
pub struct ServerCall {
    context: Context,
    kind: CallKind,
    request: Request,
    handler: Handler,
}

enum Request {
    One(Payload),
    Stream(RpcStream<Payload>),
}

impl ServerCall {
    /// The call's context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The method's name on the wire, such as `"Calculator.add"`.
    pub fn method(&self) -> &str {
        self.context.method()
    }

    /// The shape of the call.
    pub fn kind(&self) -> CallKind {
        self.kind
    }
}

impl fmt::Debug for ServerCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCall").field("method", &self.method()).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// What a handler answered, on its way back through the layers to the stream.
pub struct ServerReply(Reply);

enum Reply {
    One(OutgoingMessage),
    Stream(RpcStream<OutgoingMessage>),
}

impl fmt::Debug for ServerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = match self.0 {
            Reply::One(_) => "one message",
            Reply::Stream(_) => "a stream",
        };
        f.debug_tuple("ServerReply").field(&shape).finish()
    }
}

/// The innermost service: runs the handler the call was routed to.
#[derive(Clone, Copy, Debug)]
struct RunHandler;

impl Service<ServerCall> for RunHandler {
    type Response = ServerReply;
    type Error = RpcError;
    type Future = BoxFuture<Result<ServerReply, RpcError>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ServerCall) -> Self::Future {
        Box::pin(run_handler(call))
    }
}

/// The handler's answer to `call`; the kinds were matched when the call was routed.
async fn run_handler(call: ServerCall) -> Result<ServerReply, RpcError> {
    let reply = match (call.handler, call.request) {
        (Handler::Unary(handler), Request::One(request)) => Reply::One(handler(request).await?),
        (Handler::ServerStreaming(handler), Request::One(request)) => Reply::Stream(handler(request).await),
        (Handler::ClientStreaming(handler), Request::Stream(requests)) => Reply::One(handler(requests).await?),
        (Handler::BidiStreaming(handler), Request::One(request)) => {
            Reply::Stream(handler(RpcStream::from_iter([request])).await)
        }
        (Handler::BidiStreaming(handler), Request::Stream(requests)) if call.kind == CallKind::ClientStreaming => {
            Reply::One(exactly_one(handler(requests).await, call.context.method()).await?)
        }
        (Handler::BidiStreaming(handler), Request::Stream(requests)) => Reply::Stream(handler(requests).await),
        _ => unreachable!("bug in rpcnet: a call reached the layers with a request its handler cannot take"),
    };
    Ok(ServerReply(reply))
}

/// The layers of a running server, one service for all its calls. Each call waits its turn
/// for the service to be ready, in the order calls arrive, so that a layer with state (a
/// rate or concurrency limit) sees every call rather than a clone of itself per call.
pub(crate) struct Layers(tokio::sync::Mutex<ServerService>);

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Layers")
    }
}

impl Layers {
    pub(crate) fn new(service: ServerService) -> Self {
        Self(tokio::sync::Mutex::new(service))
    }

    /// The service of no layers.
    pub(crate) fn innermost() -> ServerService {
        ServerService::new(RunHandler)
    }

    /// `service` inside `layer`, its errors turned into [`RpcError`]s.
    pub(crate) fn wrap<L>(service: ServerService, layer: L) -> ServerService
    where
        L: Layer<ServerService>,
        L::Service: Service<ServerCall, Response = ServerReply> + Send + 'static,
        <L::Service as Service<ServerCall>>::Error: Into<BoxError>,
        <L::Service as Service<ServerCall>>::Future: Send + 'static,
    {
        ServerService::new(layer.layer(service).map_err(|err| RpcError::from_layer(err.into(), "server")))
    }

    /// Runs a call through the layers to its handler.
    pub(crate) async fn call(
        &self,
        context: Context,
        kind: CallKind,
        request: Result<Payload, RpcStream<Payload>>,
        handler: &Handler,
    ) -> Result<ServerReply, RpcError> {
        let request = match request {
            Ok(one) => Request::One(one),
            Err(stream) => Request::Stream(stream),
        };
        let call = ServerCall { context, kind, request, handler: handler.clone() };
        let mut service = self.0.lock().await;
        let ready = service.ready().await?;
        let answer = ready.call(call);
        drop(service);
        answer.await
    }
}

impl ServerReply {
    /// The one message, or the stream of them, to write.
    pub(crate) fn into_parts(self) -> Result<OutgoingMessage, RpcStream<OutgoingMessage>> {
        match self.0 {
            Reply::One(message) => Ok(message),
            Reply::Stream(stream) => Err(stream),
        }
    }
}
