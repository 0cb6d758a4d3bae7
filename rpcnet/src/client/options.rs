//! `CallOptions`: what a caller may choose per call or per client (deadline, affinity key,
//! idempotence), as a policy; a call turns it into its [`Deadline`] once, where it enters
//! the client.

use std::time::Duration;

use tokio::time::Instant;

use crate::deadline::Deadline;

/// How long a call may take, as chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Timeout {
    /// The client's default ([`RpcConfig::with_default_timeout`](crate::RpcConfig::with_default_timeout)).
    #[default]
    Default,
    /// No deadline, whatever the default.
    Never,
    /// This long from when the call starts.
    After(Duration),
}

/// Per-call settings.
///
/// ```
/// use std::time::Duration;
/// let options = rpcnet::CallOptions::new().with_timeout(Duration::from_millis(250));
/// assert_eq!(options.timeout(), Some(Some(Duration::from_millis(250))));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    timeout: Timeout,
    affinity: Option<u64>,
    idempotent: bool,
}

impl CallOptions {
    /// Options that change nothing: the configured default deadline applies.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call fails with [`RpcError::Timeout`](crate::RpcError::Timeout) if it has not
    /// finished after `timeout`; the server stops its handler at the same moment.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Timeout::After(timeout);
        self
    }

    /// The call waits as long as it takes, whatever the configured default.
    pub fn without_timeout(mut self) -> Self {
        self.timeout = Timeout::Never;
        self
    }

    /// Calls with the same key go to the same endpoint under consistent hashing
    /// ([`LoadBalancingStrategy::ConsistentHash`](crate::LoadBalancingStrategy)); other
    /// strategies ignore it.
    pub fn with_affinity_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.affinity = Some(crate::balance::affinity_hash(key.as_ref()));
        self
    }

    /// Marks the call idempotent: running it twice does no more than running it once. A
    /// typed client marks the calls of `#[rpc(idempotent)]` methods itself. Such a call may
    /// go out in 0-RTT early data ([`RpcConfig::with_zero_rtt`](crate::RpcConfig::with_zero_rtt)),
    /// which an attacker on the path could replay, and a balanced channel may repeat it on
    /// another endpoint if its connection is lost mid-call. Default: not idempotent.
    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Whether the call is marked idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The hashed affinity key, if any.
    pub fn affinity_key(&self) -> Option<u64> {
        self.affinity
    }

    /// `None` if the call uses the default deadline; otherwise its own (`Some(None)`: none).
    pub fn timeout(&self) -> Option<Option<Duration>> {
        match self.timeout {
            Timeout::Default => None,
            Timeout::Never => Some(None),
            Timeout::After(timeout) => Some(Some(timeout)),
        }
    }

    /// The deadline of a call starting at `now`, with `default` as the client's default.
    pub(crate) fn deadline(&self, default: Option<Duration>, now: Instant) -> Deadline {
        let timeout = match self.timeout {
            Timeout::Default => default,
            Timeout::Never => None,
            Timeout::After(timeout) => Some(timeout),
        };
        Deadline::after(timeout, now)
    }
}
