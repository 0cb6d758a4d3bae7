//! The worker role: serve `Work` on `--bind`, join the cluster with the node's tags, and on
//! SIGTERM leave gracefully: stop taking calls, leave the cluster, let the calls in flight
//! finish (within the server's grace period), close. SIGKILL is a crash, as on any host.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use clap::Args;
use rpcnet::RpcServer;
use rpcnet::cluster::ClusterMembership;
use serde_json::json;

use crate::options::NodeArgs;
use crate::output::Output;
use crate::service::{WorkServer, Worker};

/// `rpcnet-node worker`.
#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) node: NodeArgs,
    /// Where the RPC server (QUIC, UDP) binds.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub(crate) bind: SocketAddr,
    /// The RPC address the others call, if `--bind` is a wildcard.
    #[arg(long)]
    pub(crate) advertise_rpc: Option<SocketAddr>,
    /// How long each call takes, in milliseconds.
    #[arg(long, default_value_t = 2)]
    pub(crate) service_time_ms: u64,
}

pub(crate) async fn run(args: WorkerArgs) -> Result<(), String> {
    let out = Output::new(&args.node.name, args.node.json);
    let mut server = RpcServer::new(args.node.server_config(args.bind)?);
    let worker = Worker {
        name: args.node.name.clone(),
        service_time: Duration::from_millis(args.service_time_ms),
        appended: AtomicU64::new(0),
    };
    server.add_service(WorkServer::new(worker));
    let (bound, handle) = server.spawn().map_err(|e| format!("--bind {}: {e}", args.bind))?;
    let rpc_addr = match args.advertise_rpc {
        Some(addr) => addr,
        None if bound.ip().is_unspecified() => {
            return Err(format!("--bind {bound} is a wildcard: give --advertise-rpc, the address others call"));
        }
        None => bound,
    };
    let mut config = args.node.cluster_config()?.with_rpc_addr(rpc_addr);
    if !args.node.tags.iter().any(|(key, _)| key == "role") {
        config = config.with_tag("role", "worker");
    }
    let cluster = ClusterMembership::new(config).await.map_err(|e| format!("joining the cluster: {e}"))?;
    let watching = out.watch(&cluster);
    out.print("started", json!({ "rpc": rpc_addr.to_string(), "gossip": cluster.gossip_addr().to_string() }), || {
        format!("[{}] serving on {rpc_addr}, gossip on {}", args.node.name, cluster.gossip_addr())
    });

    crate::signal::terminated().await?;
    out.print("stopping", json!({ "in_flight": handle.in_flight_calls() }), || {
        format!("[{}] SIGTERM: leaving, {} calls in flight", args.node.name, handle.in_flight_calls())
    });
    handle.stop_accepting();
    leave(&cluster).await;
    handle.shutdown().await;
    watching.abort();
    out.print("stopped", json!({}), || format!("[{}] stopped", args.node.name));
    Ok(())
}

/// Leaves the cluster, so the others stop sending calls here before the server closes.
async fn leave(cluster: &ClusterMembership) {
    if let Err(err) = cluster.leave().await {
        tracing::warn!(error = %err, "could not say goodbye to the cluster");
    }
}
