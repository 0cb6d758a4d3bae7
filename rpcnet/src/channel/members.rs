//! The endpoints of a balanced channel: each with its connection (made on first use), its
//! passive ejection, its health as the source sees it, and its metrics; and the snapshot of
//! those eligible for new calls, healthy and suspect apart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, Connector};
use crate::balance::Endpoint;
use crate::error::RpcError;

/// First back-off of an endpoint whose connection failed; doubles with each failure in a
/// row, up to [`MAX_EJECTION`].
pub(crate) const BASE_EJECTION: Duration = Duration::from_millis(500);
/// Longest back-off of a failing endpoint.
pub(crate) const MAX_EJECTION: Duration = Duration::from_secs(30);

/// One endpoint of the channel, with its connection `C`.
#[derive(Debug)]
pub(crate) struct Member<C> {
    pub(crate) endpoint: Endpoint,
    connection: OnceCell<C>,
    /// Until when (nanoseconds since the endpoints' epoch, `balance::nanos_since_epoch`)
    /// the endpoint gets no new calls; 0 when it is not ejected.
    ejected_until: AtomicU64,
    failures_in_row: AtomicU32,
    /// Cancelled when the endpoint leaves the source's set (its node failed or left).
    departed: CancellationToken,
    /// Whether the source says it is suspect: it then gets a small share of the calls.
    suspect: AtomicBool,
    pub(crate) metrics: MemberMetrics,
}

impl<C: Connection> Member<C> {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        let metrics = MemberMetrics::new(&endpoint);
        Self {
            endpoint,
            connection: OnceCell::new(),
            ejected_until: AtomicU64::new(0),
            failures_in_row: AtomicU32::new(0),
            departed: CancellationToken::new(),
            suspect: AtomicBool::new(false),
            metrics,
        }
    }

    /// The connection to this endpoint, made on first use and shared afterwards (it
    /// reconnects by itself if lost).
    pub(crate) async fn connect<K: Connector<Connection = C>>(&self, connector: &K) -> Result<&C, RpcError> {
        self.connection.get_or_try_init(|| connector.connect(self.endpoint.addr())).await
    }

    /// The same member under `endpoint` (the same server with new tags): it keeps the
    /// connection, the back-off and the departure signal, and `endpoint` shares its
    /// counters (see [`Endpoint::updated`]).
    pub(crate) fn updated(&self, endpoint: Endpoint) -> Self {
        let metrics = MemberMetrics::new(&endpoint);
        Self {
            endpoint,
            connection: OnceCell::new_with(self.connection.get().cloned()),
            ejected_until: AtomicU64::new(self.ejected_until()),
            failures_in_row: AtomicU32::new(self.failures_in_row.load(Ordering::Relaxed)),
            departed: self.departed.clone(),
            suspect: AtomicBool::new(self.is_suspect()),
            metrics,
        }
    }

    /// The connection, if it was made (live or reconnecting by itself), without waiting.
    pub(crate) fn made_connection(&self) -> Option<&C> {
        self.connection.get()
    }

    /// The connection, if one was made and is live now (without connecting).
    pub(crate) fn live_connection(&self) -> Option<C> {
        self.connection.get().filter(|connection| connection.is_connected()).cloned()
    }

    pub(crate) fn set_suspect(&self, suspect: bool) {
        self.suspect.store(suspect, Ordering::Relaxed);
    }

    pub(crate) fn is_suspect(&self) -> bool {
        self.suspect.load(Ordering::Relaxed)
    }

    /// The endpoint left the source's set (its node failed or left): its connection is
    /// closed for good, so that calls in flight on it end at once as lost (idempotent ones
    /// go to another endpoint) instead of waiting for a dead server, and a call that still
    /// picks it from an older snapshot fails as never sent.
    pub(crate) fn depart(&self) {
        self.departed.cancel();
        if let Some(connection) = self.connection.get() {
            connection.retire();
        }
    }

    pub(crate) fn has_departed(&self) -> bool {
        self.departed.is_cancelled()
    }

    pub(crate) fn is_ejected(&self, now_ns: u64) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && until > now_ns
    }

    pub(crate) fn ejected_until(&self) -> u64 {
        self.ejected_until.load(Ordering::Relaxed)
    }

    /// Keeps new calls away for a back-off that doubles with each failure in a row.
    pub(crate) fn eject(&self, now_ns: u64) -> Duration {
        let failures = self.failures_in_row.fetch_add(1, Ordering::Relaxed).min(16);
        let backoff = BASE_EJECTION.saturating_mul(1 << failures).min(MAX_EJECTION);
        self.ejected_until.store(now_ns + backoff.as_nanos() as u64, Ordering::Relaxed);
        self.metrics.ejections.increment(1);
        backoff
    }

    /// A call succeeded: the back-off starts again from the beginning.
    pub(crate) fn succeeded(&self) {
        if self.failures_in_row.load(Ordering::Relaxed) != 0 {
            self.failures_in_row.store(0, Ordering::Relaxed);
        }
    }
}

