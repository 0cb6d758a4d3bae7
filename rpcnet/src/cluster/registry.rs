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
use crate::RpcError;
use crate::balance::{Balancer, CallInfo, Endpoint, LoadBalancingStrategy, TagFilter};
use crate::channel::EndpointSource;

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
    /// Its name.
    pub label: String,
    /// Where it serves RPC.
    pub addr: SocketAddr,
    /// Its tags.
    pub tags: std::collections::BTreeMap<String, String>,
    /// Calls in flight to it from this process.
    pub active_connections: u32,
    /// Its `capacity` tag (1 if absent or invalid).
    pub capacity: u32,
    /// Whether it is suspect (by SWIM, or by its φ), and so gets traffic only when no
    /// healthy worker does.
    pub suspect: bool,
}

struct Worker {
    endpoint: Endpoint,
    node: NodeInfo,
}

struct Inner {
    cluster: ClusterMembership,
    strategy: LoadBalancingStrategy,
    balancer: Arc<dyn Balancer>,
    workers: Mutex<Vec<Worker>>,
    /// The healthy workers' endpoints (all of them if none is healthy), for channels.
    published: watch::Sender<Arc<Vec<Endpoint>>>,
    /// Endpoint id → gossip address, for health signals from RPC answers.
    gossip_addrs: Mutex<HashMap<String, (SocketAddr, AtomicU64)>>,
    started: AtomicBool,
    epoch: Instant,
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

/// Least time between two health signals recorded for one worker from RPC answers: the
/// detector needs their rhythm, not every call.
const ANSWER_SIGNAL_INTERVAL_NS: u64 = 100_000_000;

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
            started: AtomicBool::new(false),
            epoch: Instant::now(),
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

    /// One worker matching `filter` (`"role=worker,zone=eu-1"`; `None`: any), chosen by the
    /// strategy among the healthy ones (among all matching if none is healthy).
    pub async fn select_worker(&self, filter: Option<&str>) -> Result<WorkerInfo, RpcError> {
        let parsed: Option<TagFilter> = filter
            .map(str::parse)
            .transpose()
            .map_err(|e: crate::balance::FilterError| RpcError::Config(e.to_string()))?;
        self.inner.refresh_unless_started();
        let workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        let matching: Vec<&Worker> =
            workers.iter().filter(|w| parsed.as_ref().is_none_or(|f| f.matches(&w.node.tags))).collect();
        let healthy: Vec<&Worker> = matching.iter().copied().filter(|w| !self.inner.suspect(&w.node)).collect();
        let candidates = if healthy.is_empty() { &matching } else { &healthy };
        let no_worker = || RpcError::NoEndpointAvailable {
            filter: filter.map(str::to_owned),
            known: workers.len(),
            healthy: healthy.len(),
        };
        if candidates.is_empty() {
            return Err(no_worker());
        }
        let endpoints: Vec<Endpoint> = candidates.iter().map(|w| w.endpoint.clone()).collect();
        let index = self.inner.balancer.pick(&endpoints, &CallInfo::new("select_worker")).ok_or_else(no_worker)?;
        Ok(self.inner.info(candidates[index]))
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
    fn suspect(&self, node: &NodeInfo) -> bool {
        node.state == NodeState::Suspect || node.phi >= self.cluster.phi_threshold()
    }

    fn info(&self, worker: &Worker) -> WorkerInfo {
        WorkerInfo {
            id: worker.node.id,
            label: worker.node.name.clone(),
            addr: worker.endpoint.addr(),
            tags: worker.node.tags.clone(),
            active_connections: worker.endpoint.in_flight(),
            capacity: worker.endpoint.weight(),
            suspect: self.suspect(&worker.node),
        }
    }

    fn refresh_unless_started(&self) {
        if !self.started.load(Ordering::Acquire) {
            self.refresh();
        }
    }

    /// Rebuilds the worker list from the membership, keeping the endpoints (and their load
    /// counters) of workers whose address and tags did not change.
    fn refresh(&self) {
        let nodes = self.cluster.nodes();
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Vec::new();
        for node in nodes.into_iter().filter(NodeInfo::is_up) {
            let Some(rpc_addr) = node.rpc_addr else { continue };
            let id = node.id.to_string();
            let endpoint = workers
                .iter()
                .find(|w| w.endpoint.id() == id && w.endpoint.addr() == rpc_addr && w.node.tags == node.tags)
                .map(|w| w.endpoint.clone())
                .unwrap_or_else(|| {
                    Endpoint::new(id, rpc_addr).with_label(node.name.clone()).with_tags(node.tags.clone())
                });
            next.push(Worker { endpoint, node });
        }
        next.sort_by(|a, b| a.node.name.cmp(&b.node.name).then(a.node.id.cmp(&b.node.id)));
        let healthy: Vec<Endpoint> =
            next.iter().filter(|w| !self.suspect(&w.node)).map(|w| w.endpoint.clone()).collect();
        let published = if healthy.is_empty() { next.iter().map(|w| w.endpoint.clone()).collect() } else { healthy };
        {
            let mut addrs = self.gossip_addrs.lock().unwrap_or_else(|p| p.into_inner());
            addrs.retain(|id, _| next.iter().any(|w| w.endpoint.id() == id));
            for worker in &next {
                addrs
                    .entry(worker.endpoint.id().to_owned())
                    .or_insert_with(|| (worker.node.id.addr, AtomicU64::new(0)));
            }
        }
        *workers = next;
        drop(workers);
        self.published.send_if_modified(|current| {
            let same = current.len() == published.len() && current.iter().zip(&published).all(|(a, b)| a.same(b));
            if !same {
                *current = Arc::new(published);
            }
            !same
        });
    }
}

impl EndpointSource for WorkerRegistry {
    /// Starts following the cluster if [`start`](WorkerRegistry::start) was not called.
    fn endpoints(&self) -> watch::Receiver<Arc<Vec<Endpoint>>> {
        self.ensure_started();
        self.inner.published.subscribe()
    }

    fn answered(&self, endpoint: &Endpoint) {
        let now = self.inner.epoch.elapsed().as_nanos() as u64;
        let addrs = self.inner.gossip_addrs.lock().unwrap_or_else(|p| p.into_inner());
        let Some((addr, last)) = addrs.get(endpoint.id()) else { return };
        let previous = last.load(Ordering::Relaxed);
        if now.saturating_sub(previous) >= ANSWER_SIGNAL_INTERVAL_NS
            && last.compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.inner.cluster.record_heartbeat(*addr);
        }
    }
}
