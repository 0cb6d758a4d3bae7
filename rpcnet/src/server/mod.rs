//! The server: method registration, the accept loop, graceful shutdown. Connections live in
//! `connections.rs`, one call in `call.rs` (its scope in `scope.rs`), routing in `routes.rs`,
//! who may call what in `authorize.rs` and `access_policy.rs`.

mod access_policy;
mod authorize;
mod call;
mod connections;
mod context;
mod interrupt;
mod layers;
mod peer;
mod request_stream;
mod respond;
mod routes;
mod scope;
mod shared;

pub use access_policy::AccessPolicy;
pub use authorize::{Authorize, Denied};
pub use context::Context;
pub use layers::{ServerCall, ServerReply, ServerService};
pub use peer::PeerIdentity;
pub use request_stream::RequestStream;
use routes::BoxFuture;
pub(crate) use routes::Handler;
pub use routes::{Routes, Service};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::connections::{Admission, Refusal, refuse_all, serve_connection};
use self::shared::{Counts, ServerShared};
use crate::config::RpcConfig;
use crate::error::RpcError;
use crate::transport::{Identity, OutgoingMessage, ServerCertificate, server_endpoint};
use crate::wire::Payload;

/// The least time a shutdown leaves replies finished just before it to arrive: above
/// quinn's default ACK delay (25 ms) with room for a loaded machine.
const SETTLE_AT_LEAST: Duration = Duration::from_millis(100);

/// A bound QUIC endpoint, returned by [`RpcServer::bind`] and consumed by [`RpcServer::start`].
#[derive(Debug)]
pub struct ServerEndpoint {
    endpoint: quinn::Endpoint,
}

impl ServerEndpoint {
    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, RpcError> {
        self.endpoint.local_addr().map_err(|e| RpcError::Config(format!("cannot read the local address: {e}")))
    }
}

/// Where the server is in its life, for [`ServerHandle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Running,
    Stopped,
}

/// The certificate of the bound endpoint, once there is one: shared by the server and its
/// handles, which may replace it.
type CertificateSlot = Arc<Mutex<Option<Arc<ServerCertificate>>>>;

