//! The phi-accrual failure detector (Hayashibara et al., 2004): how surprising it is not to
//! have heard from a peer for this long, given how often it was heard from before.
//!
//! φ = −log10(P(a live peer stays silent this long)), with the inter-arrival times modelled
//! as a normal distribution (Akka's logistic approximation of its tail). So φ = 1 means a 10%
//! chance of a false alarm, φ = 8 a 1-in-10⁸ chance, not the "97.7%" some tables print.
//! It is a soft signal: balancers send less to a suspect endpoint, while membership
//! (alive, suspect, down) stays SWIM's decision.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Heartbeat intervals remembered per peer.
const WINDOW: usize = 100;
/// A floor on the standard deviation, so a perfectly regular peer is not declared dead
/// the moment it is a little late.
const MIN_STD_DEV: Duration = Duration::from_millis(100);
/// Silence tolerated on top of the expected interval (a GC pause, a busy event loop).
const ACCEPTABLE_PAUSE: Duration = Duration::from_millis(500);

/// The detector of one peer, fed with the arrival time of every signal from it (a gossip
/// message, an RPC response).
#[derive(Debug, Clone)]
pub struct PhiAccrual {
    intervals: VecDeque<f64>,
    last: Option<Instant>,
    sum: f64,
    sum_squares: f64,
}

impl Default for PhiAccrual {
    fn default() -> Self {
        Self::new()
    }
}

impl PhiAccrual {
    /// A detector that has heard nothing yet.
    pub fn new() -> Self {
        Self { intervals: VecDeque::with_capacity(WINDOW), last: None, sum: 0.0, sum_squares: 0.0 }
    }

    /// A signal arrived from the peer at `now`.
    pub fn heartbeat(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let interval = now.saturating_duration_since(last).as_secs_f64();
            if self.intervals.len() == WINDOW
                && let Some(old) = self.intervals.pop_front()
            {
                self.sum -= old;
                self.sum_squares -= old * old;
            }
            self.intervals.push_back(interval);
            self.sum += interval;
            self.sum_squares += interval * interval;
        }
        self.last = Some(now);
    }

    /// When the peer was last heard from.
    pub fn last_heard(&self) -> Option<Instant> {
        self.last
    }

    /// φ at `now`; 0 until two signals have arrived.
    pub fn phi(&self, now: Instant) -> f64 {
        let (Some(last), n) = (self.last, self.intervals.len()) else { return 0.0 };
        if n == 0 {
            return 0.0;
        }
        let mean = self.sum / n as f64 + ACCEPTABLE_PAUSE.as_secs_f64();
        let variance = (self.sum_squares / n as f64 - (self.sum / n as f64).powi(2)).max(0.0);
        let std_dev = variance.sqrt().max(MIN_STD_DEV.as_secs_f64());
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let y = (elapsed - mean) / std_dev;
        let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
        // P(silence this long) for a live peer.
        let p = if elapsed > mean { e / (1.0 + e) } else { 1.0 - 1.0 / (1.0 + e) };
        -p.max(f64::MIN_POSITIVE).log10()
    }

    /// Whether φ is at or above `threshold` (8 by default in [`ClusterConfig`](super::ClusterConfig)).
    pub fn is_suspect(&self, now: Instant, threshold: f64) -> bool {
        self.phi(now) >= threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regular(every: Duration, beats: u32) -> (PhiAccrual, Instant) {
        let mut detector = PhiAccrual::new();
        let start = Instant::now();
        for i in 0..beats {
            detector.heartbeat(start + every * i);
        }
        (detector, start + every * (beats - 1))
    }

    #[test]
    fn phi_stays_low_while_heartbeats_arrive_on_time() {
        let (detector, last) = regular(Duration::from_secs(1), 20);
        assert!(detector.phi(last + Duration::from_millis(900)) < 1.0, "on time is not suspicious");
    }

    #[test]
    fn phi_grows_with_silence_and_crosses_8_after_a_few_missed_beats() {
        let (detector, last) = regular(Duration::from_secs(1), 20);
        let phis: Vec<f64> = [1, 2, 3, 4].iter().map(|&s| detector.phi(last + Duration::from_secs(s))).collect();
        assert!(phis.windows(2).all(|w| w[1] > w[0]), "φ must grow with silence: {phis:?}");
        assert!(detector.is_suspect(last + Duration::from_secs(4), 8.0), "4 s of silence from a 1 s peer: {phis:?}");
        assert!(!detector.is_suspect(last + Duration::from_secs(1), 8.0));
    }

    #[test]
    fn a_peer_never_heard_twice_is_not_suspected() {
        let mut detector = PhiAccrual::new();
        let now = Instant::now();
        assert_eq!(detector.phi(now), 0.0);
        detector.heartbeat(now);
        assert_eq!(detector.phi(now + Duration::from_secs(60)), 0.0, "no interval to compare with yet");
    }

    #[test]
    fn a_jittery_peer_gets_more_slack_than_a_regular_one() {
        let (regular_peer, last) = regular(Duration::from_secs(1), 50);
        let mut jittery = PhiAccrual::new();
        let start = Instant::now();
        let mut t = start;
        for i in 0..50 {
            t += Duration::from_millis(if i % 2 == 0 { 200 } else { 1800 });
            jittery.heartbeat(t);
        }
        let silence = Duration::from_millis(2500);
        assert!(jittery.phi(t + silence) < regular_peer.phi(last + silence), "variance widens the tolerance");
    }
}
