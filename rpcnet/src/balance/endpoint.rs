//! `Endpoint`: one server a balancer can pick, with its identity, tags and live load
//! (calls in flight, a peak-sensitive latency estimate, successes and failures), and the
//! `InFlight` guard that counts a call from pick to response, error or cancellation.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Tag key whose value weighs an endpoint for the weighted strategies: a whole number,
/// `0` meaning "send no traffic" (see [`Endpoint::weight`]).
pub const CAPACITY_TAG: &str = "capacity";
/// Tag key the locality wrapper compares with the caller's zone.
pub const ZONE_TAG: &str = "zone";

/// Weight of an endpoint without a valid `capacity` tag.
const DEFAULT_WEIGHT: u32 = 1;

/// A failed call counts in the latency estimate as at least this many times the estimate
/// it found, so that a server failing fast (refusing calls, say) looks slow, not fast.
const FAILURE_PENALTY_FACTOR: f64 = 2.0;
/// The least a failed call counts as, for an endpoint without an estimate yet.
const FAILURE_PENALTY_FLOOR: Duration = Duration::from_millis(1);
/// The most a failed call's penalty raises the estimate to (a slower failure still counts
/// as its own latency): a failing endpoint's cost stops doubling there and decays back over
/// a few [`LATENCY_DECAY`] periods once it answers again.
const FAILURE_PENALTY_CAP: Duration = Duration::from_secs(10);

/// How quickly the latency estimate forgets (the decay time of the EWMA): 10 s, as
/// Finagle's and tower's peak EWMA default to.
pub(crate) const LATENCY_DECAY: Duration = Duration::from_secs(10);

/// [`LATENCY_DECAY`] in nanoseconds, the unit estimates are kept in.
const LATENCY_DECAY_NS: f64 = LATENCY_DECAY.as_nanos() as f64;

/// The instant every time kept in an atomic counts from: the endpoints' latency stamps, a
/// channel's ejections and retry budget, a registry's ping records. Times that atomics
/// hold must be integers; one epoch for all of them means a call converts a clock reading
/// once, and no two of them need converting into each other.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds from the shared epoch to `now`, 0 for instants before it. Integer
/// arithmetic only: a `u128` to `f64` conversion costs as much as the rest of a pick.
pub(crate) fn nanos_since_epoch(now: Instant) -> u64 {
    let since = now.saturating_duration_since(*EPOCH);
    since.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(since.subsec_nanos()))
}

/// The factor an estimate keeps after `elapsed_ns` without an update: e^(-elapsed/τ).
pub(crate) fn decay(elapsed_ns: u64) -> f64 {
    (-(elapsed_ns as f64) / LATENCY_DECAY_NS).exp()
}

/// One server a balancer can pick. Cheap to clone: clones share the load counters.
///
/// ```
/// use rpcnet::balance::Endpoint;
/// let endpoint = Endpoint::new("worker-1", "127.0.0.1:7001".parse().unwrap())
///     .with_tag("zone", "eu-1")
///     .with_tag("capacity", "4");
/// assert_eq!(endpoint.weight(), 4);
/// assert_eq!(endpoint.in_flight(), 0);
/// ```
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    label: String,
    addr: SocketAddr,
    tags: BTreeMap<String, String>,
    weight: u32,
    /// Shared with the endpoint's [`updated`](Endpoint::updated) versions.
    load: Arc<Load>,
}

/// Live counters, updated without locks. The latency estimate is updated by a
/// compare-and-swap loop, so that concurrent samples never overwrite one another (a peak
/// stored by one call is never lost to a faster sample blended by another); its time stamp
/// only moves forward.
struct Load {
    in_flight: AtomicU32,
    successes: AtomicU64,
    failures: AtomicU64,
    /// Latency estimate in nanoseconds (f64 bits); 0 until the first observation.
    latency_ns: AtomicU64,
    /// When the estimate was last updated, in nanoseconds since the shared epoch.
    updated_ns: AtomicU64,
}

impl Endpoint {
    /// An endpoint known by `id` (unique within a balancer's set) at `addr`; its label is
    /// its id until [`with_label`](Self::with_label).
    pub fn new(id: impl Into<String>, addr: SocketAddr) -> Self {
        let id = id.into();
        Self::build(id.clone(), id, addr, BTreeMap::new())
    }

    fn build(id: String, label: String, addr: SocketAddr, tags: BTreeMap<String, String>) -> Self {
        // Instants before the epoch count as the epoch itself: start it no later than the
        // first endpoint, so that every call to an endpoint is after it.
        LazyLock::force(&EPOCH);
        let load = Load {
            in_flight: AtomicU32::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latency_ns: AtomicU64::new(0f64.to_bits()),
            updated_ns: AtomicU64::new(0),
        };
        Self::with_load(id, label, addr, tags, Arc::new(load))
    }

