//! Views of the membership for routing: `NodeRegistry` (every member with its state and
//! tags) and `WorkerRegistry` (members that serve RPC, as balanced endpoints with live
//! load, followed by typed cluster clients).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::events::{ClusterEvent, ClusterEvents, NodeInfo, NodeState};
use super::{ClusterMembership, NodeId};
use crate::balance::{Balancer, CallInfo, Endpoint, LoadBalancingStrategy, TagFilter, nanos_since_epoch, to_suspects};
use crate::channel::EndpointSource;
use crate::error::RpcError;

/// Every member of the cluster with its state and tags, kept current from cluster events
/// once started.
#[derive(Debug, Clone)]
pub struct NodeRegistry {
    cluster: ClusterMembership,
    nodes: Arc<Mutex<Option<Vec<NodeInfo>>>>,
}

impl NodeRegistry {
    /// A registry of `cluster`'s members.
    pub fn new(cluster: ClusterMembership) -> Self {
        Self { cluster, nodes: Arc::new(Mutex::new(None)) }
    }

    /// Keeps a copy of the member list, refreshed on every cluster event, so that reads do
    /// not touch the membership state. Before `start`, reads ask the membership directly.
    pub async fn start(&self) {
        let mut events = self.cluster.subscribe();
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.cluster.nodes());
        let (cluster, nodes) = (self.cluster.clone(), Arc::downgrade(&self.nodes));
        tokio::spawn(async move {
            while events.recv().await.is_some() {
                let Some(nodes) = nodes.upgrade() else { return };
                *nodes.lock().unwrap_or_else(|p| p.into_inner()) = Some(cluster.nodes());
            }
        });
    }

    /// Every member known, whatever its state.
    pub async fn nodes(&self) -> Vec<NodeInfo> {
        let cached = self.nodes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        cached.unwrap_or_else(|| self.cluster.nodes())
    }

    /// Members that are up (alive or suspect).
    pub async fn live_nodes(&self) -> Vec<NodeInfo> {
        self.nodes().await.into_iter().filter(NodeInfo::is_up).collect()
    }

    /// How many members are known.
    pub async fn node_count(&self) -> usize {
        self.nodes().await.len()
    }

    /// Members that are up and have tag `key`.
    pub async fn nodes_with_tag(&self, key: &str) -> Vec<NodeInfo> {
        self.live_nodes().await.into_iter().filter(|n| n.tags.contains_key(key)).collect()
    }

    /// Members that are up and match `filter` (`"role=worker,zone=eu-1"`).
    pub async fn nodes_matching(&self, filter: &str) -> Result<Vec<NodeInfo>, RpcError> {
        let filter: TagFilter =
            filter.parse().map_err(|e: crate::balance::FilterError| RpcError::Config(e.to_string()))?;
        Ok(self.live_nodes().await.into_iter().filter(|n| filter.matches(&n.tags)).collect())
    }

    /// Cluster events from now on.
    pub fn subscribe(&self) -> ClusterEvents {
        self.cluster.subscribe()
    }
}

/// A member that serves RPC, as [`WorkerRegistry`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerInfo {
    /// Its identity.
    pub id: NodeId,
    /// Its `label` tag, as the rpcnet book's tutorial sets it (`set_tag("label", ..)`), or
    /// else its name.
    pub label: String,
    /// Where it serves RPC.
    pub addr: SocketAddr,
    /// Its tags.
    pub tags: std::collections::BTreeMap<String, String>,
    /// Calls in flight to it from this process.
    pub active_connections: u32,
    /// Its `capacity` tag (1 if absent or invalid).
    pub capacity: u32,
    /// Whether it is suspect: SWIM suspects it, or it answers this node's pings late (φ at
    /// or above the threshold of [`HealthCheckConfig`](super::HealthCheckConfig)). A
    /// suspect still gets calls, about a tenth of a healthy worker's share, and keeps those
    /// in flight; it is dropped only once SWIM declares it down.
    pub suspect: bool,
}

impl WorkerInfo {
    /// Whether it is healthy: up and not suspect.
    pub fn is_healthy(&self) -> bool {
        !self.suspect
    }

    /// Whether it is up but suspect, and so gets less traffic.
    pub fn is_degraded(&self) -> bool {
        self.suspect
    }
}

struct Worker {
    endpoint: Endpoint,
    node: NodeInfo,
    suspect: bool,
}

struct Inner {
    cluster: ClusterMembership,
    strategy: LoadBalancingStrategy,
    balancer: Arc<dyn Balancer>,
    workers: Mutex<Vec<Worker>>,
    /// Every worker's endpoint, for channels; republished when only health changes.
    published: watch::Sender<Arc<Vec<Endpoint>>>,
    /// Endpoint id → (gossip address, when a ping answer was last recorded, in ns since
    /// the endpoints' epoch), for the health signals that channels report.
    gossip_addrs: Mutex<HashMap<String, (SocketAddr, AtomicU64)>>,
    /// Selections made so far: which of them go to suspects follows from it.
    selections: AtomicU64,
    started: AtomicBool,
}

