//! Least connections: the endpoint with the fewest calls in flight, ties broken at random.

use super::rng::Rng;
use super::{Balancer, CallInfo, Endpoint};

/// The endpoint with the fewest calls in flight. Among several with that fewest number, each
/// is equally likely (reservoir sampling in the one scan: the `k`th tied endpoint replaces
/// the choice with probability `1/k`), whatever their places in the set, so that idle
/// endpoints share the calls evenly. The random numbers are drawn only when there is a tie,
/// from one atomic draw per pick; the scan allocates nothing and divides by nothing.
#[derive(Debug)]
pub struct LeastConnections {
    rng: Rng,
}

impl LeastConnections {
    /// Ties broken with numbers seeded from the operating system.
    pub fn new() -> Self {
        Self { rng: Rng::new() }
    }

    /// A reproducible sequence of tie breaks.
    pub fn with_seed(seed: u64) -> Self {
        Self { rng: Rng::with_seed(seed) }
    }
}

impl Default for LeastConnections {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer for LeastConnections {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        let (first, rest) = endpoints.split_first()?;
        let mut best = 0;
        let mut best_load = first.in_flight();
        let mut ties = 1u64;
        let mut rng = None;
        for (offset, endpoint) in rest.iter().enumerate() {
            let load = endpoint.in_flight();
            if load < best_load {
                best = offset + 1;
                best_load = load;
                ties = 1;
            } else if load == best_load {
                ties += 1;
                if rng.get_or_insert_with(|| self.rng.local()).one_in(ties) {
                    best = offset + 1;
                }
            }
        }
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, chi_square_expected, endpoints};
    use super::*;

    #[test]
    fn picks_the_endpoint_with_the_fewest_calls_in_flight() {
        let balancer = LeastConnections::with_seed(1);
        let set = endpoints(3);
        let _busy = [set[0].start_call(), set[0].start_call(), set[2].start_call()];
        for _ in 0..6 {
            assert_eq!(balancer.pick(&set, &call()), Some(1), "endpoint 1 has no call in flight");
        }
    }

    /// Picks per endpoint over `picks` picks from a set whose loads are `loads`.
    fn counts(loads: &[usize], picks: usize) -> Vec<u64> {
        let balancer = LeastConnections::with_seed(7);
        let set = endpoints(loads.len());
        let _busy: Vec<_> = set.iter().zip(loads).flat_map(|(e, &n)| (0..n).map(|_| e.start_call())).collect();
        let mut counts = vec![0u64; loads.len()];
        for _ in 0..picks {
            counts[balancer.pick(&set, &call()).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn ties_among_some_endpoints_are_shared_evenly_whatever_their_place() {
        // Two idle endpoints after a run of busy ones: each must get half, and the busy ones
        // none. 1 degree of freedom: chi-square above 10.83 has probability 0.001.
        let after_busy = counts(&[1, 1, 1, 1, 0, 0], 12_000);
        assert_eq!(&after_busy[..4], &[0, 0, 0, 0], "busy endpoints get nothing: {after_busy:?}");
        let statistic = chi_square_expected(&after_busy[4..], &[6_000.0, 6_000.0]);
        assert!(statistic < 10.83, "idle endpoints 4 and 5 must share evenly: {after_busy:?} ({statistic:.2})");

        let first_two = counts(&[0, 0, 1], 12_000);
        assert_eq!(first_two[2], 0, "the busy endpoint gets nothing: {first_two:?}");
        let statistic = chi_square_expected(&first_two[..2], &[6_000.0, 6_000.0]);
        assert!(statistic < 10.83, "idle endpoints 0 and 1 must share evenly: {first_two:?} ({statistic:.2})");
    }

    #[test]
    fn equal_loads_share_every_endpoint_evenly() {
        let all = counts(&[0, 0, 0, 0, 0], 25_000);
        // 4 degrees of freedom: above 18.47 has probability 0.001 if uniform.
        let statistic = chi_square_expected(&all, &[5_000.0; 5]);
        assert!(statistic < 18.47, "{all:?} are not uniform (chi-square {statistic:.2})");
    }

    #[test]
    fn nothing_to_pick_from_an_empty_set() {
        assert_eq!(LeastConnections::new().pick(&[], &call()), None);
    }
}
