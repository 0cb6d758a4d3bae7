//! The membership state machine of one node, without I/O: datagrams and time go in
//! (`handle_datagram`, `handle_timeout`), datagrams and events come out (`poll_transmit`,
//! `poll_event`). foca runs SWIM (adapted in `foca_io.rs`); this adds sealing, metadata,
//! push-pull sync and the merge of healed partitions (`sync.rs`), members' events, health
//! and rejoining (`members.rs`) and partition detection (`partition_watch.rs`).
//! The tokio shell (`membership.rs`) and the simulator (`sim.rs`) drive the same code.
//! Longer than 500 lines: one state machine, whose inputs, timers and outputs read best side
//! by side (as quinn-proto's `Connection`); what stands alone is in the files named above.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use foca::{Foca, State, Timer};
use rand::SeedableRng;
use rand::rngs::StdRng;

mod foca_io;
mod members;
mod partition_watch;
mod sync;
#[cfg(test)]
mod tests;

use self::foca_io::{Io, Note};
use self::members::Known;
use self::partition_watch::PartitionWatch;
use self::sync::SYNC_CHUNK;
use super::NodeId;
use super::events::{ClusterEvent, NodeInfo, NodeState};
use super::health::{HealthCheckConfig, PhiAccrual};
use super::meta::{MetaBroadcasts, MetaTable, NodeMeta, broadcast_bytes};
use super::seal::{Keyring, ReplayWindow};
use super::wire::{Envelope, FocaCodec, Message};

/// Time between the leave notice and SWIM's departure, so members hear the notice first
/// and report `NodeLeft`, not `NodeFailed`.
pub(crate) const LEAVE_DELAY: Duration = Duration::from_millis(100);

/// How long a member that failed or left is remembered (by foca too): a failed one still
/// counts in the cluster's size for partition detection, and comes back as recovered.
pub(crate) const FORGET_DOWN_AFTER: Duration = Duration::from_secs(60 * 60);

/// Settings of the state machine (derived from `ClusterConfig`).
#[derive(Debug, Clone)]
pub(crate) struct CoreConfig {
    pub(crate) foca: foca::Config,
    /// How the answers to clients' pings are read (φ).
    pub(crate) health: HealthCheckConfig,
    /// Push-pull with one random member this often.
    pub(crate) sync_interval: Duration,
    /// Ask one random member declared failed whether it is back this often.
    pub(crate) reconnect_interval: Duration,
    /// At most one metadata broadcast this often: tag changes in between are coalesced.
    pub(crate) meta_interval: Duration,
    /// How often suspicion changes and partitions are looked for.
    pub(crate) tick_interval: Duration,
    /// A partition is reported when at least this share of the expected members fail
    /// within `partition_window` (and at least two).
    pub(crate) partition_fraction: f64,
    pub(crate) partition_window: Duration,
}

/// A datagram to send.
#[derive(Debug, Clone)]
pub(crate) struct Transmit {
    pub(crate) to: SocketAddr,
    pub(crate) data: Vec<u8>,
}

/// Counters of gossip traffic, for the bandwidth targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Bytes sent (sealed datagrams, without IP and UDP headers).
    pub bytes_sent: u64,
    /// Datagrams received and accepted.
    pub datagrams_received: u64,
    /// Bytes received and accepted.
    pub bytes_received: u64,
    /// Datagrams refused: not sealed with a cluster key, stale, replayed, malformed, or
    /// naming another sender than the one they came from.
    pub rejected: u64,
    /// Broadcasts of this node's tags: changes made within one tag interval go out together.
    pub tag_broadcasts: u64,
}

#[derive(Debug)]
enum TimerEvent {
    Swim(Timer<NodeId>),
    Sync,
    /// A one-off sync shortly after start.
    EarlySync,
    /// Asks a failed member whether it is back.
    Reconnect,
    /// The SWIM half of a graceful leave.
    Leave,
    Tick,
    PublishMeta,
}

