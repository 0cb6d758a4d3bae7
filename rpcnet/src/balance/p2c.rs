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

/// Two distinct indices below `n` (`n >= 2`), uniformly, from one random number: each
/// draw is an atomic add, which orders the memory accesses around it, and a pick waits for
/// it. The first index is the high word of `r × n`, as [`Rng::below`] draws; the low word,
/// the fraction it leaves, is uniform in turn and scaled to `n - 1` for the second, with a
/// bias below `n² / 2^64`.
pub(crate) fn two_distinct(rng: &Rng, n: usize) -> (usize, usize) {
    let scaled = u128::from(rng.next_u64()) * n as u128;
    let a = (scaled >> 64) as usize;
    let b = ((u128::from(scaled as u64) * (n - 1) as u128) >> 64) as usize;
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
    use super::super::tests::{call, chi_square, endpoints};
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

    #[test]
    fn both_indices_come_from_one_draw_and_every_pair_stays_equally_likely() {
        let rng = Rng::with_seed(2);
        let mut counts = [[0u64; 10]; 10];
        for _ in 0..90_000 {
            let (a, b) = two_distinct(&rng, 10);
            assert_ne!(a, b, "the two indices must differ");
            counts[a][b] += 1;
        }
        let pairs: Vec<u64> = (0..10)
            .flat_map(|a| (0..10).filter(move |&b| b != a).map(move |b| (a, b)))
            .map(|(a, b)| counts[a][b])
            .collect();
        // 89 degrees of freedom: chi-square above 129.0 has probability 0.001 if uniform.
        let statistic = chi_square(&pairs);
        assert!(statistic < 129.0, "ordered pairs of 10 are not uniform (chi-square {statistic:.1})");
        let (once, twice) = (Rng::with_seed(3), Rng::with_seed(3));
        two_distinct(&once, 10);
        twice.next_u64();
        assert_eq!(once.next_u64(), twice.next_u64(), "a pair must take one draw, one atomic add");
    }
}
