//! What the cluster knows about each member beyond SWIM's identity: its name, RPC address
//! and tags, versioned so newer always wins. Disseminated as foca custom broadcasts and
//! repaired by push-pull sync (see `core.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::NodeId;
use super::encoding::{decode, encode};

/// A member's metadata at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeMeta {
    pub(crate) node: NodeId,
    /// Grows with every change the node makes to its own metadata.
    pub(crate) version: u64,
    pub(crate) name: String,
    pub(crate) rpc_addr: Option<SocketAddr>,
    pub(crate) tags: BTreeMap<String, String>,
    /// Set by a graceful `leave()`: the coming `down` is a departure, not a failure.
    pub(crate) leaving: bool,
}

impl NodeMeta {
    /// Orders metadata of the same address: a later incarnation, then a later version.
    pub(crate) fn freshness(&self) -> (u64, u64) {
        (self.node.bump, self.version)
    }
}

/// The newest metadata of every member, by gossip address.
#[derive(Debug, Default)]
pub(crate) struct MetaTable {
    /// Ordered, so that sync digests list members in the same order on every run.
    by_addr: BTreeMap<SocketAddr, NodeMeta>,
    /// Addresses whose metadata changed since the core last looked.
    changed: Vec<SocketAddr>,
}

impl MetaTable {
    /// Keeps `meta` if it is newer than what is known; true if it was.
    pub(crate) fn offer(&mut self, meta: NodeMeta) -> bool {
        let addr = meta.node.addr;
        if self.by_addr.get(&addr).is_some_and(|known| known.freshness() >= meta.freshness()) {
            return false;
        }
        self.by_addr.insert(addr, meta);
        self.changed.push(addr);
        true
    }

    pub(crate) fn get(&self, addr: &SocketAddr) -> Option<&NodeMeta> {
        self.by_addr.get(addr)
    }

    /// The newest version known for each address, for a sync digest.
    pub(crate) fn digest(&self) -> Vec<(NodeId, u64)> {
        self.by_addr.values().map(|m| (m.node, m.version)).collect()
    }

    pub(crate) fn take_changed(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.changed)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_addr.len()
    }
}

/// The dissemination key of a metadata broadcast: a newer one of the same node replaces
/// older ones still waiting to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetaKey {
    addr: SocketAddr,
    freshness: (u64, u64),
}

impl foca::Invalidates for MetaKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.addr == other.addr && self.freshness > other.freshness
    }
}

/// foca's handler for metadata broadcasts, sharing the table with the core (foca owns its
/// handler and offers no way back to it).
#[derive(Debug, Clone)]
pub(crate) struct MetaBroadcasts {
    pub(crate) table: Arc<Mutex<MetaTable>>,
}

/// A broadcast that is not metadata.
#[derive(Debug, thiserror::Error)]
#[error("malformed metadata broadcast: {0}")]
pub(crate) struct MetaError(String);

impl foca::BroadcastHandler<NodeId> for MetaBroadcasts {
    type Key = MetaKey;
    type Error = MetaError;

    fn receive_item(&mut self, data: &[u8], _sender: Option<&NodeId>) -> Result<Option<MetaKey>, MetaError> {
        let meta: NodeMeta = decode(data).map_err(|e| MetaError(e.to_string()))?;
        let key = MetaKey { addr: meta.node.addr, freshness: meta.freshness() };
        let fresh = self.table.lock().unwrap_or_else(|p| p.into_inner()).offer(meta);
        Ok(fresh.then_some(key))
    }
}

/// The bytes of a metadata broadcast.
pub(crate) fn broadcast_bytes(meta: &NodeMeta) -> Vec<u8> {
    encode(meta)
}
