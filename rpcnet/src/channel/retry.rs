//! When a failed call goes to another endpoint, decided in one place: what may be repeated
//! (`RetryPolicy`), and how many retries the channel can afford (`RetryBudget`: about a
//! fifth of its load, as Finagle's `RetryBudget` and tower's `TpsBudget` bound it).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::time::Instant;

use crate::balance::nanos_since_epoch;
use crate::deadline::Deadline;
use crate::error::RpcError;

/// What a channel does after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Send the call to another endpoint.
    pub(crate) retry: bool,
    /// Keep the endpoint away from new calls for a while: its connection failed.
    pub(crate) eject: bool,
}

/// Attempts per call and the budget they draw on.
#[derive(Debug)]
pub(crate) struct RetryPolicy {
    max_attempts: u32,
    budget: RetryBudget,
}

impl RetryPolicy {
    pub(crate) fn new(max_attempts: u32, ratio: f64, min_per_second: u32) -> Self {
        Self { max_attempts, budget: RetryBudget::new(ratio, min_per_second) }
    }

    /// A call was made: it funds a share of a retry.
    pub(crate) fn called(&self) {
        self.budget.deposit();
    }

    /// After attempt number `attempt` failed with `err`. A call may go to another
    /// endpoint if it certainly did not run ([`RpcError::is_retry_safe`]), or if it may
    /// have run but its method is idempotent and its endpoint was lost to it (the
    /// connection broke, or the endpoint left the channel's set mid-call); and only while
    /// attempts (`max_attempts` for this call, else the channel's), the budget and the
    /// deadline last. The budget is the channel's whatever the call's own attempts.
    pub(crate) fn after_failure(
        &self,
        err: &RpcError,
        idempotent: bool,
        attempt: u32,
        max_attempts: Option<u32>,
        deadline: Deadline,
        now: Instant,
    ) -> Verdict {
        let eject = matches!(
            err,
            RpcError::Connection(_) | RpcError::ConnectionLost(_) | RpcError::Unavailable(_) | RpcError::Tls(_)
        );
        let repeatable = err.is_retry_safe() || (idempotent && matches!(err, RpcError::ConnectionLost(_)));
        let retry = repeatable
            && attempt < max_attempts.unwrap_or(self.max_attempts)
            && !deadline.has_passed(now)
            && self.budget.try_withdraw(nanos_since_epoch(now.into_std()));
        Verdict { retry, eject }
    }
}

/// Tokens are counted in thousandths, so that deposits of a fraction add up exactly.
const MILLI: i64 = 1_000;

/// The largest retry ratio a builder accepts: retries may at most double the load.
pub(crate) const MAX_RETRY_RATIO: f64 = 1.0;

/// Retries a balanced channel allows each second whatever its retry ratio.
pub(crate) const DEFAULT_MIN_RETRIES_PER_SECOND: u32 = 10;

/// A second in nanoseconds, the unit of the per-second reserve.
const SECOND_NS: u64 = 1_000_000_000;

/// Every call deposits `ratio` of a token, every retry withdraws one; a few retries per
/// second are always allowed so that a quiet channel can still retry.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    milli_tokens: AtomicI64,
    deposit: i64,
    cap: i64,
    /// Retries taken from the per-second reserve: (second since the endpoints' epoch) << 32 | count.
    reserve: AtomicU64,
    min_per_second: u32,
}

impl RetryBudget {
    /// `ratio` extra load from retries (0.2 = 20%, at most [`MAX_RETRY_RATIO`]),
    /// `min_per_second` retries always allowed.
    pub(crate) fn new(ratio: f64, min_per_second: u32) -> Self {
        debug_assert!((0.0..=MAX_RETRY_RATIO).contains(&ratio), "bug in rpcnet: the builder checks the ratio");
        let deposit = (ratio * MILLI as f64) as i64;
        Self {
            milli_tokens: AtomicI64::new(0),
            deposit,
            // At most the budget of 1,000 calls is saved up, so an old quiet period does not
            // fund a storm of retries now.
            cap: deposit * 1_000,
            reserve: AtomicU64::new(0),
            min_per_second,
        }
    }

    /// A call was made.
    pub(crate) fn deposit(&self) {
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some((t + self.deposit).min(self.cap)));
    }

    /// Whether a retry may be made at `now_ns`; takes its token if so.
    pub(crate) fn try_withdraw(&self, now_ns: u64) -> bool {
        if self
            .milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t >= MILLI).then_some(t - MILLI))
            .is_ok()
        {
            return true;
        }
        let second = (now_ns / SECOND_NS) & 0xffff_ffff;
        self.reserve
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
                let (window, used) = (packed >> 32, packed & 0xffff_ffff);
                let used = if window == second { used } else { 0 };
                (used < u64::from(self.min_per_second)).then_some(second << 32 | (used + 1))
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_limited_to_the_ratio_of_calls() {
        let budget = RetryBudget::new(0.2, 0);
        let now = 0;
        for _ in 0..100 {
            budget.deposit();
        }
        let retries = (0..1_000).take_while(|_| budget.try_withdraw(now)).count();
        assert_eq!(retries, 20, "100 calls at 20% fund exactly 20 retries");
    }

    #[test]
    fn a_few_retries_per_second_are_always_allowed() {
        let budget = RetryBudget::new(0.2, 3);
        let now = 5 * SECOND_NS;
        assert_eq!((0..10).filter(|_| budget.try_withdraw(now)).count(), 3, "the reserve of this second");
        let next_second = now + SECOND_NS;
        assert!(budget.try_withdraw(next_second), "the reserve refills each second");
    }

    #[test]
    fn savings_are_capped() {
        let budget = RetryBudget::new(0.5, 0);
        for _ in 0..100_000 {
            budget.deposit();
        }
        let retries = (0..1_000_000).take_while(|_| budget.try_withdraw(0)).count();
        assert_eq!(retries, 500, "at most the budget of 1,000 calls is saved");
    }
}