/// The members of a cluster that serve RPC, with live load, chosen by a strategy:
///
/// ```no_run
/// # async fn run(cluster: rpcnet::cluster::ClusterMembership) -> Result<(), rpcnet::RpcError> {
/// use std::sync::Arc;
/// use rpcnet::cluster::{LoadBalancingStrategy, WorkerRegistry};
/// let registry = Arc::new(WorkerRegistry::new(cluster, LoadBalancingStrategy::LeastConnections));
/// registry.start().await;
/// let worker = registry.select_worker(Some("role=worker,zone=eu-1")).await?;
/// println!("{} at {} ({} calls in flight)", worker.label, worker.addr, worker.active_connections);
/// # Ok(()) }
/// ```
///
/// A worker is a member that is up and advertises an RPC address
/// ([`ClusterConfig::with_rpc_addr`](super::ClusterConfig::with_rpc_addr)).
#[derive(Clone)]
pub struct WorkerRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WorkerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRegistry").field("strategy", &self.inner.strategy).finish_non_exhaustive()
    }
}

/// How often the registry re-reads its workers' health between membership events.
const HEALTH_REFRESH: Duration = Duration::from_millis(500);

impl WorkerRegistry {
    /// A registry of `cluster`'s workers choosing with `strategy`.
    pub fn new(cluster: ClusterMembership, strategy: LoadBalancingStrategy) -> Self {
        let balancer = strategy.balancer();
        let inner = Inner {
            cluster,
            strategy,
            balancer,
            workers: Mutex::new(Vec::new()),
            published: watch::Sender::new(Arc::new(Vec::new())),
            gossip_addrs: Mutex::new(HashMap::new()),
            selections: AtomicU64::new(0),
            started: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Starts following the cluster: workers appear as they join and disappear as they
    /// fail or leave.
    pub async fn start(&self) {
        self.ensure_started();
    }

    fn ensure_started(&self) {
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut events = self.inner.cluster.subscribe();
        self.inner.refresh();
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            // φ rises between events, so health is also re-read on a timer.
            let mut health = tokio::time::interval(HEALTH_REFRESH);
            health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let refresh = tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => {
                            !matches!(event, ClusterEvent::PartitionDetected(_) | ClusterEvent::PartitionHealed(_))
                        }
                        None => return,
                    },
                    _ = health.tick() => true,
                };
                let Some(inner) = weak.upgrade() else { return };
                if refresh {
                    inner.refresh();
                }
            }
        });
    }

    /// The strategy `select_worker` uses.
    pub fn strategy(&self) -> &LoadBalancingStrategy {
        &self.inner.strategy
    }

    /// The membership this registry follows.
    pub fn cluster(&self) -> &ClusterMembership {
        &self.inner.cluster
    }

    /// Every worker.
    pub async fn workers(&self) -> Vec<WorkerInfo> {
        self.inner.refresh_unless_started();
        let workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.iter().map(|w| self.inner.info(w)).collect()
    }

    /// How many workers there are.
    pub async fn worker_count(&self) -> usize {
        self.workers().await.len()
    }

    /// How many workers are healthy ([`WorkerInfo::is_healthy`]: up and not suspect), as a
    /// readiness check or a `cluster_healthy_workers` gauge would report.
    pub async fn healthy_count(&self) -> usize {
        self.workers().await.iter().filter(|w| w.is_healthy()).count()
    }

    /// One worker matching `filter` (`"role=worker,zone=eu-1"`; `None`: any), chosen by the
    /// strategy; suspect workers are chosen about a tenth as often as healthy ones.
    pub async fn select_worker(&self, filter: Option<&str>) -> Result<WorkerInfo, RpcError> {
        let parsed: Option<TagFilter> = filter
            .map(str::parse)
            .transpose()
            .map_err(|e: crate::balance::FilterError| RpcError::Config(e.to_string()))?;
        self.inner.refresh_unless_started();
        let workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        let matching = workers.iter().filter(|w| parsed.as_ref().is_none_or(|f| f.matches(&w.node.tags)));
        let (suspects, healthy): (Vec<&Worker>, Vec<&Worker>) = matching.partition(|w| w.suspect);
        let no_worker = || RpcError::NoEndpointAvailable {
            filter: filter.map(str::to_owned),
            known: workers.len(),
            healthy: healthy.len(),
        };
        let call = self.inner.selections.fetch_add(1, Ordering::Relaxed);
        let candidates =
            if to_suspects(call, healthy.len(), suspects.len()) || healthy.is_empty() { &suspects } else { &healthy };
        if candidates.is_empty() {
            return Err(no_worker());
        }
        let endpoints: Vec<Endpoint> = candidates.iter().map(|w| w.endpoint.clone()).collect();
        let index = self.inner.balancer.pick(&endpoints, &CallInfo::new("select_worker")).ok_or_else(no_worker)?;
        Ok(self.inner.info(candidates.get(index).ok_or_else(no_worker)?))
    }

    /// Cluster events from now on.
    pub fn subscribe(&self) -> ClusterEvents {
        self.inner.cluster.subscribe()
    }

    /// The endpoint of a worker, sharing its load counters (for calls made outside a
    /// typed client, so that `active_connections` counts them too).
    pub(crate) fn endpoint_of(&self, worker: &WorkerInfo) -> Option<Endpoint> {
        let workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.iter().find(|w| w.node.id == worker.id).map(|w| w.endpoint.clone())
    }
}