    fn with_load(id: String, label: String, addr: SocketAddr, tags: BTreeMap<String, String>, load: Arc<Load>) -> Self {
        let weight = tags.get(CAPACITY_TAG).and_then(|v| v.parse::<u32>().ok());
        Self { inner: Arc::new(Inner { id, label, addr, tags, weight: weight.unwrap_or(DEFAULT_WEIGHT), load }) }
    }

    /// The same endpoint with a new label and tags, sharing its live counters (calls in
    /// flight, latency estimate, successes and failures): a server whose metadata changed
    /// is still the same server. The two handles are not [`same`](Self::same).
    pub fn updated(&self, label: impl Into<String>, tags: BTreeMap<String, String>) -> Self {
        Self::with_load(self.inner.id.clone(), label.into(), self.inner.addr, tags, self.inner.load.clone())
    }

    /// The same endpoint with a human-readable label. The copy has fresh counters.
    pub fn with_label(self, label: impl Into<String>) -> Self {
        Self::build(self.inner.id.clone(), label.into(), self.inner.addr, self.inner.tags.clone())
    }

    /// The same endpoint with one more tag. The copy has fresh counters.
    pub fn with_tag(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let mut tags = self.inner.tags.clone();
        tags.insert(key.into(), value.into());
        Self::build(self.inner.id.clone(), self.inner.label.clone(), self.inner.addr, tags)
    }

    /// The same endpoint with these tags. The copy has fresh counters.
    pub fn with_tags(self, tags: BTreeMap<String, String>) -> Self {
        Self::build(self.inner.id.clone(), self.inner.label.clone(), self.inner.addr, tags)
    }

    /// The unique id within a set of endpoints.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// A human-readable name.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Metadata such as `role`, `zone`, `capacity`.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.inner.tags
    }

    /// One tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.inner.tags.get(key).map(String::as_str)
    }

    /// Relative capacity from the `capacity` tag, a whole number; 1 without the tag or if
    /// it is not a number. The weighted strategies send an endpoint of weight 0 no calls
    /// (unless every endpoint has weight 0: then they choose among all alike).
    pub fn weight(&self) -> u32 {
        self.inner.weight
    }

    /// Calls picked for this endpoint and not finished yet.
    pub fn in_flight(&self) -> u32 {
        self.inner.load.in_flight.load(Ordering::Relaxed)
    }

    /// Calls that finished successfully.
    pub fn successes(&self) -> u64 {
        self.inner.load.successes.load(Ordering::Relaxed)
    }

    /// Calls that failed. A typed service error is the server's answer, so a balanced
    /// channel counts it as a success here.
    pub fn failures(&self) -> u64 {
        self.inner.load.failures.load(Ordering::Relaxed)
    }

    /// The latency estimate as of `now`: a peak-sensitive EWMA (it jumps up to a slower
    /// call at once and decays towards faster ones), `None` before the first observation.
    pub fn latency_estimate(&self, now: Instant) -> Option<Duration> {
        let ns = self.decayed_latency_ns(now);
        (ns > 0.0).then(|| Duration::from_nanos(ns as u64))
    }

    /// The estimate in nanoseconds, decayed for the time since its last update.
    pub(crate) fn decayed_latency_ns(&self, now: Instant) -> f64 {
        self.decayed_latency_at(nanos_since_epoch(now))
    }

    /// The estimate decayed to `now_ns` (from [`nanos_since_epoch`]).
    pub(crate) fn decayed_latency_at(&self, now_ns: u64) -> f64 {
        let (estimate, age_ns) = self.latency_sample(now_ns);
        if estimate == 0.0 || age_ns == 0 {
            return estimate;
        }
        estimate * decay(age_ns)
    }

    /// The estimate as last stored (0.0 before the first observation) and how many
    /// nanoseconds before `now_ns` it was stored (0 if not before).
    pub(crate) fn latency_sample(&self, now_ns: u64) -> (f64, u64) {
        let load = &self.inner.load;
        let estimate = f64::from_bits(load.latency_ns.load(Ordering::Relaxed));
        let age_ns = now_ns.saturating_sub(load.updated_ns.load(Ordering::Relaxed));
        (estimate, age_ns)
    }

    /// Records a finished call: its latency feeds the estimate, its result the counters.
    ///
    /// A failed call (`success == false`) counts in the estimate as the larger of its own
    /// latency and twice the estimate it found (at least 1 ms, and the doubling stops at
    /// 10 s): so a server that fails fast, answering `Overloaded` in microseconds say, looks
    /// slower with every failure instead of faster, and strategies that follow the estimate
    /// (PeakEwma) turn away from it; once it answers again, its estimate decays back.
    pub fn record(&self, latency: Duration, success: bool, now: Instant) {
        self.record_at(latency, success, nanos_since_epoch(now));
    }

    /// [`record`](Self::record) with `now` already in nanoseconds since the shared epoch
    /// ([`nanos_since_epoch`]), for a caller that has it anyway.
    pub(crate) fn record_at(&self, latency: Duration, success: bool, now_ns: u64) {
        let load = &self.inner.load;
        if success {
            load.successes.fetch_add(1, Ordering::Relaxed);
        } else {
            load.failures.fetch_add(1, Ordering::Relaxed);
        }
        // Not `as_nanos() as f64`: converting a u128 costs more than the rest of this.
        let observed = latency.as_secs() as f64 * 1e9 + f64::from(latency.subsec_nanos());
        // The time stamp moves first, so that a call that reads the estimate stored below
        // also reads a time stamp at least this recent, and does not decay it as if it were
        // older. The stamp it replaces dates the estimate this sample is blended into.
        let previous_ns = load.updated_ns.fetch_max(now_ns, Ordering::AcqRel);
        let mut age_ns = now_ns.saturating_sub(previous_ns);
        let mut stored_bits = load.latency_ns.load(Ordering::Acquire);
        loop {
            let estimate = f64::from_bits(stored_bits);
            let decay = if age_ns == 0 { 1.0 } else { decay(age_ns) };
            let rtt = if success { observed } else { failure_sample(observed, estimate * decay) };
            // Peak-sensitive, as Finagle and tower define it: a call slower than the stored
            // estimate replaces it at once; a faster one is blended in with the weight that
            // the time since the last sample gives it (the estimate decays once, not twice).
            let next = if rtt > estimate || estimate == 0.0 { rtt } else { estimate * decay + rtt * (1.0 - decay) };
            match load.latency_ns.compare_exchange(stored_bits, next.to_bits(), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                // Another call stored a sample meanwhile: blend into that one, which is as
                // recent as this, so that no time decays it (a peak it stored stays).
                Err(actual) => {
                    stored_bits = actual;
                    age_ns = 0;
                }
            }
        }
    }

    /// Starts counting a call in flight; the guard stops counting when dropped, whether the
    /// call succeeded, failed or was cancelled.
    pub fn start_call(&self) -> InFlight {
        self.inner.load.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight { endpoint: self.clone() }
    }

    /// Starts counting a call unless `cap` calls are already in flight.
    pub fn try_start_call(&self, cap: u32) -> Option<InFlight> {
        let counter = &self.inner.load.in_flight;
        counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < cap).then_some(n + 1)).ok()?;
        Some(InFlight { endpoint: self.clone() })
    }

    /// Whether two handles are the same endpoint: same identity, label, tags and counters.
    pub fn same(&self, other: &Endpoint) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// What a failed call of `observed` nanoseconds counts as, for an endpoint whose estimate
