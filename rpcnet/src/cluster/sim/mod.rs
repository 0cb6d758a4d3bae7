//! A deterministic in-memory cluster: every node's real membership state machine, one
//! virtual clock, a network with latency and loss, and no sockets. The test suite runs
//! 100 nodes; `cargo run --release -p rpcnet-bench -- cluster-sim` runs 1,000.
//!
//! ```
//! use std::time::Duration;
//! use rpcnet::cluster::sim::{SimConfig, Simulation};
//! let mut sim = Simulation::new(SimConfig { nodes: 8, ..SimConfig::default() });
//! let converged = sim.run_until(Duration::from_secs(30), Simulation::converged);
//! assert!(converged.is_some(), "8 nodes find each other");
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::core::Core;
use super::events::ClusterEvent;
use super::{ClusterConfig, GossipStats, NodeId, NodeState, PartitionStatus};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Seed of every random choice (network and nodes): same seed, same run.
    pub seed: u64,
    /// Share of datagrams lost (0.05 = 5%).
    pub loss: f64,
    /// One-way delay of every datagram.
    pub latency: Duration,
    /// Random extra delay, up to this much.
    pub jitter: Duration,
    /// How many of the first nodes every node joins through.
    pub seeds: usize,
    /// Nodes join one after another over this period (all at once if zero).
    pub join_spread: Duration,
    /// Timings and keys of every node.
    pub cluster: ClusterConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 10,
            seed: 1,
            loss: 0.0,
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
            seeds: 3,
            join_spread: Duration::from_secs(1),
            cluster: ClusterConfig::dev(),
        }
    }
}

struct SimNode {
    core: Core,
    alive: bool,
    events: Vec<(Duration, ClusterEvent)>,
}

/// A simulated cluster.
pub struct Simulation {
    nodes: Vec<SimNode>,
    index: HashMap<SocketAddr, usize>,
    /// Datagrams in flight: (delivery time, sequence) → (from, to index, bytes).
    network: BinaryHeap<Reverse<(Instant, u64)>>,
    in_flight: HashMap<u64, (SocketAddr, usize, Vec<u8>)>,
    /// Node timers: (time, node); stale entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Nodes not started yet: (start time, node).
    pending: Vec<(Instant, usize)>,
    seeds: Vec<SocketAddr>,
    start: Instant,
    /// The wall-clock time at `start`, as every node was told.
    wall: SystemTime,
    now: Instant,
    rng: StdRng,
    config: SimConfig,
    sequence: u64,
    /// Each node's side of a network partition; datagrams only flow within a side.
    sides: Option<Vec<usize>>,
    /// When each crashed node crashed, by address: a `NodeFailed` about it before then
    /// (or about a node never crashed) is a false failure.
    crashed_at: BTreeMap<SocketAddr, Duration>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation").field("nodes", &self.nodes.len()).field("elapsed", &self.elapsed()).finish()
    }
}

fn address(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)), 7946)
}

impl Simulation {
    /// A cluster whose nodes start (and join) over `join_spread`.
    pub fn new(config: SimConfig) -> Self {
        let core_config = config.cluster.core_config().expect("the simulated cluster's configuration is valid");
        let keyring = config.cluster.keyring().expect("the simulated cluster has a key");
        let start = Instant::now();
        let wall = SystemTime::now();
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut nodes = Vec::with_capacity(config.nodes);
        let mut index = HashMap::new();
        let mut pending = Vec::new();
        for i in 0..config.nodes {
            let id = NodeId { addr: address(i), bump: 1 };
            let tags = BTreeMap::from([("role".to_string(), "worker".to_string())]);
            let core = Core::new(
                core_config.clone(),
                id,
                format!("node-{i}"),
                Some(address(i)),
                tags,
                keyring.clone(),
                rng.random(),
                start,
                wall,
            );
            index.insert(id.addr, i);
            nodes.push(SimNode { core, alive: false, events: Vec::new() });
            let offset = if config.nodes > 1 {
                config.join_spread.mul_f64(i as f64 / config.nodes as f64)
            } else {
                Duration::ZERO
            };
            pending.push((start + offset, i));
        }
        pending.reverse();
        let seeds = (0..config.seeds.min(config.nodes)).map(address).collect();
        Self {
            nodes,
            index,
            network: BinaryHeap::new(),
            in_flight: HashMap::new(),
            timers: BinaryHeap::new(),
            pending,
            seeds,
            start,
            wall,
            now: start,
            rng,
            config,
            sequence: 0,
            sides: None,
            crashed_at: BTreeMap::new(),
        }
    }

