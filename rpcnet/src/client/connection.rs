//! The connection of an `RpcClient`: made on connect, shared by every call, made again
//! (once, however many calls notice) when a call finds it lost before sending anything.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};

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
    /// The timers the deadlines of this client's calls share.
    pub(crate) deadlines: DeadlineTimers,
    /// In an `Arc` of our own: cloning a `quinn::Connection` takes its state lock twice
    /// (count up, count down) for every call, an `Arc` clone one atomic each way. A plain
    /// mutex held for that clone costs fewer instructions than an `ArcSwap` load.
    connection: Mutex<Option<Arc<Connection>>>,
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
            deadlines: DeadlineTimers::new(),
            connection: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(()),
            retired: AtomicBool::new(false),
        }
    }

    /// The current connection, if there is one. It may have died since: `open` notices
    /// when opening a stream fails, which costs nothing on the hot path.
    fn current(&self) -> Option<Arc<Connection>> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The current connection if it is still open.
    pub(crate) fn live(&self) -> Option<Arc<Connection>> {
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

    pub(crate) async fn reconnect(&self) -> Result<Arc<Connection>, RpcError> {
        if self.retired.load(Ordering::Acquire) {
            return Err(RpcError::Connection(format!("{} left the cluster: not connecting to it again", self.remote)));
        }
        let _one_at_a_time = self.reconnecting.lock().await;
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        let connecting = self.endpoint.connect(self.remote, &self.server_name)?;
        let conn = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| {
                RpcError::Connection(format!(
                    "no answer from {} within {:?} (raise it with RpcConfig::with_connect_timeout)",
                    self.remote, self.connect_timeout
                ))
            })?
            .map_err(|e| connection_error(e, false))?;
        tracing::debug!(remote = %self.remote, "connected");
        let conn = Arc::new(conn);
        *self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// Opens the stream of a new call. A connection found dead at this point is replaced
    /// once: nothing was sent on it, so this is always safe.
    pub(crate) async fn open(&self) -> Result<(SendStream, RecvStream), RpcError> {
        if let Some(conn) = self.current() {
            match conn.open_bi().await {
                Ok(streams) => return Ok(streams),
                Err(err) => {
                    tracing::debug!(remote = %self.remote, error = %err, "connection lost before the call; reconnecting")
                }
            }
        }
        // Boxed: connecting is rare and its future large; inline, it would bloat (and slow
        // down the moves of) every call's future.
        Box::pin(async {
            let conn = self.reconnect().await?;
            conn.open_bi().await.map_err(|e| connection_error(e, false))
        })
        .await
    }
}
