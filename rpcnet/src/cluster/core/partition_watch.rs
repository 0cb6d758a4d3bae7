//! Partition detection: many members failing within a window, once the failures stop
//! coming, is a split; the side holding half the cluster or less is the minority. The
//! cluster counted is every member up plus every member still remembered as failed (they
//! are forgotten an hour after they went down), so a minority keeps knowing it is one.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Core, is_up};
use crate::cluster::NodeId;
use crate::cluster::events::{ClusterEvent, NodeState, PartitionInfo};

/// Partition bookkeeping.
#[derive(Debug, Default)]
pub(super) struct PartitionWatch {
    /// Members declared failed (not those that left) within the last window.
    pub(super) failures: VecDeque<(Instant, NodeId)>,
    /// The members lost in the split last reported, until it heals.
    pub(super) reported: Option<Vec<NodeId>>,
}

impl Core {
    pub(super) fn check_partition(&mut self, now: Instant) {
        let window = self.config.partition_window;
        while self.partition.failures.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > window) {
            self.partition.failures.pop_front();
        }
        let (reachable, expected) = self.quorum();
        let threshold = ((expected as f64 * self.config.partition_fraction).ceil() as usize).max(2);
        let minority = reachable * 2 <= expected;
        if let Some(lost) = &self.partition.reported {
            // Healed once too few of the members lost in the split are still down for it to
            // count as one: those that are back rejoined under a new incarnation.
            let still_lost: Vec<NodeId> =
                lost.iter().filter(|id| !self.known.get(&id.addr).is_some_and(|k| is_up(k.state))).copied().collect();
            if still_lost.len() < threshold {
                tracing::info!(reachable, expected, "partition healed");
                self.partition.reported = None;
                let info = PartitionInfo { reachable, expected, minority, lost: still_lost };
                self.events.push_back(ClusterEvent::PartitionHealed(info));
            }
            return;
        }
        // A split is seen one failure at a time; wait until the failures stop coming (half a
        // window) so that each side counts all it lost before judging minority or majority.
        let watch = &mut self.partition;
        let settled = watch.failures.back().is_some_and(|(at, _)| now.saturating_duration_since(*at) >= window / 2);
        if watch.failures.len() >= threshold && settled {
            let lost: Vec<NodeId> = watch.failures.drain(..).map(|(_, id)| id).collect();
            watch.reported = Some(lost.clone());
            tracing::warn!(reachable, expected, minority, "partition detected");
            self.events.push_back(ClusterEvent::PartitionDetected(PartitionInfo {
                reachable,
                expected,
                minority,
                lost,
            }));
        }
    }

    /// (members reachable, this node included; those plus the members remembered as
    /// failed). Members that left gracefully do not count.
    pub(crate) fn quorum(&self) -> (usize, usize) {
        let reachable = 1 + self.known.values().filter(|k| is_up(k.state)).count();
        let failed = self.known.values().filter(|k| k.state == NodeState::Failed).count();
        (reachable, reachable + failed)
    }
}
