//! Least connections: the endpoint with the fewest calls in flight.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, CallInfo, Endpoint};

/// The endpoint with the fewest calls in flight. The scan starts one endpoint further at
/// each pick, so ties go to each tied endpoint in turn instead of always to the first.
#[derive(Debug, Default)]
pub struct LeastConnections {
    start: AtomicUsize,
}

impl LeastConnections {
    /// A new balancer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for LeastConnections {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        let n = endpoints.len();
        if n == 0 {
            return None;
        }
        let start = self.start.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = start;
        let mut best_load = endpoints[start].in_flight();
        for offset in 1..n {
            if best_load == 0 {
                break;
            }
            let index = (start + offset) % n;
            let load = endpoints[index].in_flight();
            if load < best_load {
                best = index;
                best_load = load;
            }
        }
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, endpoints};
    use super::*;

    #[test]
    fn picks_the_endpoint_with_the_fewest_calls_in_flight() {
        let balancer = LeastConnections::new();
        let set = endpoints(3);
        let _busy = [set[0].start_call(), set[0].start_call(), set[2].start_call()];
        for _ in 0..6 {
            assert_eq!(balancer.pick(&set, &call()), Some(1), "endpoint 1 has no call in flight");
        }
    }

    #[test]
    fn breaks_ties_fairly_not_always_toward_the_first() {
        let balancer = LeastConnections::new();
        let set = endpoints(3);
        let mut counts = [0; 3];
        for _ in 0..300 {
            counts[balancer.pick(&set, &call()).unwrap()] += 1;
        }
        assert_eq!(counts, [100, 100, 100], "equal loads must share the picks evenly");
    }
}