impl Inner {
    /// Suspect by SWIM, or late with the answers to this node's pings.
    fn is_suspect(&self, node: &NodeInfo) -> bool {
        node.state == NodeState::Suspect || node.phi >= self.cluster.phi_threshold()
    }

    fn info(&self, worker: &Worker) -> WorkerInfo {
        WorkerInfo {
            id: worker.node.id,
            label: label_of(&worker.node).to_owned(),
            addr: worker.endpoint.addr(),
            tags: worker.node.tags.clone(),
            active_connections: worker.endpoint.in_flight(),
            capacity: worker.endpoint.weight(),
            suspect: worker.suspect,
        }
    }

    fn refresh_unless_started(&self) {
        if !self.started.load(Ordering::Acquire) {
            self.refresh();
        }
    }

    /// Rebuilds the worker list from the membership, keeping the endpoints (and their load
    /// counters) of workers whose identity and address did not change, retagged if their
    /// tags did, and publishes it for channels when a worker or a health flag changed.
    fn refresh(&self) {
        let nodes = self.cluster.nodes();
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Vec::new();
        for node in nodes.into_iter().filter(NodeInfo::is_up) {
            let Some(rpc_addr) = node.rpc_addr else { continue };
            let (id, label) = (node.id.to_string(), label_of(&node).to_owned());
            // A worker whose tags (or label) change stays the same endpoint, with its load.
            let known = workers.iter().find(|w| w.endpoint.id() == id && w.endpoint.addr() == rpc_addr);
            let endpoint = match known {
                Some(w) if w.endpoint.tags() == &node.tags && w.endpoint.label() == label => w.endpoint.clone(),
                Some(w) => w.endpoint.updated(label, node.tags.clone()),
                None => Endpoint::new(id, rpc_addr).with_label(label).with_tags(node.tags.clone()),
            };
            let suspect = self.is_suspect(&node);
            next.push(Worker { endpoint, node, suspect });
        }
        next.sort_by(|a, b| a.node.name.cmp(&b.node.name).then(a.node.id.cmp(&b.node.id)));
        let unchanged = workers.len() == next.len()
            && workers.iter().zip(&next).all(|(a, b)| a.endpoint.same(&b.endpoint) && a.suspect == b.suspect);
        {
            let mut addrs = self.gossip_addrs.lock().unwrap_or_else(|p| p.into_inner());
            addrs.retain(|id, _| next.iter().any(|w| w.endpoint.id() == id));
            for worker in &next {
                addrs
                    .entry(worker.endpoint.id().to_owned())
                    .or_insert_with(|| (worker.node.id.addr, AtomicU64::new(0)));
            }
        }
        let published: Vec<Endpoint> = next.iter().map(|w| w.endpoint.clone()).collect();
        *workers = next;
        drop(workers);
        if !unchanged {
            // Channels read each endpoint's health when a set is published.
            self.published.send_replace(Arc::new(published));
        }
    }
}

/// Tag a member may set to be shown under another name than its own, as in the book.
const LABEL_TAG: &str = "label";

fn label_of(node: &NodeInfo) -> &str {
    node.tag(LABEL_TAG).unwrap_or(&node.name)
}

impl EndpointSource for WorkerRegistry {
    /// Starts following the cluster if [`start`](WorkerRegistry::start) was not called.
    fn endpoints(&self) -> watch::Receiver<Arc<Vec<Endpoint>>> {
        self.ensure_started();
        self.inner.published.subscribe()
    }

    fn is_suspect(&self, endpoint: &Endpoint) -> bool {
        let workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.iter().find(|w| w.endpoint.id() == endpoint.id()).is_some_and(|w| w.suspect)
    }

    /// The cluster's [`HealthCheckConfig::interval`](super::HealthCheckConfig::interval).
    fn ping_interval(&self) -> Option<Duration> {
        Some(self.inner.cluster.health_check().interval())
    }

    /// Records the answer for the worker's φ, at most one per half interval: several
    /// channels pinging the same worker must not look like a faster rhythm.
    fn answered(&self, endpoint: &Endpoint) {
        let now = nanos_since_epoch(Instant::now());
        let least_gap = (self.inner.cluster.health_check().interval() / 2).as_nanos() as u64;
        let addrs = self.inner.gossip_addrs.lock().unwrap_or_else(|p| p.into_inner());
        let Some((addr, last)) = addrs.get(endpoint.id()) else { return };
        let previous = last.load(Ordering::Relaxed);
        if (previous == 0 || now.saturating_sub(previous) >= least_gap)
            && last.compare_exchange(previous, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.inner.cluster.record_heartbeat(*addr);
        }
    }
}
