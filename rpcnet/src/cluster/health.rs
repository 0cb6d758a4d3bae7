//! Health as a soft signal: the phi-accrual failure detector (Hayashibara et al., 2004) and
//! `HealthCheckConfig`, which sets how often clients ping the workers they are connected to
//! and how the detector reads the answers. Membership (alive, suspect, down) stays SWIM's.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::RpcError;

/// How workers' health is checked: balanced clients that follow a
/// [`WorkerRegistry`](super::WorkerRegistry) ping each worker they are connected to every
/// `interval` (the built-in [`PING_METHOD`](crate::wire::PING_METHOD), answered by every
/// server outside its limit of calls in flight), and a [`PhiAccrual`] detector per worker
/// reads the answers. A worker whose φ reaches `phi_threshold` is *suspect*: it gets about
/// a tenth of a healthy worker's share of calls, keeps its calls in flight, and keeps
/// being pinged, so it is healthy again as soon as it answers. Declaring it down is left to
/// SWIM.
///
/// Pings, not RPC answers, feed the detector: they come at the same rhythm whether the
/// worker is busy or idle, so a worker whose load stops does not look late. Gossip does
/// not feed it either: a node hears from a given member at irregular moments, rarer as the
/// cluster grows, which makes φ spike on live members.
///
/// φ = −log10(P(a live worker stays silent this long)). φ = 1 means a 10% chance that a
/// live worker would be this late, φ = 8 a 1-in-10⁸ chance. (The rpcnet 0.1 book reads φ
/// as a confidence that the node failed, "φ = 8: 97.7%"; that table is wrong.)
///
/// ```
/// use std::time::Duration;
/// use rpcnet::cluster::{ClusterConfig, HealthCheckConfig};
/// let health = HealthCheckConfig::default()
///     .with_interval(Duration::from_millis(500))
///     .with_phi_threshold(10.0)
///     .with_history_size(50)
///     .with_min_std_deviation(Duration::from_millis(50));
/// let config = ClusterConfig::dev().with_health_check(health);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    interval: Duration,
    phi_threshold: f64,
    history_size: usize,
    min_std_deviation: Duration,
    acceptable_pause: Duration,
}

impl Default for HealthCheckConfig {
    /// A ping a second, φ threshold 8, 100 intervals remembered, a standard deviation of at
    /// least 100 ms, and 500 ms of silence tolerated on top of the usual interval: a worker
    /// that stops answering is suspect after about 2 s.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            phi_threshold: 8.0,
            history_size: 100,
            min_std_deviation: Duration::from_millis(100),
            acceptable_pause: Duration::from_millis(500),
        }
    }
}

impl HealthCheckConfig {
    /// How often each connected worker is pinged. Default 1 s.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// φ at or above which a worker is suspect. Default 8 (a 1-in-10⁸ chance that a live
    /// worker would be this late).
    pub fn with_phi_threshold(mut self, phi: f64) -> Self {
        self.phi_threshold = phi;
        self
    }

    /// Intervals between answers remembered per worker (at least 2). Default 100.
    pub fn with_history_size(mut self, intervals: usize) -> Self {
        self.history_size = intervals;
        self
    }

    /// A floor on the standard deviation of the intervals, so that a very regular worker is
    /// not suspect the moment it is a little late. Default 100 ms.
    pub fn with_min_std_deviation(mut self, min: Duration) -> Self {
        self.min_std_deviation = min;
        self
    }

    /// Silence tolerated on top of the usual interval (a pause of the worker's process, a
    /// busy event loop). Default 500 ms.
    pub fn with_acceptable_pause(mut self, pause: Duration) -> Self {
        self.acceptable_pause = pause;
        self
    }

    /// How often each connected worker is pinged.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// φ at or above which a worker is suspect.
    pub fn phi_threshold(&self) -> f64 {
        self.phi_threshold
    }

    pub(crate) fn check(&self) -> Result<(), RpcError> {
        let fix = |what: &str| Err(RpcError::Config(format!("{what}: fix it in HealthCheckConfig")));
        if self.interval.is_zero() {
            return fix("the health check interval must be above zero (with_interval)");
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.0) {
            return fix("the phi threshold must be a positive number (with_phi_threshold)");
        }
        if self.history_size < 2 {
            return fix("the history must hold at least 2 intervals (with_history_size)");
        }
        if self.min_std_deviation.is_zero() {
            return fix("the minimum standard deviation must be above zero (with_min_std_deviation)");
        }
        Ok(())
    }
}

