//! `CallOptions`: what a caller may choose per call or per client (deadline, affinity key,
//! idempotence, metadata), as a policy; a call turns it into its [`Deadline`] once, where it
//! enters the client. `ResponseMetadata` is where a call leaves the server's metadata.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::deadline::Deadline;
use crate::metadata::Metadata;

/// Where a call puts the metadata its server sent back: made by the caller, handed to the
/// call with [`CallOptions::with_response_metadata`], read after the call.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcnet::RpcError> {
/// use rpcnet::{CallOptions, ResponseMetadata, server::Context};
/// let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
/// server.register("hello", |_| async {
///     Context::insert_response_metadata("served-by", "node-1").unwrap();
///     Ok(b"hi".to_vec())
/// }).await;
/// let (addr, handle) = server.spawn()?;
/// let client = rpcnet::RpcClient::connect(addr, rpcnet::RpcConfig::dev("127.0.0.1:0")).await?;
///
/// let reply = ResponseMetadata::new();
/// client.call_with("hello", b"".to_vec(), CallOptions::new().with_response_metadata(&reply)).await?;
/// assert_eq!(reply.get().get_str("served-by"), Some("node-1"));
/// # handle.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ResponseMetadata(Arc<Mutex<Metadata>>);

impl ResponseMetadata {
    /// An empty place.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the last call that used this place received (empty if nothing yet, or if the
    /// server sent none).
    pub fn get(&self) -> Metadata {
        self.lock().clone()
    }

    /// Takes what was received, leaving the place empty.
    pub fn take(&self) -> Metadata {
        std::mem::take(&mut *self.lock())
    }

    pub(crate) fn set(&self, metadata: Metadata) {
        *self.lock() = metadata;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Metadata> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PartialEq for ResponseMetadata {
    /// Two handles are equal if they are the same place.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ResponseMetadata {}

/// The metadata of a call: what it sends, and where it leaves what comes back. Both are
/// `None` on most calls, which then pay nothing for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CallMetadata {
    pub(crate) request: Option<Arc<Metadata>>,
    pub(crate) response: Option<ResponseMetadata>,
}

impl CallMetadata {
    /// No metadata either way.
    pub(crate) const NONE: &'static CallMetadata = &CallMetadata { request: None, response: None };

    /// The metadata to send, if any.
    pub(crate) fn request(&self) -> Option<&Metadata> {
        self.request.as_deref()
    }
}

/// How long a call may take, as chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Timeout {
    /// The client's default ([`RpcConfig::with_default_timeout`](crate::RpcConfig::with_default_timeout)).
    #[default]
    Default,
    /// No deadline, whatever the default.
    Never,
    /// This long from when the call starts.
    After(Duration),
}

/// Per-call settings.
///
/// ```
/// use std::time::Duration;
/// let options = rpcnet::CallOptions::new().with_timeout(Duration::from_millis(250));
/// assert_eq!(options.timeout(), Some(Some(Duration::from_millis(250))));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    timeout: Timeout,
    affinity: Option<u64>,
    idempotent: bool,
    retries: Option<u32>,
    metadata: CallMetadata,
}

impl CallOptions {
    /// Options that change nothing: the configured default deadline applies.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call fails with [`RpcError::Timeout`](crate::RpcError::Timeout) if it has not
    /// finished after `timeout`; the server stops its handler at the same moment.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Timeout::After(timeout);
        self
    }

    /// The call waits as long as it takes, whatever the configured default.
    pub fn without_timeout(mut self) -> Self {
        self.timeout = Timeout::Never;
        self
    }

    /// Calls with the same key go to the same endpoint under consistent hashing
    /// ([`LoadBalancingStrategy::ConsistentHash`](crate::LoadBalancingStrategy)); other
    /// strategies ignore it.
    pub fn with_affinity_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.affinity = Some(crate::balance::affinity_hash(key.as_ref()));
        self
    }

    /// Marks the call idempotent: running it twice does no more than running it once. A
    /// typed client marks the calls of `#[rpc(idempotent)]` methods itself. Such a call may
    /// go out in 0-RTT early data ([`RpcConfig::with_zero_rtt`](crate::RpcConfig::with_zero_rtt)),
    /// which an attacker on the path could replay, and a balanced channel may repeat it on
    /// another endpoint if its connection is lost mid-call. Default: not idempotent.
    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// A balanced channel sends the call to another endpoint at most `retries` times after
    /// a failure that allows it (its attempts are `1 + retries`), over the method's
    /// `#[rpc(retries = N)]` and the channel's `max_attempts`; retries still draw on the
    /// channel's shared retry budget. What may be retried does not change: failures where
    /// the call never ran, and a lost connection only for idempotent calls.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// The call's own retries, if set ([`with_retries`](Self::with_retries)).
    pub fn retries(&self) -> Option<u32> {
        self.retries
    }

    /// Sends `metadata` with the call, over (not instead of) entries set before: a key of
    /// `metadata` replaces the same key set earlier, say as a client's default. How many
    /// entries and bytes fit is bounded by the server's [`Limits`](crate::wire::Limits) (32
    /// entries and 8 KiB with the rest of the head, by default); a call over them fails
    /// before it is sent with [`RpcError::FrameTooLarge`](crate::RpcError::FrameTooLarge).
    ///
    /// ```
    /// let mut metadata = rpcnet::Metadata::new();
    /// metadata.insert("request-id", "42")?;
    /// let options = rpcnet::CallOptions::new().with_metadata(metadata);
    /// assert_eq!(options.metadata().and_then(|m| m.get_str("request-id")), Some("42"));
    /// # Ok::<(), rpcnet::MetadataError>(())
    /// ```
    pub fn with_metadata(mut self, mut metadata: Metadata) -> Self {
        if let Some(earlier) = self.metadata.request.as_deref() {
            metadata.fill_from(earlier);
        }
        self.metadata.request = (!metadata.is_empty()).then(|| Arc::new(metadata));
        self
    }

    /// The metadata the call sends, if any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.request()
    }

    /// Leaves the metadata the server sends back in `place` (each call that uses `place`
    /// replaces what the previous one left).
    pub fn with_response_metadata(mut self, place: &ResponseMetadata) -> Self {
        self.metadata.response = Some(place.clone());
        self
    }

    pub(crate) fn call_metadata(&self) -> &CallMetadata {
        &self.metadata
    }

    /// Whether the call is marked idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The hashed affinity key, if any.
    pub fn affinity_key(&self) -> Option<u64> {
        self.affinity
    }

    /// `None` if the call uses the default deadline; otherwise its own (`Some(None)`: none).
    pub fn timeout(&self) -> Option<Option<Duration>> {
        match self.timeout {
            Timeout::Default => None,
            Timeout::Never => Some(None),
            Timeout::After(timeout) => Some(Some(timeout)),
        }
    }

    /// The deadline of a call starting at `now`, with `default` as the client's default.
    pub(crate) fn deadline(&self, default: Option<Duration>, now: Instant) -> Deadline {
        let timeout = match self.timeout {
            Timeout::Default => default,
            Timeout::Never => None,
            Timeout::After(timeout) => Some(timeout),
        };
        Deadline::after(timeout, now)
    }
}