    /// Splits the network: datagrams flow only between nodes of the same group (nodes in no
    /// group form a group of their own).
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        let mut sides = vec![usize::MAX; self.nodes.len()];
        for (side, group) in groups.iter().enumerate() {
            for &i in group {
                sides[i] = side;
            }
        }
        self.sides = Some(sides);
    }

    /// Heals the network.
    pub fn heal(&mut self) {
        self.sides = None;
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Nodes simulated.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn start_node(&mut self, i: usize) {
        self.nodes[i].alive = true;
        let seeds = self.seeds.clone();
        let now = self.now;
        self.nodes[i].core.join(&seeds, now);
        self.collect(i);
    }

    /// Sends what node `i` produced into the network, records its events, re-arms its timer.
    fn collect(&mut self, i: usize) {
        let elapsed = self.elapsed();
        while let Some(transmit) = self.nodes[i].core.poll_transmit() {
            if self.rng.random::<f64>() < self.config.loss {
                continue;
            }
            let Some(&to) = self.index.get(&transmit.to) else { continue };
            if self.sides.as_ref().is_some_and(|sides| sides[i] != sides[to]) {
                continue;
            }
            let jitter = self.config.jitter.mul_f64(self.rng.random::<f64>());
            let at = self.now + self.config.latency + jitter;
            self.sequence += 1;
            self.network.push(Reverse((at, self.sequence)));
            self.in_flight.insert(self.sequence, (self.nodes[i].core.me().addr, to, transmit.data));
        }
        while let Some(event) = self.nodes[i].core.poll_event() {
            self.nodes[i].events.push((elapsed, event));
        }
        if let Some(at) = self.nodes[i].core.next_timeout() {
            self.timers.push(Reverse((at, i)));
        }
    }

    /// Runs one step: the earliest start, delivery or timer. False when nothing is left.
    fn step(&mut self, limit: Instant) -> bool {
        let next_start = self.pending.last().map(|(at, _)| *at);
        let next_delivery = self.network.peek().map(|Reverse((at, _))| *at);
        let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let Some(next) = [next_start, next_delivery, next_timer].into_iter().flatten().min() else { return false };
        if next > limit {
            self.now = limit;
            return false;
        }
        self.now = self.now.max(next);
        if next_start == Some(next) {
            let (_, i) = self.pending.pop().expect("peeked");
            self.start_node(i);
        } else if next_delivery == Some(next) {
            let Reverse((_, sequence)) = self.network.pop().expect("peeked");
            let (from, to, data) = self.in_flight.remove(&sequence).expect("scheduled");
            if self.nodes[to].alive {
                let now = self.now;
                self.nodes[to].core.handle_datagram(from, &data, now);
                self.collect(to);
            }
        } else {
            let Reverse((at, i)) = self.timers.pop().expect("peeked");
            // Skip entries superseded by a later re-arm, and crashed nodes.
            if self.nodes[i].alive && self.nodes[i].core.next_timeout() == Some(at) {
                let now = self.now;
                self.nodes[i].core.handle_timeout(now);
                self.collect(i);
            }
        }
        true
    }

    /// The gossip address of node `i`.
    pub fn address(&self, i: usize) -> SocketAddr {
        self.nodes[i].core.me().addr
    }

    /// Hands node `to` a datagram now, as the network would from `from`, whatever it holds:
    /// what a stranger, or a member holding the key, could send it (the gossip fuzz target
    /// drives this).
    pub fn deliver(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) {
        if self.nodes[to].alive {
            let now = self.now;
            self.nodes[to].core.handle_datagram(from, datagram, now);
            self.collect(to);
        }
    }

    /// `message` (a kind byte and its body, as in the gossip wire format) in an envelope
    /// naming node `from`, sealed with the cluster's key at the current virtual time: a
    /// datagram that passes unsealing, so that what is inside gets decoded.
    pub fn seal_from(&self, from: usize, message: &[u8]) -> Vec<u8> {
        let keyring = self.config.cluster.keyring().expect("the simulated cluster has a key");
        let envelope = super::wire::Envelope::encode_bytes(self.address(from), message);
        keyring.seal(&envelope, self.wall + (self.now - self.start))
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let limit = self.now + duration;
        while self.step(limit) {}
        self.now = limit;
    }

    /// Runs until `done` holds (checked every 100 ms of virtual time) or `limit` passes;
    /// returns the virtual time it took.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> Option<Duration> {
        let started = self.now;
        while self.now - started < limit {
            if done(self) {
                return Some(self.now - started);
            }
            self.run_for(Duration::from_millis(100));
        }
        done(self).then(|| self.now - started)
    }

    /// Crashes node `i`: it stops, its socket is gone, nothing it had queued is sent.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].alive = false;
        let (addr, now) = (address(i), self.elapsed());
        self.crashed_at.entry(addr).or_insert(now);
    }

    /// Node `i` leaves gracefully.
    pub fn leave(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].core.leave(now);
        self.collect(i);
    }

    /// Sets a tag on node `i`.
    pub fn set_tag(&mut self, i: usize, key: &str, value: &str) {
        let now = self.now;
        let (key, value) = (key.to_owned(), value.to_owned());
        self.nodes[i].core.update_tags(now, |tags| drop(tags.insert(key, value)));
        self.collect(i);
    }

    fn alive(&self) -> impl Iterator<Item = &SimNode> {
        self.nodes.iter().filter(|n| n.alive)
    }

    /// Every running node sees every other running node up, with its metadata.
    pub fn converged(&self) -> bool {
        let running = self.alive().count();
        self.pending.is_empty()
            && self.alive().all(|n| n.core.up_members() == running - 1 && n.core.metadata_entries() >= running - 1)
    }

    /// Every running node sees each of `crashed` as not up.
    pub fn all_know_down(&self, crashed: &[usize]) -> bool {
        self.share_knowing_down(crashed) >= 1.0
    }

    /// The share of running nodes that see each of `crashed` as not up.
    pub fn share_knowing_down(&self, crashed: &[usize]) -> f64 {
        let down: Vec<NodeId> = crashed.iter().map(|&i| self.nodes[i].core.me()).collect();
        let (mut running, mut knowing) = (0, 0);
        for node in self.alive() {
            running += 1;
            let knows = down.iter().all(|id| {
                node.core.state_of(&id.addr).is_none_or(|(known, state)| {
                    known != *id || !matches!(state, NodeState::Alive | NodeState::Suspect)
                })
            });
            knowing += usize::from(knows);
        }
        if running == 0 { 1.0 } else { knowing as f64 / running as f64 }
    }

    /// Whether node `observer` reported node `about` joined or recovered at or after
    /// `since` (virtual time since the start): seeing it back after a partition healed, as
    /// the namespace harness reads the nodes' events.
    pub fn saw_back(&self, observer: usize, about: usize, since: Duration) -> bool {
        let addr = address(about);
        self.nodes[observer].events.iter().any(|(at, event)| {
            *at >= since
                && matches!(event, ClusterEvent::NodeJoined(info) | ClusterEvent::NodeRecovered(info) if info.id.addr == addr)
        })
    }

    /// Every running node sees tag `key=value` on node `i`.
    pub fn all_see_tag(&self, i: usize, key: &str, value: &str) -> bool {
        let id = self.nodes[i].core.me();
        let now = self.now;
        self.alive()
            .filter(|n| n.core.me() != id)
            .all(|n| n.core.nodes(now).iter().any(|info| info.id == id && info.tag(key) == Some(value)))
    }

    /// `NodeFailed` events, anywhere, about nodes that had not crashed when reported. Counted
    /// by address, not identity: a node falsely declared down rejoins as its next
    /// incarnation, and its false failure must still count once it has healed.
    pub fn false_failures(&self) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| &n.events)
            .filter(|(at, event)| match event {
                ClusterEvent::NodeFailed(info) => self.crashed_at.get(&info.id.addr).is_none_or(|crashed| at < crashed),
                _ => false,
            })
            .count()
    }

    /// Whether node `i` holds a majority, as [`PartitionDetector::status`](super::PartitionDetector::status)
    /// would tell it.
    pub fn partition_status(&self, i: usize) -> PartitionStatus {
        PartitionStatus::new(self.nodes[i].core.quorum())
    }

    /// Every event node `i` emitted, with its virtual time.
    pub fn events(&self, i: usize) -> &[(Duration, ClusterEvent)] {
        &self.nodes[i].events
    }

    /// Gossip counters of node `i`.
    pub fn stats(&self, i: usize) -> GossipStats {
        self.nodes[i].core.stats()
    }

    /// Bytes of gossip sent per running node per second of virtual time, averaged.
    pub fn bytes_sent_per_node_per_second(&self) -> f64 {
        let (count, bytes) = self.alive().fold((0usize, 0u64), |(c, b), n| (c + 1, b + n.core.stats().bytes_sent));
        if count == 0 || self.elapsed().is_zero() {
            return 0.0;
        }
        bytes as f64 / count as f64 / self.elapsed().as_secs_f64()
    }

    /// Gossip bytes sent by running nodes so far, summed.
    pub fn total_bytes_sent(&self) -> u64 {
        self.alive().map(|n| n.core.stats().bytes_sent).sum()
    }
}

#[cfg(test)]
mod tests;