/// One node's membership state machine.
pub(crate) struct Core {
    foca: Foca<NodeId, FocaCodec, StdRng, MetaBroadcasts>,
    me: NodeId,
    table: Arc<Mutex<MetaTable>>,
    my_meta: NodeMeta,
    meta_dirty: bool,
    meta_published_at: Option<Instant>,
    keyring: Keyring,
    replay: ReplayWindow,
    config: CoreConfig,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_events: BTreeMap<u64, TimerEvent>,
    next_timer: u64,
    out: VecDeque<Transmit>,
    events: VecDeque<ClusterEvent>,
    /// Ordered maps, here and in the metadata table: the simulator's runs must depend on
    /// the seed alone, and iteration order drives random choices and send order.
    known: BTreeMap<SocketAddr, Known>,
    health: BTreeMap<SocketAddr, PhiAccrual>,
    rng: StdRng,
    /// The same moment on the monotonic clock and the wall clock: sealing needs wall time,
    /// and the simulator's virtual `Instant`s stay consistent with it.
    clock: (Instant, SystemTime),
    stats: GossipStats,
    partition: PartitionWatch,
    left: bool,
    /// Where to join again while no member is known (the first attempt may be lost, or
    /// the seeds may start later than this node).
    seeds: Vec<SocketAddr>,
    /// When to try the seeds next, and the back-off after that.
    seed_retry: (Instant, Duration),
    /// This node rejoined under a new identity that the members up have not been told yet.
    identity_changed: bool,
}

