//! What the core knows of each member beyond SWIM: the `Known` record that turns foca's
//! notes and metadata changes into events (joined, failed, left, recovered, tags updated),
//! rejoining when declared down, and the phi-accrual detector fed by clients' pings.
//! Members down for an hour are forgotten.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foca::Foca;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::foca_io::Note;
use super::{Core, FORGET_DOWN_AFTER, TimerEvent, is_up};
use crate::cluster::NodeId;
use crate::cluster::events::{ClusterEvent, NodeInfo, NodeState};
use crate::cluster::health::PhiAccrual;
use crate::cluster::meta::MetaBroadcasts;
use crate::cluster::wire::{FocaCodec, Message};

/// What the core remembers of each member to turn changes into events.
#[derive(Debug, Clone)]
pub(super) struct Known {
    pub(super) id: NodeId,
    pub(super) state: NodeState,
    /// Whether `NodeJoined` (or `NodeRecovered`) was emitted for the current incarnation.
    pub(super) announced: bool,
    /// Whether the member was down before this incarnation came up (a rejoin).
    pub(super) rejoining: bool,
    pub(super) tags: BTreeMap<String, String>,
    /// When it failed or left; it is forgotten [`FORGET_DOWN_AFTER`] later.
    pub(super) down_since: Option<Instant>,
}

/// Health intervals without a ping answer after which a member's detector is stale.
const STALE_INTERVALS: u32 = 5;

impl Core {
    pub(super) fn node_info(&self, known: &Known, now: Instant) -> NodeInfo {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let meta = table.get(&known.id.addr).filter(|m| m.node == known.id);
        NodeInfo {
            id: known.id,
            name: meta.map_or_else(|| known.id.addr.to_string(), |m| m.name.clone()),
            rpc_addr: meta.and_then(|m| m.rpc_addr),
            tags: meta.map(|m| m.tags.clone()).unwrap_or_default(),
            state: known.state,
            phi: self.phi_of(&known.id.addr, now),
        }
    }

    pub(super) fn emit(&mut self, addr: SocketAddr, now: Instant, make: fn(NodeInfo) -> ClusterEvent) {
        if let Some(known) = self.known.get(&addr) {
            let info = self.node_info(known, now);
            self.events.push_back(make(info));
        }
    }

