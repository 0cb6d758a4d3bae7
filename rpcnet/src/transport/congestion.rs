//! `CongestionControl`: which of quinn's congestion controllers a connection runs, and the
//! factory quinn is given for it, with the initial window a fixed packet size needs.

use std::sync::Arc;

use quinn::congestion::{BbrConfig, ControllerFactory, CubicConfig, NewRenoConfig};

/// The congestion controller of every connection an endpoint makes or accepts (each side
/// controls what it sends, so a server and its clients may choose differently).
///
/// Default [`Cubic`](Self::Cubic), quinn's own default: rpcnet's transport measurements
/// were made with it, and no other controller has been measured here.
///
/// ```
/// use rpcnet::{CongestionControl, RpcConfig};
/// let config = RpcConfig::dev("127.0.0.1:0").with_congestion_control(CongestionControl::NewReno);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CongestionControl {
    /// CUBIC (RFC 9438): the window grows along a cubic curve after a loss, which recovers
    /// bandwidth quickly on paths with a large bandwidth-delay product. The default.
    #[default]
    Cubic,
    /// NewReno (RFC 9002's reference controller): halves its window on loss and grows it by
    /// one packet per round trip; conservative, and the most predictable.
    NewReno,
    /// BBR (version 1): paces sending at the measured bottleneck bandwidth rather than
    /// reacting to loss, which keeps queues short on lossy or bufferbloated paths. quinn
    /// calls its implementation experimental.
    Bbr,
}

impl CongestionControl {
    /// quinn's factory for this controller; `initial_window` (bytes) replaces quinn's
    /// default of about ten 1,200-byte packets when set.
    pub(crate) fn factory(self, initial_window: Option<u64>) -> Arc<dyn ControllerFactory + Send + Sync> {
        match self {
            Self::Cubic => {
                let mut config = CubicConfig::default();
                if let Some(window) = initial_window {
                    config.initial_window(window);
                }
                Arc::new(config)
            }
            Self::NewReno => {
                let mut config = NewRenoConfig::default();
                if let Some(window) = initial_window {
                    config.initial_window(window);
                }
                Arc::new(config)
            }
            Self::Bbr => {
                let mut config = BbrConfig::default();
                if let Some(window) = initial_window {
                    config.initial_window(window);
                }
                Arc::new(config)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use quinn::congestion::{Bbr, Cubic, NewReno};

    use super::*;

    #[test]
    fn each_choice_builds_its_controller_with_the_initial_window_asked_for() {
        let build = |choice: CongestionControl, window| choice.factory(window).build(Instant::now(), 1200);
        assert!(build(CongestionControl::default(), None).into_any().downcast::<Cubic>().is_ok(), "Cubic by default");
        assert!(build(CongestionControl::NewReno, None).into_any().downcast::<NewReno>().is_ok());
        assert!(build(CongestionControl::Bbr, None).into_any().downcast::<Bbr>().is_ok());
        for choice in [CongestionControl::Cubic, CongestionControl::NewReno, CongestionControl::Bbr] {
            assert_eq!(build(choice, Some(90_000)).initial_window(), 90_000, "{choice:?} takes the initial window");
        }
    }
}
