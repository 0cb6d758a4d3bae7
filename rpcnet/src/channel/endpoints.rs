//! The endpoint set of a balanced channel: its members and the snapshot calls read,
//! following a source as it changes, ejecting endpoints whose connection fails and
//! readmitting them after a back-off, connecting on first use, and pinging for health.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::connection::{Connection, Connector};
use super::members::{EndpointStats, Member, Snapshot};
use super::source::EndpointSource;
use crate::balance::{Endpoint, TagFilter, nanos_since_epoch};
use crate::error::RpcError;

/// The members of a channel and how they are kept.
pub(crate) struct EndpointSet<K: Connector> {
    connector: K,
    snapshot: ArcSwap<Snapshot<K::Connection>>,
    generation: AtomicU64,
    /// Serialises snapshot rebuilds.
    rebuilding: Mutex<()>,
    /// Where the endpoints come from, when they change at run time.
    source: Option<Arc<dyn EndpointSource>>,
    /// The tag filter that chooses the endpoints.
    filter: Option<TagFilter>,
}

impl<K: Connector> std::fmt::Debug for EndpointSet<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSet")
            .field("endpoints", &self.snapshot.load().members.len())
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl<K: Connector> EndpointSet<K> {
    /// What makes the members' connections.
    pub(crate) fn connector(&self) -> &K {
        &self.connector
    }

    pub(crate) fn new(
        connector: K,
        endpoints: Vec<Endpoint>,
        source: Option<Arc<dyn EndpointSource>>,
        filter: Option<TagFilter>,
    ) -> Self {
        let members = endpoints.into_iter().map(|e| Arc::new(Member::new(e))).collect();
        Self {
            connector,
            snapshot: ArcSwap::from_pointee(Snapshot::new(1, members, 0)),
            generation: AtomicU64::new(1),
            rebuilding: Mutex::new(()),
            source,
            filter,
        }
    }

    /// Follows the source's endpoints (those the filter selects), and pings the endpoints it
    /// is connected to if the source asks for it, until the set is dropped.
    pub(crate) fn follow(self: &Arc<Self>) {
        let Some(source) = &self.source else { return };
        let mut updates = source.endpoints();
        self.set_endpoints(&updates.borrow_and_update());
        if let Some(interval) = source.ping_interval() {
            spawn_pings(Arc::downgrade(self), interval);
        }
        let set = Arc::downgrade(self);
        tokio::spawn(async move {
            while updates.changed().await.is_ok() {
                let Some(set) = set.upgrade() else { return };
                let endpoints = updates.borrow_and_update().clone();
                set.set_endpoints(&endpoints);
            }
        });
    }

    /// Every member of the current set.
    pub(crate) fn members(&self) -> Vec<Arc<Member<K::Connection>>> {
        self.snapshot.load().members.clone()
    }

    /// Rebuilds the snapshot from `members` (or the current ones) with a new generation.
    fn rebuild(&self, members: Option<Vec<Arc<Member<K::Connection>>>>) {
        let _one_at_a_time = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        let members = members.unwrap_or_else(|| self.snapshot.load().members.clone());
        self.store_snapshot(members);
    }

    /// Stores the snapshot of `members` with a new generation; the caller holds `rebuilding`.
    fn store_snapshot(&self, members: Vec<Arc<Member<K::Connection>>>) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let now = nanos_since_epoch(Instant::now().into_std());
        self.snapshot.store(Arc::new(Snapshot::new(generation, members, now)));
    }

    /// Takes the source's endpoints: those the filter selects become the members. Members
    /// whose id and address stay keep their connection and counters (with new tags, if
    /// those changed), and take the health the source gives them now. A member whose
    /// endpoint the source no longer has at all (it failed or left) departs: the calls in
    /// flight on it stop waiting for it. One that is only filtered out keeps its calls.
    pub(crate) fn set_endpoints(&self, all: &[Endpoint]) {
        let current = self.snapshot.load();
        let same = |a: &Endpoint, b: &Endpoint| a.id() == b.id() && a.addr() == b.addr();
        let selected = all.iter().filter(|e| self.filter.as_ref().is_none_or(|f| f.matches(e.tags())));
        let members: Vec<Arc<Member<K::Connection>>> = selected
            .map(|endpoint| {
                let member = match current.members.iter().find(|m| same(&m.endpoint, endpoint)) {
                    Some(old) if old.endpoint.tags() == endpoint.tags() && old.endpoint.label() == endpoint.label() => {
                        old.clone()
                    }
                    Some(old) => Arc::new(old.updated(endpoint.clone())),
                    None => Arc::new(Member::new(endpoint.clone())),
                };
                member.set_suspect(self.source.as_ref().is_some_and(|s| s.is_suspect(&member.endpoint)));
                member
            })
            .collect();
        let gone: Vec<Arc<Member<K::Connection>>> =
            current.members.iter().filter(|m| !all.iter().any(|e| same(&m.endpoint, e))).cloned().collect();
        drop(current);
        // New calls stop seeing the departed first; then their calls in flight end.
        self.rebuild(Some(members));
        for member in gone {
            member.depart();
        }
    }

    /// The snapshot for a new call at `now_ns`, readmitting endpoints whose ejection ended.
    pub(crate) fn current(&self, now_ns: u64) -> arc_swap::Guard<Arc<Snapshot<K::Connection>>> {
        let snapshot = self.snapshot.load();
        if snapshot.next_readmission <= now_ns {
            let seen = snapshot.generation;
            drop(snapshot);
            self.readmit(seen);
            return self.snapshot.load();
        }
        snapshot
    }

    /// Rebuilds the snapshot of generation `seen` to readmit endpoints, unless another call
    /// already did: calls that saw the same due readmission rebuild once between them, so
    /// the generation (and every balancer's cached ring) changes once.
    pub(super) fn readmit(&self, seen: u64) {
        let _one_at_a_time = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot.load();
        if current.generation != seen {
            return;
        }
        let members = current.members.clone();
        drop(current);
        self.store_snapshot(members);
    }

    /// Keeps `member` away from new calls for its back-off, after `err`.
    pub(crate) fn eject(&self, member: &Member<K::Connection>, err: &RpcError) {
        let backoff = member.eject(nanos_since_epoch(Instant::now().into_std()));
        tracing::warn!(endpoint = member.endpoint.id(), error = %err, ?backoff, "endpoint ejected");
        self.rebuild(None);
    }

    /// The connection of `member`, made now if it has none yet; a failure to connect ejects
    /// the endpoint.
    pub(crate) async fn connect<'m>(&self, member: &'m Member<K::Connection>) -> Result<&'m K::Connection, RpcError> {
        match member.connect(&self.connector).await {
            Ok(connection) => Ok(connection),
            Err(err) => {
                self.eject(member, &err);
                Err(err)
            }
        }
    }

    /// Connects to every endpoint at once; those that fail are ejected. Fails only if none
    /// can be reached, with the first error.
    pub(crate) async fn connect_all(&self) -> Result<(), RpcError> {
        let members = self.members();
        let attempts = members.iter().map(|m| async move { (m, m.connect(&self.connector).await.map(drop)) });
        let mut first_error = None;
        let mut connected = 0;
        for (member, result) in futures::future::join_all(attempts).await {
            match result {
                Ok(()) => connected += 1,
                Err(err) => {
                    self.eject(member, &err);
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) if connected == 0 => Err(err),
            _ => Ok(()),
        }
    }

    /// Each member with its live load and counters.
    pub(crate) fn stats(&self) -> Vec<EndpointStats> {
        let now = Instant::now().into_std();
        let now_ns = nanos_since_epoch(now);
        self.snapshot.load().members.iter().map(|m| EndpointStats::of(m, now, now_ns)).collect()
    }

    /// The error of a call that finds no endpoint in `snapshot`.
    pub(crate) fn no_endpoint(&self, snapshot: &Snapshot<K::Connection>) -> RpcError {
        RpcError::NoEndpointAvailable {
            filter: self.filter.as_ref().map(ToString::to_string),
            known: snapshot.members.len(),
            healthy: snapshot.eligible.len(),
        }
    }
}

/// Pings every member of `set` that has a live connection once per `interval`, until the
/// set is dropped, and reports each answer to its source. A ping waits at most one
/// interval; a connection that is not live is left alone (no reconnecting just to ping: a
/// call does that when it needs the endpoint).
fn spawn_pings<K: Connector>(set: Weak<EndpointSet<K>>, interval: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some((members, source)) = set.upgrade().and_then(|s| Some((s.members(), s.source.clone()?))) else {
                return;
            };
            let pings = members.iter().filter_map(|member| {
                let connection = member.live_connection()?;
                let source = Arc::clone(&source);
                Some(async move {
                    if connection.ping(interval).await.is_ok() {
                        source.answered(&member.endpoint);
                    }
                })
            });
            futures::future::join_all(pings).await;
        }
    });
}
