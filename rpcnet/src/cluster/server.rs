//! `RpcServer::enable_cluster`: a bound server joins a cluster and advertises its own
//! address for RPC, as the rpcnet book shows it. It lives here, not in `server/`, so that
//! the server layer knows nothing of clusters.

use super::{ClusterConfig, ClusterMembership};
use crate::error::RpcError;
use crate::server::RpcServer;

impl RpcServer {
    /// Joins the cluster of `config` as a member that serves RPC at this server's address
    /// (unless `config` names another with
    /// [`with_rpc_addr`](ClusterConfig::with_rpc_addr)). Call it after
    /// [`bind`](RpcServer::bind).
    ///
    /// Gossip needs a UDP port of its own: QUIC owns the server's. Leave the gossip bind
    /// address at port 0, or give it another port.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rpcnet::RpcError> {
    /// use rpcnet::{RpcConfig, RpcServer};
    /// use rpcnet::cluster::ClusterConfig;
    /// let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    /// let endpoint = server.bind()?;
    /// let cluster = server.enable_cluster(ClusterConfig::dev().with_seeds(["127.0.0.1:7946".parse().unwrap()])).await?;
    /// cluster.set_tag("role", "worker");
    /// server.start(endpoint).await?;
    /// # Ok(()) }
    /// ```
    pub async fn enable_cluster(&self, config: ClusterConfig) -> Result<ClusterMembership, RpcError> {
        let Some(addr) = self.local_addr() else {
            return Err(RpcError::Config(
                "bind the server before enable_cluster: the cluster advertises its address".into(),
            ));
        };
        if config.rpc_addr().is_some() {
            return ClusterMembership::new(config).await;
        }
        if addr.ip().is_unspecified() {
            return Err(RpcError::Config(format!(
                "the server listens on {addr}, which other nodes cannot call: set ClusterConfig::with_rpc_addr to the address they should use"
            )));
        }
        if config.bind_addr() == addr {
            return Err(RpcError::Config(format!(
                "gossip needs a UDP port of its own, and {addr} is the server's QUIC port: bind gossip to port 0 or another port"
            )));
        }
        ClusterMembership::new(config.with_rpc_addr(addr)).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::RpcConfig;

    #[tokio::test]
    async fn a_bound_server_joins_as_a_worker_at_its_own_address() {
        let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
        let unbound = server.enable_cluster(ClusterConfig::dev()).await.unwrap_err();
        assert!(unbound.to_string().contains("bind the server"), "{unbound}");
        let _endpoint = server.bind().unwrap();
        let addr = server.local_addr().unwrap();
        let same_port = server.enable_cluster(ClusterConfig::dev().with_bind_addr(addr)).await.unwrap_err();
        assert!(same_port.to_string().contains("UDP port of its own"), "{same_port}");

        let cluster = server.enable_cluster(ClusterConfig::dev()).await.unwrap();
        assert_eq!(cluster.local_node().rpc_addr, Some(addr));
        let observer = ClusterMembership::new(ClusterConfig::dev().with_seeds([cluster.gossip_addr()])).await.unwrap();
        let mut seen = None;
        for _ in 0..100 {
            seen = observer.nodes().into_iter().find(|n| n.id == cluster.local_node_id());
            if seen.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(seen.and_then(|n| n.rpc_addr), Some(addr), "the others call it at the server's address");
        cluster.shutdown();
        observer.shutdown();
    }
}
