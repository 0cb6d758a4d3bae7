//! Balancing: which endpoint serves a call. The `Balancer` trait, `Endpoint` with its live
//! load, and every strategy, one per file. Pure: no tokio, no quinn, time passed in as
//! `now`, randomness seeded; so each strategy is unit-tested and benchmarked alone.
//!
//! | strategy | picks | choose it when |
//! |---|---|---|
//! | [`RoundRobin`] | each endpoint in turn | endpoints and calls are alike |
//! | [`Random`] | uniformly at random | many clients, no shared state wanted |
//! | [`LeastConnections`] | fewest calls in flight, ties at random | call durations vary |
//! | [`PowerOfTwoChoices`] | the less loaded of two random endpoints | large sets: near least-loaded at O(1) |
//! | [`PeakEwma`] | two random, lower latency × (in flight + 1) | endpoints differ in speed |
//! | [`WeightedRandom`] | at random, in proportion to `capacity` | endpoints differ in size |
//! | [`WeightedRoundRobin`] | in turn, in proportion to `capacity` (smooth) | same, deterministic |
//! | [`ConsistentHash`] | by the call's affinity key on a ring | caches: same key, same endpoint |
//! | [`Locality`] | via an inner strategy, own `zone` first | several zones |

mod consistent_hash;
mod endpoint;
mod filter;
mod least_connections;
mod locality;
mod p2c;
mod peak_ewma;
mod per_set;
mod random;
mod rng;
mod round_robin;
mod suspects;
mod weighted;

pub use consistent_hash::{ConsistentHash, affinity_hash};
pub(crate) use endpoint::nanos_since_epoch;
pub use endpoint::{CAPACITY_TAG, Endpoint, InFlight, ZONE_TAG};
pub use filter::{FilterError, TagFilter};
pub use least_connections::LeastConnections;
pub use locality::Locality;
pub use p2c::PowerOfTwoChoices;
pub use peak_ewma::PeakEwma;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use suspects::to_suspects;
pub use weighted::{WeightedRandom, WeightedRoundRobin};

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a balancer knows about the call it places.
#[derive(Debug, Clone, Copy)]
pub struct CallInfo<'a> {
    /// The method's wire name.
    pub method: &'a str,
    /// The call's affinity key (hashed), for [`ConsistentHash`].
    pub key: Option<u64>,
    /// The time the call starts.
    pub now: Instant,
    /// Changes whenever the set of endpoints passed to `pick` changes, so that a balancer
    /// may cache what it derives from the set (a hash ring) until it does.
    pub generation: u64,
}

impl<'a> CallInfo<'a> {
    /// Information for a call of `method` starting now, with no key, generation 0.
    pub fn new(method: &'a str) -> Self {
        Self { method, key: None, now: Instant::now(), generation: 0 }
    }
}

/// How a call went, for [`Balancer::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// From pick to response.
    pub latency: Duration,
    /// Whether the call succeeded.
    pub success: bool,
    /// When it finished.
    pub now: Instant,
}

/// Chooses the endpoint of each call. Object-safe: channels hold an `Arc<dyn Balancer>`.
///
/// ```
/// use rpcnet::balance::{Balancer, CallInfo, Endpoint};
/// /// Always the first endpoint: a primary with standbys.
/// struct Primary;
/// impl Balancer for Primary {
///     fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
///         (!endpoints.is_empty()).then_some(0)
///     }
/// }
/// ```
pub trait Balancer: Send + Sync + 'static {
    /// Chooses one of `endpoints` (already filtered by tags and health) for this call, or
    /// `None` if none will do. `endpoints` is never empty when a channel calls this.
    fn pick(&self, endpoints: &[Endpoint], call: &CallInfo<'_>) -> Option<usize>;

    /// Learns from a finished call. The endpoint's own counters are updated by the channel;
    /// this is for strategies that keep state of their own. Default: nothing.
    fn observe(&self, endpoint: &Endpoint, outcome: &Outcome) {
        let _ = (endpoint, outcome);
    }
}

