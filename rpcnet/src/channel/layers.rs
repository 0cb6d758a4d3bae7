//! Middleware on the client: tower `Layer`s around each call of a channel, and so of the
//! typed client over it. A call reaches them as a `ClientCall` (method, options, request)
//! and leaves as a `ClientReply`; the innermost service makes the call on the channel's target.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::{Channel, MethodPolicy, Target};
use crate::client::CallOptions;
use crate::error::RpcError;
use crate::metadata::{Metadata, MetadataError, MetadataValue};
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::{CallKind, Payload};

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The service a client's layers wrap: what [`Channel::layer`] hands each layer, already
/// wrapped in the layers added before it.
///
/// A layer goes around every call of the channel (of the typed client over it, with
/// `XClient::with_layer`), and around the layers added before it, so the last one added sees
/// a call first. It sees each call as a [`ClientCall`] (method, options, request), may change
/// its options (add metadata such as a token, set a deadline) or answer it itself, and its
/// errors reach the caller as [`RpcError`]s (tower's `Elapsed` as a timeout). As on the
/// server, one instance of the layered service serves every call of the channel and its
/// clones, each call waiting for it to be ready in turn, so limits count every call.
pub type ClientService = BoxService<ClientCall, ClientReply, RpcError>;

/// One call as a client's layers see it.
pub struct ClientCall {
    method: String,
    kind: CallKind,
    policy: MethodPolicy,
    options: CallOptions,
    request: Request,
}

enum Request {
    One(OutgoingMessage),
    Stream(RpcStream<OutgoingMessage>),
}

impl ClientCall {
    /// A unary call of `method` with a raw payload, to send through a channel used as a
    /// [`tower::Service`].
    pub fn unary(method: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        let request = Request::One(OutgoingMessage::Payload(payload.into()));
        let (kind, policy, options) = (CallKind::Unary, MethodPolicy::new(), CallOptions::new());
        Self { method: method.into(), kind, policy, options, request }
    }

    /// The method's name on the wire.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The shape of the call.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// Whether the method was declared idempotent (`#[rpc(idempotent)]`) or the call's
    /// options say so.
    pub fn is_idempotent(&self) -> bool {
        self.policy.is_idempotent() || self.options.is_idempotent()
    }

    /// What the method's `#[rpc(...)]` attributes say (the defaults for a raw call).
    pub fn policy(&self) -> &MethodPolicy {
        &self.policy
    }

    /// The options the call will be made with.
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// Replaces the call's options.
    pub fn set_options(&mut self, options: CallOptions) {
        self.options = options;
    }

    /// Adds one metadata entry to the call (over the same key set before).
    pub fn insert_metadata(&mut self, key: &str, value: impl Into<MetadataValue>) -> Result<(), MetadataError> {
        let mut metadata = Metadata::new();
        metadata.insert(key, value)?;
        self.options = std::mem::take(&mut self.options).with_metadata(metadata);
        Ok(())
    }

    /// The same call with `options`, the method's policy as declared.
    pub(crate) fn new(method: &str, policy: MethodPolicy, options: CallOptions, request: OutgoingMessage) -> Self {
        let request = Request::One(request);
        Self { method: method.to_owned(), kind: CallKind::Unary, policy, options, request }
    }

    pub(crate) fn streaming(
        method: &str,
        kind: CallKind,
        options: CallOptions,
        request: Result<OutgoingMessage, RpcStream<OutgoingMessage>>,
    ) -> Self {
        let request = match request {
            Ok(one) => Request::One(one),
            Err(stream) => Request::Stream(stream),
        };
        Self { method: method.to_owned(), kind, policy: MethodPolicy::new(), options, request }
    }
}

impl fmt::Debug for ClientCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCall")
            .field("method", &self.method)
            .field("kind", &self.kind)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What came back for a call, on its way through the layers to the caller.
pub struct ClientReply(Reply);

enum Reply {
    One(Payload),
    Stream(RpcStream<Payload>),
}

impl ClientReply {
    /// The one response message of a unary or client-streaming call (`None` for a stream).
    pub fn into_bytes(self) -> Option<Bytes> {
        match self.0 {
            Reply::One(payload) => Some(payload.into_bytes()),
            Reply::Stream(_) => None,
        }
    }

    pub(crate) fn into_one(self) -> Result<Payload, RpcError> {
        match self.0 {
            Reply::One(payload) => Ok(payload),
            Reply::Stream(_) => Err(RpcError::Internal("a client layer answered one message with a stream".into())),
        }
    }

    pub(crate) fn into_stream(self) -> Result<RpcStream<Payload>, RpcError> {
        match self.0 {
            Reply::Stream(stream) => Ok(stream),
            Reply::One(_) => Err(RpcError::Internal("a client layer answered a stream with one message".into())),
        }
    }
}

