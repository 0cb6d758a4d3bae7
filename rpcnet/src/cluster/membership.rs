//! `ClusterMembership`: a node's membership in a cluster, running the sans-IO core on a
//! UDP socket from one tokio task. Its settings are `ClusterConfig` (`config.rs`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::core::{Core, GossipStats, Transmit};
use super::events::{ClusterEvent, ClusterEvents, NodeInfo};
use super::{ClusterConfig, HealthCheckConfig, NodeId};
use crate::error::RpcError;

struct Shared {
    core: Mutex<Core>,
    events: broadcast::Sender<ClusterEvent>,
    /// Wakes the driver after an API call changed the core (to send what it queued).
    poke: Notify,
    stop: CancellationToken,
    gossip_addr: SocketAddr,
    health: HealthCheckConfig,
}

/// This node's membership in a cluster: SWIM gossip (foca) over sealed UDP datagrams, with
/// tags, health and events. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), rpcnet::RpcError> {
/// use rpcnet::cluster::{ClusterConfig, ClusterMembership};
/// let cluster = ClusterMembership::new(ClusterConfig::dev().with_seeds(["127.0.0.1:7946".parse().unwrap()])).await?;
/// cluster.set_tag("role", "worker");
/// cluster.set_tag("zone", "eu-1");
/// let mut events = cluster.subscribe();
/// while let Some(event) = events.recv().await {
///     println!("{event:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClusterMembership {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ClusterMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterMembership").field("gossip_addr", &self.shared.gossip_addr).finish_non_exhaustive()
    }
}

