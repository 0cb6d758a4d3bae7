//! Weighted strategies: endpoints receive calls in proportion to their `capacity` tag.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::rng::Rng;
use super::{Balancer, CallInfo, Endpoint};

/// At random, each endpoint with probability `weight / total weight`. One pass to sum the
/// weights and one to find the drawn one: linear in the number of endpoints.
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
        let total: u64 = endpoints.iter().map(|e| u64::from(e.weight())).sum();
        if total == 0 {
            return None;
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
/// the total; picks are serialised so the sequence stays exact.
#[derive(Debug, Default)]
pub struct WeightedRoundRobin {
    turn: Mutex<()>,
}

impl WeightedRoundRobin {
    /// A new balancer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for WeightedRoundRobin {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        if endpoints.is_empty() {
            return None;
        }
        let _turn = self.turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut total = 0i64;
        let mut best = 0;
        let mut best_current = i64::MIN;
        for (index, endpoint) in endpoints.iter().enumerate() {
            let weight = i64::from(endpoint.weight());
            total += weight;
            let current = endpoint.wrr_current().fetch_add(weight, Ordering::Relaxed) + weight;
            if current > best_current {
                best = index;
                best_current = current;
            }
        }
        endpoints[best].wrr_current().fetch_sub(total, Ordering::Relaxed);
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