impl fmt::Debug for ClientReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = match self.0 {
            Reply::One(_) => "one message",
            Reply::Stream(_) => "a stream",
        };
        f.debug_tuple("ClientReply").field(&shape).finish()
    }
}

/// The innermost service: makes the call on the channel's target.
struct MakeCall(Target);

impl Service<ClientCall> for MakeCall {
    type Response = ClientReply;
    type Error = RpcError;
    type Future = BoxFuture<Result<ClientReply, RpcError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ClientCall) -> Self::Future {
        let target = self.0.clone();
        Box::pin(async move {
            let ClientCall { method, kind, policy, options, request } = call;
            let reply = match (kind, request) {
                (CallKind::Unary, Request::One(one)) => Reply::One(target.unary(&method, policy, one, &options).await?),
                (CallKind::ServerStreaming, Request::One(one)) => {
                    Reply::Stream(target.server_streaming(&method, one, &options).await?)
                }
                (CallKind::ClientStreaming, Request::Stream(stream)) => {
                    Reply::One(target.client_streaming(&method, stream, &options).await?)
                }
                (CallKind::BidiStreaming, Request::Stream(stream)) => {
                    Reply::Stream(target.bidi_streaming(&method, stream, &options).await?)
                }
                (kind, _) => return Err(RpcError::Internal(format!("a {kind:?} call carried the wrong request"))),
            };
            Ok(ClientReply(reply))
        })
    }
}

/// The layers of a channel, shared by its clones.
#[derive(Clone)]
pub(crate) struct ClientLayers(Arc<tokio::sync::Mutex<ClientService>>);

impl fmt::Debug for ClientLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientLayers")
    }
}

impl ClientLayers {
    /// Runs a call through the layers to the target.
    pub(crate) async fn call(&self, call: ClientCall) -> Result<ClientReply, RpcError> {
        let mut service = self.0.lock().await;
        let answer = service.ready().await?.call(call);
        drop(service);
        answer.await
    }
}

impl Channel {
    /// The same channel with `layer` around each of its calls, and around the layers added
    /// before it; see [`ClientService`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rpcnet::RpcError> {
    /// # let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
    /// # let (addr, handle) = server.spawn()?;
    /// use std::time::Duration;
    /// let client = rpcnet::RpcClient::connect(addr, rpcnet::RpcConfig::dev("127.0.0.1:0")).await?;
    /// let channel = rpcnet::Channel::single(client)
    ///     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(2)))
    ///     .layer(tower::limit::ConcurrencyLimitLayer::new(32));
    /// # let _ = channel;
    /// # handle.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn layer<L>(&self, layer: L) -> Channel
    where
        L: Layer<ClientService>,
        L::Service: Service<ClientCall, Response = ClientReply> + Send + 'static,
        <L::Service as Service<ClientCall>>::Error: Into<BoxError>,
        <L::Service as Service<ClientCall>>::Future: Send + 'static,
    {
        // The layers already there are shared with the channels this one was cloned from;
        // the new stack wraps them, so those channels keep theirs.
        let inner = match &self.layers {
            Some(layers) => ClientService::new(SharedLayers(layers.clone())),
            None => ClientService::new(MakeCall(self.target.clone())),
        };
        let service = ClientService::new(layer.layer(inner).map_err(|err| RpcError::from_layer(err.into(), "client")));
        Channel {
            target: self.target.clone(),
            options: self.options.clone(),
            layers: Some(ClientLayers(Arc::new(tokio::sync::Mutex::new(service)))),
        }
    }
}

/// Layers of another channel, as the inner service of new ones.
struct SharedLayers(ClientLayers);

impl Service<ClientCall> for SharedLayers {
    type Response = ClientReply;
    type Error = RpcError;
    type Future = BoxFuture<Result<ClientReply, RpcError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: ClientCall) -> Self::Future {
        let layers = self.0.clone();
        Box::pin(async move { layers.call(call).await })
    }
}

/// A channel is itself a tower service of raw calls, so tower's own machinery (retry,
/// balance, buffer, timeout) can wrap it; its layers, if any, run inside.
impl Service<ClientCall> for Channel {
    type Response = ClientReply;
    type Error = RpcError;
    type Future = BoxFuture<Result<ClientReply, RpcError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    /// The call is made with its own options, the channel's metadata under its own.
    fn call(&mut self, mut call: ClientCall) -> Self::Future {
        let channel = self.clone();
        if let Some(defaults) = channel.options.metadata() {
            let own = call.options.metadata().cloned().unwrap_or_default();
            call.options = std::mem::take(&mut call.options).with_metadata(defaults.clone()).with_metadata(own);
        }
        Box::pin(async move {
            match &channel.layers {
                Some(layers) => layers.call(call).await,
                None => MakeCall(channel.target.clone()).call(call).await,
            }
        })
    }
}