impl ClusterMembership {
    /// Binds the gossip socket, starts gossiping, and joins through the configured seeds
    /// (and, with the `dns` feature, those its seed names resolve to, from a task).
    /// Fails with [`RpcError::Config`] without a key, with invalid timings, a malformed seed
    /// name, or when bound to
    /// a wildcard address with no [`with_advertise_addr`](ClusterConfig::with_advertise_addr).
    pub async fn new(config: ClusterConfig) -> Result<Self, RpcError> {
        let core_config = config.core_config()?;
        #[cfg(feature = "dns")]
        let seed_names = config.seed_targets()?;
        let keyring = config.keyring()?;
        config.check_addresses()?;
        let socket = UdpSocket::bind(config.bind_addr)
            .await
            .map_err(|e| RpcError::Config(format!("cannot bind the gossip socket {}: {e}", config.bind_addr)))?;
        let bound = socket.local_addr().map_err(|e| RpcError::Config(format!("gossip socket: {e}")))?;
        let gossip_addr = config.gossip_identity(bound)?;
        let me = NodeId::starting(gossip_addr);
        let name = config.name.clone().unwrap_or_else(|| gossip_addr.to_string());
        let now = Instant::now();
        let core = Core::new(
            core_config,
            me,
            name,
            config.rpc_addr,
            config.tags.clone(),
            keyring,
            rand::random(),
            now,
            SystemTime::now(),
        );
        let (events, _) = broadcast::channel(config.event_capacity);
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            events,
            poke: Notify::new(),
            stop: CancellationToken::new(),
            gossip_addr,
            health: config.health().clone(),
        });
        tokio::spawn(drive(shared.clone(), socket));
        let membership = Self { shared };
        if !config.seeds.is_empty() {
            membership.join(config.seeds.clone()).await?;
        }
        #[cfg(feature = "dns")]
        if !seed_names.is_empty() {
            let (alone, join) = (membership.clone(), membership.clone());
            let seeds = super::dns_seeds::SeedJoin {
                names: seed_names,
                resolver: config.seed_resolver.clone(),
                interval: config.gossip_interval,
                me: gossip_addr,
                alone: move || alone.nodes().iter().all(|node| !node.is_up()),
                join: move |seeds: Vec<SocketAddr>| join.with_core(|core, now| core.join(&seeds, now)),
            };
            tokio::spawn(seeds.run(membership.shared.stop.clone()));
        }
        tracing::info!(node = %me, "cluster membership started");
        Ok(membership)
    }

    fn with_core<R>(&self, f: impl FnOnce(&mut Core, Instant) -> R) -> R {
        let result = {
            let mut core = self.shared.core.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut core, Instant::now())
        };
        self.shared.poke.notify_one();
        result
    }

    /// Joins the cluster through `seeds` (any members' gossip addresses).
    pub async fn join(&self, seeds: Vec<SocketAddr>) -> Result<(), RpcError> {
        self.with_core(|core, now| core.join(&seeds, now));
        Ok(())
    }

    /// Sets a tag; the whole cluster sees it within a few gossip rounds.
    pub fn set_tag(&self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        self.with_core(|core, now| core.update_tags(now, |tags| drop(tags.insert(key, value))));
    }

    /// Removes a tag.
    pub fn remove_tag(&self, key: &str) {
        self.with_core(|core, now| core.update_tags(now, |tags| drop(tags.remove(key))));
    }

    /// One of this node's tags.
    pub fn get_tag(&self, key: &str) -> Option<String> {
        self.with_core(|core, now| core.local(now).tags.get(key).cloned())
    }

    /// Events from now on.
    pub fn subscribe(&self) -> ClusterEvents {
        ClusterEvents::new(self.shared.events.subscribe())
    }

    /// Every other member known, with its state.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.with_core(|core, now| core.nodes(now))
    }

    /// The same as [`nodes`](Self::nodes), under the rpcnet 0.1 book's name.
    pub fn members(&self) -> Vec<NodeInfo> {
        self.nodes()
    }

    /// How many other members are known, whatever their state: `nodes().len()`, as
    /// [`NodeRegistry::node_count`](super::NodeRegistry::node_count) counts them. The
    /// cluster's size, this node included, is one more.
    pub fn node_count(&self) -> usize {
        self.with_core(|core, now| core.nodes(now).len())
    }

    /// This node.
    pub fn local_node(&self) -> NodeInfo {
        self.with_core(|core, now| core.local(now))
    }

    /// This node's identity.
    pub fn local_node_id(&self) -> NodeId {
        self.with_core(|core, _| core.me())
    }

    /// The gossip address other members know this node by (the advertised one, if set):
    /// the address to give them as a seed.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.shared.gossip_addr
    }

    /// Gossip traffic counters.
    pub fn gossip_stats(&self) -> GossipStats {
        self.with_core(|core, _| core.stats())
    }

    /// (members reachable, itself included; those plus the members remembered as failed),
    /// as [`PartitionDetector`](super::PartitionDetector) reads it.
    pub fn quorum(&self) -> (usize, usize) {
        self.with_core(|core, _| core.quorum())
    }

    /// Records a sign of life of the member at gossip address `addr` seen outside gossip,
    /// for its phi-accrual detector. Balanced clients following a
    /// [`WorkerRegistry`](super::WorkerRegistry) record the answers to their pings here;
    /// record only signals that come at a steady rhythm (see [`HealthCheckConfig`]).
    /// Ignored for an address that is not a member up.
    pub fn record_heartbeat(&self, addr: SocketAddr) {
        self.with_core(|core, now| core.heartbeat(addr, now));
    }

    /// φ of member `id` (see [`PhiAccrual`](super::PhiAccrual)), or `None` if it is not a
    /// member up or no client of this node has pinged it in the last few health intervals.
    /// Whether a member is alive is SWIM's call ([`NodeInfo::state`]); φ only steers load.
    pub fn phi(&self, id: NodeId) -> Option<f64> {
        self.with_core(|core, now| core.phi(id, now))
    }

    /// The φ above which members count as suspect for balancing.
    pub fn phi_threshold(&self) -> f64 {
        self.shared.health.phi_threshold()
    }

    /// How workers' health is checked (how often clients ping them, how φ is read).
    pub fn health_check(&self) -> &HealthCheckConfig {
        &self.shared.health
    }

    /// Leaves gracefully: members see `NodeLeft`, not `NodeFailed`. Gossip stops shortly
    /// after (once the departure is sent).
    pub async fn leave(&self) -> Result<(), RpcError> {
        self.with_core(|core, now| core.leave(now));
        // The notice goes first; SWIM's departure follows LEAVE_DELAY later.
        tokio::time::sleep(super::core::LEAVE_DELAY * 3).await;
        self.shutdown();
        Ok(())
    }

    /// Stops gossiping at once without leaving: to the others, this node fails.
    pub fn shutdown(&self) {
        self.shared.stop.cancel();
    }
}

