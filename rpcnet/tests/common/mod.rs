//! Helpers shared by the integration tests: logging and a server with test methods.
#![allow(dead_code, unreachable_pub)]

pub mod raw;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rpcnet::{RpcClient, RpcConfig, RpcError, RpcServer, ServerHandle};

/// Sends the library's tracing output to the test's captured output (`RUST_LOG` filters).
pub fn subscribe() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "rpcnet=debug".into()),
        )
        .try_init();
}

/// Sets a flag when dropped: shows that the server dropped a handler's future.
pub struct DropFlag(pub Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counters the test methods update.
#[derive(Default)]
pub struct Probes {
    /// Handlers of `test.sleep` that were dropped before finishing.
    pub dropped: Arc<AtomicUsize>,
    /// Handlers of `test.sleep` running now.
    pub running: Arc<AtomicUsize>,
    /// Most `test.sleep` handlers seen running at once.
    pub peak: Arc<AtomicUsize>,
}

/// Registers the test methods:
/// - `test.echo`: returns the request;
/// - `test.fail`: returns a service error with the request as payload;
/// - `test.panic`: panics;
/// - `test.sleep`: sleeps for the number of milliseconds in the request (u64 LE), counting
///   running and dropped handlers in `probes`;
/// - `test.big`: answers with as many bytes as the request says (u64 LE).
pub async fn register_test_methods(server: &mut RpcServer, probes: &Probes) {
    server.register("test.echo", |req| async move { Ok(req) }).await;
    server.register("test.fail", |req| async move { Err(RpcError::service(req)) }).await;
    server.register("test.panic", |_req| async move { panic!("handler exploded on purpose") }).await;
    server
        .register("test.big", |req| async move {
            let len = u64::from_le_bytes(req.try_into().map_err(|_| RpcError::Codec("want 8 bytes".into()))?);
            Ok(vec![7; len as usize])
        })
        .await;
    let (dropped, running, peak) = (probes.dropped.clone(), probes.running.clone(), probes.peak.clone());
    server
        .register("test.sleep", move |req| {
            let (dropped, running, peak) = (dropped.clone(), running.clone(), peak.clone());
            async move {
                let ms = u64::from_le_bytes(req.try_into().map_err(|_| RpcError::Codec("want 8 bytes".into()))?);
                let flag = DropFlag(dropped);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                std::mem::forget(flag);
                Ok(b"slept".to_vec())
            }
        })
        .await;
    server
        .register_server_streaming("test.count", |req| async move {
            let n = u32::from_le_bytes(req.try_into().unwrap_or([0; 4]));
            futures::stream::iter(0..n).map(|i| Ok(i.to_le_bytes().to_vec()))
        })
        .await;
    server
        .register_client_streaming("test.concat", |mut reqs| async move {
            let mut all = Vec::new();
            while let Some(part) = reqs.next().await {
                all.extend(part);
            }
            Ok(all)
        })
        .await;
    server
        .register_streaming("test.upper", |reqs| async move {
            reqs.map(|mut bytes: Vec<u8>| {
                bytes.make_ascii_uppercase();
                Ok(bytes)
            })
        })
        .await;
}

/// A running dev-certificate server with the test methods.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: ServerHandle,
    pub probes: Probes,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(RpcConfig::dev("127.0.0.1:0")).await
    }

    pub async fn start_with(config: RpcConfig) -> Self {
        subscribe();
        let probes = Probes::default();
        let mut server = RpcServer::new(config);
        register_test_methods(&mut server, &probes).await;
        let (addr, shutdown) = server.spawn().expect("server binds to a loopback port");
        Self { addr, shutdown, probes }
    }

    pub async fn client(&self) -> RpcClient {
        RpcClient::connect(self.addr, RpcConfig::dev("127.0.0.1:0")).await.expect("client connects")
    }
}

pub fn ms(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// Polls `cond` every 10 ms, at most `tries` times.
pub async fn eventually(tries: usize, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
