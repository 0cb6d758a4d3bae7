//! Peak EWMA: two endpoints drawn at random; the one with the lower cost wins, where cost is
//! the latency estimate times (calls in flight + 1).
//!
//! As Finagle (`PeakEwma`) and tower (`tower::load::PeakEwma`) define it: the estimate is an
//! exponentially weighted moving average of response times that jumps up to a slower
//! response at once (peak-sensitive) and decays towards faster ones over
//! [`LATENCY_DECAY`](super::endpoint::LATENCY_DECAY). Multiplying by the calls in flight
//! makes a fast but busy endpoint cost as much as an idle slow one, so a server that slows
//! down loses traffic within a few calls, and gets it back as its estimate decays.

use std::time::Duration;

use super::endpoint::nanos_since_epoch;
use super::p2c::two_distinct;
use super::rng::Rng;
use super::{Balancer, CallInfo, Endpoint};

/// Latency assumed for an endpoint that has not answered yet: optimistic, so that new
/// endpoints get tried.
const DEFAULT_LATENCY: Duration = Duration::from_millis(1);

/// Power of two choices on the peak-EWMA cost.
#[derive(Debug)]
pub struct PeakEwma {
    rng: Rng,
    default_latency_ns: f64,
}

impl PeakEwma {
    /// Seeded from the operating system; endpoints without an estimate count as 1 ms.
    pub fn new() -> Self {
        Self { rng: Rng::new(), default_latency_ns: DEFAULT_LATENCY.as_nanos() as f64 }
    }

    /// A reproducible sequence of choices.
    pub fn with_seed(seed: u64) -> Self {
        Self { rng: Rng::with_seed(seed), ..Self::new() }
    }

    /// The latency assumed for endpoints that have not answered yet.
    pub fn with_default_latency(mut self, latency: Duration) -> Self {
        self.default_latency_ns = latency.as_nanos() as f64;
        self
    }

    /// The cost of sending a call to `endpoint` now.
    pub fn cost(&self, endpoint: &Endpoint, call: &CallInfo<'_>) -> f64 {
        self.cost_at(endpoint, nanos_since_epoch(call.now))
    }

    /// [`cost`](Self::cost) at `now_ns` (from [`nanos_since_epoch`]).
    fn cost_at(&self, endpoint: &Endpoint, now_ns: u64) -> f64 {
        let estimate = endpoint.decayed_latency_at(now_ns);
        let latency = if estimate > 0.0 { estimate } else { self.default_latency_ns };
        latency * f64::from(endpoint.in_flight() + 1)
    }
}

impl Default for PeakEwma {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer for PeakEwma {
    fn pick(&self, endpoints: &[Endpoint], call: &CallInfo<'_>) -> Option<usize> {
        match endpoints.len() {
            0 => None,
            1 => Some(0),
            n => {
                let (a, b) = two_distinct(&self.rng, n);
                let now_ns = nanos_since_epoch(call.now);
                Some(if self.cost_at(&endpoints[b], now_ns) < self.cost_at(&endpoints[a], now_ns) { b } else { a })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::tests::{call, endpoints};
    use super::*;

    #[test]
    fn cost_is_latency_times_calls_in_flight_plus_one() {
        let balancer = PeakEwma::with_seed(1);
        let set = endpoints(1);
        let now = Instant::now();
        let info = CallInfo { now, ..call() };
        assert_eq!(balancer.cost(&set[0], &info), 1_000_000.0, "no estimate yet: the default 1 ms");
        set[0].record(Duration::from_millis(4), true, now);
        let _calls = [set[0].start_call(), set[0].start_call()];
        assert_eq!(balancer.cost(&set[0], &info), 12_000_000.0, "4 ms × (2 + 1)");
    }

    #[test]
    fn a_slow_endpoint_loses_its_traffic() {
        let balancer = PeakEwma::with_seed(2);
        let set = endpoints(2);
        let now = Instant::now();
        set[0].record(Duration::from_millis(50), true, now);
        set[1].record(Duration::from_millis(5), true, now);
        let info = CallInfo { now, ..call() };
        assert!((0..100).all(|_| balancer.pick(&set, &info) == Some(1)), "the 10× faster endpoint wins");
        // ...unless it is busy enough: 5 ms × 11 = 55 ms > 50 ms × 1.
        let _busy: Vec<_> = (0..10).map(|_| set[1].start_call()).collect();
        assert!((0..100).all(|_| balancer.pick(&set, &info) == Some(0)), "a busy fast endpoint costs more");
    }

    #[test]
    fn a_recovered_endpoint_wins_traffic_back_as_its_peak_decays() {
        let balancer = PeakEwma::with_seed(3);
        let set = endpoints(2);
        let t0 = Instant::now();
        set[0].record(Duration::from_millis(200), true, t0);
        let now = CallInfo { now: t0, ..call() };
        assert_eq!(balancer.pick(&set, &now), Some(1), "just after its 200 ms peak, endpoint 0 loses");
        // Endpoint 1 keeps answering in 10 ms; endpoint 0 gets no traffic and its peak decays:
        // 30 s (three decay periods) later it is down to 200 ms × e^-3 = 9.96 ms.
        let later = CallInfo { now: t0 + Duration::from_secs(30), ..call() };
        set[1].record(Duration::from_millis(10), true, later.now);
        assert!(
            balancer.cost(&set[0], &later) < balancer.cost(&set[1], &later),
            "the decayed peak must cost less than the busy path, so endpoint 0 is tried again"
        );
    }
}
