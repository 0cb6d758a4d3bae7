//! Partition detection: many members failing within a window, once the failures stop
//! coming, is a split; the side holding half the recent view or less is the minority.
//! `quorum` answers the same question at any time.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Core, is_up};
use crate::cluster::NodeId;
use crate::cluster::events::{ClusterEvent, NodeState, PartitionInfo};

/// Partition bookkeeping.
#[derive(Debug, Default)]
pub(super) struct PartitionWatch {
    pub(super) expected: usize,
    pub(super) expected_since: Option<Instant>,
    pub(super) failures: VecDeque<(Instant, NodeId)>,
    pub(super) reported: bool,
}

impl Core {
    pub(super) fn check_partition(&mut self, now: Instant) {
        let window = self.config.partition_window;
        let watch = &mut self.partition;
        while watch.failures.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > window) {
            watch.failures.pop_front();
        }
        let reachable = 1 + self.known.values().filter(|k| is_up(k.state)).count();
        let departed = self.known.values().filter(|k| k.state == NodeState::Left).count();
        // The view to compare with: the largest recent one, shrunk by graceful departures and
        // forgotten once it has been stable without failures for a whole window.
        let stable = watch.expected_since.is_some_and(|since| now.saturating_duration_since(since) > window * 6);
        if reachable >= watch.expected || (watch.failures.is_empty() && stable) {
            watch.expected = reachable;
            watch.expected_since = Some(now);
            watch.reported = false;
        }
        let expected = watch.expected.saturating_sub(departed).max(reachable);
        let threshold = ((expected as f64 * self.config.partition_fraction).ceil() as usize).max(2);
        // A split is seen one failure at a time; wait until the failures stop coming (half a
        // window) so that each side counts all it lost before judging minority or majority.
        let settled = watch.failures.back().is_some_and(|(at, _)| now.saturating_duration_since(*at) >= window / 2);
        if !watch.reported && watch.failures.len() >= threshold && settled {
            watch.reported = true;
            let info = PartitionInfo {
                reachable,
                expected,
                minority: reachable * 2 <= expected,
                lost: watch.failures.iter().map(|(_, id)| *id).collect(),
            };
            tracing::warn!(reachable, expected, minority = info.minority, "partition detected");
            self.events.push_back(ClusterEvent::PartitionDetected(info));
        }
    }

    /// Whether this node's side of the cluster holds a majority of the recent view.
    pub(crate) fn quorum(&self) -> (usize, usize) {
        let reachable = 1 + self.known.values().filter(|k| is_up(k.state)).count();
        (reachable, self.partition.expected.max(reachable))
    }
}
