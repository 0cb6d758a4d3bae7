//! `ClientBuilder`: how a typed client is made for many endpoints, and how it balances.
//! Setters take any value; `connect` refuses one out of range, naming the setter, as
//! `RpcConfig::validate` does.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use super::Channel;
use super::balanced::{Balanced, Policy};
use super::connection::QuicConnector;
use super::retry::MAX_RETRY_RATIO;
use super::source::EndpointSource;
use crate::balance::{Balancer, Endpoint, FilterError, LoadBalancingStrategy, Locality, TagFilter};
use crate::config::RpcConfig;
use crate::error::RpcError;

/// A typed client made from a [`Channel`]: what `#[rpc_service]` generates as `XClient`.
pub trait TypedClient: Sized {
    /// The client whose calls go through `channel`.
    fn from_channel(channel: Channel) -> Self;
}

/// Builds a client whose calls are balanced over several endpoints:
///
/// ```no_run
/// # #[rpcnet::rpc_service] pub trait Calculator { async fn add(&self, a: i64, b: i64) -> i64; }
/// # async fn run(a: std::net::SocketAddr, b: std::net::SocketAddr) -> Result<(), rpcnet::RpcError> {
/// use rpcnet::{LoadBalancingStrategy, RpcConfig};
/// let client = CalculatorClient::builder()
///     .endpoints([a, b])
///     .config(RpcConfig::dev("127.0.0.1:0"))   // or .dev()
///     .strategy(LoadBalancingStrategy::LeastConnections)
///     .max_in_flight_per_endpoint(100)
///     .connect()
///     .await?;
/// let sum = client.add(2, 3).await?;
/// # Ok(()) }
/// ```
///
/// Every call picks one endpoint. An endpoint whose connection fails is left out for a
/// back-off that doubles with each failure (500 ms to 30 s); a call that never reached a
/// server goes to another endpoint, at most three attempts in all and within a retry budget
/// of 20% extra calls plus 10 retries a second
/// ([`retry_budget`](Self::retry_budget), [`min_retries_per_second`](Self::min_retries_per_second)).
///
/// Metrics go through the `metrics` facade: per endpoint, `rpcnet_client_calls_total`,
/// `rpcnet_client_errors_total` (failures of the endpoint; a service's own error is an
/// answer, not one), `rpcnet_client_ejections_total`, the gauge `rpcnet_client_in_flight`
/// and the histogram `rpcnet_client_latency_seconds`, labelled `endpoint` (the endpoint's
/// label) and `endpoint_id`; per client, `rpcnet_client_retries_total` and
/// `rpcnet_client_shed_total`. Install the recorder before building clients: a client takes
/// its metric handles when it first sees an endpoint, from the recorder installed then.
pub struct ClientBuilder<C> {
    endpoints: Vec<Endpoint>,
    source: Option<Arc<dyn EndpointSource>>,
    filter: Result<Option<TagFilter>, FilterError>,
    config: Option<RpcConfig>,
    strategy: LoadBalancingStrategy,
    balancer: Option<Arc<dyn Balancer>>,
    zone: Option<String>,
    policy: Policy,
    client: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for ClientBuilder<C> {
    // `source` is a trait object without Debug; its presence is shown instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints.len())
            .field("registry", &self.source.is_some())
            .field("strategy", &self.strategy)
            .field("zone", &self.zone)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<C> Default for ClientBuilder<C> {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            source: None,
            filter: Ok(None),
            config: None,
            strategy: LoadBalancingStrategy::LeastConnections,
            balancer: None,
            zone: None,
            policy: Policy::default(),
            client: PhantomData,
        }
    }
}

impl From<SocketAddr> for Endpoint {
    /// An endpoint whose id and label are its address.
    fn from(addr: SocketAddr) -> Self {
        Endpoint::new(addr.to_string(), addr)
    }
}

impl<C: TypedClient> ClientBuilder<C> {
    /// A builder with no endpoints, least-connections balancing, and no configuration yet
    /// ([`config`](Self::config) or [`dev`](Self::dev) sets one).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds servers to call: addresses, or [`Endpoint`]s with ids and tags.
    pub fn endpoints<E: Into<Endpoint>>(mut self, endpoints: impl IntoIterator<Item = E>) -> Self {
        self.endpoints.extend(endpoints.into_iter().map(Into::into));
        self
    }

    /// Adds one server to call.
    pub fn endpoint(mut self, endpoint: impl Into<Endpoint>) -> Self {
        self.endpoints.push(endpoint.into());
        self
    }

