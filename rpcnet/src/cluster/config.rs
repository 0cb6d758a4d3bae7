//! `ClusterConfig`: how a node takes part in a cluster (addresses, key, timings, health
//! checks, partition detection), and the core settings derived from it, checked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

use super::HealthCheckConfig;
use super::core::CoreConfig;
use super::seal::{ClusterKey, Keyring, SEAL_OVERHEAD};
use super::wire::ENVELOPE_OVERHEAD;
use crate::error::RpcError;

/// The secret of [`ClusterConfig::dev`]: for demos and tests on one machine only.
const DEV_SECRET: &str = "rpcnet development cluster";
/// Largest gossip datagram: fits a 1500-byte MTU with IPv6 and UDP headers.
const MAX_DATAGRAM: usize = 1400;

/// How a node takes part in a cluster.
///
/// ```
/// use std::time::Duration;
/// use rpcnet::cluster::ClusterConfig;
/// let config = ClusterConfig::dev()
///     .with_bind_addr("127.0.0.1:0".parse().unwrap())
///     .with_name("worker-1")
///     .with_gossip_interval(Duration::from_secs(1));
/// ```
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub(super) bind_addr: SocketAddr,
    pub(super) advertise_addr: Option<SocketAddr>,
    pub(super) seeds: Vec<SocketAddr>,
    /// Seeds as DNS targets, still as written: read when the membership starts.
    #[cfg(feature = "dns")]
    pub(super) seed_names: Vec<String>,
    #[cfg(feature = "dns")]
    pub(super) seed_resolver: crate::discovery::DnsResolverConfig,
    pub(super) name: Option<String>,
    pub(super) rpc_addr: Option<SocketAddr>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) keyring: Option<Keyring>,
    pub(super) gossip_interval: Duration,
    pub(super) probe_timeout: Duration,
    pub(super) indirect_probes: usize,
    pub(super) suspicion_timeout: Duration,
    pub(super) gossip_fanout: usize,
    pub(super) periodic_gossip: Duration,
    pub(super) sync_interval: Duration,
    pub(super) tag_interval: Duration,
    pub(super) health: HealthCheckConfig,
    pub(super) partition_fraction: f64,
    pub(super) partition_window: Duration,
    pub(super) event_capacity: usize,
}

impl Default for ClusterConfig {
    /// Loopback, port 0, no seeds, and no key: set one with
    /// [`with_secret`](Self::with_secret) or [`with_keyring`](Self::with_keyring) (or use
    /// [`ClusterConfig::dev`]). Timings suit a LAN: every survivor knows of a dead node
    /// within about 3 s (4.5 s at most in the simulator), and the sides of a healed
    /// partition are whole again within about 1 s.
    fn default() -> Self {
        Self {
            bind_addr: "127.0.0.1:0".parse().expect("valid address"),
            advertise_addr: None,
            seeds: Vec::new(),
            #[cfg(feature = "dns")]
            seed_names: Vec::new(),
            #[cfg(feature = "dns")]
            seed_resolver: crate::discovery::DnsResolverConfig::default(),
            name: None,
            rpc_addr: None,
            tags: BTreeMap::new(),
            keyring: None,
            gossip_interval: Duration::from_millis(500),
            probe_timeout: Duration::from_millis(250),
            indirect_probes: 3,
            suspicion_timeout: Duration::from_millis(2000),
            gossip_fanout: 3,
            periodic_gossip: Duration::from_millis(200),
            sync_interval: Duration::from_secs(10),
            tag_interval: Duration::from_millis(250),
            health: HealthCheckConfig::default(),
            partition_fraction: 0.3,
            partition_window: Duration::from_secs(10),
            event_capacity: 1024,
        }
    }
}

impl ClusterConfig {
    /// The defaults with a development secret: every process using it can join, so only
    /// for demos and tests on one machine.
    pub fn dev() -> Self {
        Self::default().with_secret(DEV_SECRET)
    }

