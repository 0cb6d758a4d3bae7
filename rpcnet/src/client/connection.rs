//! The connection of an `RpcClient`: made on connect (with 0-RTT when a saved session
//! allows it and the configuration asks), shared by every call, made again (once, however
//! many calls notice) when a call finds it lost before sending anything.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;

use super::early::{Live, Opened, completed};
use super::timers::DeadlineTimers;
use crate::config::RpcConfig;
use crate::error::RpcError;
use crate::transport::{ClientEndpoint, connection_error};
use crate::wire::Limits;

/// Application close code of a connection whose endpoint left a channel's set.
const RETIRED_CODE: quinn::VarInt = quinn::VarInt::from_u32(1);

/// What every clone of one `RpcClient` shares.
pub(crate) struct ClientInner {
    endpoint: ClientEndpoint,
    pub(crate) remote: SocketAddr,
    server_name: String,
    pub(crate) limits: Limits,
    pub(crate) default_timeout: Option<Duration>,
    connect_timeout: Duration,
    /// Resume connections with 0-RTT when a saved session allows it.
    zero_rtt: bool,
    /// The timers the deadlines of this client's calls share.
    pub(crate) deadlines: DeadlineTimers,
    /// In an `Arc` of our own: cloning a `quinn::Connection` takes its state lock twice
    /// (count up, count down) for every call, an `Arc` clone one atomic each way. A plain
    /// mutex held for that clone costs fewer instructions than an `ArcSwap` load.
    connection: Mutex<Option<Arc<Live>>>,
    /// Serialises reconnection so that concurrent calls share one new connection.
    reconnecting: tokio::sync::Mutex<()>,
    /// Set when the client is closed for good (its endpoint left a channel's set): calls
    /// fail at once instead of connecting again.
    retired: AtomicBool,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        if let Some(conn) = self.current() {
            conn.close(quinn::VarInt::from_u32(0), b"client closed");
        }
    }
}

impl ClientInner {
    pub(crate) fn new(endpoint: ClientEndpoint, remote: SocketAddr, config: &RpcConfig) -> Self {
        Self {
            endpoint,
            remote,
            server_name: config.server_name.clone(),
            limits: config.limits,
            default_timeout: config.default_timeout,
            connect_timeout: config.connect_timeout,
            zero_rtt: config.endpoint.tls.early_data,
            deadlines: DeadlineTimers::new(),
            connection: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(()),
            retired: AtomicBool::new(false),
        }
    }

    /// The current connection, if there is one. It may have died since: `open` notices
    /// when opening a stream fails, which costs nothing on the hot path.
    fn current(&self) -> Option<Arc<Live>> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The current connection if it is still open.
    pub(crate) fn live(&self) -> Option<Arc<Live>> {
        self.current().filter(|conn| conn.close_reason().is_none())
    }

    /// The endpoint this client connects from.
    pub(crate) fn endpoint(&self) -> &ClientEndpoint {
        &self.endpoint
    }

    /// Closes the connection for good; see [`RpcClient::retire`](super::RpcClient).
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        if let Some(conn) = self.current() {
            conn.close(RETIRED_CODE, b"the endpoint left the cluster");
        }
    }

    pub(crate) async fn reconnect(&self) -> Result<Arc<Live>, RpcError> {
        if self.retired.load(Ordering::Acquire) {
            return Err(RpcError::Connection(format!("{} left the cluster: not connecting to it again", self.remote)));
        }
        let _one_at_a_time = self.reconnecting.lock().await;
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        let connecting = self.endpoint.connect(self.remote, &self.server_name)?;
        let live = if self.zero_rtt {
            match connecting.into_0rtt() {
                Ok((connection, accepted)) => {
                    tracing::debug!(remote = %self.remote, "connected with 0-RTT; the handshake completes in the background");
                    Live { connection, early: Some(accepted.shared()) }
                }
                // No saved session for this server: a full handshake.
                Err(connecting) => self.handshake(connecting).await?,
            }
        } else {
            self.handshake(connecting).await?
        };
        let conn = Arc::new(live);
        *self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// Completes a full handshake within the connect timeout.
    async fn handshake(&self, connecting: quinn::Connecting) -> Result<Live, RpcError> {
        let connection = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| self.no_answer())?
            .map_err(|e| connection_error(e, false))?;
        tracing::debug!(remote = %self.remote, "connected");
        Ok(Live { connection, early: None })
    }

    fn no_answer(&self) -> RpcError {
        RpcError::Connection(format!(
            "no answer from {} within {:?} (raise it with RpcConfig::with_connect_timeout)",
            self.remote, self.connect_timeout
        ))
    }

    /// Opens the stream of a new call. A connection found dead at this point is replaced
    /// once: nothing was sent on it, so this is always safe. On a connection made with full
    /// handshake (every connection once its 0-RTT handshake is replaced) this is the only
    /// work: one lock to clone the `Arc`, one check of `early`, quinn's `open_bi`.
    pub(crate) async fn open(&self, idempotent: bool) -> Result<Opened, RpcError> {
        if let Some(conn) = self.current()
            && conn.early.is_none()
        {
            match conn.open_bi().await {
                Ok((send, recv)) => return Ok(Opened { send, recv, early: None }),
                Err(err) => {
                    tracing::debug!(remote = %self.remote, error = %err, "connection lost before the call; reconnecting")
                }
            }
        }
        // Boxed: connecting (and 0-RTT) is rare and its future large; inline, it would
        // bloat (and slow down the moves of) every call's future.
        Box::pin(self.open_slow(idempotent)).await
    }

    /// Opens a stream on the live connection, or a new one. On a connection whose 0-RTT
    /// handshake has not completed, an `idempotent` call's stream is opened at once, in
    /// early data; any other waits for the handshake first: early data can be replayed by
    /// anyone on the path, so only a call that may run twice is sent in it.
    async fn open_slow(&self, idempotent: bool) -> Result<Opened, RpcError> {
        let conn = match self.live() {
            Some(conn) => conn,
            None => self.reconnect().await?,
        };
        let early = match &conn.early {
            Some(handshake) if !completed(handshake) => {
                if idempotent {
                    Some(handshake.clone())
                } else {
                    tokio::time::timeout(self.connect_timeout, handshake.clone())
                        .await
                        .map_err(|_| self.no_answer())?;
                    None
                }
            }
            _ => None,
        };
        let (send, recv) = conn.open_bi().await.map_err(|e| connection_error(e, false))?;
        if early.is_some() {
            tracing::trace!(remote = %self.remote, "call sent in early data");
        } else if conn.early.is_some() {
            self.settle(&conn);
        }
        Ok(Opened { send, recv, early })
    }

    /// Once the 0-RTT handshake of `conn` has completed, keeps it as a connection made
    /// with a full handshake, so that later calls take the short path in `open`.
    fn settle(&self, conn: &Arc<Live>) {
        let mut current = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *current = Some(Arc::new(Live { connection: conn.connection.clone(), early: None }));
        }
    }
}