    pub(super) fn has_meta(&self, id: &NodeId) -> bool {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).get(&id.addr).is_some_and(|m| m.node == *id)
    }

    pub(super) fn on_note(&mut self, note: Note, now: Instant) {
        match note {
            // A member already up as `id` (carried over when SWIM restarted) is no news.
            Note::Up(id) if self.known.get(&id.addr).is_some_and(|k| k.id == id && is_up(k.state)) => {}
            Note::Up(id) => {
                let rejoining = self.known.get(&id.addr).is_some_and(|k| !is_up(k.state) || k.id != id);
                let known = Known {
                    id,
                    state: NodeState::Alive,
                    announced: false,
                    rejoining,
                    tags: BTreeMap::new(),
                    down_since: None,
                };
                self.known.insert(id.addr, known);
                if self.has_meta(&id) {
                    self.announce(id.addr, now);
                } else {
                    self.send(id.addr, &Message::MetaWanted(vec![id]), now);
                }
            }
            Note::Down(id) => {
                let leaving = self
                    .table
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id.addr)
                    .is_some_and(|m| m.node == id && m.leaving);
                let Some(known) = self.known.get_mut(&id.addr).filter(|k| k.id == id) else { return };
                if !is_up(known.state) {
                    return;
                }
                known.down_since = Some(now);
                self.health.remove(&id.addr);
                if leaving {
                    known.state = NodeState::Left;
                    self.emit(id.addr, now, ClusterEvent::NodeLeft);
                } else {
                    known.state = NodeState::Failed;
                    self.partition.failures.push_back((now, id));
                    self.emit(id.addr, now, ClusterEvent::NodeFailed);
                    self.check_partition(now);
                }
            }
            Note::Rename(old, new) => {
                if let Some(known) = self.known.get_mut(&old.addr) {
                    known.id = new;
                }
            }
            // After a graceful leave, being declared down is the leave completing.
            Note::Defunct if self.my_meta.leaving => tracing::debug!(node = %self.me, "left the cluster"),
            Note::Defunct => tracing::warn!(node = %self.me, "this node was declared down by the cluster"),
            Note::Rejoin(id) => {
                // Declared down (a partition, a long pause): foca rejoined under a new
                // incarnation, which the metadata must follow.
                tracing::info!(old = %self.me, new = %id, "rejoining the cluster after being declared down");
                self.me = id;
                self.restart_swim(id, now);
                self.my_meta.node = id;
                self.my_meta.version += 1;
                self.meta_dirty = true;
                self.publish_meta(now);
            }
        }
    }

    /// After the cluster declared this node down, SWIM starts afresh as `id`, keeping only
    /// the members it saw up. The old instance is no guide: while cut off, this node saw
    /// everyone else fail. Kept, its backlog of those failures would reach the cluster as
    /// news and turn live members down, and the members it holds down it would ignore
    /// until each of them rejoined too. Forgotten, it takes the cluster's view from the
    /// next sync. Its timers are dropped with it.
    fn restart_swim(&mut self, id: NodeId, now: Instant) {
        let members: Vec<foca::Member<NodeId>> = self.foca.iter_members().cloned().collect();
        let handler = MetaBroadcasts { table: self.table.clone() };
        let rng = StdRng::seed_from_u64(self.rng.random());
        self.foca = Foca::with_custom_broadcast(id, self.config.foca.clone(), rng, FocaCodec, handler);
        self.timer_events.retain(|_, event| !matches!(event, TimerEvent::Swim(_)));
        self.identity_changed = true;
        self.with_foca(now, |foca, io| foca.apply_many(members.into_iter(), false, io));
    }

    /// Emits `NodeJoined` (or `NodeRecovered`) once a member is up and its metadata known.
    pub(super) fn announce(&mut self, addr: SocketAddr, now: Instant) {
        let tags =
            self.table.lock().unwrap_or_else(|p| p.into_inner()).get(&addr).map(|m| m.tags.clone()).unwrap_or_default();
        let Some(known) = self.known.get_mut(&addr) else { return };
        if known.announced || !is_up(known.state) {
            return;
        }
        known.announced = true;
        known.tags = tags;
        let event = if known.rejoining { ClusterEvent::NodeRecovered } else { ClusterEvent::NodeJoined };
        self.emit(addr, now, event);
    }

    pub(super) fn on_meta_changes(&mut self, now: Instant) {
        let changed = self.table.lock().unwrap_or_else(|p| p.into_inner()).take_changed();
        for addr in changed {
            let Some(known) = self.known.get(&addr) else { continue };
            if !self.has_meta(&known.id) {
                continue;
            }
            if !known.announced {
                self.announce(addr, now);
                continue;
            }
            let tags = self
                .table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&addr)
                .map(|m| m.tags.clone())
                .unwrap_or_default();
            let known = self.known.get_mut(&addr).expect("looked up above");
            if known.tags != tags && is_up(known.state) {
                known.tags = tags;
                self.emit(addr, now, ClusterEvent::NodeUpdated);
            }
        }
    }

    /// Forgets members down for [`FORGET_DOWN_AFTER`], as foca does.
    pub(super) fn forget_long_down(&mut self, now: Instant) {
        let forgotten: Vec<SocketAddr> = self
            .known
            .values()
            .filter(|k| k.down_since.is_some_and(|since| now.saturating_duration_since(since) >= FORGET_DOWN_AFTER))
            .map(|k| k.id.addr)
            .collect();
        for addr in forgotten {
            self.known.remove(&addr);
            self.health.remove(&addr);
        }
    }

    /// A sign of life of the member at `addr` outside gossip: the answer to a client's ping.
    /// Only members up have a detector, and one not fed for a few intervals is started
    /// afresh (the client that pinged stopped, and the gap is no interval of the signal).
    pub(crate) fn heartbeat(&mut self, addr: SocketAddr, now: Instant) {
        if !self.known.get(&addr).is_some_and(|k| is_up(k.state)) {
            return;
        }
        let stale = self.stale_after();
        let health = &self.config.health;
        let detector = self.health.entry(addr).or_insert_with(|| PhiAccrual::with_config(health));
        if detector.last_heard().is_some_and(|last| now.saturating_duration_since(last) > stale) {
            *detector = PhiAccrual::with_config(health);
        }
        detector.heartbeat(now);
    }

    /// Silence after which a detector no longer speaks for its member.
    fn stale_after(&self) -> Duration {
        self.config.health.interval() * STALE_INTERVALS
    }

    /// φ of the member at `addr`: 0 without a detector or once it is stale.
    fn phi_of(&self, addr: &SocketAddr, now: Instant) -> f64 {
        self.fresh_detector(addr, now).map_or(0.0, |h| h.phi(now))
    }

    fn fresh_detector(&self, addr: &SocketAddr, now: Instant) -> Option<&PhiAccrual> {
        let detector = self.health.get(addr)?;
        let last = detector.last_heard()?;
        (now.saturating_duration_since(last) <= self.stale_after()).then_some(detector)
    }

    /// φ of member `id`, if it is known, up, and pinged by a client of this node lately.
    pub(crate) fn phi(&self, id: NodeId, now: Instant) -> Option<f64> {
        let known = self.known.get(&id.addr).filter(|k| k.id == id && is_up(k.state))?;
        self.fresh_detector(&known.id.addr, now).map(|h| h.phi(now))
    }
}