    /// The address the gossip socket (UDP) binds. Default `127.0.0.1:0`. A wildcard such
    /// as `0.0.0.0:7946` needs [`with_advertise_addr`](Self::with_advertise_addr) too: it
    /// names no address that others could send to.
    pub fn with_bind_addr(mut self, addr: SocketAddr) -> Self {
        self.bind_addr = addr;
        self
    }

    /// The gossip address the other members know this node by, when it is not the bound
    /// one: for a socket bound to `0.0.0.0:7946`, this node's address on the cluster's
    /// network, such as `10.0.0.5:7946`. Port 0 means the bound port. Every message names
    /// its sender and members refuse those that come from another address, so it must be
    /// the address this node's datagrams leave from (no NAT in between). Default: the
    /// bound address.
    pub fn with_advertise_addr(mut self, addr: SocketAddr) -> Self {
        self.advertise_addr = Some(addr);
        self
    }

    /// Members to contact when joining.
    pub fn with_seeds(mut self, seeds: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.seeds = seeds.into_iter().collect();
        self
    }

    /// Members to contact when joining, found in DNS (the `dns` feature): targets such as
    /// `dns:workers.default.svc:7946` (A/AAAA records, the gossip port written) or
    /// `dns+srv:_gossip._udp.workers.default.svc` (SRV records, their ports), as a
    /// Kubernetes headless service publishes its pods. They are resolved when the membership
    /// starts and again at every gossip interval while this node knows no other member up,
    /// so a node started before its seeds' records exist joins once they appear; this
    /// node's own address among the answers is skipped. Beside
    /// [`with_seeds`](Self::with_seeds), not instead. A malformed target makes
    /// [`ClusterMembership::new`](super::ClusterMembership::new) fail with
    /// [`RpcError::Config`].
    ///
    /// ```
    /// use rpcnet::cluster::ClusterConfig;
    /// let config = ClusterConfig::dev().with_seed_names(["dns:workers.default.svc:7946"]);
    /// ```
    #[cfg(feature = "dns")]
    pub fn with_seed_names(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.seed_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Which name servers resolve the [seed names](Self::with_seed_names). Default: the
    /// system's configuration.
    #[cfg(feature = "dns")]
    pub fn with_seed_resolver(mut self, resolver: crate::discovery::DnsResolverConfig) -> Self {
        self.seed_resolver = resolver;
        self
    }

    /// This node's name, as others see it. Default: its gossip address.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Where this node serves RPC, so that others can call it.
    pub fn with_rpc_addr(mut self, addr: SocketAddr) -> Self {
        self.rpc_addr = Some(addr);
        self
    }

    /// A tag to start with (more can be set later with `set_tag`).
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// The cluster secret, from which the key sealing all gossip is derived.
    pub fn with_secret(mut self, secret: &str) -> Self {
        self.keyring = Some(Keyring::new(ClusterKey::from_secret(secret)));
        self
    }

    /// The cluster keys (to rotate: see [`Keyring`]).
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// How often a member is probed (SWIM's protocol period). Default 500 ms. As often, a
    /// node asks one member it declared failed whether it is back (one small datagram),
    /// which is how the sides of a healed partition find each other.
    pub fn with_gossip_interval(mut self, interval: Duration) -> Self {
        self.gossip_interval = interval;
        self
    }

    /// How long a probe waits for its answer before asking others to probe. Default 250 ms.
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Members asked to probe indirectly. Default 3.
    pub fn with_indirect_probes(mut self, probes: usize) -> Self {
        self.indirect_probes = probes;
        self
    }

    /// How long a suspect has to refute before it is declared down. Default 2 s.
    pub fn with_suspicion_timeout(mut self, timeout: Duration) -> Self {
        self.suspicion_timeout = timeout;
        self
    }

    /// Members updates are gossiped to each round. Default 3.
    pub fn with_gossip_fanout(mut self, fanout: usize) -> Self {
        self.gossip_fanout = fanout;
        self
    }

    /// How often pending updates are gossiped between probes. Default 200 ms.
    pub fn with_periodic_gossip(mut self, interval: Duration) -> Self {
        self.periodic_gossip = interval;
        self
    }

    /// How often this node compares its view with a random member's (by hash) and, if they
    /// differ, exchanges the full member list (push-pull). Default 10 s.
    pub fn with_sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// At most one tag broadcast per interval; changes in between are sent together.
    /// Default 250 ms.
    pub fn with_tag_interval(mut self, interval: Duration) -> Self {
        self.tag_interval = interval;
        self
    }

    /// How workers' health is checked for balancing: how often clients ping the workers
    /// they are connected to, and how the phi-accrual detector reads the answers. Default:
    /// [`HealthCheckConfig::default`] (a ping a second, φ threshold 8).
    pub fn with_health_check(mut self, health: HealthCheckConfig) -> Self {
        self.health = health;
        self
    }

    /// How often clients ping each worker they are connected to. Default 1 s. Shorthand
    /// for [`HealthCheckConfig::with_interval`].
    pub fn with_health_check_interval(mut self, interval: Duration) -> Self {
        self.health = self.health.with_interval(interval);
        self
    }

    /// φ at or above which a member counts as suspect for balancing. Default 8 (a
    /// 1-in-10⁸ chance that a live member would be this late). Shorthand for
    /// [`HealthCheckConfig::with_phi_threshold`].
    pub fn with_phi_threshold(mut self, phi: f64) -> Self {
        self.health = self.health.with_phi_threshold(phi);
        self
    }

    /// Report a partition when this share of the members fails within the window. Defaults
    /// 0.3 and 10 s.
    pub fn with_partition_detection(mut self, fraction: f64, window: Duration) -> Self {
        self.partition_fraction = fraction;
        self.partition_window = window;
        self
    }

    /// Events buffered per subscriber before it lags. Default 1,024.
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    pub(crate) fn core_config(&self) -> Result<CoreConfig, RpcError> {
        let nonzero = |n: usize, what: &str| {
            NonZeroUsize::new(n).ok_or_else(|| RpcError::Config(format!("{what} must be at least 1")))
        };
        if self.gossip_interval <= self.probe_timeout {
            return Err(RpcError::Config(
                "the gossip interval must exceed the probe timeout: fix with_gossip_interval or with_probe_timeout"
                    .into(),
            ));
        }
        let foca = foca::Config {
            probe_period: self.gossip_interval,
            probe_rtt: self.probe_timeout,
            num_indirect_probes: nonzero(self.indirect_probes, "indirect probes")?,
            max_transmissions: NonZeroU8::new(10).expect("10 is not zero"),
            suspect_to_down_after: self.suspicion_timeout,
            remove_down_after: Some(super::core::FORGET_DOWN_AFTER),
            max_packet_size: NonZeroUsize::new(MAX_DATAGRAM - SEAL_OVERHEAD - ENVELOPE_OVERHEAD).expect("positive"),
            // With it on, a suspicion that was refuted can still turn the member down.
            notify_down_members: false,
            periodic_announce: None,
            periodic_announce_to_down_members: Some(foca::PeriodicParams {
                frequency: Duration::from_secs(30),
                num_members: NonZeroUsize::new(2).expect("positive"),
            }),
            periodic_gossip: Some(foca::PeriodicParams {
                frequency: self.periodic_gossip,
                num_members: nonzero(self.gossip_fanout, "gossip fanout")?,
            }),
        };
        self.health.check()?;
        Ok(CoreConfig {
            foca,
            health: self.health.clone(),
            sync_interval: self.sync_interval,
            reconnect_interval: self.gossip_interval,
            meta_interval: self.tag_interval,
            tick_interval: (self.gossip_interval / 2).max(Duration::from_millis(50)),
            partition_fraction: self.partition_fraction,
            partition_window: self.partition_window,
        })
    }

    /// Refuses, before anything is bound, a wildcard bind with nothing to advertise.
    pub(crate) fn check_addresses(&self) -> Result<(), RpcError> {
        if let Some(advertise) = self.advertise_addr
            && advertise.ip().is_unspecified()
        {
            return Err(RpcError::Config(format!(
                "the advertised gossip address {advertise} is a wildcard: give with_advertise_addr this node's address on the cluster's network"
            )));
        }
        if self.advertise_addr.is_none() && self.bind_addr.ip().is_unspecified() {
            return Err(RpcError::Config(format!(
                "the gossip socket binds {}, which names no address other members could send to: \
                 set ClusterConfig::with_advertise_addr to this node's address on the cluster's network (such as 10.0.0.5:{})",
                self.bind_addr,
                self.bind_addr.port()
            )));
        }
        Ok(())
    }

    /// The address this node gossips as, once its socket is bound to `bound`.
    pub(crate) fn gossip_identity(&self, bound: SocketAddr) -> Result<SocketAddr, RpcError> {
        self.check_addresses()?;
        Ok(match self.advertise_addr {
            Some(advertise) if advertise.port() == 0 => SocketAddr::new(advertise.ip(), bound.port()),
            Some(advertise) => advertise,
            None => bound,
        })
    }

    /// The [seed names](Self::with_seed_names), parsed.
    #[cfg(feature = "dns")]
    pub(crate) fn seed_targets(&self) -> Result<Vec<crate::discovery::DnsTarget>, RpcError> {
        self.seed_names.iter().map(|name| name.parse().map_err(RpcError::from)).collect()
    }

    pub(crate) fn bind_addr(&self) -> SocketAddr {
        self.bind_addr
    }

    pub(crate) fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    pub(crate) fn keyring(&self) -> Result<Keyring, RpcError> {
        self.keyring.clone().ok_or_else(|| {
            RpcError::Config(
                "a cluster needs a key: set ClusterConfig::with_secret (or with_keyring), or use ClusterConfig::dev() on one machine"
                    .into(),
            )
        })
    }

    pub(crate) fn health(&self) -> &HealthCheckConfig {
        &self.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "dns")]
    #[test]
    fn seed_names_are_checked_when_read() {
        let good =
            ClusterConfig::dev().with_seed_names(["dns:workers.default.svc:7946", "dns+srv:_gossip._udp.workers"]);
        assert_eq!(good.seed_targets().unwrap().len(), 2);
        let bad = ClusterConfig::dev().with_seed_names(["workers.default.svc:7946"]);
        let err = bad.seed_targets().unwrap_err();
        assert!(matches!(err, RpcError::Config(_)) && err.to_string().contains("dns:"), "{err}");
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_wildcard_bind_gossips_as_the_advertised_address() {
        let wildcard = ClusterConfig::dev().with_bind_addr(addr("0.0.0.0:7946"));
        let err = wildcard.check_addresses().unwrap_err();
        assert!(err.to_string().contains("with_advertise_addr"), "the error names the fix: {err}");
        let advertised = wildcard.clone().with_advertise_addr(addr("10.0.0.5:7946"));
        assert_eq!(advertised.gossip_identity(addr("0.0.0.0:7946")).unwrap(), addr("10.0.0.5:7946"));
        let any_port = ClusterConfig::dev().with_bind_addr(addr("0.0.0.0:0")).with_advertise_addr(addr("10.0.0.5:0"));
        assert_eq!(
            any_port.gossip_identity(addr("0.0.0.0:40000")).unwrap(),
            addr("10.0.0.5:40000"),
            "port 0: the bound one"
        );
        let nowhere = wildcard.with_advertise_addr(addr("[::]:7946"));
        assert!(nowhere.check_addresses().is_err(), "a wildcard is no address to advertise either");
        let plain = ClusterConfig::dev();
        assert_eq!(
            plain.gossip_identity(addr("127.0.0.1:5000")).unwrap(),
            addr("127.0.0.1:5000"),
            "default: the bound one"
        );
    }
}
