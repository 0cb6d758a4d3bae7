//! Resolving a `DnsTarget` into socket addresses with hickory's stub resolver:
//! `DnsResolverConfig` (which name servers, how long a query may take), the one-shot
//! `resolve_once`, and the `Resolution` with how long its records stay valid.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use super::error::DiscoveryError;
use super::target::DnsTarget;

/// Which name servers to ask and how patiently.
///
/// Default: the system's configuration (`/etc/resolv.conf` on Unix: its name servers,
/// search domains and `ndots`, which is what a Kubernetes pod needs to resolve
/// `workers.default.svc`), hickory's query timeout of 5 s and 2 attempts.
///
/// ```
/// use std::time::Duration;
/// use rpcnet::discovery::DnsResolverConfig;
/// let config = DnsResolverConfig::default()
///     .with_name_servers(["10.96.0.10:53".parse().unwrap()])
///     .with_query_timeout(Duration::from_secs(2))
///     .with_attempts(3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct DnsResolverConfig {
    name_servers: Option<Vec<SocketAddr>>,
    query_timeout: Option<Duration>,
    attempts: Option<usize>,
}

impl DnsResolverConfig {
    /// Ask these name servers (over UDP, and TCP for answers too long for a datagram)
    /// instead of the system's, with no search domains.
    pub fn with_name_servers(mut self, servers: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.name_servers = Some(servers.into_iter().collect());
        self
    }

    /// How long one query waits for its answer. Default 5 s; must not be zero.
    pub fn with_query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = Some(timeout);
        self
    }

    /// How many times a query that timed out is sent again. Default 2; must be at least 1.
    pub fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// Refuses settings out of bounds, naming the setter.
    pub(super) fn check(&self) -> Result<(), DiscoveryError> {
        if self.name_servers.as_ref().is_some_and(Vec::is_empty) {
            return Err(DiscoveryError::InvalidSetting(
                "with_name_servers got no server: give at least one, or leave it unset for the system's".into(),
            ));
        }
        if self.query_timeout.is_some_and(|t| t.is_zero()) {
            return Err(DiscoveryError::InvalidSetting("with_query_timeout must be more than zero".into()));
        }
        if self.attempts == Some(0) {
            return Err(DiscoveryError::InvalidSetting("with_attempts must be at least 1".into()));
        }
        Ok(())
    }

    /// A resolver with these settings; its cache is cleared before every resolution.
    pub(super) fn build(&self) -> Result<TokioResolver, DiscoveryError> {
        self.check()?;
        let mut builder = match &self.name_servers {
            Some(servers) => {
                let servers = servers
                    .iter()
                    .map(|addr| {
                        let mut udp = ConnectionConfig::udp();
                        udp.port = addr.port();
                        let mut tcp = ConnectionConfig::tcp();
                        tcp.port = addr.port();
                        NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                    })
                    .collect();
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| DiscoveryError::SystemConfig(e.to_string()))?,
        };
        let options = builder.options_mut();
        if let Some(timeout) = self.query_timeout {
            options.timeout = timeout;
        }
        if let Some(attempts) = self.attempts {
            options.attempts = attempts;
        }
        builder.build().map_err(|e| DiscoveryError::SystemConfig(e.to_string()))
    }
}

/// What a target resolved to: its addresses, and until when the records giving them are
/// valid (the earliest expiry among them, as the records' TTLs say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Every address found, sorted, without repeats.
    pub addrs: Vec<SocketAddr>,
    /// When the first of the records expires.
    pub valid_until: Instant,
}

/// Resolves `target` once with a resolver built from `config`: the addresses of its A and
/// AAAA records at its port, or of its SRV records' hosts at their ports. An answer with no
/// address is an error ([`DiscoveryError::Resolution`]), as are a timeout, NXDOMAIN and
/// SERVFAIL.
///
/// ```no_run
/// # async fn run() -> Result<(), rpcnet::discovery::DiscoveryError> {
/// use rpcnet::discovery::{DnsResolverConfig, resolve_once};
/// let seeds = resolve_once(&"dns:gossip.default.svc:7946".parse()?, &DnsResolverConfig::default()).await?;
/// println!("seeds: {:?}", seeds.addrs);
/// # Ok(()) }
/// ```
pub async fn resolve_once(target: &DnsTarget, config: &DnsResolverConfig) -> Result<Resolution, DiscoveryError> {
    resolve(&config.build()?, target).await
}

/// Resolves `target` with `resolver`, asking the name servers afresh (not its cache).
pub(super) async fn resolve(resolver: &TokioResolver, target: &DnsTarget) -> Result<Resolution, DiscoveryError> {
    let failed = |message: String| DiscoveryError::Resolution { target: target.to_string(), message };
    resolver.clear_cache();
    let mut addrs = BTreeSet::new();
    let valid_until = match target {
        DnsTarget::Host { name, port } => {
            let lookup = resolver.lookup_ip(name.as_str()).await.map_err(|e| failed(e.to_string()))?;
            addrs.extend(lookup.iter().map(|ip| SocketAddr::new(ip, *port)));
            lookup.valid_until()
        }
        DnsTarget::Srv { name } => {
            let lookup = resolver.srv_lookup(name.as_str()).await.map_err(|e| failed(e.to_string()))?;
            let mut valid_until = lookup.valid_until();
            let services = lookup.answers().iter().filter_map(|record| match &record.data {
                // A target of "." says the service is not offered there (RFC 2782).
                RData::SRV(srv) if !srv.target.is_root() => Some((srv.target.clone(), srv.port)),
                _ => None,
            });
            // A host that does not resolve is left out; the others still count.
            let mut unresolved = None;
            for (host, port) in services.collect::<Vec<_>>() {
                match resolver.lookup_ip(host.clone()).await {
                    Ok(ips) => {
                        valid_until = valid_until.min(ips.valid_until());
                        addrs.extend(ips.iter().map(|ip| SocketAddr::new(ip, port)));
                    }
                    Err(err) => {
                        tracing::debug!(%target, %host, error = %err, "an SRV target does not resolve");
                        unresolved = Some(format!("SRV target {host}: {err}"));
                    }
                }
            }
            if addrs.is_empty()
                && let Some(message) = unresolved
            {
                return Err(failed(message));
            }
            valid_until
        }
    };
    if addrs.is_empty() {
        return Err(failed("the answer holds no address".into()));
    }
    Ok(Resolution { addrs: addrs.into_iter().collect(), valid_until })
}
