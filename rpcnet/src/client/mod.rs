//! The client of one server: one QUIC connection (`connection.rs`), re-established after
//! it is lost, and one stream per call (`call.rs`) for unary calls and the three streaming
//! kinds, each under a deadline fixed when the call starts (`options.rs`, `timers.rs`).

mod call;
mod connection;
mod early;
mod options;
mod timers;

pub(crate) use options::CallMetadata;
pub use options::{CallOptions, ResponseMetadata};

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::Either;
use futures::{Stream, StreamExt};
use quinn::{RecvStream, SendStream};
use rustls::pki_types::CertificateDer;
use tokio::time::Instant;

use self::call::{RequestWriter, ResponseReader, encode_request, send_all};
use self::connection::ClientInner;
use self::early::{Handshake, Opened};
use crate::config::RpcConfig;
use crate::deadline::Deadline;
use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::telemetry;
use crate::transport::{ClientEndpoint, Outgoing, OutgoingMessage};
use crate::wire::{CallKind, Payload};

/// A client of one server. Cheap to clone: clones share the connection, and calls from any
/// number of tasks run concurrently, each on its own QUIC stream.
///
/// If the connection is lost, the next call connects again. A call whose future is dropped
/// is cancelled: both halves of its stream are reset and the server drops the handler.
///
/// See [`RpcServer`](crate::RpcServer) for a complete example.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient").field("remote", &self.inner.remote).finish_non_exhaustive()
    }
}

/// After a failed write: if the server stopped reading our request, it said why in its
/// response; that answer is the better error.
async fn server_answer(reader: &mut ResponseReader, write_err: RpcError) -> RpcError {
    if !matches!(write_err, RpcError::Cancelled(_)) {
        return write_err;
    }
    match tokio::time::timeout(Duration::from_secs(1), reader.next_message()).await {
        Ok(Err(answer)) => answer,
        _ => write_err,
    }
}

impl RpcClient {
    /// Connects to the server at `addr`, verifying its certificate against the trust anchors
    /// of `config` and the name [`RpcConfig::with_server_name`] (default `localhost`).
    ///
    /// With [`RpcConfig::with_zero_rtt`] and a session saved from an earlier connection to
    /// a server of that name, it resumes the session and returns at once, before the
    /// handshake completes; a failed handshake then fails the calls instead.
    pub async fn connect(addr: SocketAddr, config: RpcConfig) -> Result<Self, RpcError> {
        config.validate()?;
        Self::connect_via(ClientEndpoint::new(&config.endpoint)?, addr, &config).await
    }

    /// Connects through an endpoint shared with other clients (a balanced channel's).
    pub(crate) async fn connect_via(
        endpoint: ClientEndpoint,
        addr: SocketAddr,
        config: &RpcConfig,
    ) -> Result<Self, RpcError> {
        let client = Self { inner: Arc::new(ClientInner::new(endpoint, addr, config)) };
        client.inner.reconnect().await?;
        Ok(client)
    }

