//! Random: uniformly at random, without shared state between clients.

use super::rng::Rng;
use super::{Balancer, CallInfo, Endpoint};

/// Uniformly at random. Many independent clients using it spread load evenly without
/// coordination. `with_seed` repeats its choices (tests, simulations).
#[derive(Debug)]
pub struct Random {
    rng: Rng,
}

impl Random {
    /// Seeded from the operating system.
    pub fn new() -> Self {
        Self { rng: Rng::new() }
    }

    /// A reproducible sequence of choices.
    pub fn with_seed(seed: u64) -> Self {
        Self { rng: Rng::with_seed(seed) }
    }
}

impl Default for Random {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer for Random {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        (!endpoints.is_empty()).then(|| self.rng.below(endpoints.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, chi_square, endpoints};
    use super::*;

    #[test]
    fn is_uniform_within_statistical_bounds() {
        let balancer = Random::with_seed(42);
        let set = endpoints(5);
        let mut counts = [0u64; 5];
        for _ in 0..50_000 {
            counts[balancer.pick(&set, &call()).unwrap()] += 1;
        }
        // 4 degrees of freedom: chi-square above 18.47 has probability 0.001 if uniform.
        let statistic = chi_square(&counts);
        assert!(statistic < 18.47, "picks {counts:?} are not uniform (chi-square {statistic:.2})");
    }

    #[test]
    fn a_seed_repeats_the_choices() {
        let set = endpoints(10);
        let run = |seed| (0..20).map(|_| Random::with_seed(seed).pick(&set, &call()).unwrap()).collect::<Vec<_>>();
        assert_eq!(run(3), run(3));
    }
}
