//! What every call of a running server reads: its routes, limits and timeouts, the count
//! of calls in flight with the permit that holds a place in it, and whether shutdown began.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::routes::Routes;
use crate::wire::Limits;

/// State shared by the calls of one running server.
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) routes: Routes,
    pub(crate) limits: Limits,
    pub(crate) request_read_timeout: Duration,
    pub(crate) max_in_flight_calls: usize,
    in_flight: AtomicUsize,
    /// Set when shutdown begins: new calls are answered `Unavailable`. An atomic, not the
    /// cancellation token, because every call reads it.
    shutting_down: AtomicBool,
}

impl ServerShared {
    pub(crate) fn new(
        routes: Routes,
        limits: Limits,
        request_read_timeout: Duration,
        max_in_flight_calls: usize,
    ) -> Self {
        Self {
            routes,
            limits,
            request_read_timeout,
            max_in_flight_calls,
            in_flight: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// Counts a call in flight on the server; refused past the configured maximum.
pub(crate) struct InFlight<'a>(&'a ServerShared);

impl<'a> InFlight<'a> {
    pub(crate) fn acquire(shared: &'a ServerShared) -> Option<Self> {
        let before = shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= shared.max_in_flight_calls {
            shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(shared))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
