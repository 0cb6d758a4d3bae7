//! `ClusterMembership`: a node's membership in a cluster, running the sans-IO core on a
//! UDP socket from one tokio task. `ClusterConfig` holds its settings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::NodeId;
use super::core::{Core, CoreConfig, GossipStats, Transmit};
use super::events::{ClusterEvent, ClusterEvents, NodeInfo};
use super::seal::{ClusterKey, Keyring, SEAL_OVERHEAD};
use super::wire::ENVELOPE_OVERHEAD;
use crate::RpcError;

/// The secret of [`ClusterConfig::dev`]: for demos and tests on one machine only.
const DEV_SECRET: &str = "rpcnet development cluster";
/// Largest gossip datagram: fits a 1500-byte MTU with IPv6 and UDP headers.
const MAX_DATAGRAM: usize = 1400;

/// How a node takes part in a cluster.
///
/// ```
/// use std::time::Duration;
/// use rpcnet::cluster::ClusterConfig;
/// let config = ClusterConfig::dev()
///     .with_bind_addr("127.0.0.1:0".parse().unwrap())
///     .with_name("worker-1")
///     .with_gossip_interval(Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    bind_addr: SocketAddr,
    seeds: Vec<SocketAddr>,
    name: Option<String>,
    rpc_addr: Option<SocketAddr>,
    tags: BTreeMap<String, String>,
    keyring: Option<Keyring>,
    gossip_interval: Duration,
    probe_timeout: Duration,
    indirect_probes: usize,
    suspicion_timeout: Duration,
    gossip_fanout: usize,
    periodic_gossip: Duration,
    sync_interval: Duration,
    tag_interval: Duration,
    phi_threshold: f64,
    partition_fraction: f64,
    partition_window: Duration,
    event_capacity: usize,
}

impl Default for ClusterConfig {
    /// Loopback, port 0, no seeds, and no key: set one with
    /// [`with_secret`](Self::with_secret) or [`with_keyring`](Self::with_keyring) (or use
    /// [`ClusterConfig::dev`]). Timings suit a LAN: a dead node is declared down within
    /// about 3.5 s and the rest of the cluster knows within a few hundred ms.
    fn default() -> Self {
        Self {
            bind_addr: "127.0.0.1:0".parse().expect("valid address"),
            seeds: Vec::new(),
            name: None,
            rpc_addr: None,
            tags: BTreeMap::new(),
            keyring: None,
            gossip_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_probes: 3,
            suspicion_timeout: Duration::from_millis(2000),
            gossip_fanout: 3,
            periodic_gossip: Duration::from_millis(200),
            sync_interval: Duration::from_secs(10),
            tag_interval: Duration::from_millis(250),
            phi_threshold: 8.0,
            partition_fraction: 0.3,
            partition_window: Duration::from_secs(10),
            event_capacity: 1024,
        }
    }
}

impl ClusterConfig {
    /// The defaults with a development secret: every process using it can join, so only
    /// for demos and tests on one machine.
    pub fn dev() -> Self {
        Self::default().with_secret(DEV_SECRET)
    }

    /// The gossip address (UDP). Default `127.0.0.1:0`.
    pub fn with_bind_addr(mut self, addr: SocketAddr) -> Self {
        self.bind_addr = addr;
        self
    }

    /// Members to contact when joining.
    pub fn with_seeds(mut self, seeds: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.seeds = seeds.into_iter().collect();
        self
    }

    /// This node's name, as others see it. Default: its gossip address.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Where this node serves RPC, so that others can call it.
    pub fn with_rpc_addr(mut self, addr: SocketAddr) -> Self {
        self.rpc_addr = Some(addr);
        self
    }

    /// A tag to start with (more can be set later with `set_tag`).
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// The cluster secret, from which the key sealing all gossip is derived.
    pub fn with_secret(mut self, secret: &str) -> Self {
        self.keyring = Some(Keyring::new(ClusterKey::from_secret(secret)));
        self
    }

    /// The cluster keys (to rotate: see [`Keyring`]).
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// How often a member is probed (SWIM's protocol period). Default 1 s.
    pub fn with_gossip_interval(mut self, interval: Duration) -> Self {
        self.gossip_interval = interval;
        self
    }

    /// How long a probe waits for its answer before asking others to probe. Default 500 ms.
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Members asked to probe indirectly. Default 3.
    pub fn with_indirect_probes(mut self, probes: usize) -> Self {
        self.indirect_probes = probes;
        self
    }

    /// How long a suspect has to refute before it is declared down. Default 2 s.
    pub fn with_suspicion_timeout(mut self, timeout: Duration) -> Self {
        self.suspicion_timeout = timeout;
        self
    }

    /// Members updates are gossiped to each round. Default 3.
    pub fn with_gossip_fanout(mut self, fanout: usize) -> Self {
        self.gossip_fanout = fanout;
        self
    }

    /// How often pending updates are gossiped between probes. Default 200 ms.
    pub fn with_periodic_gossip(mut self, interval: Duration) -> Self {
        self.periodic_gossip = interval;
        self
    }

