//! `PartitionDetector`: whether this node's side of the cluster still holds a majority of
//! the members it recently saw, so the minority side knows it is the minority.

use super::ClusterMembership;
use super::events::ClusterEvents;

/// This node's view of the cluster's integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Members reachable now, this node included.
    pub reachable: usize,
    /// Members of the cluster: those reachable and those remembered as failed (for an hour
    /// after they went down). Members that left gracefully do not count.
    pub expected: usize,
}

impl PartitionStatus {
    pub(crate) fn new((reachable, expected): (usize, usize)) -> Self {
        Self { reachable, expected }
    }

    /// Whether the reachable members are a strict majority of the expected ones.
    pub fn has_quorum(&self) -> bool {
        self.reachable * 2 > self.expected
    }

    /// Whether this node is on the minority side of a split.
    pub fn is_minority(&self) -> bool {
        !self.has_quorum()
    }
}

/// Tells whether this node is on the majority or the minority side, and reports splits as
/// [`ClusterEvent::PartitionDetected`](super::ClusterEvent::PartitionDetected): when at
/// least 30% of the members (and two or more) fail within 10 s (see
/// [`ClusterConfig::with_partition_detection`](super::ClusterConfig::with_partition_detection)),
/// and their return as [`ClusterEvent::PartitionHealed`](super::ClusterEvent::PartitionHealed).
///
/// Failed members count in the cluster's size until they are forgotten, an hour after they
/// went down: the minority side of a split knows it is the minority for as long as the
/// split lasts (up to that hour), and so does a node whose peers crashed one by one, since
/// a crash and a partition look the same from inside.
///
/// ```no_run
/// # fn run(cluster: rpcnet::cluster::ClusterMembership) {
/// let detector = rpcnet::cluster::PartitionDetector::new(cluster);
/// if detector.status().is_minority() {
///     // stop accepting writes until the partition heals
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PartitionDetector {
    cluster: ClusterMembership,
}

impl PartitionDetector {
    /// A detector over `cluster`.
    pub fn new(cluster: ClusterMembership) -> Self {
        Self { cluster }
    }

    /// The current view.
    pub fn status(&self) -> PartitionStatus {
        PartitionStatus::new(self.cluster.quorum())
    }

    /// Events, including `PartitionDetected` and `PartitionHealed`.
    pub fn subscribe(&self) -> ClusterEvents {
        self.cluster.subscribe()
    }
}
