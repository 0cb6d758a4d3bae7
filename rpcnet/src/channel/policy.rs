//! `MethodPolicy`: what a method's `#[rpc(...)]` attributes say about its calls (idempotence,
//! default deadline, retries, hedging), as a constant on the generated client that each
//! unary call hands its channel. Per-call options and client settings override it.

use std::time::Duration;

/// The defaults a unary method's calls carry, from its `#[rpc(...)]` attributes.
///
/// The generated client holds one per unary method (`XClient::POLICY_BALANCE` beside
/// `XClient::METHOD_BALANCE`). What overrides what, from strongest to weakest:
///
/// - deadline: the call's own ([`CallOptions::with_timeout`](crate::CallOptions::with_timeout),
///   `XClient::with_timeout`, or `without_timeout`), then the method's `deadline = "..."`,
///   then the client's default ([`RpcConfig::with_default_timeout`](crate::RpcConfig::with_default_timeout));
/// - retries on other endpoints of a balanced channel: the call's own
///   (`XClient::with_retries`, [`CallOptions::with_retries`](crate::CallOptions::with_retries)), then the method's
///   `retries = N`, then the channel's `max_attempts`; every retry still draws on the
///   channel's shared retry budget and ends at the call's deadline;
/// - idempotence: a call is idempotent if its method or its options say so.
///
/// ```
/// use std::time::Duration;
/// use rpcnet::{HedgePolicy, MethodPolicy};
/// const PROFILE: MethodPolicy = MethodPolicy::new()
///     .with_idempotent(true)
///     .with_deadline(Duration::from_millis(200))
///     .with_retries(2)
///     .with_hedge(HedgePolicy::after_delay(Duration::from_millis(20)).with_max_extra_per_mille(100));
/// assert_eq!(PROFILE.deadline(), Some(Duration::from_millis(200)));
/// assert_eq!(PROFILE.retries(), Some(2));
/// assert_eq!(PROFILE.hedge().map(|h| h.max_extra()), Some(0.1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MethodPolicy {
    idempotent: bool,
    deadline: Option<Duration>,
    retries: Option<u32>,
    hedge: Option<HedgePolicy>,
}

impl MethodPolicy {
    /// No attribute: not idempotent, the client's deadline, the channel's retries.
    pub const fn new() -> Self {
        Self { idempotent: false, deadline: None, retries: None, hedge: None }
    }

    /// `#[rpc(idempotent)]`: running a call twice does no more than running it once, so a
    /// balanced channel may repeat one whose connection was lost mid-call, and it may go
    /// out in 0-RTT early data.
    pub const fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// `#[rpc(deadline = "200ms")]`: the deadline of calls that do not set their own.
    pub const fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// `#[rpc(retries = 2)]`: a balanced channel sends a failed call to another endpoint at
    /// most this many times (its attempts are `1 + retries`), if the failure allows it.
    pub const fn with_retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// `#[rpc(hedge(...))]`: the method's hedging policy. Carried, not yet acted on: rpcnet
    /// does not send hedged calls yet.
    pub const fn with_hedge(mut self, hedge: HedgePolicy) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// Whether the method is idempotent.
    pub const fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The method's default deadline, if it has one.
    pub const fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The method's retries, if it sets them.
    pub const fn retries(&self) -> Option<u32> {
        self.retries
    }

    /// The method's hedging policy, if it has one.
    pub const fn hedge(&self) -> Option<HedgePolicy> {
        self.hedge
    }
}

/// `hedge(after = "20ms" | "p95", max_extra = "10%")`: when a second copy of a slow call
/// would be sent to another endpoint, and how much extra load that may add at most.
///
/// This is the declared policy only: the generator checks it (the method must be
/// idempotent) and the generated client carries it in its [`MethodPolicy`], but rpcnet does
/// not send hedged calls yet; a call of a hedged method is made once, as any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HedgePolicy {
    after: HedgeAfter,
    max_extra_per_mille: u16,
}

/// When a hedged call sends its second copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeAfter {
    /// After this long without an answer (`after = "20ms"`).
    Delay(Duration),
    /// After the method's latency at this percentile, in tenths (`after = "p95"` is 950,
    /// `"p99.9"` is 999).
    Percentile(u16),
}

impl HedgePolicy {
    /// A second copy after `delay` without an answer; at most 10% extra calls until
    /// [`with_max_extra_per_mille`](Self::with_max_extra_per_mille) says otherwise.
    pub const fn after_delay(delay: Duration) -> Self {
        Self { after: HedgeAfter::Delay(delay), max_extra_per_mille: 100 }
    }

    /// A second copy once the call has taken longer than the method's latency at the
    /// percentile `tenths / 10` (950: p95), clamped to 1..=999.
    pub const fn after_percentile(tenths: u16) -> Self {
        let tenths = if tenths == 0 {
            1
        } else if tenths > 999 {
            999
        } else {
            tenths
        };
        Self { after: HedgeAfter::Percentile(tenths), max_extra_per_mille: 100 }
    }

    /// At most `per_mille` thousandths of extra calls (100: 10%), clamped to 1..=1000.
    pub const fn with_max_extra_per_mille(mut self, per_mille: u16) -> Self {
        self.max_extra_per_mille = if per_mille == 0 {
            1
        } else if per_mille > 1000 {
            1000
        } else {
            per_mille
        };
        self
    }

    /// When the second copy goes out.
    pub const fn after(&self) -> HedgeAfter {
        self.after
    }

    /// The most extra calls hedging may add, as a fraction of the method's calls (0.1: 10%).
    pub fn max_extra(&self) -> f64 {
        f64::from(self.max_extra_per_mille) / 1000.0
    }

    /// The same, in thousandths.
    pub const fn max_extra_per_mille(&self) -> u16 {
        self.max_extra_per_mille
    }
}
