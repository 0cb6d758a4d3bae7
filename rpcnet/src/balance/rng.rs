//! The random numbers of randomised strategies: a SplitMix64 sequence advanced with one
//! atomic add, so a balancer shared by every thread draws without a lock and without
//! allocating, and a seeded balancer repeats its choices exactly (tests, simulations).
//! `rand` supplies the seed; its generators are not `Sync`, which a balancer must be.

use std::sync::atomic::{AtomicU64, Ordering};

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a well-spread 64-bit hash of a state.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A lock-free stream of pseudo-random numbers (SplitMix64).
#[derive(Debug)]
pub(crate) struct Rng {
    state: AtomicU64,
}

impl Rng {
    /// Seeded from the operating system.
    pub(crate) fn new() -> Self {
        Self::with_seed(rand::random())
    }

    /// The same seed gives the same sequence.
    pub(crate) fn with_seed(seed: u64) -> Self {
        Self { state: AtomicU64::new(seed) }
    }

    pub(crate) fn next_u64(&self) -> u64 {
        mix(self.state.fetch_add(GAMMA, Ordering::Relaxed).wrapping_add(GAMMA))
    }

    /// A sequence for one pick, seeded by one draw from this one: further numbers cost no
    /// atomic operation, for a pick that needs an unknown number of them.
    pub(crate) fn local(&self) -> LocalRng {
        LocalRng { state: self.next_u64() }
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift: no division, bias below 2^-32
    /// for any `n` a balancer sees.
    pub(crate) fn below(&self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// A SplitMix64 sequence owned by one pick (not shared, so not atomic).
#[derive(Debug)]
pub(crate) struct LocalRng {
    state: u64,
}

impl LocalRng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// Whether an event of probability `1 / n` (`n > 0`) happens: `below(n) == 0`.
    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        (u128::from(self.next_u64()) * u128::from(n)) >> 64 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_its_sequence() {
        let (a, b) = (Rng::with_seed(7), Rng::with_seed(7));
        let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        assert_ne!(first[0], first[1]);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let rng = Rng::with_seed(1);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            seen[rng.below(7)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800 && n < 1200), "roughly uniform: {seen:?}");
    }
}
