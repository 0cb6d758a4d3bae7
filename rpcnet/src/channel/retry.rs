//! The retry budget: retries may add about a fifth to the load a channel sends, so that a
//! failing cluster is not buried under retries (Finagle's `RetryBudget`, tower's `TpsBudget`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// Tokens are counted in thousandths, so that deposits of a fraction add up exactly.
const MILLI: i64 = 1_000;

/// Every call deposits `ratio` of a token, every retry withdraws one; a few retries per
/// second are always allowed so that a quiet channel can still retry.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    milli_tokens: AtomicI64,
    deposit: i64,
    cap: i64,
    /// Retries taken from the per-second reserve: (second since `epoch`) << 32 | count.
    reserve: AtomicU64,
    min_per_second: u32,
    epoch: Instant,
}

impl RetryBudget {
    /// `ratio` extra load from retries (0.2 = 20%), `min_per_second` retries always allowed.
    pub(crate) fn new(ratio: f64, min_per_second: u32) -> Self {
        let deposit = (ratio.clamp(0.0, 1000.0) * MILLI as f64) as i64;
        Self {
            milli_tokens: AtomicI64::new(0),
            deposit,
            // At most the budget of 1,000 calls is saved up, so an old quiet period does not
            // fund a storm of retries now.
            cap: deposit * 1_000,
            reserve: AtomicU64::new(0),
            min_per_second,
            epoch: Instant::now(),
        }
    }

    /// A call was made.
    pub(crate) fn deposit(&self) {
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some((t + self.deposit).min(self.cap)));
    }

    /// Whether a retry may be made now; takes its token if so.
    pub(crate) fn try_withdraw(&self, now: Instant) -> bool {
        if self
            .milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| (t >= MILLI).then_some(t - MILLI))
            .is_ok()
        {
            return true;
        }
        let second = now.saturating_duration_since(self.epoch).as_secs() & 0xffff_ffff;
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
        let now = Instant::now();
        for _ in 0..100 {
            budget.deposit();
        }
        let retries = (0..1_000).take_while(|_| budget.try_withdraw(now)).count();
        assert_eq!(retries, 20, "100 calls at 20% fund exactly 20 retries");
    }

    #[test]
    fn a_few_retries_per_second_are_always_allowed() {
        let budget = RetryBudget::new(0.2, 3);
        let now = Instant::now();
        assert_eq!((0..10).filter(|_| budget.try_withdraw(now)).count(), 3, "the reserve of this second");
        let next_second = now + std::time::Duration::from_secs(1);
        assert!(budget.try_withdraw(next_second), "the reserve refills each second");
    }

    #[test]
    fn savings_are_capped() {
        let budget = RetryBudget::new(0.5, 0);
        for _ in 0..100_000 {
            budget.deposit();
        }
        let retries = (0..1_000_000).take_while(|_| budget.try_withdraw(Instant::now())).count();
        assert_eq!(retries, 500, "at most the budget of 1,000 calls is saved");
    }
}