/// The one task that owns the socket: feeds datagrams and timers into the core, sends what
/// it produces, and publishes its events.
async fn drive(shared: Arc<Shared>, socket: UdpSocket) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut outbox = Vec::new();
    loop {
        let deadline = {
            let mut core = shared.core.lock().unwrap_or_else(|p| p.into_inner());
            drain(&shared, &mut core, &mut outbox);
            core.next_timeout()
        };
        send_all(&socket, &mut outbox).await;
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shared.stop.cancelled() => break,
            () = shared.poke.notified() => {}
            () = sleep => {
                let mut core = shared.core.lock().unwrap_or_else(|p| p.into_inner());
                core.handle_timeout(Instant::now());
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => {
                    let mut core = shared.core.lock().unwrap_or_else(|p| p.into_inner());
                    core.handle_datagram(from, &buf[..len], Instant::now());
                }
                Err(err) => tracing::debug!(error = %err, "gossip socket receive error"),
            },
        }
    }
    // Send what is still queued (a departure), then drop the socket.
    let me = {
        let mut core = shared.core.lock().unwrap_or_else(|p| p.into_inner());
        drain(&shared, &mut core, &mut outbox);
        core.me()
    };
    send_all(&socket, &mut outbox).await;
    tracing::info!(node = %me, "cluster membership stopped");
}

/// Sends the datagrams waiting in `outbox`. Awaiting each send (rather than trying it)
/// matters on a fresh socket, whose writability tokio has not observed yet.
async fn send_all(socket: &UdpSocket, outbox: &mut Vec<Transmit>) {
    for transmit in outbox.drain(..) {
        if let Err(err) = socket.send_to(&transmit.data, transmit.to).await {
            tracing::debug!(to = %transmit.to, error = %err, "gossip datagram not sent");
        }
    }
}

/// Takes the core's datagrams into `outbox` and publishes its events.
fn drain(shared: &Shared, core: &mut Core, outbox: &mut Vec<Transmit>) {
    outbox.extend(std::iter::from_fn(|| core.poll_transmit()));
    while let Some(event) = core.poll_event() {
        tracing::debug!(?event, "cluster event");
        let _ = shared.events.send(event);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_wildcard_bind_without_an_advertised_address_is_refused_before_binding() {
        let wildcard = ClusterConfig::dev().with_bind_addr("0.0.0.0:0".parse().unwrap());
        let err = ClusterMembership::new(wildcard).await.unwrap_err();
        assert!(matches!(err, RpcError::Config(_)), "{err:?}");
        assert!(err.to_string().contains("with_advertise_addr"), "the error names the fix: {err}");
    }

    #[tokio::test]
    async fn members_know_a_node_by_its_advertised_address() {
        let loopback = "127.0.0.1:0".parse().unwrap();
        let advertised =
            ClusterMembership::new(ClusterConfig::dev().with_name("advertised").with_advertise_addr(loopback))
                .await
                .unwrap();
        let addr = advertised.gossip_addr();
        assert!(addr.ip().is_loopback() && addr.port() != 0, "port 0 advertises the bound port: {addr}");
        assert_eq!(advertised.local_node_id().addr, addr, "it gossips under the advertised address");
        let peer = ClusterMembership::new(ClusterConfig::dev().with_seeds([addr])).await.unwrap();
        let mut seen = false;
        for _ in 0..100 {
            seen = peer.nodes().iter().any(|n| n.name == "advertised" && n.id.addr == addr && n.is_up());
            if seen {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(seen, "the peer sees it at its advertised address: {:?}", peer.nodes());
        advertised.shutdown();
        peer.shutdown();
    }
}
