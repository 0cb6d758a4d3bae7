//! Anti-entropy: push-pull exchange of full membership views and metadata digests. Views
//! are compared by hash first, so two nodes that agree exchange one small datagram.
//! Without it, a large cluster does not converge on SWIM's piggybacked gossip alone.

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

    /// Anti-entropy: compares views with one random member, by hash; views that differ are
    /// exchanged in full (push-pull).
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
        // SWIM ignores members it declared down, so two sides of a healed partition would
        // ignore each other forever. Comparing views with a failed member tells it how it is
        // seen: it rejoins under a new incarnation.
        let failed: Vec<SocketAddr> =
            self.known.values().filter(|k| k.state == NodeState::Failed).map(|k| k.id.addr).collect();
        if !failed.is_empty() {
            let peer = failed[self.rng.random_range(0..failed.len())];
            self.send(peer, &Message::Summary(summary), now);
        }
    }

    pub(super) fn on_sync(&mut self, from: SocketAddr, sync: Sync, now: Instant) {
        // Down members are taken from a sync only when it is this node that is down: that
        // is how it learns to rejoin. Another member said to be down is left to SWIM, which
        // probes it: after a partition heals, each side's view says the other side's
        // members are down, and applying it would declare live neighbours failed.
        let me = self.me.addr;
        let members = sync
            .members
            .into_iter()
            .filter(move |m| m.id().bump != 0 && (m.state() != State::Down || m.id().addr == me));
        self.with_foca(now, |foca, io| foca.apply_many(members, false, io));
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
