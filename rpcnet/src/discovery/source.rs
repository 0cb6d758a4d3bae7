//! `DnsSource`: an `EndpointSource` that follows a DNS name. A background task resolves
//! it at the refresh interval, or sooner when the records' TTL ends, publishes the set when
//! it changes, and keeps the last good set through failures.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::error::DiscoveryError;
use super::resolve::{DnsResolverConfig, resolve};
use super::target::DnsTarget;
use crate::balance::Endpoint;
use crate::channel::EndpointSource;

/// Default time between two resolutions, when the records' TTL is not shorter.
const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
/// Default least time between two resolutions, whatever the TTL says (a TTL of 0 must not
/// make the task spin), and the first wait after a failure.
const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(1);

/// The counter of failed resolutions, labelled by `target`.
const FAILURES_METRIC: &str = "rpcnet_dns_resolution_failures_total";

/// Endpoints that follow a DNS name: the addresses of its A/AAAA records (at the target's
/// port) or of its SRV records (at theirs), as a Kubernetes headless service publishes its
/// ready pods. Cheap to clone; the resolving task stops when the last clone is dropped
/// (a channel built on the source holds one).
///
/// Each endpoint's id and label are its address (`10.0.0.7:7946`), so an address that stays
/// in the records keeps its endpoint, its counters and its connection; one that leaves the
/// records leaves the set. The set starts empty and fills at the first answer.
///
/// A failed resolution (timeout, NXDOMAIN, SERVFAIL, an answer without addresses) keeps the
/// last good set, logs a warning at the first failure of a streak, counts every failure in
/// `rpcnet_dns_resolution_failures_total{target="dns:…"}`, and is retried after the
/// [minimum refresh](DnsSourceBuilder::min_refresh), doubling up to the refresh interval;
/// the first success after it logs that the name resolves again.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use rpcnet::discovery::DnsSource;
/// use rpcnet::rpc_service;
///
/// #[rpc_service]
/// pub trait Worker {
///     async fn work(&self, input: u64) -> u64;
/// }
///
/// let workers = DnsSource::builder("dns:workers.default.svc:7946".parse()?)
///     .refresh_interval(Duration::from_secs(10))
///     .tag("role", "worker")
///     .build()?;
/// let client = WorkerClient::builder().registry(workers.clone()).filter("role=worker").dev().connect().await?;
/// println!("{} workers in DNS; one says {}", workers.endpoints_now().len(), client.work(7).await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DnsSource {
    inner: Arc<Inner>,
}

struct Inner {
    target: DnsTarget,
    endpoints: watch::Receiver<Arc<Vec<Endpoint>>>,
    /// Stops the task when the last handle goes.
    _stop: DropGuard,
}

impl std::fmt::Debug for DnsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsSource")
            .field("target", &self.inner.target)
            .field("endpoints", &self.inner.endpoints.borrow().len())
            .finish_non_exhaustive()
    }
}

impl DnsSource {
    /// A source following `target` with the defaults: the system's resolver configuration,
    /// a refresh every 30 s (sooner if the TTL is shorter, never more often than every
    /// second), no tags. Must be called within a tokio runtime.
    pub fn new(target: &str) -> Result<Self, DiscoveryError> {
        Self::builder(target.parse()?).build()
    }

    /// A builder for a source following `target`.
    pub fn builder(target: DnsTarget) -> DnsSourceBuilder {
        DnsSourceBuilder {
            target,
            resolver: DnsResolverConfig::default(),
            refresh_interval: DEFAULT_REFRESH,
            min_refresh: DEFAULT_MIN_REFRESH,
            tags: BTreeMap::new(),
        }
    }

    /// The name this source follows.
    pub fn target(&self) -> &DnsTarget {
        &self.inner.target
    }

    /// The endpoints published last.
    pub fn endpoints_now(&self) -> Arc<Vec<Endpoint>> {
        self.inner.endpoints.borrow().clone()
    }
}

impl EndpointSource for DnsSource {
    fn endpoints(&self) -> watch::Receiver<Arc<Vec<Endpoint>>> {
        self.inner.endpoints.clone()
    }
}

/// Settings of a [`DnsSource`]; [`build`](Self::build) checks them and starts it.
#[derive(Debug, Clone)]
pub struct DnsSourceBuilder {
    target: DnsTarget,
    resolver: DnsResolverConfig,
    refresh_interval: Duration,
    min_refresh: Duration,
    tags: BTreeMap<String, String>,
}

impl DnsSourceBuilder {
    /// Which name servers to ask, and how patiently. Default: the system's configuration.
    pub fn resolver(mut self, config: DnsResolverConfig) -> Self {
        self.resolver = config;
        self
    }

    /// The longest time between two resolutions: the records are asked for again after it,
    /// or when their TTL ends if that is sooner. Default 30 s; must be at least the
    /// [minimum](Self::min_refresh).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The shortest time between two resolutions, whatever the TTL (a TTL of 0 would
    /// otherwise have the source ask without pause), and the first wait before trying
    /// again after a failure. Default 1 s; must be more than zero.
    pub fn min_refresh(mut self, floor: Duration) -> Self {
        self.min_refresh = floor;
        self
    }