    /// Endpoints that change at run time, such as a cluster's
    #[cfg_attr(feature = "cluster", doc = "[`WorkerRegistry`](crate::cluster::WorkerRegistry):")]
    #[cfg_attr(not(feature = "cluster"), doc = "`WorkerRegistry` (feature `cluster`):")]
    /// the client follows them as members join, fail and change their tags, and gives
    /// suspect ones a small share of the calls.
    pub fn registry(mut self, source: impl EndpointSource) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Only endpoints whose tags match, such as `"role=worker,zone=eu-1"` (see
    /// [`TagFilter`]). A malformed filter makes [`connect`](Self::connect) fail.
    pub fn filter(mut self, filter: &str) -> Self {
        self.filter = filter.parse().map(Some);
        self
    }

    /// The configuration of every connection (trust, limits, default deadline). Required,
    /// unless [`dev`](Self::dev) is chosen instead.
    pub fn config(mut self, config: RpcConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The development configuration, [`RpcConfig::dev`] on `127.0.0.1:0`: trusts only the
    /// development CA (shared by this user's processes, see [`DevPki`](crate::transport::DevPki)). For tests and demos.
    pub fn dev(self) -> Self {
        self.config(RpcConfig::dev("127.0.0.1:0"))
    }

    /// A built-in strategy. Default: least connections.
    pub fn strategy(mut self, strategy: LoadBalancingStrategy) -> Self {
        self.strategy = strategy;
        self.balancer = None;
        self
    }

    /// A balancer of your own, instead of a built-in strategy.
    pub fn balancer(mut self, balancer: impl Balancer) -> Self {
        self.balancer = Some(Arc::new(balancer));
        self
    }

    /// Prefers endpoints whose `zone` tag is `zone`: the strategy (or balancer) chooses among
    /// them while there are any, and among all endpoints when none is in the zone. Default:
    /// no preference.
    ///
    /// ```no_run
    /// # #[rpcnet::rpc_service] pub trait Calculator { async fn add(&self, a: i64, b: i64) -> i64; }
    /// # async fn run(endpoints: Vec<rpcnet::Endpoint>) -> Result<(), rpcnet::RpcError> {
    /// use rpcnet::LoadBalancingStrategy;
    /// let client = CalculatorClient::builder()
    ///     .endpoints(endpoints) // each with a `zone` tag: Endpoint::new(..).with_tag("zone", "eu-1")
    ///     .dev()
    ///     .strategy(LoadBalancingStrategy::PeakEwma)
    ///     .prefer_zone("eu-1")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn prefer_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// Load shedding: at most `calls` (at least 1) in flight on one endpoint. When every
    /// endpoint is at its cap, a call fails at once with [`RpcError::Overloaded`], or waits
    /// for a slot until its deadline with [`queue_when_overloaded`](Self::queue_when_overloaded).
    /// Default: no cap.
    pub fn max_in_flight_per_endpoint(mut self, calls: u32) -> Self {
        self.policy.max_in_flight = Some(calls);
        self
    }

    /// Whether a call waits (until its deadline) for a slot when every endpoint is at its
    /// cap, instead of failing at once. Default: false.
    pub fn queue_when_overloaded(mut self, queue: bool) -> Self {
        self.policy.queue = queue;
        self
    }

    /// Attempts per call, the first included (at least 1). Default 3.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts;
        self
    }

    /// Extra load that retries may add, as a fraction of calls from 0 to 1 (0.2 = 20%, the
    /// default).
    /// Every call puts `ratio` of a retry into the budget, every retry takes one out, and at
    /// most the budget of 1,000 calls is saved up; once it is spent, calls that fail in a
    /// retryable way fail instead of being retried.
    pub fn retry_budget(mut self, ratio: f64) -> Self {
        self.policy.retry_ratio = ratio;
        self
    }

    /// Retries allowed each second on top of the budget, so that a channel with few calls
    /// can still fail over. Default 10: below about 50 calls a second these, not the ratio,
    /// bound the retries. 0: only the ratio.
    pub fn min_retries_per_second(mut self, retries: u32) -> Self {
        self.policy.min_retries_per_second = retries;
        self
    }

    /// Checks every setting against its range, naming the setter that fixes one.
    fn validate(&self) -> Result<(), RpcError> {
        let out_of_range = |what: &str, value: &dyn std::fmt::Debug, range: &str, setter: &str| {
            RpcError::Config(format!("{what} is {value:?}, must be {range}: fix it with ClientBuilder::{setter}"))
        };
        let policy = &self.policy;
        if policy.max_in_flight == Some(0) {
            return Err(out_of_range("the cap of calls in flight", &0, "at least 1", "max_in_flight_per_endpoint"));
        }
        if policy.max_attempts == 0 {
            return Err(out_of_range("attempts per call", &0, "at least 1", "max_attempts"));
        }
        if !(0.0..=MAX_RETRY_RATIO).contains(&policy.retry_ratio) {
            return Err(out_of_range("the retry budget", &policy.retry_ratio, "from 0 to 1", "retry_budget"));
        }
        Ok(())
    }

    /// Connects to every endpoint and returns the client. Endpoints that cannot be reached
    /// are left out for a while; it fails only if none can be reached.
    ///
    /// With a [`registry`](Self::registry), connections are made on first use instead, as
    /// the set of endpoints may still be empty.
    pub async fn connect(mut self) -> Result<C, RpcError> {
        self.validate()?;
        let config = self.config.take().ok_or_else(|| {
            RpcError::Config(
                "the client has no configuration: set one with ClientBuilder::config(RpcConfig::new(..)), \
                 or ClientBuilder::dev() for the development certificate"
                    .into(),
            )
        })?;
        self.policy.filter = self.filter.map_err(|e| RpcError::Config(e.to_string()))?;
        let mut balancer = self.balancer.unwrap_or_else(|| self.strategy.balancer());
        if let Some(zone) = self.zone {
            balancer = Arc::new(Locality::new(zone, balancer));
        }
        let default_timeout = config.default_timeout;
        let connector = QuicConnector::new(config)?;
        if let Some(source) = self.source {
            let balanced = Balanced::new(balancer, connector, Vec::new(), self.policy, default_timeout, Some(source));
            balanced.endpoints.follow();
            return Ok(C::from_channel(Channel::balanced(Arc::new(balanced))));
        }
        let filter = self.policy.filter.clone();
        let endpoints: Vec<Endpoint> =
            self.endpoints.into_iter().filter(|e| filter.as_ref().is_none_or(|f| f.matches(e.tags()))).collect();
        if endpoints.is_empty() {
            return Err(RpcError::NoEndpointAvailable { filter: filter.map(|f| f.to_string()), known: 0, healthy: 0 });
        }
        let balanced = Balanced::new(balancer, connector, endpoints, self.policy, default_timeout, None);
        balanced.endpoints.connect_all().await?;
        Ok(C::from_channel(Channel::balanced(Arc::new(balanced))))
    }
}