/// A running server, from anywhere: what [`RpcServer::spawn`] returns beside the address.
/// It reports the server's load, replaces its certificate while it runs
/// ([`reload_certificate`](Self::reload_certificate)), and stops it gracefully:
/// [`shutdown`](Self::shutdown) refuses new connections at once, answers new calls with
/// [`RpcError::Unavailable`], lets calls in flight finish within the grace period
/// ([`RpcConfig::with_shutdown_grace_period`]) and waits until the peers have acknowledged
/// their replies, then closes every connection.
///
/// [`shutdown`](Self::shutdown) does all of it. To drain in steps, as a node leaving a
/// cluster does (stop taking work, let the work in hand finish, leave, close):
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcnet::RpcError> {
/// # let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
/// # let (_addr, server) = server.spawn()?;
/// use std::time::Duration;
///
/// server.stop_accepting();                 // new connections and calls are refused
/// let drained = tokio::time::timeout(Duration::from_secs(30), server.wait_for_in_flight()).await;
/// assert!(drained.is_ok(), "no call was running");
/// // cluster.leave().await; -- if the server is a cluster member
/// server.shutdown().await;                 // closes the connections
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ServerHandle {
    token: CancellationToken,
    draining: CancellationToken,
    phase: watch::Receiver<Phase>,
    counts: Arc<Counts>,
    certificate: CertificateSlot,
}

impl ServerHandle {
    /// Starts the shutdown and waits until the server has closed. Returns at once if the
    /// server was never started.
    pub async fn shutdown(&self) {
        self.counts.draining.store(true, Ordering::Release);
        self.token.cancel();
        let mut phase = self.phase.clone();
        let _ = phase.wait_for(|p| *p != Phase::Running).await;
    }

    /// The first step of a shutdown: from now on new connections are refused and new calls
    /// on open connections are answered [`RpcError::Unavailable`] (which a balanced client
    /// sends elsewhere), while calls in flight go on. Connections stay open until
    /// [`shutdown`](Self::shutdown). Calling it again does nothing.
    pub fn stop_accepting(&self) {
        self.counts.draining.store(true, Ordering::Release);
        self.draining.cancel();
    }

    /// Resolves once no call is in flight on the server (at once if none is). After
    /// [`stop_accepting`](Self::stop_accepting) no new call starts, so this is the moment
    /// the work in hand is done; bound the wait with a timeout of your own. Calls that end
    /// while draining still wait for their replies to be acknowledged.
    pub async fn wait_for_in_flight(&self) {
        self.counts.no_calls_in_flight().await;
    }

    /// Whether shutdown has begun ([`stop_accepting`](Self::stop_accepting) or
    /// [`shutdown`](Self::shutdown) was called).
    pub fn is_shutting_down(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Calls admitted and not yet finished: handlers running, or their responses being
    /// written and acknowledged. Pings are not counted.
    pub fn in_flight_calls(&self) -> usize {
        self.counts.in_flight.load(Ordering::Acquire)
    }

    /// Connections open now, those in their handshake included.
    pub fn open_connections(&self) -> usize {
        self.counts.connections.load(Ordering::Acquire)
    }

    /// Replaces the certificate the server presents, without a restart: from PEM text, a
    /// certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1), as
    /// [`Identity::from_pem`] reads them. See [`reload_identity`](Self::reload_identity).
    ///
    /// ```no_run
    /// # async fn rotate(handle: rpcnet::ServerHandle) -> Result<(), rpcnet::RpcError> {
    /// let cert = std::fs::read("certs/server.pem").map_err(|e| rpcnet::RpcError::Config(e.to_string()))?;
    /// let key = std::fs::read("certs/server-key.pem").map_err(|e| rpcnet::RpcError::Config(e.to_string()))?;
    /// handle.reload_certificate(cert, key).await?;
    /// # Ok(()) }
    /// ```
    pub async fn reload_certificate(
        &self,
        cert_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<(), RpcError> {
        self.reload_identity(Identity::from_pem(cert_pem.as_ref(), key_pem.as_ref())?)
    }

    /// Replaces the certificate the server presents, without a restart. Handshakes from now
    /// on present `identity`; connections already open keep working on the session they
    /// made. A key that does not load or does not match the leaf certificate is a
    /// [`RpcError::Config`] and the certificate in service stays; so is a server that is
    /// not bound yet (bind first: [`RpcServer::bind`] or [`RpcServer::spawn`]).
    ///
    /// A client that resumes a TLS session made before the reload (session resumption is
    /// on by default in rustls clients) is not shown the new certificate on that
    /// handshake: the session stands for the certificate it was made with.
    pub fn reload_identity(&self, identity: Identity) -> Result<(), RpcError> {
        let certificate = self.certificate.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let Some(certificate) = certificate else {
            return Err(RpcError::Config("the server is not bound yet: there is no certificate to replace".into()));
        };
        certificate.replace(identity)?;
        tracing::info!("server certificate replaced");
        Ok(())
    }
}

/// The former name of [`ServerHandle`], from when it only shut servers down.
#[deprecated(since = "0.2.0", note = "renamed `ServerHandle`")]
pub type ShutdownHandle = ServerHandle;

/// A server of raw-bytes handlers and typed services over QUIC.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rpcnet::RpcError> {
/// use rpcnet::{RpcClient, RpcConfig, RpcServer};
///
/// let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
/// server.register("greet", |name: Vec<u8>| async move {
///     Ok([b"Hello, ".as_slice(), &name].concat())
/// }).await;
/// let endpoint = server.bind()?;
/// let addr = server.local_addr().expect("bound");
/// let shutdown = server.handle();
/// tokio::spawn(async move { server.start(endpoint).await });
///
/// let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await?;
/// assert_eq!(client.call("greet", b"World".to_vec()).await?, b"Hello, World");
/// shutdown.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RpcServer {
    config: RpcConfig,
    routes: Routes,
    local_addr: Option<SocketAddr>,
    /// Cancelled by `shutdown`: the shutdown proper.
    token: CancellationToken,
    /// Cancelled by `stop_accepting`, and by `shutdown` (a child of `token`).
    draining: CancellationToken,
    phase: watch::Sender<Phase>,
    counts: Arc<Counts>,
    certificate: CertificateSlot,
    /// The layers added so far, around the handlers; `None`: calls go straight to them.
    layers: Option<ServerService>,
    authorization: Option<authorize::Authorization>,
}

impl RpcServer {
    /// A server with no methods yet.
    pub fn new(config: RpcConfig) -> Self {
        let token = CancellationToken::new();
        Self {
            config,
            routes: Routes::new(),
            local_addr: None,
            draining: token.child_token(),
            token,
            phase: watch::Sender::new(Phase::Idle),
            counts: Arc::default(),
            certificate: CertificateSlot::default(),
            layers: None,
            authorization: None,
        }
    }

    /// Puts a tower layer around every call, and around the layers added before it; see
    /// [`ServerService`] for what a layer sees and an example.
    pub fn layer<L>(&mut self, layer: L) -> &mut Self
    where
        L: tower::Layer<ServerService>,
        L::Service: tower::Service<ServerCall, Response = ServerReply> + Send + 'static,
        <L::Service as tower::Service<ServerCall>>::Error: Into<tower::BoxError>,
        <L::Service as tower::Service<ServerCall>>::Future: Send + 'static,
    {
        let inner = self.layers.take().unwrap_or_else(layers::Layers::innermost);
        self.layers = Some(layers::Layers::wrap(inner, layer));
        self
    }
    /// Registers a unary handler of raw bytes under `method`; a second registration of the
    /// same name replaces the first.
    ///
    /// The handler's `Err` reaches the caller as that error: use [`RpcError::service`] for
    /// an error of your own, which the client receives as [`RpcError::Service`].
    pub async fn register<F, Fut>(&mut self, method: &str, handler: F)
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, RpcError>> + Send + 'static,
    {
        // Straight to a handler of the server's own form: one wrapper around the user's
        // future, not two (through `Routes::unary`).
        let handler = move |request: Payload| -> BoxFuture<Result<OutgoingMessage, RpcError>> {
            let response = handler(Vec::from(request.into_bytes()));
            Box::pin(async move { response.await.map(|reply| OutgoingMessage::Payload(Bytes::from(reply))) })
        };
        self.routes.insert(method, Handler::Unary(Arc::new(handler)));
    }

    /// Registers a server-streaming handler: one request, a stream of responses. Only
    /// server-streaming calls reach it; [`register_streaming`](Self::register_streaming)
    /// takes every streaming kind.
    pub async fn register_server_streaming<F, Fut, S>(&mut self, method: &str, handler: F)
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static,
        S: Stream<Item = Result<Vec<u8>, RpcError>> + Send + 'static,
    {
        self.routes.server_streaming(method, move |request: Bytes| {
            let responses = handler(Vec::from(request));
            async move { routes::bytes_stream(responses.await) }
        });
    }

    /// Registers a client-streaming handler: a stream of requests, one response. Only
    /// client-streaming calls reach it.
    ///
    /// If the requests end with an error (see [`RequestStream`]), the call fails with it,
    /// whatever the handler returns.
    pub async fn register_client_streaming<F, Fut>(&mut self, method: &str, handler: F)
    where
        F: Fn(RequestStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, RpcError>> + Send + 'static,
    {
        self.routes.client_streaming(method, move |requests| {
            let (requests, failure) = RequestStream::new(routes::vec_stream(requests));
            let response = handler(requests);
            async move {
                let response = response.await;
                failure.check()?;
                response.map(Bytes::from)
            }
        });
    }

    /// Registers a streaming handler, as rpcnet 0.1 did: it reads a stream of requests and
    /// returns a stream of responses, and serves every streaming kind of call.
    ///
    /// - [`RpcClient::call_streaming`](crate::RpcClient::call_streaming) (bidirectional):
    ///   requests and responses flow independently.
    /// - [`RpcClient::call_server_streaming`](crate::RpcClient::call_server_streaming): the
    ///   requests are the caller's one request.
    /// - [`RpcClient::call_client_streaming`](crate::RpcClient::call_client_streaming): the
    ///   handler must yield exactly one response; none, or a second one, fails the call
    ///   with [`RpcError::Protocol`] naming the method. The response is sent once the
    ///   handler's stream has ended.
    ///
    /// An `Err` item ends the call with that error (after the responses before it). If
    /// the requests end with an error (see [`RequestStream`]), the call fails with it in
    /// place of the handler's next response.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use rpcnet::{RpcConfig, RpcServer};
    /// # async fn demo() {
    /// let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    /// server
    ///     .register_streaming("upper", |requests| async move {
    ///         requests.map(|request| Ok(request.to_ascii_uppercase()))
    ///     })
    ///     .await;
    /// # }
    /// ```
    pub async fn register_streaming<F, Fut, S>(&mut self, method: &str, handler: F)
    where
        F: Fn(RequestStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = S> + Send + 'static,
        S: Stream<Item = Result<Vec<u8>, RpcError>> + Send + 'static,
    {
        self.routes.bidi_streaming(method, move |requests| {
            let (requests, failure) = RequestStream::new(routes::vec_stream(requests));
            let responses = handler(requests);
            async move { failure.responses(responses.await) }
        });
    }

    /// Adds every method of a service, such as the `XServer<T>` that `#[rpc_service]`
    /// generates. Several services can share one server, and one connection.
    pub fn add_service(&mut self, service: impl Service) -> &mut Self {
        self.routes.merge(service.routes());
        self
    }

    /// The registered method names, sorted.
    pub fn methods(&self) -> Vec<String> {
        self.routes.methods()
    }

    /// Binds the QUIC endpoint; [`local_addr`](Self::local_addr) is known afterwards.
    pub fn bind(&mut self) -> Result<ServerEndpoint, RpcError> {
        self.config.validate()?;
        let (endpoint, certificate) = server_endpoint(&self.config.endpoint)?;
        *self.certificate.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(certificate);
        let endpoint = ServerEndpoint { endpoint };
        self.local_addr = Some(endpoint.local_addr()?);
        Ok(endpoint)
    }

    /// The bound address, once [`bind`](Self::bind) succeeded.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The server's [`ServerHandle`] (load, certificate reload, shutdown); take it before
    /// `start` moves the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            token: self.token.clone(),
            draining: self.draining.clone(),
            phase: self.phase.subscribe(),
            counts: self.counts.clone(),
            certificate: self.certificate.clone(),
        }
    }

    /// The same as [`handle`](Self::handle), under its former name.
    #[deprecated(since = "0.2.0", note = "renamed `handle`")]
    pub fn shutdown_handle(&self) -> ServerHandle {
        self.handle()
    }

    /// Binds and runs the server on a new task; returns its address and handle.
    pub fn spawn(mut self) -> Result<(SocketAddr, ServerHandle), RpcError> {
        let endpoint = self.bind()?;
        let addr = endpoint.local_addr()?;
        let handle = self.handle();
        tokio::spawn(async move { self.start(endpoint).await });
        Ok((addr, handle))
    }

    /// Serves connections until [`ServerHandle::shutdown`] is called, then shuts down
    /// gracefully and returns.
    pub async fn start(self, endpoint: ServerEndpoint) -> Result<(), RpcError> {
        let endpoint = endpoint.endpoint;
        let mut shared = ServerShared::new(self.routes.with_builtins(), self.layers, &self.config, self.counts.clone());
        shared.local_addr = endpoint.local_addr().ok();
        let shared = Arc::new(shared.with_authorization(self.authorization));
        self.phase.send_replace(Phase::Running);
        let calls = TaskTracker::new();
        let admission =
            Admission::new(self.config.max_connections, self.config.max_connections_per_address, self.counts.clone());
        let addr = self.local_addr;
        tracing::info!(?addr, methods = shared.routes.methods().len(), "rpcnet server started");

        loop {
            let incoming = tokio::select! {
                // Draining first: once `stop_accepting` has run, the next turn refuses.
                biased;
                () = self.draining.cancelled() => break,
                incoming = endpoint.accept() => incoming,
            };
            let Some(incoming) = incoming else { break };
            let remote = incoming.remote_address();
            match admission.admit(remote.ip()) {
                Ok(slot) => {
                    let connection = serve_connection(
                        incoming,
                        shared.clone(),
                        calls.clone(),
                        self.config.handshake_idle_timeout,
                        self.config.zero_rtt(),
                        slot,
                    );
                    tokio::spawn(connection);
                }
                Err(refusal) => {
                    match refusal {
                        Refusal::Full { limit } => {
                            tracing::warn!(%remote, limit, "refusing a connection: too many connections")
                        }
                        Refusal::AddressFull { limit } => {
                            tracing::warn!(%remote, limit, "refusing a connection: too many from this address")
                        }
                    }
                    incoming.refuse();
                }
            }
        }

        shared.begin_shutdown();
        // Graceful shutdown: new connections are refused at once; new calls on open
        // connections are answered `Unavailable` (see serve_call); calls in flight get the
        // grace period, and each waits until its reply has been acknowledged. After
        // `stop_accepting` alone, that state lasts until `shutdown`.
        let refusing = tokio::spawn(refuse_all(endpoint.clone()));
        tracing::info!(?addr, in_flight = calls.len(), "rpcnet server draining");
        self.token.cancelled().await;
        calls.close();
        let grace = self.config.shutdown_grace_period;
        let grace_ends = tokio::time::Instant::now() + grace;
        if tokio::time::timeout_at(grace_ends, calls.wait()).await.is_err() {
            tracing::warn!(
                ?grace,
                in_flight = calls.len(),
                "calls still running after the grace period; closing anyway"
            );
        }
        // Calls that ended during the shutdown waited for their replies' acknowledgements;
        // replies finished just before it began may still be on their way: a few round
        // trips (and the peer's ACK delay) let them arrive.
        if let Some(rtt) = shared.longest_rtt() {
            let settle = (4 * rtt).max(SETTLE_AT_LEAST);
            tokio::time::sleep_until(grace_ends.min(tokio::time::Instant::now() + settle)).await;
        }
        endpoint.close(crate::transport::SHUTDOWN_CODE, b"server shutting down");
        refusing.abort();
        // Give the close frames a moment to leave; a peer that never answers must not
        // hold up shutdown.
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        tracing::info!(?addr, "rpcnet server stopped");
        self.phase.send_replace(Phase::Stopped);
        Ok(())
    }
}
