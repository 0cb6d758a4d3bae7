//! `NodeId`: who a cluster member is on the wire. Its gossip address and a bump that grows
//! with each start (or rejoin), so a restarted node supersedes its previous self.

use std::fmt;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A cluster member's identity: where it gossips, and which incarnation of that process it
/// is. Compact on purpose: it travels in every gossip message. Names, RPC addresses and
/// tags travel separately (see [`NodeInfo`](super::NodeInfo)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    /// The node's gossip address.
    pub addr: SocketAddr,
    /// Grows with every start or rejoin of the process at `addr`; 0 for a seed known only
    /// by its address.
    pub bump: u64,
}

impl NodeId {
    /// The identity of a node starting now at `addr`: its bump is the wall clock in
    /// milliseconds, so a restart on the same address wins over the previous process.
    pub fn starting(addr: SocketAddr) -> Self {
        let bump = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_millis() as u64).max(1);
        Self { addr, bump }
    }

    /// A seed, known only by its address until it answers.
    pub fn seed(addr: SocketAddr) -> Self {
        Self { addr, bump: 0 }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.addr, self.bump)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl foca::Identity for NodeId {
    type Addr = SocketAddr;

    /// A node declared down rejoins as its next incarnation.
    fn renew(&self) -> Option<Self> {
        Some(Self { addr: self.addr, bump: self.bump.wrapping_add(1).max(1) })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;

    #[test]
    fn a_restarted_node_wins_over_its_previous_self_and_over_a_seed() {
        let addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let old = NodeId { addr, bump: 5 };
        let new = NodeId { addr, bump: 9 };
        assert!(new.win_addr_conflict(&old) && !old.win_addr_conflict(&new));
        assert!(old.win_addr_conflict(&NodeId::seed(addr)), "any real identity replaces the seed placeholder");
        assert_eq!(old.renew(), Some(NodeId { addr, bump: 6 }));
    }
}
