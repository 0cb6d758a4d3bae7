//! What every call of a running server reads: its routes, limits and timeouts, the count
//! of calls in flight with the permit that holds a place in it, and whether shutdown began.
//! The counts are shared with `ServerHandle`, which reports them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::authorize::Authorization;
use super::layers::{Layers, ServerService};
use super::routes::Routes;
use crate::config::RpcConfig;
use crate::transport::{FrameBudget, ReadBounds};
use crate::wire::Limits;

/// Counts a server keeps while it runs, readable from its [`ServerHandle`](super::ServerHandle).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Calls admitted and not finished (handlers running or writing their responses).
    pub(crate) in_flight: AtomicUsize,
    /// Connections open or in their handshake.
    pub(crate) connections: AtomicUsize,
    /// Set when shutdown begins (`stop_accepting` or `shutdown`): new calls are answered
    /// `Unavailable`. Here, not in the server's task, so that it holds from the moment
    /// `stop_accepting` returns; an atomic because every call reads it.
    pub(crate) draining: AtomicBool,
    /// Set once someone waits for `in_flight` to reach zero; until then the last call to
    /// finish notifies no one, so a call pays one load for the feature.
    watched: AtomicBool,
    /// Woken when `in_flight` reaches zero while `watched`.
    idle: tokio::sync::Notify,
}

impl Counts {
    /// Resolves once no call is in flight (at once if none is).
    pub(crate) async fn no_calls_in_flight(&self) {
        // SeqCst on both sides (here and in `InFlight::drop`): either this load sees the
        // last call's decrement, or that call sees `watched` and wakes this waiter.
        self.watched.store(true, Ordering::SeqCst);
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// State shared by the calls of one running server.
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) routes: Routes,
    /// The tower layers around every call, if any were added.
    pub(crate) layers: Option<Layers>,
    pub(crate) limits: Limits,
    pub(crate) request_read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_in_flight_calls: usize,
    /// Bytes of partial request frames each connection may hold.
    max_buffered_per_connection: usize,
    pub(crate) counts: Arc<Counts>,
    /// The check every call but a ping passes before it is admitted, if one is set.
    pub(crate) authorization: Option<Authorization>,
    /// The address the server listens on, for the `server.*` fields of its call spans.
    pub(crate) local_addr: Option<SocketAddr>,
    /// Connections past their handshake, by quinn's stable id: a shutdown reads their
    /// round-trip times.
    open: Mutex<HashMap<usize, quinn::Connection>>,
}

impl ServerShared {
    pub(crate) fn new(routes: Routes, layers: Option<ServerService>, config: &RpcConfig, counts: Arc<Counts>) -> Self {
        Self {
            routes,
            layers: layers.map(Layers::new),
            limits: config.limits,
            request_read_timeout: config.request_read_timeout,
            write_timeout: config.write_timeout,
            max_in_flight_calls: config.max_in_flight_calls,
            max_buffered_per_connection: config.max_buffered_per_connection(),
            counts,
            authorization: None,
            local_addr: None,
            open: Mutex::default(),
        }
    }

    /// The same, with the check every call passes.
    pub(crate) fn with_authorization(mut self, authorization: Option<Authorization>) -> Self {
        self.authorization = authorization;
        self
    }

    /// The bounds on reading the calls of a new connection: a budget of its own for partial
    /// frames, and the read timeout for a frame that stalls.
    pub(crate) fn read_bounds(&self) -> ReadBounds {
        ReadBounds { budget: FrameBudget::new(self.max_buffered_per_connection), stall: self.request_read_timeout }
    }

    /// Records an open connection until the returned guard drops.
    pub(crate) fn opened(self: &Arc<Self>, connection: &quinn::Connection) -> OpenConnection {
        let id = connection.stable_id();
        self.connections_by_id().insert(id, connection.clone());
        OpenConnection { shared: self.clone(), id }
    }

    fn connections_by_id(&self) -> std::sync::MutexGuard<'_, HashMap<usize, quinn::Connection>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The longest round-trip time of the open connections, if any is open.
    pub(crate) fn longest_rtt(&self) -> Option<Duration> {
        self.connections_by_id().values().map(quinn::Connection::rtt).max()
    }

    pub(crate) fn begin_shutdown(&self) {
        self.counts.draining.store(true, Ordering::Release);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.counts.draining.load(Ordering::Acquire)
    }
}

/// An open connection's entry among the server's, removed on drop.
pub(crate) struct OpenConnection {
    shared: Arc<ServerShared>,
    id: usize,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.shared.connections_by_id().remove(&self.id);
    }
}

/// Counts a call in flight on the server; refused past the configured maximum.
pub(crate) struct InFlight<'a>(&'a ServerShared);

impl<'a> InFlight<'a> {
    pub(crate) fn acquire(shared: &'a ServerShared) -> Option<Self> {
        let before = shared.counts.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= shared.max_in_flight_calls {
            shared.counts.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(shared))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let counts = &self.0.counts;
        if counts.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && counts.watched.load(Ordering::SeqCst) {
            counts.idle.notify_waiters();
        }
    }
}
