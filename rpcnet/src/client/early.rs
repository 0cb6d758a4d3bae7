//! 0-RTT on the client: a connection resumed with early data (`Live::early`), whose
//! handshake is still to complete when calls start. Idempotent unary calls go out at once
//! in early data; any other call waits for the handshake, since early data can be replayed.
//! Early data the server rejected is sent again after the handshake.

use std::ops::Deref;

use futures::FutureExt;
use futures::future::Shared;
use quinn::{Connection, RecvStream, SendStream, ZeroRttAccepted};

/// A connection of the client, with its handshake if it is one made with 0-RTT.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) connection: Connection,
    /// `None`: made with a full handshake. Otherwise resolves when the handshake completes,
    /// `true` if the server accepted the early data (`false` also if the connection failed).
    pub(crate) early: Option<Handshake>,
}

impl Deref for Live {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.connection
    }
}

/// The handshake of a 0-RTT connection, awaited by any number of calls.
pub(crate) type Handshake = Shared<ZeroRttAccepted>;

/// Whether `handshake` has completed (polled once, without waiting).
pub(crate) fn completed(handshake: &Handshake) -> bool {
    handshake.clone().now_or_never().is_some()
}

/// A call's new stream. `early`: it was opened in 0-RTT, before the handshake completed,
/// and is lost if the server rejects the early data (quinn then fails it with
/// `ZeroRttRejected`; it does not send it again).
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) send: SendStream,
    pub(crate) recv: RecvStream,
    pub(crate) early: Option<Handshake>,
}