    /// A tag on every endpoint, for the channel's filters (`filter("role=worker")`).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Checks the settings, builds the resolver and starts resolving in a task of the
    /// current tokio runtime.
    pub fn build(self) -> Result<DnsSource, DiscoveryError> {
        if self.min_refresh.is_zero() {
            return Err(DiscoveryError::InvalidSetting("min_refresh must be more than zero".into()));
        }
        if self.refresh_interval < self.min_refresh {
            return Err(DiscoveryError::InvalidSetting(format!(
                "refresh_interval ({:?}) must be at least min_refresh ({:?})",
                self.refresh_interval, self.min_refresh
            )));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DiscoveryError::NoRuntime)?;
        let resolver = self.resolver.build()?;
        let (publish, endpoints) = watch::channel(Arc::new(Vec::new()));
        let stop = CancellationToken::new();
        let follower = Follower {
            resolver,
            target: self.target.clone(),
            tags: self.tags,
            refresh_interval: self.refresh_interval,
            min_refresh: self.min_refresh,
            publish,
            current: HashMap::new(),
        };
        runtime.spawn(follower.run(stop.clone()));
        Ok(DnsSource { inner: Arc::new(Inner { target: self.target, endpoints, _stop: stop.drop_guard() }) })
    }
}

/// The task's state: what it resolves, how often, and the endpoints it published.
struct Follower {
    resolver: TokioResolver,
    target: DnsTarget,
    tags: BTreeMap<String, String>,
    refresh_interval: Duration,
    min_refresh: Duration,
    publish: watch::Sender<Arc<Vec<Endpoint>>>,
    /// The endpoints published last, by address: kept ones are handed on as they are.
    current: HashMap<SocketAddr, Endpoint>,
}

impl Follower {
    async fn run(mut self, stop: CancellationToken) {
        let mut failures: u64 = 0;
        loop {
            let resolved = tokio::select! {
                () = stop.cancelled() => break,
                resolved = resolve(&self.resolver, &self.target) => resolved,
            };
            let wait = match resolved {
                Ok(resolution) => {
                    if failures > 0 {
                        tracing::info!(target = %self.target, failures, "DNS name resolves again");
                        failures = 0;
                    }
                    self.publish_set(&resolution.addrs);
                    let ttl = resolution.valid_until.saturating_duration_since(Instant::now());
                    ttl.clamp(self.min_refresh, self.refresh_interval)
                }
                Err(err) => {
                    metrics::counter!(FAILURES_METRIC, "target" => self.target.to_string()).increment(1);
                    if failures == 0 {
                        tracing::warn!(
                            target = %self.target,
                            error = %err,
                            kept = self.current.len(),
                            "DNS resolution failed; keeping the last endpoints"
                        );
                    }
                    failures += 1;
                    let doublings = u32::try_from(failures - 1).unwrap_or(u32::MAX).min(16);
                    self.min_refresh.saturating_mul(1 << doublings).min(self.refresh_interval)
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!(target = %self.target, "DNS source stopped");
    }

    /// Publishes the endpoints at `addrs` (sorted) unless they are the ones published.
    fn publish_set(&mut self, addrs: &[SocketAddr]) {
        if addrs.len() == self.current.len() && addrs.iter().all(|a| self.current.contains_key(a)) {
            return;
        }
        let mut next = HashMap::with_capacity(addrs.len());
        let endpoints: Vec<Endpoint> = addrs
            .iter()
            .map(|&addr| {
                let endpoint = self.current.remove(&addr).unwrap_or_else(|| self.endpoint(addr));
                next.insert(addr, endpoint.clone());
                endpoint
            })
            .collect();
        tracing::debug!(target = %self.target, endpoints = endpoints.len(), "DNS endpoints changed");
        self.current = next;
        self.publish.send_replace(Arc::new(endpoints));
    }

    fn endpoint(&self, addr: SocketAddr) -> Endpoint {
        self.tags.iter().fold(Endpoint::new(addr.to_string(), addr), |e, (key, value)| e.with_tag(key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> DnsSourceBuilder {
        let local = DnsResolverConfig::default().with_name_servers(["127.0.0.1:53".parse().unwrap()]);
        DnsSource::builder("dns:workers.test:7946".parse().unwrap()).resolver(local)
    }

    #[tokio::test]
    async fn bad_settings_are_refused_not_clamped() {
        let cases = [
            (builder().min_refresh(Duration::ZERO), "min_refresh"),
            (
                builder().refresh_interval(Duration::from_millis(10)).min_refresh(Duration::from_millis(20)),
                "refresh_interval",
            ),
            (builder().resolver(DnsResolverConfig::default().with_name_servers([])), "with_name_servers"),
            (builder().resolver(DnsResolverConfig::default().with_query_timeout(Duration::ZERO)), "with_query_timeout"),
            (builder().resolver(DnsResolverConfig::default().with_attempts(0)), "with_attempts"),
        ];
        for (builder, setter) in cases {
            let err = builder.build().unwrap_err();
            assert!(matches!(err, DiscoveryError::InvalidSetting(_)), "{err:?}");
            assert!(err.to_string().contains(setter), "the error names {setter}: {err}");
        }
    }

    #[test]
    fn building_outside_a_runtime_says_so() {
        assert_eq!(builder().build().unwrap_err(), DiscoveryError::NoRuntime);
    }

    #[tokio::test]
    async fn a_new_source_is_empty_until_the_first_answer() {
        let source = builder().tag("role", "worker").build().unwrap();
        assert!(source.endpoints_now().is_empty(), "empty until the first answer");
        assert_eq!(source.target().to_string(), "dns:workers.test:7946");
    }
}
