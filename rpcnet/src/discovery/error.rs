//! `DiscoveryError`: what can go wrong when discovering endpoints through DNS, from a
//! malformed target or setting to a resolution that failed (timeout, NXDOMAIN, SERVFAIL,
//! an answer with no records).

/// Why a DNS target, a setting or a resolution was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The target is not `dns:HOST:PORT` nor `dns+srv:NAME`.
    #[error("invalid DNS target `{target}`: {reason} (expected `dns:HOST:PORT` or `dns+srv:NAME`)")]
    InvalidTarget {
        /// The text given.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A builder value out of its bounds; the message names the setter and the bound.
    #[error("invalid DNS discovery setting: {0}")]
    InvalidSetting(String),
    /// The system's resolver configuration (`/etc/resolv.conf`) could not be read: give
    /// name servers explicitly with `DnsResolverConfig::with_name_servers`.
    #[error(
        "cannot read the system's DNS configuration: {0}; give name servers with DnsResolverConfig::with_name_servers"
    )]
    SystemConfig(String),
    /// `DnsSourceBuilder::build` was called outside a tokio runtime, which its background
    /// task needs.
    #[error("a DNS source needs a tokio runtime to run in: build it from within one")]
    NoRuntime,
    /// The name did not resolve: timeout, NXDOMAIN, SERVFAIL, or no records.
    #[error("DNS resolution of `{target}` failed: {message}")]
    Resolution {
        /// The target being resolved.
        target: String,
        /// The resolver's error.
        message: String,
    },
}

impl From<DiscoveryError> for crate::error::RpcError {
    fn from(err: DiscoveryError) -> Self {
        crate::error::RpcError::Config(err.to_string())
    }
}
