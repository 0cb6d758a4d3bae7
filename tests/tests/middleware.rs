//! tower layers around the calls of typed clients, and a channel used as a tower service,
//! over loopback: metadata a layer adds reaches the handler's context, tower's timeout and
//! concurrency limit work on the client as on the server.
#![allow(missing_docs)] // test-only types

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use rpcnet::server::Context;
use rpcnet::{
    Channel, ClientCall, ClientReply, Metadata, ResponseMetadata, RpcClient, RpcConfig, RpcError, RpcServer,
    rpc_service,
};
use tokio::sync::Notify;
use tower::{Service, ServiceExt};

#[rpc_service]
pub trait Greeter {
    async fn greet(&self, name: String) -> String;
    async fn hold(&self) -> u32;
}

#[derive(Default)]
struct Greeting {
    running: AtomicUsize,
    peak: AtomicUsize,
    entered: Notify,
    release: Notify,
}

impl Greeter for Arc<Greeting> {
    async fn greet(&self, name: String) -> String {
        let context = Context::current().expect("inside a call");
        let metadata = context.metadata();
        let _ = Context::insert_response_metadata("greeted", name.as_str());
        format!(
            "hello {name} token={} tenant={}",
            metadata.get_str("authorization").unwrap_or("-"),
            metadata.get_str("tenant").unwrap_or("-")
        )
    }

    async fn hold(&self) -> u32 {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.entered.notify_one();
        self.release.notified().await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        now as u32
    }
}

/// Adds `authorization: Bearer <token>` to every call, as an auth layer of a client would.
struct BearerToken<S> {
    inner: S,
    token: &'static str,
}

impl<S> Service<ClientCall> for BearerToken<S>
where
    S: Service<ClientCall, Response = ClientReply, Error = RpcError>,
    S::Future: Send + 'static,
{
    type Response = ClientReply;
    type Error = RpcError;
    type Future = BoxFuture<'static, Result<ClientReply, RpcError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: ClientCall) -> Self::Future {
        if let Err(err) = call.insert_metadata("authorization", format!("Bearer {}", self.token)) {
            return Box::pin(async move { Err(RpcError::Internal(err.to_string())) });
        }
        Box::pin(self.inner.call(call))
    }
}

async fn start() -> (GreeterClient, Arc<Greeting>, rpcnet::ServerHandle) {
    let greeting = Arc::new(Greeting::default());
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(GreeterServer::new(greeting.clone()));
    let (addr, handle) = server.spawn().unwrap();
    let client = GreeterClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    (client, greeting, handle)
}

#[tokio::test]
async fn a_client_layer_adds_metadata_that_the_handler_reads_beside_the_clients_defaults() {
    let (client, _, handle) = start().await;
    let mut tenant = Metadata::new();
    tenant.insert("tenant", "acme").unwrap();
    let reply = ResponseMetadata::new();
    let authed = client
        .with_metadata(tenant)
        .with_response_metadata(&reply)
        .with_layer(tower::layer::layer_fn(|inner| BearerToken { inner, token: "s3cret" }));
    assert_eq!(authed.greet("ada".into()).await.unwrap(), "hello ada token=Bearer s3cret tenant=acme");
    assert_eq!(reply.get().get_str("greeted"), Some("ada"), "response metadata passes back through the layer");
    assert_eq!(client.greet("bob".into()).await.unwrap(), "hello bob token=- tenant=-", "the original is unchanged");
    handle.shutdown().await;
}

#[tokio::test]
async fn towers_timeout_and_concurrency_limit_work_around_a_typed_client() {
    let (client, greeting, handle) = start().await;
    let limited = client.with_layer(tower::limit::ConcurrencyLimitLayer::new(1));
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let limited = limited.clone();
            tokio::spawn(async move { limited.hold().await })
        })
        .collect();
    for _ in 0..3 {
        greeting.entered.notified().await;
        greeting.release.notify_one();
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), 1, "each call ran alone");
    }
    assert_eq!(greeting.peak.load(Ordering::SeqCst), 1, "clones of a client share its limit");

    let impatient = client.with_layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(50)));
    let err = impatient.hold().await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "tower's Elapsed reaches the caller as a timeout: {err:?}");
    greeting.release.notify_one();
    handle.shutdown().await;
}

#[tokio::test]
async fn a_channel_is_a_tower_service_that_towers_own_layers_can_wrap() {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.register("Raw.echo", |payload| async move { Ok(payload) }).await;
    let (addr, handle) = server.spawn().unwrap();
    let channel = Channel::single(RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap());

    let mut service =
        tower::ServiceBuilder::new().concurrency_limit(4).timeout(Duration::from_secs(30)).service(channel);
    let reply = service.ready().await.unwrap().call(ClientCall::unary("Raw.echo", &b"ping"[..])).await.unwrap();
    assert_eq!(reply.into_bytes().as_deref(), Some(&b"ping"[..]));
    let missing = service.ready().await.unwrap().call(ClientCall::unary("Raw.nothing", &b""[..])).await.unwrap_err();
    assert!(matches!(missing.downcast_ref::<RpcError>(), Some(RpcError::UnknownMethod(_))), "{missing:?}");
    handle.shutdown().await;
}