/// First wait before a node that knows no member tries its seeds again; doubles up to
/// [`MAX_SEED_RETRY`].
const FIRST_SEED_RETRY: Duration = Duration::from_secs(1);
const MAX_SEED_RETRY: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("me", &self.me).field("members", &self.known.len()).finish_non_exhaustive()
    }
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: CoreConfig,
        me: NodeId,
        name: String,
        rpc_addr: Option<SocketAddr>,
        tags: BTreeMap<String, String>,
        keyring: Keyring,
        seed: u64,
        now: Instant,
        wall: SystemTime,
    ) -> Self {
        let table = Arc::new(Mutex::new(MetaTable::default()));
        let handler = MetaBroadcasts { table: table.clone() };
        let foca =
            Foca::with_custom_broadcast(me, config.foca.clone(), StdRng::seed_from_u64(seed), FocaCodec, handler);
        let my_meta = NodeMeta { node: me, version: 1, name, rpc_addr, tags, leaving: false };
        let mut core = Self {
            foca,
            me,
            table,
            my_meta,
            // The first version is not flooded: members ask for it when they see this node
            // come up (and sync digests repair what is missed). Only changes are broadcast.
            meta_dirty: false,
            meta_published_at: None,
            replay: ReplayWindow::new(&keyring),
            keyring,
            rng: StdRng::seed_from_u64(seed.rotate_left(17) ^ 0x5eed),
            config,
            timers: BinaryHeap::new(),
            timer_events: BTreeMap::new(),
            next_timer: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            known: BTreeMap::new(),
            health: BTreeMap::new(),
            clock: (now, wall),
            stats: GossipStats::default(),
            partition: PartitionWatch::default(),
            left: false,
            seeds: Vec::new(),
            seed_retry: (now + FIRST_SEED_RETRY, FIRST_SEED_RETRY),
            identity_changed: false,
        };
        let tick = core.config.tick_interval;
        core.schedule(now + tick, TimerEvent::Tick);
        // Sync early and often while joining, when the view is still partial, then settle
        // on the configured interval.
        for early in [2, 5, 10] {
            core.schedule(now + Duration::from_secs(early), TimerEvent::EarlySync);
        }
        let sync = core.config.sync_interval;
        core.schedule(now + sync, TimerEvent::Sync);
        let reconnect = core.config.reconnect_interval;
        core.schedule(now + reconnect, TimerEvent::Reconnect);
        core
    }

    pub(crate) fn me(&self) -> NodeId {
        self.me
    }

    pub(crate) fn stats(&self) -> GossipStats {
        self.stats
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.clock.1 + now.saturating_duration_since(self.clock.0)
    }

    fn schedule(&mut self, at: Instant, event: TimerEvent) {
        let id = self.next_timer;
        self.next_timer += 1;
        self.timers.push(Reverse((at, id)));
        self.timer_events.insert(id, event);
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<ClusterEvent> {
        self.events.pop_front()
    }

    fn send(&mut self, to: SocketAddr, message: &Message, now: Instant) {
        let data = self.keyring.seal(&Envelope::encode(self.me.addr, message), self.wall(now));
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += data.len() as u64;
        self.out.push_back(Transmit { to, data });
    }

    /// Applies what one foca call produced.
    fn absorb(&mut self, io: Io, now: Instant) {
        // A rejoin replaces the SWIM instance (`restart_swim`): what the old one sent and
        // scheduled on its way out is dropped with it.
        let rejoined = io.notes.iter().any(|note| matches!(note, Note::Rejoin(_)));
        if !rejoined {
            for (event, after) in io.timers {
                self.schedule(now + after, TimerEvent::Swim(event));
            }
            for (to, data) in io.sends {
                self.send(to.addr, &Message::Swim(data), now);
            }
        }
        for note in io.notes {
            self.on_note(note, now);
        }
        self.on_meta_changes(now);
    }

    fn with_foca(
        &mut self,
        now: Instant,
        call: impl FnOnce(&mut Foca<NodeId, FocaCodec, StdRng, MetaBroadcasts>, &mut Io) -> Result<(), foca::Error>,
    ) {
        let mut io = Io::default();
        if let Err(err) = call(&mut self.foca, &mut io) {
            tracing::debug!(error = %err, "gossip message refused");
        }
        self.absorb(io, now);
    }

    /// Joins through `seeds`: announces itself to each and asks each for its full state.
    pub(crate) fn join(&mut self, seeds: &[SocketAddr], now: Instant) {
        for &seed in seeds {
            if !self.seeds.contains(&seed) {
                self.seeds.push(seed);
            }
        }
        self.seed_retry = (now + FIRST_SEED_RETRY, FIRST_SEED_RETRY);
        self.announce_to(seeds, now);
    }

    fn announce_to(&mut self, seeds: &[SocketAddr], now: Instant) {
        let me = self.me.addr;
        for &seed in seeds.iter().filter(|&&s| s != me) {
            self.with_foca(now, |foca, io| foca.announce(NodeId::seed(seed), io));
            self.send_sync(seed, true, now);
            self.send(seed, &Message::Metas(vec![self.my_meta.clone()]), now);
        }
    }

    /// A datagram from `from`. Refused unless sealed with a key of the ring, sent by the
    /// member it names (`from` itself), and not received before.
    pub(crate) fn handle_datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        let wall = self.wall(now);
        let opened = match self.keyring.open_sealed(data, wall) {
            Ok(opened) => opened,
            Err(err) => return self.refuse(from, &err.to_string()),
        };
        let envelope = match Envelope::from_bytes(&opened.message) {
            Ok(envelope) => envelope,
            Err(err) => return self.refuse(from, &err),
        };
        if self.left {
            return;
        }
        if envelope.from != from {
            self.stats.rejected += 1;
            tracing::warn!(%from, claimed = %envelope.from, "gossip message names another sender; refused");
            return;
        }
        if let Err(err) = self.replay.admit(&opened, wall) {
            return self.refuse(from, &err.to_string());
        }
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        let message = envelope.message;
        match message {
            Message::Swim(bytes) => {
                // The sender named inside the message must be the one that sent it.
                let mut header_bytes = bytes.as_slice();
                match foca::Codec::decode_header(&mut FocaCodec, &mut header_bytes) {
                    Ok(header) if header.src.addr == from => {}
                    Ok(header) => {
                        self.stats.rejected += 1;
                        tracing::warn!(%from, claimed = %header.src, "gossip message names another sender; refused");
                        return;
                    }
                    Err(err) => {
                        self.stats.rejected += 1;
                        tracing::debug!(%from, error = %err, "malformed gossip message");
                        return;
                    }
                }
                self.with_foca(now, |foca, io| foca.handle_data(&bytes, io));
            }
            Message::Sync(sync) => self.on_sync(from, sync, now),
            Message::Summary(theirs) => {
                if theirs != self.summary() {
                    self.send_sync(from, true, now);
                }
            }
            Message::Metas(metas) => {
                {
                    let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
                    for meta in metas.into_iter().filter(|m| m.node.addr != self.me.addr) {
                        table.offer(meta);
                    }
                }
                self.on_meta_changes(now);
            }
            Message::MetaWanted(ids) => {
                let metas: Vec<NodeMeta> = {
                    let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
                    ids.iter()
                        .filter_map(|id| {
                            if id.addr == self.me.addr {
                                Some(self.my_meta.clone())
                            } else {
                                table.get(&id.addr).cloned()
                            }
                        })
                        .collect()
                };
                for chunk in metas.chunks(SYNC_CHUNK) {
                    self.send(from, &Message::Metas(chunk.to_vec()), now);
                }
            }
        }
        self.tell_new_identity(now);
    }

    fn refuse(&mut self, from: SocketAddr, why: &str) {
        self.stats.rejected += 1;
        tracing::debug!(%from, error = why, "gossip datagram refused");
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(event) = self.timer_events.remove(&id) else { continue };
            match event {
                TimerEvent::Swim(timer) => {
                    if !self.left {
                        self.with_foca(now, |foca, io| foca.handle_timer(timer, io));
                    }
                }
                TimerEvent::Sync => {
                    self.sync_round(now);
                    let next = now + self.config.sync_interval;
                    self.schedule(next, TimerEvent::Sync);
                }
                TimerEvent::EarlySync => self.sync_round(now),
                TimerEvent::Reconnect => {
                    self.reconnect_round(now);
                    let next = now + self.config.reconnect_interval;
                    self.schedule(next, TimerEvent::Reconnect);
                }
                TimerEvent::Tick => {
                    self.tick(now);
                    let next = now + self.config.tick_interval;
                    self.schedule(next, TimerEvent::Tick);
                }
                TimerEvent::PublishMeta => self.publish_meta(now),
                TimerEvent::Leave => {
                    self.with_foca(now, |foca, io| foca.leave_cluster(io));
                    self.left = true;
                }
            }
        }
        self.tell_new_identity(now);
    }

    /// Sets or removes tags; the change reaches the cluster within the metadata interval.
    pub(crate) fn update_tags(&mut self, now: Instant, change: impl FnOnce(&mut BTreeMap<String, String>)) {
        let before = self.my_meta.tags.clone();
        change(&mut self.my_meta.tags);
        if self.my_meta.tags == before {
            return;
        }
        self.my_meta.version += 1;
        self.meta_dirty = true;
        self.publish_meta(now);
    }

    /// Broadcasts this node's metadata if it changed, at most once per `meta_interval`.
    fn publish_meta(&mut self, now: Instant) {
        if !self.meta_dirty || self.left {
            return;
        }
        if let Some(last) = self.meta_published_at
            && now < last + self.config.meta_interval
        {
            let at = last + self.config.meta_interval;
            self.schedule(at, TimerEvent::PublishMeta);
            return;
        }
        self.meta_dirty = false;
        self.meta_published_at = Some(now);
        self.stats.tag_broadcasts += 1;
        let bytes = broadcast_bytes(&self.my_meta);
        if let Err(err) = self.foca.add_broadcast(&bytes) {
            tracing::warn!(error = %err, "tags too large to broadcast; they still travel by sync");
        }
        // Broadcasts piggyback on SWIM traffic; a gossip round sends them now.
        self.with_foca(now, |foca, io| foca.broadcast(io));
    }

    /// Leaves gracefully: tells every member directly (and by broadcast) that it is leaving,
    /// then, a little later so the notice arrives first, lets SWIM spread the departure.
    pub(crate) fn leave(&mut self, now: Instant) {
        if self.left || self.my_meta.leaving {
            return;
        }
        self.my_meta.leaving = true;
        self.my_meta.version += 1;
        let notice = Message::Metas(vec![self.my_meta.clone()]);
        let up: Vec<SocketAddr> = self.known.values().filter(|k| is_up(k.state)).map(|k| k.id.addr).collect();
        for addr in up {
            self.send(addr, &notice, now);
        }
        let _ = self.foca.add_broadcast(&broadcast_bytes(&self.my_meta));
        self.schedule(now + LEAVE_DELAY, TimerEvent::Leave);
    }

    /// Turns SWIM's suspicion into events, asks again for metadata still missing (the request
    /// or its answer may have been lost), and looks for partitions.
    fn tick(&mut self, now: Instant) {
        self.retry_seeds(now);
        self.forget_long_down(now);
        let missing: Vec<NodeId> =
            self.known.values().filter(|k| is_up(k.state) && !k.announced).map(|k| k.id).collect();
        for id in missing {
            self.send(id.addr, &Message::MetaWanted(vec![id]), now);
        }
        let states: Vec<(NodeId, State)> = self.foca.iter_membership_state().map(|m| (*m.id(), m.state())).collect();
        for (id, state) in states {
            let Some(known) = self.known.get_mut(&id.addr).filter(|k| k.id == id) else { continue };
            match (known.state, state) {
                (NodeState::Alive, State::Suspect) => {
                    known.state = NodeState::Suspect;
                    self.emit(id.addr, now, ClusterEvent::NodeSuspect);
                }
                (NodeState::Suspect, State::Alive) => {
                    known.state = NodeState::Alive;
                    self.emit(id.addr, now, ClusterEvent::NodeRecovered);
                }
                _ => {}
            }
        }
        self.check_partition(now);
    }

    /// A node that knows no member keeps knocking on its seeds, less and less often.
    fn retry_seeds(&mut self, now: Instant) {
        if self.foca.num_members() > 0 || self.left || self.seeds.is_empty() {
            self.seed_retry = (now + FIRST_SEED_RETRY, FIRST_SEED_RETRY);
            return;
        }
        let (at, backoff) = self.seed_retry;
        if now < at {
            return;
        }
        tracing::debug!(seeds = ?self.seeds, "no member known yet: contacting the seeds again");
        let seeds = self.seeds.clone();
        self.announce_to(&seeds, now);
        let next = (backoff * 2).min(MAX_SEED_RETRY);
        self.seed_retry = (now + next, next);
    }

    /// Every member known, with its state and metadata.
    pub(crate) fn nodes(&self, now: Instant) -> Vec<NodeInfo> {
        self.known.values().map(|k| self.node_info(k, now)).collect()
    }

    /// This node as the others see it.
    pub(crate) fn local(&self, now: Instant) -> NodeInfo {
        let _ = now;
        NodeInfo {
            id: self.me,
            name: self.my_meta.name.clone(),
            rpc_addr: self.my_meta.rpc_addr,
            tags: self.my_meta.tags.clone(),
            state: if self.left { NodeState::Left } else { NodeState::Alive },
            phi: 0.0,
        }
    }

    /// What this node thinks of the member at `addr`, if it knows it.
    pub(crate) fn state_of(&self, addr: &SocketAddr) -> Option<(NodeId, NodeState)> {
        self.known.get(addr).map(|k| (k.id, k.state))
    }

    /// Members SWIM considers up, for tests and the simulator.
    pub(crate) fn up_members(&self) -> usize {
        self.known.values().filter(|k| is_up(k.state)).count()
    }

    /// Members with a health detector, for tests.
    #[cfg(test)]
    pub(crate) fn health_entries(&self) -> usize {
        self.health.len()
    }

    /// Metadata entries held, for memory estimates.
    pub(crate) fn metadata_entries(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn is_up(state: NodeState) -> bool {
    matches!(state, NodeState::Alive | NodeState::Suspect)
}