    /// The deadline of calls that set none.
    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        self.inner.default_timeout
    }

    /// The server's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.remote
    }

    /// Whether the client has a live connection right now (it reconnects on the next call
    /// if not).
    pub fn is_connected(&self) -> bool {
        self.inner.live().is_some()
    }

    /// Trusts `certs` (certificates or CAs, DER) instead of the configured trust anchors
    /// for the connections this client makes from now on: the one open now keeps working
    /// until it is lost or [closed](Self::close). TLS sessions saved for resumption are
    /// dropped with the old trust. An empty list, or a certificate that cannot be parsed,
    /// is a [`RpcError::Config`] and changes nothing.
    ///
    /// Clients connected through one [`RpcConfig`]'s balanced channel share one endpoint;
    /// this reloads only this client's own endpoint (the one [`connect`](Self::connect)
    /// made).
    pub fn reload_trust(&self, certs: Vec<CertificateDer<'static>>) -> Result<(), RpcError> {
        self.inner.endpoint().reload_trust(certs)
    }

    /// Closes the connection; calls in flight fail, and the next call connects again.
    pub fn close(&self) {
        if let Some(conn) = self.inner.live() {
            conn.close(quinn::VarInt::from_u32(0), b"client closed");
        }
    }

    /// Closes the connection for good: calls in flight fail with
    /// [`RpcError::ConnectionLost`], later calls with [`RpcError::Connection`] (never sent).
    /// A balanced channel retires the client of an endpoint that left its source's set.
    pub(crate) fn retire(&self) {
        self.inner.retire();
    }

    /// Calls the server's built-in ping ([`PING_METHOD`](crate::wire::PING_METHOD)) and
    /// returns the round trip. The server answers it outside its limit of calls in flight,
    /// so it tells whether the server is alive and reachable, not whether it is busy.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, RpcError> {
        let started = Instant::now();
        let deadline = Deadline::At(started + timeout);
        self.unary(crate::wire::PING_METHOD, Bytes::new().into(), deadline, started, false, CallMetadata::NONE, drop)
            .await?;
        Ok(started.elapsed())
    }

    /// A unary call with the default deadline.
    pub async fn call(&self, method: &str, payload: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        self.call_with(method, payload, CallOptions::default()).await.map(Vec::from)
    }

    /// A unary call with its own deadline.
    pub async fn call_with_timeout(
        &self,
        method: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let options = CallOptions::new().with_timeout(timeout);
        self.call_with(method, payload, options).await.map(Vec::from)
    }

    /// A unary call on [`Bytes`] with per-call options: the lowest-level call.
    // A plain function returning the call's future, not an `async fn` awaiting it: one
    // layer of future less costs ~360 fewer instructions per call (callgrind, 64 B x 64).
    pub fn call_with<'a>(
        &'a self,
        method: &'a str,
        payload: impl Into<Bytes>,
        options: CallOptions,
    ) -> impl Future<Output = Result<Bytes, RpcError>> + Send + 'a {
        let now = Instant::now();
        let deadline = options.deadline(self.inner.default_timeout, now);
        let (message, idempotent) = (OutgoingMessage::Payload(payload.into()), options.is_idempotent());
        async move {
            self.unary(method, message, deadline, now, idempotent, options.call_metadata(), Payload::into_bytes).await
        }
    }

    /// A server-streaming call: one request, a stream of responses. The stream has no
    /// deadline unless `options` sets one.
    pub async fn call_server_streaming(&self, method: &str, payload: Vec<u8>) -> Result<RpcStream<Vec<u8>>, RpcError> {
        let stream = self.server_streaming_with(method, payload, CallOptions::default()).await?;
        Ok(stream.map_messages(|b| Ok(Vec::from(b))))
    }

    /// A server-streaming call on [`Bytes`] with per-call options.
    pub async fn server_streaming_with(
        &self,
        method: &str,
        payload: impl Into<Bytes>,
        options: CallOptions,
    ) -> Result<RpcStream<Bytes>, RpcError> {
        let now = Instant::now();
        let message = OutgoingMessage::Payload(payload.into());
        let stream =
            self.server_streaming(method, message, options.deadline(None, now), now, options.call_metadata()).await?;
        Ok(stream.map_messages(|payload| Ok(payload.into_bytes())))
    }

    /// A client-streaming call: a stream of requests, one response, with the default
    /// deadline. Requests are sent as fast as the server reads them (backpressure).
    pub async fn call_client_streaming<S>(&self, method: &str, requests: S) -> Result<Vec<u8>, RpcError>
    where
        S: Stream<Item = Vec<u8>> + Send + 'static,
    {
        let requests = RpcStream::from_stream(requests.map(Bytes::from));
        self.client_streaming_with(method, requests, CallOptions::default()).await.map(Vec::from)
    }

    /// A client-streaming call on [`Bytes`] with per-call options. An `Err` in `requests`
    /// cancels the call and is returned.
    pub async fn client_streaming_with(
        &self,
        method: &str,
        requests: RpcStream<Bytes>,
        options: CallOptions,
    ) -> Result<Bytes, RpcError> {
        let now = Instant::now();
        let deadline = options.deadline(self.inner.default_timeout, now);
        let requests = requests.map_messages(|payload| Ok(OutgoingMessage::Payload(payload)));
        self.client_streaming(method, requests, deadline, now, options.call_metadata()).await.map(Payload::into_bytes)
    }

    /// A bidirectional streaming call: requests are sent on a task of their own while the
    /// returned stream reads responses; dropping the stream cancels the call.
    pub async fn call_streaming<S>(&self, method: &str, requests: S) -> Result<RpcStream<Vec<u8>>, RpcError>
    where
        S: Stream<Item = Vec<u8>> + Send + 'static,
    {
        let requests = RpcStream::from_stream(requests.map(Bytes::from));
        let stream = self.bidi_streaming_with(method, requests, CallOptions::default()).await?;
        Ok(stream.map_messages(|b| Ok(Vec::from(b))))
    }

    /// A bidirectional streaming call on [`Bytes`] with per-call options.
    pub async fn bidi_streaming_with(
        &self,
        method: &str,
        requests: RpcStream<Bytes>,
        options: CallOptions,
    ) -> Result<RpcStream<Bytes>, RpcError> {
        let now = Instant::now();
        let requests = requests.map_messages(|payload| Ok(OutgoingMessage::Payload(payload)));
        let stream =
            self.bidi_streaming(method, requests, options.deadline(None, now), now, options.call_metadata()).await?;
        Ok(stream.map_messages(|payload| Ok(payload.into_bytes())))
    }

    // ===== calls with their deadline fixed, for channels and typed calls =====

    /// Opens a call's stream and writes its head (and single message). Streaming calls are
    /// never sent in early data: their requests may not be repeatable.
    async fn start(
        &self,
        kind: CallKind,
        request: Outgoing,
        metadata: &CallMetadata,
    ) -> Result<(RequestWriter, ResponseReader), RpcError> {
        let Opened { send, recv, .. } = self.inner.open(false).await?;
        let mut writer = RequestWriter::new(send, self.inner.limits);
        let mut reader = ResponseReader::new(recv, kind, self.inner.limits, metadata);
        if let Err(err) = writer.write_request(request).await {
            // Boxed: a rare path with a timer; inline, it would bloat every call's future.
            return Err(Box::pin(server_answer(&mut reader, err)).await);
        }
        Ok((writer, reader))
    }

    /// A unary call ending at `deadline` (`now` is when it started), its response turned
    /// into what the caller wants by `finish`. `idempotent`: the call may run twice, so on
    /// a connection resumed with 0-RTT it goes out in early data, before the handshake.
    // Its parts as arguments, not a struct made for each call: every unary call comes here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn unary<T>(
        &self,
        method: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        now: Instant,
        idempotent: bool,
        metadata: &CallMetadata,
        finish: fn(Payload) -> T,
    ) -> Result<T, RpcError> {
        // The call's span is opened here and closed when the call ends, but not entered:
        // none of the caller's code runs inside it, and its place in the trace is fixed when
        // it is made (its parent, and the trace context sent with the request).
        let span = telemetry::client_span(method, self.inner.remote);
        let request = deadline.left(now).and_then(|left| {
            let metadata = telemetry::outgoing_metadata(span.as_ref(), metadata.request());
            encode_request(CallKind::Unary, method, left, metadata.as_deref(), Some(message), &self.inner.limits)
        });
        let request = telemetry::record_failure(span.as_ref(), request)?;
        // Awaited where it is made: bound to a local first, the call's future would be
        // copied into the awaiting state (callgrind: about 110 instructions of `memcpy`).
        let result = self
            .inner
            .deadlines
            .bound(deadline, now, async move {
                // `start`, written out: this is the path every unary call takes.
                let Opened { send, recv, early } = self.inner.open(idempotent).await?;
                if let Some(handshake) = early {
                    // Boxed: only the first calls of a connection resumed with 0-RTT come here.
                    return Box::pin(self.unary_in_early_data(send, recv, handshake, request, metadata))
                        .await
                        .map(finish);
                }
                let mut writer = RequestWriter::new(send, self.inner.limits);
                let mut reader = ResponseReader::new(recv, CallKind::Unary, self.inner.limits, metadata);
                if let Err(err) = writer.write_request(request).await {
                    return Err(Box::pin(server_answer(&mut reader, err)).await);
                }
                writer.finish();
                reader.single_message().await.map(finish)
            })
            .await;
        telemetry::record_result(span.as_ref(), result)
    }

    /// An idempotent unary call on a stream opened in early data. If the server rejected
    /// the early data, quinn fails the stream (`ZeroRttRejected`) rather than send it again,
    /// so the call is sent again here, once, after the handshake.
    async fn unary_in_early_data(
        &self,
        send: SendStream,
        recv: RecvStream,
        handshake: Handshake,
        request: Outgoing,
        metadata: &CallMetadata,
    ) -> Result<Payload, RpcError> {
        let again = request.clone();
        let first = self.exchange(send, recv, request, metadata).await;
        if first.is_ok() || handshake.await {
            // Accepted early data: any failure is the call's own.
            return first;
        }
        tracing::debug!(remote = %self.inner.remote, "the server rejected the early data; sending the call again");
        let Opened { send, recv, .. } = self.inner.open(false).await?;
        self.exchange(send, recv, again, metadata).await
    }

    /// Writes a unary request on its stream and reads the single response. `unary` writes
    /// the same steps out instead of calling this: the nested future costs its client about
    /// 110 instructions a call (callgrind, 64 B x 64: 11,066 written out, 11,191 through this).
    async fn exchange(
        &self,
        send: SendStream,
        recv: RecvStream,
        request: Outgoing,
        metadata: &CallMetadata,
    ) -> Result<Payload, RpcError> {
        let mut writer = RequestWriter::new(send, self.inner.limits);
        let mut reader = ResponseReader::new(recv, CallKind::Unary, self.inner.limits, metadata);
        if let Err(err) = writer.write_request(request).await {
            return Err(Box::pin(server_answer(&mut reader, err)).await);
        }
        writer.finish();
        reader.single_message().await
    }

    /// A server-streaming call whose responses end at `deadline`.
    pub(crate) async fn server_streaming(
        &self,
        method: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> Result<RpcStream<Payload>, RpcError> {
        let span = telemetry::client_span(method, self.inner.remote);
        let started = async {
            let left = deadline.left(now)?;
            let limits = &self.inner.limits;
            let sent = telemetry::outgoing_metadata(span.as_ref(), metadata.request());
            let request =
                encode_request(CallKind::ServerStreaming, method, left, sent.as_deref(), Some(message), limits)?;
            let start = self.start(CallKind::ServerStreaming, request, metadata);
            let (mut writer, reader) = self.inner.deadlines.bound(deadline, now, start).await?;
            writer.finish();
            Ok(reader.into_stream(None, deadline))
        };
        let started = started.await;
        let responses = telemetry::record_failure(span.as_ref(), started)?;
        Ok(telemetry::traced_stream(span, responses))
    }

    /// A client-streaming call ending at `deadline`.
    pub(crate) async fn client_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> Result<Payload, RpcError> {
        let span = telemetry::client_span(method, self.inner.remote);
        let call = async {
            let left = deadline.left(now)?;
            let sent = telemetry::outgoing_metadata(span.as_ref(), metadata.request());
            let request =
                encode_request(CallKind::ClientStreaming, method, left, sent.as_deref(), None, &self.inner.limits)?;
            self.inner
                .deadlines
                .bound(deadline, now, async {
                    let (mut writer, mut reader) = self.start(CallKind::ClientStreaming, request, metadata).await?;
                    // The server may answer before it has read every request (a refusal, or a
                    // handler that needs fewer): its answer ends the call even while the
                    // requests are still to come.
                    let sent = {
                        let send = std::pin::pin!(send_all(&mut writer, requests));
                        let answer = std::pin::pin!(reader.single_message());
                        match futures::future::select(send, answer).await {
                            Either::Left((sent, _)) => sent,
                            Either::Right((answer, _)) => return answer,
                        }
                    };
                    if let Err(err) = sent {
                        return Err(Box::pin(server_answer(&mut reader, err)).await);
                    }
                    reader.single_message().await
                })
                .await
        };
        telemetry::record_result(span.as_ref(), call.await)
    }

    /// A bidirectional call whose responses end at `deadline`; requests are sent on a task
    /// of their own.
    pub(crate) async fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        deadline: Deadline,
        now: Instant,
        metadata: &CallMetadata,
    ) -> Result<RpcStream<Payload>, RpcError> {
        let span = telemetry::client_span(method, self.inner.remote);
        let started = async {
            let left = deadline.left(now)?;
            let sent = telemetry::outgoing_metadata(span.as_ref(), metadata.request());
            let request =
                encode_request(CallKind::BidiStreaming, method, left, sent.as_deref(), None, &self.inner.limits)?;
            let start = self.start(CallKind::BidiStreaming, request, metadata);
            let (mut writer, reader) = self.inner.deadlines.bound(deadline, now, start).await?;
            let sending = async move {
                if let Err(err) = send_all(&mut writer, requests).await {
                    tracing::debug!(error = %err, "bidirectional call stopped sending");
                }
            };
            let sender = tokio::spawn(sending);
            Ok(reader.into_stream(Some(sender), deadline))
        };
        let started = started.await;
        let responses = telemetry::record_failure(span.as_ref(), started)?;
        Ok(telemetry::traced_stream(span, responses))
    }
}
