//! Endpoints that change at run time: a source (the cluster's `WorkerRegistry`) publishes
//! the current set, with which of them are suspect, and the balanced channel follows it,
//! pinging the endpoints it is connected to. Defined here, implemented above, so that the
//! client layer never depends on the cluster layer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::balance::Endpoint;

/// A live set of endpoints for balanced channels.
///
/// A channel re-reads [`is_suspect`](Self::is_suspect) for every endpoint each time the set
/// is published, so a source publishes again (the same endpoints will do) when only their
/// health changed.
pub trait EndpointSource: Send + Sync + 'static {
    /// The current endpoints, to be followed as they change.
    fn endpoints(&self) -> watch::Receiver<Arc<Vec<Endpoint>>>;

    /// Whether `endpoint` is up but suspect (late with its signs of life): a balanced
    /// channel then gives it about a tenth of a healthy endpoint's share of calls, so that
    /// it keeps being tried, and leaves its calls in flight alone. Default: never.
    fn is_suspect(&self, endpoint: &Endpoint) -> bool {
        let _ = endpoint;
        false
    }

    /// How often a channel following this source pings each endpoint it is connected to
    /// (the built-in [`PING_METHOD`](crate::wire::PING_METHOD)), reporting every answer to
    /// [`answered`](Self::answered). Default `None`: no pings.
    fn ping_interval(&self) -> Option<Duration> {
        None
    }

    /// A ping to `endpoint` was answered: a sign of life at the rhythm of
    /// [`ping_interval`](Self::ping_interval), for health tracking. Default: nothing.
    fn answered(&self, endpoint: &Endpoint) {
        let _ = endpoint;
    }
}

impl<S: EndpointSource> EndpointSource for Arc<S> {
    fn endpoints(&self) -> watch::Receiver<Arc<Vec<Endpoint>>> {
        S::endpoints(self)
    }

    fn is_suspect(&self, endpoint: &Endpoint) -> bool {
        S::is_suspect(self, endpoint)
    }

    fn ping_interval(&self) -> Option<Duration> {
        S::ping_interval(self)
    }

    fn answered(&self, endpoint: &Endpoint) {
        S::answered(self, endpoint);
    }
}
