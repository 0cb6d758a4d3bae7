//! Connections of a running server: who may connect (a limit in all and one per peer
//! address, both refused at once), and serving one connection: its calls, its budget for
//! partial frames, and closing it if it opens no call soon after its handshake.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::VarInt;
use tokio_util::task::TaskTracker;

use super::call;
use super::peer::Peer;
use super::shared::{Counts, ServerShared};

/// Application close code of a connection that opened no call in time.
const NO_CALL_CODE: VarInt = VarInt::from_u32(2);

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server holds its maximum of connections.
    Full { limit: usize },
    /// The peer's address holds its maximum.
    AddressFull { limit: usize },
}

/// The connection limits, in all and per peer address.
#[derive(Debug)]
pub(crate) struct Admission {
    max_connections: usize,
    max_per_address: usize,
    counts: Arc<Counts>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Admission {
    pub(crate) fn new(max_connections: usize, max_per_address: usize, counts: Arc<Counts>) -> Self {
        Self { max_connections, max_per_address, counts, per_address: Arc::default() }
    }

    /// A place for a connection from `address`, held until the guard drops.
    pub(crate) fn admit(&self, address: IpAddr) -> Result<ConnectionSlot, Refusal> {
        // Only the accept loop admits, so the total cannot grow between this check and the
        // increment; connection tasks only ever lower it.
        if self.counts.connections.load(Ordering::Acquire) >= self.max_connections {
            return Err(Refusal::Full { limit: self.max_connections });
        }
        let mut per_address = self.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let from_address = per_address.entry(address).or_insert(0);
        if *from_address >= self.max_per_address {
            return Err(Refusal::AddressFull { limit: self.max_per_address });
        }
        *from_address += 1;
        self.counts.connections.fetch_add(1, Ordering::AcqRel);
        Ok(ConnectionSlot { address, counts: self.counts.clone(), per_address: self.per_address.clone() })
    }
}

/// A connection's place in the server's counts; given back when the connection ends.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    address: IpAddr,
    counts: Arc<Counts>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut per_address = self.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                per_address.remove(&self.address);
            }
        }
        self.counts.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection: completes its handshake, then spawns a task per call stream
/// (tracked by `calls`, which graceful shutdown waits for) until the connection closes.
pub(crate) async fn serve_connection(
    incoming: quinn::Incoming,
    shared: Arc<ServerShared>,
    calls: TaskTracker,
    handshake_idle_timeout: Duration,
    zero_rtt: bool,
    _slot: ConnectionSlot,
) {
    let remote = incoming.remote_address();
    let connection = if zero_rtt { early(incoming).await } else { incoming.await };
    let connection = match connection {
        Ok(connection) => connection,
        Err(err) => {
            tracing::warn!(%remote, error = %err, "handshake failed");
            return;
        }
    };
    tracing::debug!(%remote, "connection accepted");
    let _open = shared.opened(&connection);
    let bounds = shared.read_bounds();
    let peer = Arc::new(Peer::of(&connection));
    // A connection that never opens a call would hold its place for as long as its peer
    // keeps it alive: it gets a short time for its first call.
    let mut next = match tokio::time::timeout(handshake_idle_timeout, connection.accept_bi()).await {
        Ok(first) => first,
        Err(_) => {
            tracing::info!(%remote, timeout = ?handshake_idle_timeout, "closing a connection that opened no call in time");
            connection.close(NO_CALL_CODE, b"no call opened within the handshake idle timeout");
            return;
        }
    };
    loop {
        match next {
            Ok((send, recv)) => {
                // Boxed: spawning moves the task's future several times, and a pointer is
                // cheaper to move than the call's state.
                calls.spawn(Box::pin(call::serve_call(send, recv, shared.clone(), bounds.clone(), peer.clone())));
            }
            Err(err) => {
                tracing::debug!(%remote, reason = %err, "connection closed");
                return;
            }
        }
        next = connection.accept_bi().await;
    }
}

/// A connection served from its first flight (0.5-RTT), so the calls a resuming client
/// sent in early data are read at once; a handshake that fails later ends the connection,
/// and with it `accept_bi`. quinn always lets a server do this.
async fn early(incoming: quinn::Incoming) -> Result<quinn::Connection, quinn::ConnectionError> {
    match incoming.accept()?.into_0rtt() {
        Ok((connection, _handshake)) => Ok(connection),
        Err(connecting) => connecting.await,
    }
}

/// While the server drains: every new connection is refused at once (the peer learns why
/// from its error), never left to time out. Ends when the endpoint closes.
pub(crate) async fn refuse_all(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tracing::debug!(remote = %incoming.remote_address(), "refusing a connection: the server is shutting down");
        incoming.refuse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_limited_in_all_and_per_address_and_places_come_back() {
        let counts = Arc::new(Counts::default());
        let admission = Admission::new(3, 2, counts.clone());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).unwrap_err(), Refusal::AddressFull { limit: 2 });
        let _third = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).unwrap_err(), Refusal::Full { limit: 3 }, "the total is checked first");
        assert_eq!(counts.connections.load(Ordering::Acquire), 3);
        drop(first);
        assert_eq!(counts.connections.load(Ordering::Acquire), 2);
        assert!(admission.admit(a).is_ok(), "a closed connection gives its address its place back");
    }
}