/// The members as of one moment, and those of them eligible for new calls: the healthy
/// ones, and apart from them the suspect ones, which get a small share
/// ([`crate::balance::to_suspects`]). Rebuilt, with a new generation, whenever the set, an
/// ejection or a health flag changes.
#[derive(Debug)]
pub(crate) struct Snapshot<C> {
    pub(crate) generation: u64,
    pub(crate) members: Vec<Arc<Member<C>>>,
    /// Eligible healthy endpoints (every eligible one if none is healthy), in the order
    /// balancers see them.
    pub(crate) eligible: Vec<Endpoint>,
    /// For each eligible endpoint, its member.
    pub(crate) eligible_members: Vec<Arc<Member<C>>>,
    /// Eligible suspect endpoints; empty when none is healthy (they are `eligible` then).
    pub(crate) suspects: Vec<Endpoint>,
    pub(crate) suspect_members: Vec<Arc<Member<C>>>,
    /// The earliest end of an ejection, in nanoseconds since the channel's epoch; `u64::MAX`
    /// if none: once it passes, the snapshot is rebuilt to readmit the endpoint.
    pub(crate) next_readmission: u64,
}

impl<C: Connection> Snapshot<C> {
    /// The snapshot of `members` at `now_ns`. If every member is ejected, all are eligible
    /// anyway: a call that may fail is better than one refused for sure.
    pub(crate) fn new(generation: u64, members: Vec<Arc<Member<C>>>, now_ns: u64) -> Self {
        let mut eligible: Vec<Arc<Member<C>>> = members.iter().filter(|m| !m.is_ejected(now_ns)).cloned().collect();
        if eligible.is_empty() {
            eligible = members.clone();
        }
        let (mut suspect_members, mut eligible_members): (Vec<_>, Vec<_>) =
            eligible.into_iter().partition(|m| m.is_suspect());
        if eligible_members.is_empty() {
            eligible_members = std::mem::take(&mut suspect_members);
        }
        let next_readmission =
            members.iter().map(|m| m.ejected_until()).filter(|&until| until > now_ns).min().unwrap_or(u64::MAX);
        let endpoints = |members: &[Arc<Member<C>>]| members.iter().map(|m| m.endpoint.clone()).collect();
        Self {
            generation,
            eligible: endpoints(&eligible_members),
            suspects: endpoints(&suspect_members),
            members,
            eligible_members,
            suspect_members,
            next_readmission,
        }
    }
}

/// One endpoint as the client sees it, for `endpoint_stats()`.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointStats {
    /// The endpoint's id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Calls in flight now.
    pub in_flight: u32,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// The peak-EWMA latency estimate, if any call finished.
    pub latency: Option<Duration>,
    /// Whether the endpoint is kept away from new calls after connection failures.
    pub ejected: bool,
    /// Whether its source says it is suspect, so that it gets a small share of the calls.
    pub suspect: bool,
}

impl EndpointStats {
    pub(crate) fn of<C: Connection>(member: &Member<C>, now: Instant, now_ns: u64) -> Self {
        let e = &member.endpoint;
        Self {
            id: e.id().to_owned(),
            label: e.label().to_owned(),
            addr: e.addr(),
            tags: e.tags().clone(),
            in_flight: e.in_flight(),
            successes: e.successes(),
            failures: e.failures(),
            latency: e.latency_estimate(now),
            ejected: member.is_ejected(now_ns),
            suspect: member.is_suspect(),
        }
    }
}

/// Per-endpoint metrics, through the `metrics` facade (no-ops unless the application installs
/// a recorder), labelled `endpoint` (its label, readable) and `endpoint_id` (its id).
/// Handles are made once per endpoint, when the client first sees it, so a call costs no
/// label lookup; this is also why the recorder must be installed before clients are built.
#[derive(Debug)]
pub(crate) struct MemberMetrics {
    pub(crate) calls: metrics::Counter,
    pub(crate) errors: metrics::Counter,
    pub(crate) in_flight: metrics::Gauge,
    pub(crate) latency: metrics::Histogram,
    pub(crate) ejections: metrics::Counter,
}

impl MemberMetrics {
    fn new(endpoint: &Endpoint) -> Self {
        let labels = [("endpoint", endpoint.label().to_owned()), ("endpoint_id", endpoint.id().to_owned())];
        Self {
            calls: metrics::counter!("rpcnet_client_calls_total", &labels),
            errors: metrics::counter!("rpcnet_client_errors_total", &labels),
            in_flight: metrics::gauge!("rpcnet_client_in_flight", &labels),
            latency: metrics::histogram!("rpcnet_client_latency_seconds", &labels),
            ejections: metrics::counter!("rpcnet_client_ejections_total", &labels),
        }
    }
}