/// The phi-accrual detector of one peer: how surprising it is not to have heard from it
/// for this long, given how regularly it was heard from before.
///
/// φ = −log10(P(a live peer stays silent this long)), with the intervals between signals
/// modelled as a normal distribution (with the logistic approximation of its tail that Akka
/// uses). φ = 1 means a 10% chance that a live peer would be this late, φ = 2 a 1% chance,
/// φ = 8 a 1-in-10⁸ chance: it measures how unlikely a false alarm is, not a probability
/// that the peer failed. (The rpcnet 0.1 book's table, "φ = 5: 50%, φ = 8: 97.7%", is
/// wrong.) Time is passed in, so it needs no runtime:
///
/// ```
/// use std::time::{Duration, Instant};
/// use rpcnet::cluster::PhiAccrual;
/// let mut detector = PhiAccrual::new();
/// let start = Instant::now();
/// for second in 0..10 {
///     detector.heartbeat(start + Duration::from_secs(second));
/// }
/// let last = start + Duration::from_secs(9);
/// assert!(detector.phi(last + Duration::from_millis(900)) < 1.0, "on time");
/// assert!(detector.is_suspect(last + Duration::from_secs(4), 8.0), "4 s late");
/// ```
#[derive(Debug, Clone)]
pub struct PhiAccrual {
    intervals: VecDeque<f64>,
    last: Option<Instant>,
    sum: f64,
    sum_squares: f64,
    history_size: usize,
    min_std_deviation: f64,
    acceptable_pause: f64,
}

impl Default for PhiAccrual {
    fn default() -> Self {
        Self::new()
    }
}

impl PhiAccrual {
    /// A detector with the [`HealthCheckConfig`] defaults that has heard nothing yet.
    pub fn new() -> Self {
        Self::with_config(&HealthCheckConfig::default())
    }

    /// A detector reading signals as `config` says (history size, minimum standard
    /// deviation, acceptable pause).
    pub fn with_config(config: &HealthCheckConfig) -> Self {
        let history_size = config.history_size.max(2);
        Self {
            intervals: VecDeque::with_capacity(history_size.min(1024)),
            last: None,
            sum: 0.0,
            sum_squares: 0.0,
            history_size,
            min_std_deviation: config.min_std_deviation.as_secs_f64(),
            acceptable_pause: config.acceptable_pause.as_secs_f64(),
        }
    }

    /// A signal arrived from the peer at `now`.
    pub fn heartbeat(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let interval = now.saturating_duration_since(last).as_secs_f64();
            if self.intervals.len() == self.history_size
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
        let mean = self.sum / n as f64 + self.acceptable_pause;
        let variance = (self.sum_squares / n as f64 - (self.sum / n as f64).powi(2)).max(0.0);
        let std_dev = variance.sqrt().max(self.min_std_deviation);
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let y = (elapsed - mean) / std_dev;
        let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
        // P(silence this long) for a live peer.
        let p = if elapsed > mean { e / (1.0 + e) } else { 1.0 - 1.0 / (1.0 + e) };
        -p.max(f64::MIN_POSITIVE).log10()
    }

    /// Whether φ is at or above `threshold` (8 by default in [`HealthCheckConfig`]).
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

    #[test]
    fn the_configuration_sets_the_tolerance() {
        let strict = HealthCheckConfig::default()
            .with_acceptable_pause(Duration::from_millis(50))
            .with_min_std_deviation(Duration::from_millis(20))
            .with_history_size(10);
        let (mut lenient, mut tight) = (PhiAccrual::new(), PhiAccrual::with_config(&strict));
        let start = Instant::now();
        for i in 0..30 {
            lenient.heartbeat(start + Duration::from_secs(i));
            tight.heartbeat(start + Duration::from_secs(i));
        }
        let late = start + Duration::from_millis(29_000 + 1_300);
        assert!(tight.is_suspect(late, 8.0), "300 ms late is far out for a strict detector: {}", tight.phi(late));
        assert!(!lenient.is_suspect(late, 8.0), "and within the defaults' slack: {}", lenient.phi(late));
        assert!(HealthCheckConfig::default().with_history_size(1).check().is_err());
        assert!(HealthCheckConfig::default().with_phi_threshold(f64::NAN).check().is_err());
        assert!(HealthCheckConfig::default().with_interval(Duration::ZERO).check().is_err());
        assert!(HealthCheckConfig::default().check().is_ok());
    }
}
