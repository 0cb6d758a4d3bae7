//! Anti-entropy: push-pull exchange of full membership views and metadata digests. Views
//! are compared by hash first, so two nodes that agree exchange one small datagram.
//! Without it, a large cluster does not converge on SWIM's piggybacked gossip alone; and
//! asked of failed members, it is how the sides of a healed partition merge.

use std::net::SocketAddr;
use std::time::Instant;

use foca::State;
use rand::RngExt;

use super::{Core, is_up};
use crate::cluster::NodeId;
use crate::cluster::events::NodeState;
use crate::cluster::wire::{Message, Sync};

/// Members or metadata entries per sync datagram: well under the datagram size even with
/// IPv6 addresses.
pub(super) const SYNC_CHUNK: usize = 24;

impl Core {
    pub(super) fn send_sync(&mut self, to: SocketAddr, reply: bool, now: Instant) {
        let mut members: Vec<foca::Member<NodeId>> = self.foca.iter_membership_state().cloned().collect();
        members.push(foca::Member::alive(self.me));
        let mut digest = self.table.lock().unwrap_or_else(|p| p.into_inner()).digest();
        digest.push((self.me, self.my_meta.version));
        let chunks = members.len().div_ceil(SYNC_CHUNK).max(digest.len().div_ceil(SYNC_CHUNK)).max(1);
        for i in 0..chunks {
            let sync = Sync {
                reply: reply && i == 0,
                members: members.iter().skip(i * SYNC_CHUNK).take(SYNC_CHUNK).cloned().collect(),
                digest: digest.iter().skip(i * SYNC_CHUNK).take(SYNC_CHUNK).copied().collect(),
            };
            self.send(to, &Message::Sync(sync), now);
        }
    }

    /// A hash of this node's view: every member (up or down, not its incarnation, which
    /// churns with every refuted suspicion) and every metadata version. Two nodes with the
    /// same view skip the full exchange.
    pub(super) fn summary(&self) -> u64 {
        let mut members: Vec<(SocketAddr, u64, bool)> = self
            .foca
            .iter_membership_state()
            .map(|m| (m.id().addr, m.id().bump, m.state() == State::Down))
            .chain(std::iter::once((self.me.addr, self.me.bump, false)))
            .collect();
        members.sort_unstable();
        let mut metas = self.table.lock().unwrap_or_else(|p| p.into_inner()).digest();
        metas.push((self.me, self.my_meta.version));
        metas.sort_unstable();
        xxhash_rust::xxh3::xxh3_64(&crate::cluster::encoding::encode(&(members, metas)))
    }

    /// Anti-entropy: compares views with one random member up, by hash; views that differ
    /// are exchanged in full (push-pull).
    pub(super) fn sync_round(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let up: Vec<SocketAddr> = self.known.values().filter(|k| is_up(k.state)).map(|k| k.id.addr).collect();
        let summary = self.summary();
        if !up.is_empty() {
            let peer = up[self.rng.random_range(0..up.len())];
            self.send(peer, &Message::Summary(summary), now);
        }
    }

    /// Asks one member this node declared failed, at random, whether it is back: after a
    /// partition heals, SWIM on either side ignores the members it declared down, and only
    /// this exchange brings the sides together. One summary datagram per gossip interval
    /// while any member is remembered as failed; a member that answers differs in its view
    /// and the full views are exchanged (see [`on_sync`](Self::on_sync)).
    pub(super) fn reconnect_round(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let failed: Vec<SocketAddr> =
            self.known.values().filter(|k| k.state == NodeState::Failed).map(|k| k.id.addr).collect();
        if !failed.is_empty() {
            let peer = failed[self.rng.random_range(0..failed.len())];
            let summary = self.summary();
            self.send(peer, &Message::Summary(summary), now);
        }
    }

    /// Tells every member up this node's new identity, once it rejoined: SWIM drops
    /// messages addressed to an identity other than the receiver's, so members that
    /// rejoined at the same moment (the side of a split) would otherwise stop hearing each
    /// other and declare each other failed. A sync is taken whatever identity it names.
    pub(super) fn tell_new_identity(&mut self, now: Instant) {
        if !std::mem::take(&mut self.identity_changed) || self.left {
            return;
        }
        let notice = Message::Sync(Sync {
            reply: false,
            members: vec![foca::Member::alive(self.me)],
            digest: vec![(self.me, self.my_meta.version)],
        });
        let up: Vec<SocketAddr> = self.known.values().filter(|k| is_up(k.state)).map(|k| k.id.addr).collect();
        for addr in up {
            self.send(addr, &notice, now);
        }
    }

    pub(super) fn on_sync(&mut self, from: SocketAddr, sync: Sync, now: Instant) {
        // Down members are taken from a sync only when it is this node that is down: that
        // is how it learns to rejoin. Another member said to be down is left to SWIM, which
        // probes it: after a partition heals, each side's view says the other side's
        // members are down, and applying it would declare live neighbours failed.
        //
        // Even about this node, a member it declared failed is heeded only while this node
        // is in the minority: after a split heals, the smaller side rejoins and the larger
        // keeps its identities. Were the larger to rejoin too, every member would change
        // identity at once, for no gain.
        let me = self.me.addr;
        let sender_failed = self.known.get(&from).is_some_and(|k| k.state == NodeState::Failed);
        let heed_about_me = !sender_failed || {
            let (reachable, expected) = self.quorum();
            reachable * 2 <= expected
        };
        let (about_me, others): (Vec<_>, Vec<_>) = sync
            .members
            .into_iter()
            .filter(|m| m.id().bump != 0 && (m.state() != State::Down || m.id().addr == me))
            .partition(|m| m.id().addr == me);
        // What it says of this node goes first: if this node is down, it rejoins with SWIM
        // started afresh, and the rest of the view is for the new instance.
        if heed_about_me {
            self.with_foca(now, |foca, io| foca.apply_many(about_me.into_iter(), false, io));
        }
        self.with_foca(now, |foca, io| foca.apply_many(others.into_iter(), false, io));
        let (mut give, mut want) = (Vec::new(), Vec::new());
        {
            let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
            for (id, version) in sync.digest {
                if id.addr == self.me.addr {
                    if (id.bump, version) < (self.me.bump, self.my_meta.version) {
                        give.push(self.my_meta.clone());
                    }
                    continue;
                }
                match table.get(&id.addr) {
                    Some(known) if known.freshness() > (id.bump, version) => give.push(known.clone()),
                    Some(known) if known.freshness() == (id.bump, version) => {}
                    _ => want.push(id),
                }
            }
        }
        for chunk in give.chunks(SYNC_CHUNK) {
            self.send(from, &Message::Metas(chunk.to_vec()), now);
        }
        for chunk in want.chunks(SYNC_CHUNK) {
            self.send(from, &Message::MetaWanted(chunk.to_vec()), now);
        }
        if sync.reply {
            self.send_sync(from, false, now);
        }
    }
}
