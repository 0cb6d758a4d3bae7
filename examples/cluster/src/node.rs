//! A worker node of the demo: an rpcnet server and a cluster membership on a tokio runtime
//! of its own, so that killing it drops its tasks and closes its sockets at once, as a
//! crashed process would, while the demo keeps running.

use std::net::SocketAddr;
use std::time::Duration;

use rpcnet::cluster::{ClusterConfig, ClusterMembership};
use rpcnet::{RpcConfig, RpcServer};

use crate::service::{ComputeServer, Worker};

/// What a worker looks like to the cluster.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) zone: &'static str,
    pub(crate) service_time: Duration,
}

/// A running worker.
pub(crate) struct WorkerNode {
    runtime: Option<tokio::runtime::Runtime>,
}

impl WorkerNode {
    /// Starts a worker that joins the cluster through `seeds` (none: it is the first).
    pub(crate) fn start(spec: Spec, seeds: Vec<SocketAddr>) -> Result<(Self, SocketAddr), rpcnet::RpcError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(spec.name)
            .enable_all()
            .build()
            .map_err(|e| rpcnet::RpcError::Config(format!("worker runtime: {e}")))?;
        let gossip_addr = std::thread::scope(|scope| {
            scope.spawn(|| runtime.block_on(serve(&spec, seeds))).join().expect("worker start-up does not panic")
        })?;
        Ok((Self { runtime: Some(runtime) }, gossip_addr))
    }

    /// Crashes the worker: no goodbye, its sockets just close.
    pub(crate) fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for WorkerNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Serves `Compute` and joins the cluster; returns the gossip address.
async fn serve(spec: &Spec, seeds: Vec<SocketAddr>) -> Result<SocketAddr, rpcnet::RpcError> {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(ComputeServer::new(Worker { name: spec.name.to_owned(), service_time: spec.service_time }));
    let (rpc_addr, _shutdown) = server.spawn()?;
    let config = ClusterConfig::dev()
        .with_name(spec.name)
        .with_rpc_addr(rpc_addr)
        .with_tag("role", "worker")
        .with_tag("zone", spec.zone)
        .with_seeds(seeds);
    let cluster = ClusterMembership::new(config).await?;
    let gossip_addr = cluster.gossip_addr();
    // The membership lives as long as the worker's runtime.
    tokio::spawn(async move {
        let _member = cluster;
        std::future::pending::<()>().await
    });
    Ok(gossip_addr)
}
