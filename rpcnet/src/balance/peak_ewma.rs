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

use super::endpoint::{LATENCY_DECAY, decay, decay_bounds, nanos_since_epoch};
use super::p2c::two_distinct;
use super::rng::Rng;
use super::{Balancer, CallInfo, Endpoint};

/// Latency assumed for an endpoint that has not answered yet: optimistic, so that new
/// endpoints get tried.
const DEFAULT_LATENCY: Duration = Duration::from_millis(1);

/// Bounds within which [`PeakEwma::costs_less`] may compare two costs by their relative
/// decay: an estimate of at least `MIN_ESTIMATE_NS` decayed for at most
/// `MAX_AGE_NS` (600 decay periods, e^-600 ≈ 3e-261) stays a normal, non-zero `f64`, so
/// neither cost falls back to the default latency by underflowing to zero.
const MIN_ESTIMATE_NS: f64 = 1e-40;
const MAX_AGE_NS: u64 = 600 * LATENCY_DECAY.as_secs() * 1_000_000_000;

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

    /// The latency an endpoint's cost starts from at `now_ns`, undecayed, and the age of
    /// its estimate: the default latency, which does not age, if it has none.
    fn latency_and_age(&self, endpoint: &Endpoint, now_ns: u64) -> (f64, u64) {
        let (estimate, age_ns) = endpoint.latency_sample(now_ns);
        let known = estimate > 0.0;
        (choose(known, estimate, self.default_latency_ns), if known { age_ns } else { 0 })
    }

    /// Whether `b` costs less than `a` at `now_ns`: `cost_at(b) < cost_at(a)`, but without
    /// the exponentials, which dominated a pick, unless the costs are too close for bounds
    /// on the exponential to order them, and without branching on the endpoints' loads.
    fn costs_less(&self, b: &Endpoint, a: &Endpoint, now_ns: u64) -> bool {
        let (latency_a, age_a) = self.latency_and_age(a, now_ns);
        let (latency_b, age_b) = self.latency_and_age(b, now_ns);
        if latency_a.min(latency_b) < MIN_ESTIMATE_NS || age_a.max(age_b) > MAX_AGE_NS {
            return self.cost_at(b, now_ns) < self.cost_at(a, now_ns);
        }
        // cost = latency × (in flight + 1) × e^(-age/τ). Dividing both costs by the
        // fresher one's e^(-age/τ) leaves the older one decayed by the difference in age
        // alone: the same order, up to rounding when the costs are within ulps.
        let cost_a = latency_a * f64::from(a.in_flight() + 1);
        let cost_b = latency_b * f64::from(b.in_flight() + 1);
        let b_older = age_b > age_a;
        let difference = age_a.abs_diff(age_b);
        let (lower, upper) = decay_bounds(difference);
        let (b_lower, b_upper) = (cost_b * choose(b_older, lower, 1.0), cost_b * choose(b_older, upper, 1.0));
        let (a_lower, a_upper) = (cost_a * choose(b_older, 1.0, lower), cost_a * choose(b_older, 1.0, upper));
        // Whether the two ranges overlap, as one comparison: the compiler splits `x && y`
        // into two branches, and those would be coin tosses.
        let undecided = (b_upper - a_lower).min(a_upper - b_lower) >= 0.0;
        if undecided {
            // Within the bounds' width of each other: only the exponential tells.
            let decay = decay(difference);
            return if b_older { cost_b * decay < cost_a } else { cost_b < cost_a * decay };
        }
        b_upper < a_lower
    }
}

/// `if condition { x } else { y }` for finite `x` and `y`, exactly, by arithmetic. The
/// compiler turns an `if` between two `f64`s into a branch, and a pick's conditions depend
/// on loads from endpoints drawn at random: no predictor learns them, and a mispredicted
/// branch waits for its load first, which among a thousand endpoints comes from L3.
fn choose(condition: bool, x: f64, y: f64) -> f64 {
    let t = f64::from(u8::from(condition));
    x * t + y * (1.0 - t)
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
                Some(if self.costs_less(&endpoints[b], &endpoints[a], now_ns) { b } else { a })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::tests::{call, endpoints};
    use super::*;

    /// The pick's comparison must order two endpoints as their documented costs do,
    /// whatever their estimates, ages and loads: with and without estimates, of equal and
    /// of different ages, near ties, and past the bounds of the shortcut.
    #[test]
    fn the_picks_comparison_agrees_with_the_costs() {
        let rng = Rng::with_seed(17);
        let balancer = PeakEwma::with_seed(1);
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(8_000);
        let info = CallInfo { now, ..call() };
        let set = endpoints(64);
        let mut guards = Vec::new();
        for endpoint in &set {
            match rng.below(8) {
                // No estimate: the default latency.
                0 => {}
                // Older than the shortcut's bound on ages.
                1 => endpoint.record(Duration::from_millis(1 + rng.below(50) as u64), true, t0),
                // The same instant as others, so that ages tie.
                2 => endpoint.record(Duration::from_micros(500 * (1 + rng.below(4) as u64)), true, now),
                // Recent, from a few milliseconds to a minute ago.
                _ => {
                    let ago = Duration::from_micros(1 + rng.below(60_000_000) as u64);
                    endpoint.record(Duration::from_micros(100 + rng.below(20_000) as u64), true, now - ago);
                }
            }
            guards.extend((0..rng.below(5)).map(|_| endpoint.start_call()));
        }
        let mut compared = 0;
        for a in &set {
            for b in &set {
                let (cost_a, cost_b) = (balancer.cost(a, &info), balancer.cost(b, &info));
                // Closer than rounding can order: either answer is right.
                if (cost_a - cost_b).abs() <= 1e-12 * cost_a.max(cost_b) {
                    continue;
                }
                let fast = balancer.costs_less(b, a, nanos_since_epoch(now));
                assert_eq!(fast, cost_b < cost_a, "{b:?} costs {cost_b}, {a:?} costs {cost_a}");
                compared += 1;
            }
        }
        assert!(compared > 3_000, "only {compared} pairs were far enough apart to compare");
    }

    #[test]
    fn near_ties_are_ordered_by_the_exact_costs() {
        let balancer = PeakEwma::with_seed(1);
        let now = Instant::now() + Duration::from_secs(5);
        let now_ns = nanos_since_epoch(now);
        // 10 ms a second ago decays to 9,048,374.18 ns: within a ten-millionth of the
        // fresh estimates below, far closer than the bounds on e^-0.1 can tell.
        let older = endpoints(1).remove(0);
        older.record(Duration::from_millis(10), true, now - Duration::from_secs(1));
        for (fresh_ns, cheaper) in [(9_048_374, true), (9_048_375, false)] {
            let fresh = endpoints(1).remove(0);
            fresh.record(Duration::from_nanos(fresh_ns), true, now);
            let info = CallInfo { now, ..call() };
            assert_eq!(balancer.cost(&fresh, &info) < balancer.cost(&older, &info), cheaper, "the costs themselves");
            assert_eq!(balancer.costs_less(&fresh, &older, now_ns), cheaper, "fresh {fresh_ns} ns against older");
            assert_eq!(balancer.costs_less(&older, &fresh, now_ns), !cheaper, "older against fresh {fresh_ns} ns");
        }
    }

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
