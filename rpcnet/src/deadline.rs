//! `Deadline`: when a call gives up. Fixed once, where the call enters a client or balanced
//! channel (from its options and the default) or where its head reaches a server, and kept
//! as an instant from there on; only the wire encoder turns it into the relative time it sends.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::RpcError;

/// The instant a call gives up, if it ever does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// The call waits as long as it takes.
    Never,
    /// The call fails with [`RpcError::Timeout`] at this instant.
    At(Instant),
}

impl Deadline {
    /// `timeout` from `now`, or never.
    pub(crate) fn after(timeout: Option<Duration>, now: Instant) -> Self {
        match timeout {
            Some(timeout) => Self::At(now + timeout),
            None => Self::Never,
        }
    }

    /// The instant, if there is one.
    pub(crate) fn instant(self) -> Option<Instant> {
        match self {
            Self::Never => None,
            Self::At(at) => Some(at),
        }
    }

    /// What is left of it at `now`, as the wire carries it (`None`: no deadline); a
    /// deadline already passed is [`RpcError::Timeout`], so a call that cannot finish in
    /// time is not started.
    pub(crate) fn left(self, now: Instant) -> Result<Option<Duration>, RpcError> {
        match self {
            Self::Never => Ok(None),
            Self::At(at) => match at.checked_duration_since(now) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(RpcError::Timeout),
            },
        }
    }

    /// Whether it has passed at `now`.
    pub(crate) fn has_passed(self, now: Instant) -> bool {
        self.instant().is_some_and(|at| at <= now)
    }

    /// The earlier of this deadline and `limit`.
    pub(crate) fn min(self, limit: Instant) -> Instant {
        self.instant().map_or(limit, |at| at.min(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_an_instant_and_what_is_left_of_it() {
        let now = Instant::now();
        let deadline = Deadline::after(Some(Duration::from_millis(250)), now);
        assert_eq!(deadline.instant(), Some(now + Duration::from_millis(250)));
        assert_eq!(deadline.left(now).unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(deadline.left(now + Duration::from_millis(200)).unwrap(), Some(Duration::from_millis(50)));
        assert!(matches!(deadline.left(now + Duration::from_millis(250)), Err(RpcError::Timeout)), "due is passed");
        assert!(deadline.has_passed(now + Duration::from_secs(1)));
        assert_eq!(deadline.min(now + Duration::from_secs(9)), now + Duration::from_millis(250));

        let never = Deadline::after(None, now);
        assert_eq!((never.instant(), never.left(now).unwrap()), (None, None));
        assert!(!never.has_passed(now + Duration::from_secs(3600)));
        assert_eq!(never.min(now), now, "no deadline: the limit decides");
    }
}