    /// How often this node compares its view with a random member's (by hash) and, if they
    /// differ, exchanges the full member list (push-pull). Default 10 s.
    pub fn with_sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// At most one tag broadcast per interval; changes in between are sent together.
    /// Default 250 ms.
    pub fn with_tag_interval(mut self, interval: Duration) -> Self {
        self.tag_interval = interval;
        self
    }

    /// φ above which a member counts as suspect for balancing. Default 8 (a one-in-10⁸
    /// chance that a live member would be this late).
    pub fn with_phi_threshold(mut self, phi: f64) -> Self {
        self.phi_threshold = phi;
        self
    }

    /// Report a partition when this share of the members fails within the window. Defaults
    /// 0.3 and 10 s.
    pub fn with_partition_detection(mut self, fraction: f64, window: Duration) -> Self {
        self.partition_fraction = fraction;
        self.partition_window = window;
        self
    }

    /// Events buffered per subscriber before it lags. Default 1,024.
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    pub(crate) fn core_config(&self) -> Result<CoreConfig, RpcError> {
        let nonzero = |n: usize, what: &str| {
            NonZeroUsize::new(n).ok_or_else(|| RpcError::Config(format!("{what} must be at least 1")))
        };
        if self.gossip_interval <= self.probe_timeout {
            return Err(RpcError::Config(
                "the gossip interval must exceed the probe timeout: fix with_gossip_interval or with_probe_timeout"
                    .into(),
            ));
        }
        let foca = foca::Config {
            probe_period: self.gossip_interval,
            probe_rtt: self.probe_timeout,
            num_indirect_probes: nonzero(self.indirect_probes, "indirect probes")?,
            max_transmissions: NonZeroU8::new(10).expect("10 is not zero"),
            suspect_to_down_after: self.suspicion_timeout,
            remove_down_after: Some(super::core::FORGET_DOWN_AFTER),
            max_packet_size: NonZeroUsize::new(MAX_DATAGRAM - SEAL_OVERHEAD - ENVELOPE_OVERHEAD).expect("positive"),
            // With it on, a suspicion that was refuted can still turn the member down.
            notify_down_members: false,
            periodic_announce: None,
            periodic_announce_to_down_members: Some(foca::PeriodicParams {
                frequency: Duration::from_secs(30),
                num_members: NonZeroUsize::new(2).expect("positive"),
            }),
            periodic_gossip: Some(foca::PeriodicParams {
                frequency: self.periodic_gossip,
                num_members: nonzero(self.gossip_fanout, "gossip fanout")?,
            }),
        };
        Ok(CoreConfig {
            foca,
            sync_interval: self.sync_interval,
            meta_interval: self.tag_interval,
            tick_interval: (self.gossip_interval / 2).max(Duration::from_millis(50)),
            partition_fraction: self.partition_fraction,
            partition_window: self.partition_window,
        })
    }

    pub(crate) fn bind_addr(&self) -> SocketAddr {
        self.bind_addr
    }

    pub(crate) fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    pub(crate) fn keyring(&self) -> Result<Keyring, RpcError> {
        self.keyring.clone().ok_or_else(|| {
            RpcError::Config(
                "a cluster needs a key: set ClusterConfig::with_secret (or with_keyring), or use ClusterConfig::dev() on one machine"
                    .into(),
            )
        })
    }

    pub(crate) fn phi_threshold(&self) -> f64 {
        self.phi_threshold
    }
}

struct Shared {
    core: Mutex<Core>,
    events: broadcast::Sender<ClusterEvent>,
    /// Wakes the driver after an API call changed the core (to send what it queued).
    poke: Notify,
    stop: CancellationToken,
    gossip_addr: SocketAddr,
    phi_threshold: f64,
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
    /// Binds the gossip socket, starts gossiping, and joins through the configured seeds.
    pub async fn new(config: ClusterConfig) -> Result<Self, RpcError> {
        let core_config = config.core_config()?;
        let keyring = config.keyring()?;
        let socket = UdpSocket::bind(config.bind_addr)
            .await
            .map_err(|e| RpcError::Config(format!("cannot bind the gossip socket {}: {e}", config.bind_addr)))?;
        let gossip_addr = socket.local_addr().map_err(|e| RpcError::Config(format!("gossip socket: {e}")))?;
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
            phi_threshold: config.phi_threshold(),
        });
        tokio::spawn(drive(shared.clone(), socket));
        let membership = Self { shared };
        if !config.seeds.is_empty() {
            membership.join(config.seeds).await?;
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

    /// This node.
    pub fn local_node(&self) -> NodeInfo {
        self.with_core(|core, now| core.local(now))
    }

    /// This node's identity.
    pub fn local_node_id(&self) -> NodeId {
        self.with_core(|core, _| core.me())
    }

    /// The gossip address.
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

    /// Records a sign of life of the member at gossip address `addr` seen outside gossip
    /// (an RPC answer), for its phi-accrual detector.
    pub fn record_heartbeat(&self, addr: SocketAddr) {
        self.with_core(|core, now| core.heartbeat(addr, now));
    }

    /// The φ above which members count as suspect for balancing.
    pub fn phi_threshold(&self) -> f64 {
        self.shared.phi_threshold
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
