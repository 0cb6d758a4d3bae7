//! tower layers around the calls of a server, over loopback: tower's own limit and timeout
//! layers, and a layer written for the test that reads each call's context.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use rpcnet::server::{ServerCall, ServerReply};
use rpcnet::{CallOptions, Metadata, RpcClient, RpcConfig, RpcError, RpcServer, ServerHandle};
use tokio::sync::Notify;

/// A layer that lets a call through only with metadata `token: let-me-in`, and writes down
/// the method of every call it sees.
struct Guard<S> {
    inner: S,
    seen: Arc<Mutex<Vec<String>>>,
}

impl<S> tower::Service<ServerCall> for Guard<S>
where
    S: tower::Service<ServerCall, Response = ServerReply, Error = RpcError>,
    S::Future: Send + 'static,
{
    type Response = ServerReply;
    type Error = RpcError;
    type Future = BoxFuture<'static, Result<ServerReply, RpcError>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), RpcError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: ServerCall) -> Self::Future {
        self.seen.lock().unwrap().push(call.method().to_owned());
        if call.context().metadata().get_str("token") != Some("let-me-in") {
            return Box::pin(async { Err(RpcError::Unavailable("no token".into())) });
        }
        Box::pin(self.inner.call(call))
    }
}

fn token() -> CallOptions {
    let mut metadata = Metadata::new();
    metadata.insert("token", "let-me-in").unwrap();
    CallOptions::new().with_metadata(metadata)
}

async fn serve(server: RpcServer) -> (RpcClient, ServerHandle) {
    let (addr, handle) = server.spawn().unwrap();
    (RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap(), handle)
}

#[tokio::test]
async fn a_layer_of_ones_own_sees_every_call_with_its_context_and_may_refuse_it() {
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let count = ran.clone();
    server
        .register("Echo.say", move |payload| {
            count.fetch_add(1, Ordering::SeqCst);
            async move { Ok(payload) }
        })
        .await;
    server
        .register_server_streaming("Echo.repeat", |payload| async move {
            futures::stream::iter((0..3).map(move |_| Ok(payload.clone())))
        })
        .await;
    let log = seen.clone();
    server.layer(tower::layer::layer_fn(move |inner| Guard { inner, seen: log.clone() }));
    let (client, handle) = serve(server).await;

    let err = client.call_with("Echo.say", b"hi".to_vec(), CallOptions::new()).await.unwrap_err();
    assert!(matches!(&err, RpcError::Unavailable(m) if m.contains("no token")), "{err:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a refused call never reaches its handler");

    assert_eq!(client.call_with("Echo.say", b"hi".to_vec(), token()).await.unwrap(), "hi");
    let stream = client.server_streaming_with("Echo.repeat", b"x".to_vec(), token()).await.unwrap();
    assert_eq!(stream.map(|m| m.unwrap()).collect::<Vec<_>>().await, ["x", "x", "x"], "streams pass through layers");
    assert_eq!(*seen.lock().unwrap(), ["Echo.say", "Echo.say", "Echo.repeat"]);
    handle.shutdown().await;
}

#[tokio::test]
async fn towers_concurrency_limit_holds_calls_beyond_it_until_a_place_is_free() {
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let (r, p, e, gate) = (running.clone(), peak.clone(), entered.clone(), release.clone());
    server
        .register("Work.hold", move |payload| {
            let (running, peak, entered, gate) = (r.clone(), p.clone(), e.clone(), gate.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                entered.notify_one();
                gate.notified().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(payload)
            }
        })
        .await;
    server.layer(tower::limit::ConcurrencyLimitLayer::new(1));
    let (client, handle) = serve(server).await;

    let calls: Vec<_> = (0..3u8)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.call("Work.hold", vec![i]).await })
        })
        .collect();
    for _ in 0..3 {
        entered.notified().await;
        assert_eq!(running.load(Ordering::SeqCst), 1, "one call at a time runs");
        release.notify_one();
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 1, "the limit is shared by every call, not copied per call");
    handle.shutdown().await;
}

#[tokio::test]
async fn towers_timeout_ends_a_slow_call_as_a_timeout_and_drops_its_handler() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let flag = dropped.clone();
    server
        .register("Work.forever", move |_payload| {
            let guard = DropFlag(flag.clone());
            async move {
                let _guard = guard;
                futures::future::pending::<Result<Vec<u8>, RpcError>>().await
            }
        })
        .await;
    server.layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(50)));
    let (client, handle) = serve(server).await;
    let err = client.call("Work.forever", Vec::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "tower's Elapsed reaches the caller as a timeout: {err:?}");
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the handler's future was dropped");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn towers_rate_limit_counts_the_calls_of_every_client_together() {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.register("Echo.say", |payload| async move { Ok(payload) }).await;
    server.layer(tower::limit::RateLimitLayer::new(2, Duration::from_secs(3600)));
    let (client, handle) = serve(server).await;
    let other = RpcClient::connect(client.remote_addr(), RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    client.call("Echo.say", b"1".to_vec()).await.unwrap();
    other.call("Echo.say", b"2".to_vec()).await.unwrap();
    let third = other.call_with("Echo.say", b"3".to_vec(), CallOptions::new().with_timeout(Duration::from_secs(5)));
    let err = third.await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "the third call of the hour waits past its deadline: {err:?}");
    handle.shutdown().await;
}

/// Counts its drops: shows that the server dropped a handler's future.
struct DropFlag(Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
