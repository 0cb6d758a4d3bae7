//! What the cluster tells its subscribers: `NodeInfo` about each member, and `ClusterEvent`s
//! as members join, fail, leave, recover or change their tags, and when the cluster splits.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::sync::broadcast;

use super::NodeId;

/// A member's state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Answering.
    Alive,
    /// Not answering its probes: suspected of having failed, until it refutes it or the
    /// suspicion timeout declares it failed.
    Suspect,
    /// Declared down by the cluster without having left.
    Failed,
    /// Left gracefully with [`ClusterMembership::leave`](super::ClusterMembership::leave).
    Left,
}

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Its identity (gossip address and incarnation).
    pub id: NodeId,
    /// Its name (`ClusterConfig::with_name`), or its gossip address if it set none.
    pub name: String,
    /// Where it serves RPC, if it does.
    pub rpc_addr: Option<SocketAddr>,
    /// Its tags, such as `role=worker`, `zone=eu-1`, `capacity=100`.
    pub tags: BTreeMap<String, String>,
    /// Its state.
    pub state: NodeState,
    /// The phi-accrual suspicion of it from the answers to this node's pings (see
    /// [`HealthCheckConfig`](super::HealthCheckConfig)): low while they arrive on time, 0
    /// if no client of this node pings it.
    pub phi: f64,
}

impl NodeInfo {
    /// The address to call it at: its RPC address, else its gossip address.
    pub fn addr(&self) -> SocketAddr {
        self.rpc_addr.unwrap_or(self.id.addr)
    }

    /// One tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// Whether it is alive or only suspected.
    pub fn is_up(&self) -> bool {
        matches!(self.state, NodeState::Alive | NodeState::Suspect)
    }
}

/// A partition seen from this node.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionInfo {
    /// Members this node can reach, itself included.
    pub reachable: usize,
    /// Members of the cluster: those reachable and those remembered as failed (for an
    /// hour after they went down). Members that left gracefully do not count.
    pub expected: usize,
    /// Whether this node's side holds half of the cluster or less: it should stop doing
    /// what needs a majority (writes, leadership) until the partition heals.
    pub minority: bool,
    /// The members lost in the split (for `PartitionHealed`: those still lost).
    pub lost: Vec<NodeId>,
}

/// A change in the cluster.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A member joined (its metadata is known).
    NodeJoined(NodeInfo),
    /// A member left gracefully.
    NodeLeft(NodeInfo),
    /// A member was declared down without leaving.
    NodeFailed(NodeInfo),
    /// A member stopped answering and is suspected.
    NodeSuspect(NodeInfo),
    /// A suspected or failed member answers again (refuted, or rejoined after a restart).
    NodeRecovered(NodeInfo),
    /// A member changed its tags (the only metadata that changes while a node runs).
    NodeUpdated(NodeInfo),
    /// Many members became unreachable at once: see [`PartitionInfo::minority`].
    PartitionDetected(PartitionInfo),
    /// The members lost in the last partition are back (all but fewer than would count as
    /// a partition): the sides merged their views.
    PartitionHealed(PartitionInfo),
    /// This subscriber fell behind and missed this many events; it should re-read the
    /// state it needs (`ClusterMembership::nodes`).
    Lagged {
        /// Events dropped for this subscriber.
        missed: u64,
    },
}

/// A subscription to cluster events, from [`ClusterMembership::subscribe`](super::ClusterMembership::subscribe).
#[derive(Debug)]
pub struct ClusterEvents {
    receiver: broadcast::Receiver<ClusterEvent>,
}

impl ClusterEvents {
    pub(crate) fn new(receiver: broadcast::Receiver<ClusterEvent>) -> Self {
        Self { receiver }
    }

    /// The next event; `None` once the cluster membership is shut down. A subscriber that
    /// fell behind gets [`ClusterEvent::Lagged`] with the number of events it missed.
    pub async fn recv(&mut self) -> Option<ClusterEvent> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(ClusterEvent::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
