//! Weighted strategies: endpoints receive calls in proportion to their `capacity` tag.

use std::sync::Mutex;

use super::per_set::same_set;
use super::rng::Rng;
use super::{Balancer, CallInfo, Endpoint};

/// At random, each endpoint with probability `weight / total weight`; an endpoint of weight
/// 0 gets nothing, unless every endpoint weighs 0, when each is equally likely. One pass to
/// sum the weights and one to find the drawn one: linear in the number of endpoints.
#[derive(Debug)]
pub struct WeightedRandom {
    rng: Rng,
}

impl WeightedRandom {
    /// Seeded from the operating system.
    pub fn new() -> Self {
        Self { rng: Rng::new() }
    }

    /// A reproducible sequence of choices.
    pub fn with_seed(seed: u64) -> Self {
        Self { rng: Rng::with_seed(seed) }
    }
}

impl Default for WeightedRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer for WeightedRandom {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        if endpoints.is_empty() {
            return None;
        }
        let total: u64 = endpoints.iter().map(|e| u64::from(e.weight())).sum();
        if total == 0 {
            return Some(self.rng.below(endpoints.len()));
        }
        let mut target = ((u128::from(self.rng.next_u64()) * u128::from(total)) >> 64) as u64;
        for (index, endpoint) in endpoints.iter().enumerate() {
            let weight = u64::from(endpoint.weight());
            if target < weight {
                return Some(index);
            }
            target -= weight;
        }
        unreachable!("bug in rpcnet: weighted draw past the total weight")
    }
}

/// In turn, in proportion to the weights, interleaved smoothly (nginx's smooth weighted
/// round robin): weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`. Each pick adds
/// every weight to its endpoint's current value and takes the largest, which then gives back
/// the total. The current values belong to this balancer, one per endpoint of the set it
/// last saw (they start again from zero when the set changes), so balancers that share
/// endpoints, such as a registry's and a client's, keep exact sequences of their own. Picks
/// are serialised by a lock, so the sequence stays exact under concurrency; they allocate
/// nothing once the set is known.
#[derive(Debug, Default)]
pub struct WeightedRoundRobin {
    state: Mutex<SmoothState>,
}

/// The smooth sequence's state for one set of endpoints.
#[derive(Debug, Default)]
struct SmoothState {
    generation: u64,
    /// The set the current values are for.
    source: Vec<Endpoint>,
    current: Vec<i64>,
}

impl SmoothState {
    /// Starts again from zero if `endpoints` is not the set the values are for.
    fn follow(&mut self, endpoints: &[Endpoint], generation: u64) {
        let known = (generation != 0 && generation == self.generation) || same_set(&self.source, endpoints);
        if !known {
            self.source.clear();
            self.source.extend_from_slice(endpoints);
            self.current.clear();
            self.current.resize(endpoints.len(), 0);
        }
        self.generation = generation;
    }
}

