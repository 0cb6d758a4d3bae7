//! Endpoints that change at run time: a source (the cluster's `WorkerRegistry`) publishes
//! the current set and the balanced channel follows it. Defined here, implemented above, so
//! that the client layer never depends on the cluster layer.

use std::sync::Arc;

use tokio::sync::watch;

use crate::balance::Endpoint;

/// A live set of endpoints for balanced channels.
pub trait EndpointSource: Send + Sync + 'static {
    /// The current endpoints, to be followed as they change.
    fn endpoints(&self) -> watch::Receiver<Arc<Vec<Endpoint>>>;

    /// A call to `endpoint` was answered: a sign of life, for health tracking.
    /// Default: nothing.
    fn answered(&self, endpoint: &Endpoint) {
        let _ = endpoint;
    }
}

impl<S: EndpointSource> EndpointSource for Arc<S> {
    fn endpoints(&self) -> watch::Receiver<Arc<Vec<Endpoint>>> {
        S::endpoints(self)
    }

    fn answered(&self, endpoint: &Endpoint) {
        S::answered(self, endpoint);
    }
}
