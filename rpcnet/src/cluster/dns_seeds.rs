//! Gossip seeds given as DNS names (the `dns` feature): resolved when the membership
//! starts, and again at every gossip interval while the node knows no other member up, so
//! that a node started before its seeds' records exist still joins once they appear.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::discovery::{DnsResolverConfig, DnsTarget, resolve_once};

/// What the seed task needs from the membership, without depending on it.
pub(super) struct SeedJoin<Alone, Join> {
    pub(super) names: Vec<DnsTarget>,
    pub(super) resolver: DnsResolverConfig,
    /// How often to look again whether the node is alone.
    pub(super) interval: Duration,
    /// This node's gossip address: a headless service lists the node itself among the seeds.
    pub(super) me: SocketAddr,
    /// Whether the node knows no other member up.
    pub(super) alone: Alone,
    /// Joins through these gossip addresses.
    pub(super) join: Join,
}

impl<Alone: Fn() -> bool, Join: Fn(Vec<SocketAddr>)> SeedJoin<Alone, Join> {
    /// Resolves the names and joins through them while the node is alone, until `stop`.
    pub(super) async fn run(self, stop: CancellationToken) {
        // Per name: whether its last resolution failed, so a streak warns once.
        let mut failing = vec![false; self.names.len()];
        loop {
            if (self.alone)() {
                let mut seeds = Vec::new();
                for (name, failing) in self.names.iter().zip(&mut failing) {
                    let resolved = tokio::select! {
                        () = stop.cancelled() => return,
                        resolved = resolve_once(name, &self.resolver) => resolved,
                    };
                    match resolved {
                        Ok(resolution) => {
                            if std::mem::take(failing) {
                                tracing::info!(seed = %name, "gossip seed name resolves again");
                            }
                            seeds.extend(resolution.addrs.into_iter().filter(|addr| *addr != self.me));
                        }
                        Err(err) => {
                            metrics::counter!("rpcnet_dns_resolution_failures_total", "target" => name.to_string())
                                .increment(1);
                            if !std::mem::replace(failing, true) {
                                tracing::warn!(seed = %name, error = %err, "gossip seed name does not resolve; trying again while alone");
                            }
                        }
                    }
                }
                if !seeds.is_empty() {
                    tracing::debug!(?seeds, "joining through seeds found in DNS");
                    (self.join)(seeds);
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
