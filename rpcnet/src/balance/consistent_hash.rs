//! Consistent hashing: calls with the same affinity key go to the same endpoint, and a
//! change of endpoints moves only the keys it must.
//!
//! Karger et al., "Consistent Hashing and Random Trees" (1997). Each endpoint owns
//! `virtual_nodes` points on a ring of 64-bit hashes of its id; a key belongs to the first
//! point at or after its own hash. When one endpoint joins `n`, it takes over about `1/(n+1)`
//! of the keys, and only from the others' points next to its own. Points are hashed with
//! xxh3 of the endpoint id, so every client builds the same ring from the same set.

use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::xxh3_64;

use super::per_set::PerSet;
use super::rng::Rng;
use super::{Balancer, CallInfo, Endpoint};

/// Points per endpoint: enough that each endpoint's share of keys stays within a few
/// percent of `1/n`.
const DEFAULT_VIRTUAL_NODES: usize = 160;

/// The hash of an affinity key, as [`CallInfo::key`] carries it.
pub fn affinity_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// A ring of virtual nodes keyed by each call's affinity key. Calls without a key are
/// placed at random. The ring is built once per set of endpoints: the first keyed pick of a
/// new generation builds it while concurrent picks wait for it (rather than each sorting
/// `160 × n` points), and later picks read it without a lock. A set of generation 0 (a
/// retry's one-off set) gets a ring of its own for that pick, unless it holds the same
/// endpoints as the kept ring.
#[derive(Debug)]
pub struct ConsistentHash {
    virtual_nodes: usize,
    ring: PerSet<Ring>,
    rng: Rng,
    /// Rings built, for tests.
    builds: AtomicU64,
}

/// Sorted points: (hash, index of the endpoint in the set the ring was built from).
#[derive(Debug)]
struct Ring {
    points: Vec<(u64, u32)>,
}

impl Ring {
    fn build(endpoints: &[Endpoint], virtual_nodes: usize) -> Self {
        let mut points = Vec::with_capacity(endpoints.len() * virtual_nodes);
        for (index, endpoint) in endpoints.iter().enumerate() {
            for replica in 0..virtual_nodes {
                let point = xxh3_64(format!("{}#{replica}", endpoint.id()).as_bytes());
                points.push((point, index as u32));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    fn owner(&self, key: u64) -> usize {
        let at = self.points.partition_point(|&(point, _)| point < key);
        let (_, index) = self.points[at % self.points.len()];
        index as usize
    }
}

impl ConsistentHash {
    /// 160 virtual nodes per endpoint.
    pub fn new() -> Self {
        Self::with_virtual_nodes(DEFAULT_VIRTUAL_NODES)
    }

    /// `virtual_nodes` points per endpoint (at least 1).
    pub fn with_virtual_nodes(virtual_nodes: usize) -> Self {
        Self {
            virtual_nodes: virtual_nodes.max(1),
            ring: PerSet::default(),
            rng: Rng::new(),
            builds: AtomicU64::new(0),
        }
    }

    fn build(&self, endpoints: &[Endpoint]) -> Ring {
        self.builds.fetch_add(1, Ordering::Relaxed);
        Ring::build(endpoints, self.virtual_nodes)
    }
}

impl Default for ConsistentHash {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer for ConsistentHash {
    fn pick(&self, endpoints: &[Endpoint], call: &CallInfo<'_>) -> Option<usize> {
        if endpoints.is_empty() {
            return None;
        }
        let Some(key) = call.key else { return Some(self.rng.below(endpoints.len())) };
        Some(self.ring.with(endpoints, call.generation, false, |set| self.build(set), |ring| ring.owner(key)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{call, endpoints};
    use super::*;

    fn owner_of(balancer: &ConsistentHash, set: &[Endpoint], key: u64, generation: u64) -> String {
        let info = CallInfo { key: Some(key), generation, ..call() };
        set[balancer.pick(set, &info).unwrap()].id().to_owned()
    }

    #[test]
    fn the_same_key_goes_to_the_same_endpoint_from_any_client() {
        let set = endpoints(5);
        let (a, b) = (ConsistentHash::new(), ConsistentHash::new());
        for key in 0..1_000u64 {
            let key = affinity_hash(&key.to_le_bytes());
            assert_eq!(owner_of(&a, &set, key, 1), owner_of(&b, &set, key, 1), "two clients, one ring");
        }
    }

    #[test]
    fn one_endpoint_joining_moves_about_one_nth_of_the_keys_and_only_to_itself() {
        // One balancer per set, as a client sees one set, then the next.
        let (old_ring, new_ring) = (ConsistentHash::new(), ConsistentHash::new());
        let before = endpoints(10);
        let mut after = before.clone();
        after.push(Endpoint::new("e10", "127.0.0.1:10".parse().unwrap()));
        let keys: Vec<u64> = (0..20_000u64).map(|k| affinity_hash(&k.to_le_bytes())).collect();
        let mut moved = 0;
        for &key in &keys {
            let (old, new) = (owner_of(&old_ring, &before, key, 1), owner_of(&new_ring, &after, key, 2));
            if old != new {
                moved += 1;
                assert_eq!(new, "e10", "a key may only move to the endpoint that joined");
            }
        }
        let share = moved as f64 / keys.len() as f64;
        assert!(share <= 2.0 / 11.0, "{share:.3} of the keys moved; at most 2/N = {:.3} may", 2.0 / 11.0);
        assert!(share >= 0.5 / 11.0, "{share:.3} moved: the new endpoint must take its share");
    }

    #[test]
    fn every_endpoint_gets_a_fair_share_of_keys() {
        let balancer = ConsistentHash::new();
        let set = endpoints(8);
        let mut counts = std::collections::HashMap::new();
        for key in 0..40_000u64 {
            *counts.entry(owner_of(&balancer, &set, affinity_hash(&key.to_le_bytes()), 1)).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 8);
        assert!(counts.values().all(|&n| (3_500..6_500).contains(&n)), "shares too uneven: {counts:?}");
    }

    #[test]
    fn concurrent_picks_of_a_new_generation_build_one_ring() {
        let balancer = Arc::new(ConsistentHash::new());
        let set = Arc::new(endpoints(1_000));
        let start = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let (balancer, set, start) = (balancer.clone(), set.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let info = CallInfo { key: Some(affinity_hash(&t.to_le_bytes())), generation: 7, ..call() };
                    balancer.pick(&set, &info).unwrap()
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().unwrap() < 1_000);
        }
        assert_eq!(balancer.builds.load(Ordering::Relaxed), 1, "eight picks of one generation, one ring");
        let retry = set[1..].to_vec();
        let info = CallInfo { key: Some(1), generation: 0, ..call() };
        assert!(balancer.pick(&retry, &info).unwrap() < 999);
        assert!(balancer.pick(&set, &CallInfo { generation: 7, ..info }).is_some());
        assert_eq!(balancer.builds.load(Ordering::Relaxed), 2, "a one-off set gets its own ring; the kept one stays");
    }

    #[test]
    fn calls_without_a_key_are_still_placed() {
        let balancer = ConsistentHash::new();
        let set = endpoints(3);
        assert!(balancer.pick(&set, &call()).is_some());
    }
}