/// The built-in strategies, by name. See the module documentation for when to choose which.
///
/// A strategy is a description: [`balancer`](Self::balancer) makes a balancer of it, with
/// state of its own, for each client or registry that uses it. It is `Copy`, so one value can
/// be handed to a registry and still printed, as in a loop over strategies:
///
/// ```
/// use rpcnet::LoadBalancingStrategy;
/// for strategy in [LoadBalancingStrategy::RoundRobin, LoadBalancingStrategy::LeastConnections] {
///     let _balancer = strategy.balancer(); // as WorkerRegistry::new(cluster.clone(), strategy) does
///     assert_eq!(format!("{strategy}"), strategy.name()); // and `{strategy:?}` prints `RoundRobin`
/// }
/// ```
///
/// Preferring the caller's zone is not a strategy but a wrapper around one:
/// [`ClientBuilder::prefer_zone`](crate::ClientBuilder::prefer_zone), or [`Locality`] around
/// any balancer.
///
/// # The `capacity` tag
///
/// [`WeightedRandom`](Self::WeightedRandom) and
/// [`WeightedRoundRobin`](Self::WeightedRoundRobin) weigh each endpoint by its `capacity`
/// tag ([`CAPACITY_TAG`]), a whole number such as `capacity=4`: an endpoint of capacity 4
/// gets four times the calls of one of capacity 1. Without the tag, or with a value that is
/// not a whole number, an endpoint weighs 1. `capacity=0` means "send it no traffic" (a
/// server being drained, say), unless every endpoint has capacity 0, in which case they are
/// all chosen alike (uniformly at random, or in turn) rather than none. The other strategies
/// ignore the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoadBalancingStrategy {
    /// Each endpoint in turn.
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// Fewest calls in flight; ties are broken at random, evenly.
    LeastConnections,
    /// The less loaded of two endpoints drawn at random.
    PowerOfTwoChoices,
    /// Two drawn at random; the lower latency estimate × (calls in flight + 1) wins.
    PeakEwma,
    /// At random, in proportion to the `capacity` tag (see [the `capacity`
    /// tag](Self#the-capacity-tag)).
    WeightedRandom,
    /// In turn, in proportion to the `capacity` tag, interleaved smoothly (see [the
    /// `capacity` tag](Self#the-capacity-tag)).
    WeightedRoundRobin,
    /// By the call's affinity key, on a ring of virtual nodes.
    ConsistentHash,
}

impl LoadBalancingStrategy {
    /// Every name [`FromStr`] accepts, as `rpcnet-build` and configuration files spell them.
    pub const NAMES: &'static [&'static str] = &[
        "round_robin",
        "random",
        "least_connections",
        "power_of_two_choices",
        "peak_ewma",
        "weighted_random",
        "weighted_round_robin",
        "consistent_hash",
    ];

    /// A new balancer of this strategy.
    pub fn balancer(&self) -> Arc<dyn Balancer> {
        match self {
            Self::RoundRobin => Arc::new(RoundRobin::new()),
            Self::Random => Arc::new(Random::new()),
            Self::LeastConnections => Arc::new(LeastConnections::new()),
            Self::PowerOfTwoChoices => Arc::new(PowerOfTwoChoices::new()),
            Self::PeakEwma => Arc::new(PeakEwma::new()),
            Self::WeightedRandom => Arc::new(WeightedRandom::new()),
            Self::WeightedRoundRobin => Arc::new(WeightedRoundRobin::new()),
            Self::ConsistentHash => Arc::new(ConsistentHash::new()),
        }
    }

    /// The strategy's name (`"least_connections"`), as [`FromStr`] reads it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Random => "random",
            Self::LeastConnections => "least_connections",
            Self::PowerOfTwoChoices => "power_of_two_choices",
            Self::PeakEwma => "peak_ewma",
            Self::WeightedRandom => "weighted_random",
            Self::WeightedRoundRobin => "weighted_round_robin",
            Self::ConsistentHash => "consistent_hash",
        }
    }
}

impl fmt::Display for LoadBalancingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A strategy name that is not one of [`LoadBalancingStrategy::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown load balancing strategy `{0}`; valid names: {names}", names = LoadBalancingStrategy::NAMES.join(", "))]
pub struct UnknownStrategy(pub String);

impl FromStr for LoadBalancingStrategy {
    type Err = UnknownStrategy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "round_robin" => Self::RoundRobin,
            "random" => Self::Random,
            "least_connections" => Self::LeastConnections,
            "power_of_two_choices" => Self::PowerOfTwoChoices,
            "peak_ewma" => Self::PeakEwma,
            "weighted_random" => Self::WeightedRandom,
            "weighted_round_robin" => Self::WeightedRoundRobin,
            "consistent_hash" => Self::ConsistentHash,
            other => return Err(UnknownStrategy(other.to_owned())),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` endpoints `e0`, `e1`, ... on made-up loopback ports.
    pub(crate) fn endpoints(n: usize) -> Vec<Endpoint> {
        (0..n).map(|i| Endpoint::new(format!("e{i}"), format!("127.0.0.1:{}", 1000 + i).parse().unwrap())).collect()
    }

    pub(crate) fn call() -> CallInfo<'static> {
        CallInfo::new("Test.call")
    }

    /// Pearson's chi-square statistic against equal expected counts.
    pub(crate) fn chi_square(counts: &[u64]) -> f64 {
        let expected = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
        chi_square_expected(counts, &vec![expected; counts.len()])
    }

    /// Pearson's chi-square statistic against the given expected counts.
    pub(crate) fn chi_square_expected(counts: &[u64], expected: &[f64]) -> f64 {
        counts.iter().zip(expected).map(|(&n, &e)| (n as f64 - e).powi(2) / e).sum()
    }

    #[test]
    fn strategies_parse_from_their_names_and_unknown_names_list_the_valid_ones() {
        for name in LoadBalancingStrategy::NAMES {
            let strategy: LoadBalancingStrategy = name.parse().unwrap();
            assert_eq!(strategy.name(), *name);
            let _ = strategy.balancer();
        }
        let err = "fastest".parse::<LoadBalancingStrategy>().unwrap_err();
        assert!(err.to_string().contains("least_connections"), "{err}");
    }
}