/// is `estimate` nanoseconds (0 if none): see [`Endpoint::record`].
fn failure_sample(observed: f64, estimate: f64) -> f64 {
    let floor = FAILURE_PENALTY_FLOOR.as_nanos() as f64;
    let cap = FAILURE_PENALTY_CAP.as_nanos() as f64;
    let penalty = (estimate * FAILURE_PENALTY_FACTOR).clamp(floor, cap);
    observed.max(penalty)
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.inner.id)
            .field("addr", &self.inner.addr)
            .field("tags", &self.inner.tags)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

/// Counts one call in flight on an endpoint until dropped.
#[derive(Debug)]
pub struct InFlight {
    endpoint: Endpoint,
}

impl InFlight {
    /// The endpoint the call runs on.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.inner.load.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new("a", "127.0.0.1:1".parse().unwrap())
    }

    #[test]
    fn the_guard_counts_a_call_until_dropped_even_when_cancelled() {
        let e = endpoint();
        let first = e.start_call();
        let second = e.clone().start_call();
        assert_eq!(e.in_flight(), 2, "clones share the counter");
        drop(first);
        assert_eq!(e.in_flight(), 1, "a finished (or dropped) call stops counting");
        drop(second);
        assert_eq!(e.in_flight(), 0);
    }

    #[test]
    fn try_start_call_respects_the_cap() {
        let e = endpoint();
        let a = e.try_start_call(2).expect("under the cap");
        let _b = e.try_start_call(2).expect("at the cap after this one");
        assert!(e.try_start_call(2).is_none(), "a third call must be refused at cap 2");
        drop(a);
        assert!(e.try_start_call(2).is_some(), "a slot frees when a call ends");
    }

    #[test]
    fn the_latency_estimate_jumps_to_peaks_and_decays_towards_faster_calls() {
        let e = endpoint();
        let t0 = Instant::now();
        assert_eq!(e.latency_estimate(t0), None, "no estimate before the first call");
        e.record(Duration::from_millis(10), true, t0);
        assert_eq!(e.latency_estimate(t0), Some(Duration::from_millis(10)));
        e.record(Duration::from_millis(100), true, t0);
        assert_eq!(e.latency_estimate(t0), Some(Duration::from_millis(100)), "a peak replaces the estimate at once");
        // One decay period later the estimate has fallen to about 1/e of the peak.
        let later = t0 + LATENCY_DECAY;
        let decayed = e.latency_estimate(later).unwrap().as_secs_f64();
        assert!((decayed - 0.1 / std::f64::consts::E).abs() < 1e-3, "decayed to {decayed}");
        e.record(Duration::from_millis(1), true, later);
        // A fast call one decay period later blends in with weight 1 - 1/e.
        let after = e.latency_estimate(later).unwrap().as_secs_f64();
        let expected = 0.1 / std::f64::consts::E + 0.001 * (1.0 - 1.0 / std::f64::consts::E);
        assert!((after - expected).abs() < 1e-5, "a fast call pulls it down to {after}, expected {expected}");
        assert_eq!((e.successes(), e.failures()), (3, 0));
        e.record(Duration::from_millis(1), false, later);
        assert_eq!(e.failures(), 1);
    }

    #[test]
    fn fast_failures_raise_the_estimate_instead_of_lowering_it() {
        let e = endpoint();
        let now = Instant::now();
        e.record(Duration::from_millis(4), true, now);
        let later = now + Duration::from_millis(500);
        let estimate_ns = |e: &Endpoint| e.decayed_latency_ns(later);
        let before = estimate_ns(&e);
        e.record(Duration::from_micros(50), false, later);
        assert!((estimate_ns(&e) - 2.0 * before).abs() < 1.0, "a 50 µs failure counts as twice the estimate it found");
        e.record(Duration::from_micros(50), false, later);
        assert!((estimate_ns(&e) - 4.0 * before).abs() < 1.0, "and doubles it again");
        let slow_failure = Duration::from_secs(1);
        e.record(slow_failure, false, later);
        assert_eq!(e.latency_estimate(later), Some(slow_failure), "a slower failure counts as itself");
        for _ in 0..20 {
            e.record(Duration::from_micros(50), false, later);
        }
        assert_eq!(e.latency_estimate(later), Some(FAILURE_PENALTY_CAP), "the doubling stops at the cap");

        let fresh = endpoint();
        fresh.record(Duration::from_micros(50), false, now);
        assert_eq!(fresh.latency_estimate(now), Some(FAILURE_PENALTY_FLOOR), "a first failure counts as 1 ms");
    }

    #[test]
    fn concurrent_samples_never_lose_a_peak() {
        // At one instant a faster sample cannot lower the estimate (no time has passed for
        // it to decay), so after any interleaving the estimate must be the slowest sample.
        let e = endpoint();
        let now = Instant::now();
        let peak = Duration::from_millis(100);
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let e = e.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let sample = if t == 0 && i % 1_000 == 999 { peak } else { Duration::from_micros(1 + i % 50) };
                        e.record(sample, true, now);
                        if t == 0 && i % 1_000 == 999 {
                            let seen = e.latency_estimate(now).unwrap();
                            assert!(seen >= peak, "the peak just stored was overwritten: {seen:?}");
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(e.latency_estimate(now), Some(peak));
        assert_eq!(e.successes(), 80_000);
    }

    #[test]
    fn an_updated_endpoint_keeps_its_counters() {
        let e = endpoint().with_tag("zone", "eu-1");
        let call = e.start_call();
        e.record(Duration::from_millis(5), true, Instant::now());
        let moved = e.updated("a, now in eu-2", BTreeMap::from([("zone".to_owned(), "eu-2".to_owned())]));
        assert_eq!((moved.id(), moved.label(), moved.tag("zone")), ("a", "a, now in eu-2", Some("eu-2")));
        assert_eq!((moved.in_flight(), moved.successes()), (1, 1), "the counters go along");
        drop(call);
        assert_eq!(moved.in_flight(), 0, "and stay shared");
        assert!(!moved.same(&e), "a handle with other tags is not the same handle");
        let capacity = e.updated("a", BTreeMap::from([("capacity".to_owned(), "8".to_owned())]));
        assert_eq!(capacity.weight(), 8, "the weight follows the new tags");
    }

    #[test]
    fn weight_comes_from_a_valid_capacity_tag() {
        assert_eq!(endpoint().weight(), 1);
        assert_eq!(endpoint().with_tag("capacity", "100").weight(), 100);
        assert_eq!(endpoint().with_tag("capacity", "0").weight(), 0, "zero means no traffic");
        assert_eq!(endpoint().with_tag("capacity", "lots").weight(), 1, "neither is text");
    }
}