impl WeightedRoundRobin {
    /// A new balancer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for WeightedRoundRobin {
    fn pick(&self, endpoints: &[Endpoint], call: &CallInfo<'_>) -> Option<usize> {
        if endpoints.is_empty() {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.follow(endpoints, call.generation);
        // Every endpoint weighs 0: all of them alike, in turn.
        let uniform = endpoints.iter().all(|e| e.weight() == 0);
        let mut total = 0i64;
        let mut best = 0;
        let mut best_current = i64::MIN;
        for (index, (endpoint, current)) in endpoints.iter().zip(state.current.iter_mut()).enumerate() {
            let weight = if uniform { 1 } else { i64::from(endpoint.weight()) };
            if weight == 0 {
                continue;
            }
            total += weight;
            *current += weight;
            if *current > best_current {
                best = index;
                best_current = *current;
            }
        }
        state.current[best] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, chi_square_expected, endpoints};
    use super::*;

    fn weighted(weights: &[u32]) -> Vec<Endpoint> {
        endpoints(weights.len()).into_iter().zip(weights).map(|(e, w)| e.with_tag("capacity", w.to_string())).collect()
    }

    #[test]
    fn weighted_random_follows_the_capacity_tags() {
        let balancer = WeightedRandom::with_seed(11);
        let set = weighted(&[1, 2, 7]);
        let mut counts = [0u64; 3];
        for _ in 0..100_000 {
            counts[balancer.pick(&set, &call()).unwrap()] += 1;
        }
        // 2 degrees of freedom: above 13.82 has probability 0.001 if the shares are 1:2:7.
        let statistic = chi_square_expected(&counts, &[10_000.0, 20_000.0, 70_000.0]);
        assert!(statistic < 13.82, "counts {counts:?} do not follow 1:2:7 (chi-square {statistic:.2})");
    }

    #[test]
    fn weighted_round_robin_is_smooth_and_exact() {
        let balancer = WeightedRoundRobin::new();
        let set = weighted(&[5, 1, 1]);
        let picks: Vec<_> = (0..7).map(|_| balancer.pick(&set, &call()).unwrap()).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0], "nginx's smooth sequence for weights 5, 1, 1");
        let again: Vec<_> = (0..7).map(|_| balancer.pick(&set, &call()).unwrap()).collect();
        assert_eq!(again, picks, "the sequence repeats every total weight");
    }

    #[test]
    fn two_balancers_over_the_same_endpoints_each_keep_the_exact_sequence() {
        // A registry's balancer and a client's share endpoints: interleaved picks of one must
        // not disturb the other's sequence.
        let (registry, client) = (WeightedRoundRobin::new(), WeightedRoundRobin::new());
        let set = weighted(&[5, 1, 1]);
        let mut seen = (Vec::new(), Vec::new());
        for _ in 0..14 {
            seen.0.push(registry.pick(&set, &call()).unwrap());
            seen.1.push(client.pick(&set, &CallInfo { generation: 3, ..call() }).unwrap());
        }
        let smooth = [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0];
        assert_eq!(seen.0, smooth, "the first balancer's sequence");
        assert_eq!(seen.1, smooth, "the second balancer's sequence");
    }

    #[test]
    fn a_changed_set_starts_its_sequence_again() {
        let balancer = WeightedRoundRobin::new();
        let first = weighted(&[5, 1, 1]);
        assert_eq!(balancer.pick(&first, &CallInfo { generation: 1, ..call() }), Some(0));
        let second = weighted(&[1, 3]);
        let picks: Vec<_> =
            (0..4).map(|_| balancer.pick(&second, &CallInfo { generation: 2, ..call() }).unwrap()).collect();
        assert_eq!(picks, [1, 0, 1, 1], "the smooth sequence of weights 1, 3 from its start");
    }

    #[test]
    fn capacity_zero_gets_no_traffic_unless_every_endpoint_has_it() {
        let set = weighted(&[0, 2, 1]);
        let wrr = WeightedRoundRobin::new();
        let picks: Vec<_> = (0..6).map(|_| wrr.pick(&set, &call()).unwrap()).collect();
        assert_eq!(picks, [1, 2, 1, 1, 2, 1], "weights 0, 2, 1: endpoint 0 never");
        let random = WeightedRandom::with_seed(3);
        assert!((0..3_000).all(|_| random.pick(&set, &call()) != Some(0)), "weight 0 is never drawn");

        let idle = weighted(&[0, 0, 0]);
        let picks: Vec<_> = (0..6).map(|_| wrr.pick(&idle, &call()).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2], "all at 0: all alike, in turn");
        let mut counts = [0u64; 3];
        for _ in 0..30_000 {
            counts[random.pick(&idle, &call()).unwrap()] += 1;
        }
        // 2 degrees of freedom: above 13.82 has probability 0.001 if uniform.
        let statistic = chi_square_expected(&counts, &[10_000.0; 3]);
        assert!(statistic < 13.82, "all at 0: uniform, but {counts:?} ({statistic:.2})");
    }

    #[test]
    fn untagged_endpoints_weigh_one() {
        let balancer = WeightedRoundRobin::new();
        let set = endpoints(3);
        let mut counts = [0; 3];
        for _ in 0..30 {
            counts[balancer.pick(&set, &call()).unwrap()] += 1;
        }
        assert_eq!(counts, [10, 10, 10]);
    }
}
