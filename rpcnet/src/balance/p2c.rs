//! Power of two choices: the less loaded of two endpoints drawn at random.
//!
//! Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing" (2001): with two
//! random choices the most loaded of `n` bins holds about `ln ln n / ln 2` above the mean,
//! against `ln n / ln ln n` for one choice, at a constant cost per pick whatever `n`.

use super::rng::Rng;
use super::{Balancer, CallInfo, Endpoint};

/// The endpoint with fewer calls in flight of two distinct ones drawn at random.
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    rng: Rng,
}

impl PowerOfTwoChoices {
    /// Seeded from the operating system.
    pub fn new() -> Self {
        Self { rng: Rng::new() }
    }

    /// A reproducible sequence of choices.
    pub fn with_seed(seed: u64) -> Self {
        Self { rng: Rng::with_seed(seed) }
    }
}

impl Default for PowerOfTwoChoices {
    fn default() -> Self {
        Self::new()
    }
}

/// Two distinct indices below `n` (`n >= 2`), uniformly.
pub(crate) fn two_distinct(rng: &Rng, n: usize) -> (usize, usize) {
    let a = rng.below(n);
    let b = rng.below(n - 1);
    (a, if b >= a { b + 1 } else { b })
}

impl Balancer for PowerOfTwoChoices {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        match endpoints.len() {
            0 => None,
            1 => Some(0),
            n => {
                let (a, b) = two_distinct(&self.rng, n);
                Some(if endpoints[b].in_flight() < endpoints[a].in_flight() { b } else { a })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, endpoints};
    use super::*;

    #[test]
    fn never_picks_the_most_loaded_of_two() {
        let balancer = PowerOfTwoChoices::with_seed(9);
        let set = endpoints(2);
        let _busy = set[0].start_call();
        for _ in 0..100 {
            assert_eq!(balancer.pick(&set, &call()), Some(1), "of two, the idle one must win");
        }
    }

    #[test]
    fn avoids_the_loaded_endpoint_of_many() {
        let balancer = PowerOfTwoChoices::with_seed(5);
        let set = endpoints(4);
        let _busy: Vec<_> = (0..10).map(|_| set[2].start_call()).collect();
        let picks_of_loaded = (0..4_000).filter(|_| balancer.pick(&set, &call()) == Some(2)).count();
        assert_eq!(picks_of_loaded, 0, "a loaded endpoint loses every comparison it is drawn into");
    }

    #[test]
    fn draws_two_distinct_indices_uniformly() {
        let rng = Rng::with_seed(1);
        let mut pairs = std::collections::HashMap::new();
        for _ in 0..6_000 {
            let (a, b) = two_distinct(&rng, 3);
            assert_ne!(a, b);
            *pairs.entry((a, b)).or_insert(0) += 1;
        }
        assert_eq!(pairs.len(), 6, "all ordered pairs of 3 occur");
        assert!(pairs.values().all(|&n| (800..1200).contains(&n)), "{pairs:?}");
    }
}
