//! Clusters on real loopback sockets, one file per area: membership (discovery, tags,
//! events, leaves and failures, keys and rotation, partitions), registries (selection by
//! tag, health, tag changes, the node registry) and failover (a worker killed under load
//! and restarted, idempotency). This file holds the helpers they share.
#![allow(missing_docs)]

mod failover;
mod membership;
mod registries;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rpcnet::cluster::{
    ClusterClient, ClusterClientConfig, ClusterConfig, ClusterEvent, ClusterEvents, ClusterKey, ClusterMembership,
    Keyring, LoadBalancingStrategy, NodeRegistry, NodeState, PartitionDetector, WorkerRegistry,
};
use rpcnet::codec::{BincodeCodec, Codec};
use rpcnet::{RpcConfig, RpcError, RpcServer, rpc_service};

#[rpc_service]
pub trait Work {
    /// The worker's name, after `millis` of work; safe to repeat.
    #[rpc(idempotent)]
    async fn read(&self, millis: u64) -> String;
}

struct Named {
    name: String,
    calls: Arc<AtomicUsize>,
}

impl Work for Named {
    async fn read(&self, millis: u64) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.name.clone()
    }
}

/// A worker process, simulated by a runtime of its own: killing it drops every task and
/// closes its sockets at once, as a crash would.
struct Worker {
    rpc_addr: SocketAddr,
    gossip_addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    /// Its membership, to set tags or listen to events from the test (the handle works from
    /// any runtime; the membership runs in the worker's).
    cluster: ClusterMembership,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Worker {
    /// Starts a worker serving `Work` and gossiping in the cluster of `secret`, on the given
    /// addresses (port 0: any).
    fn start(
        secret: &str,
        name: &str,
        rpc: SocketAddr,
        gossip: SocketAddr,
        seeds: Vec<SocketAddr>,
        tags: &[(&str, &str)],
    ) -> Self {
        rpcnet_tests::subscribe();
        let secret = secret.to_owned();
        let name = name.to_owned();
        let tags: Vec<(String, String)> = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
            let calls = Arc::new(AtomicUsize::new(0));
            let (rpc_addr, gossip_addr, handle) = runtime.block_on(async {
                // A restarted worker takes its old ports back: they free up once the dead
                // runtime has dropped its sockets.
                let (rpc_addr, cluster) = retry_bind(|| async {
                    let mut server = RpcServer::new(RpcConfig::dev(rpc.to_string()));
                    server.add_service(WorkServer::new(Named { name: name.clone(), calls: calls.clone() }));
                    let (rpc_addr, _shutdown) = server.spawn()?;
                    let mut config = ClusterConfig::default()
                        .with_secret(&secret)
                        .with_bind_addr(gossip)
                        .with_name(name.clone())
                        .with_rpc_addr(rpc_addr)
                        .with_seeds(seeds.clone());
                    for (key, value) in &tags {
                        config = config.with_tag(key.clone(), value.clone());
                    }
                    Ok((rpc_addr, ClusterMembership::new(config).await?))
                })
                .await;
                let (gossip_addr, handle) = (cluster.gossip_addr(), cluster.clone());
                tokio::spawn(async move {
                    let _alive_until_killed = cluster;
                    std::future::pending::<()>().await
                });
                (rpc_addr, gossip_addr, handle)
            });
            Worker { rpc_addr, gossip_addr, calls, cluster: handle, runtime: Some(runtime) }
        })
        .join()
        .expect("worker thread")
    }

    /// Crashes the worker: its tasks stop and its sockets close without a word to anyone.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn retry_bind<T, F, Fut>(mut bind: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RpcError>>,
{
    for _ in 0..50 {
        match bind().await {
            Ok(value) => return value,
            Err(err) => tracing::debug!(%err, "address still in use, retrying"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not bind within 5 s");
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A member of the cluster of `secret` that serves nothing: the client side of a cluster.
/// Each test has a secret of its own, so that its clusters never meet another test's
/// (whose nodes may gossip to a port that this test reuses).
async fn member(secret: &str, name: &str, seeds: Vec<SocketAddr>) -> ClusterMembership {
    rpcnet_tests::subscribe();
    let config = ClusterConfig::default().with_secret(secret).with_name(name).with_seeds(seeds);
    ClusterMembership::new(config).await.unwrap()
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `limit`.
async fn eventually(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within {limit:?}");
}

/// Waits for the first event that `matches`, for at most `limit`.
async fn wait_for(events: &mut ClusterEvents, limit: Duration, mut matches: impl FnMut(&ClusterEvent) -> bool) -> bool {
    tokio::time::timeout(limit, async {
        while let Some(event) = events.recv().await {
            if matches(&event) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

fn names(cluster: &ClusterMembership, state: NodeState) -> Vec<String> {
    let mut names: Vec<String> =
        cluster.nodes().into_iter().filter(|n| n.state == state).map(|n| n.name.clone()).collect();
    names.sort();
    names
}
