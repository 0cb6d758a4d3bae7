//! Serving one call on one stream: read the head, find the handler, run it under the call's
//! deadline while watching for cancellation, and write the response frames.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use quinn::{RecvStream, SendStream, VarInt};
use tokio::time::Instant;

use super::ServerShared;
use super::routes::Handler;
use crate::transport::{FrameReader, HeadError, IncomingHead, write_error};
use crate::wire::{FrameHeader, FrameTag, PROTOCOL_VERSION, StatusCode, StreamCode, WireError, encode_status};
use crate::{RpcError, RpcStream};

/// Writes the response half of a call: the version byte before the first frame, then frames.
struct Responder {
    send: SendStream,
    started: bool,
    max_frame_len: u32,
}

impl Responder {
    /// Header bytes for a frame, with the version byte in front of the first one.
    fn header(&mut self, tag: FrameTag, len: usize) -> Result<Bytes, RpcError> {
        let header = FrameHeader::new(tag, len, self.max_frame_len).map_err(|e| {
            RpcError::FrameTooLarge(format!("the response {e}; raise RpcConfig::with_max_frame_size on both sides"))
        })?;
        let mut buf = BytesMut::with_capacity(6);
        if !std::mem::replace(&mut self.started, true) {
            buf.extend_from_slice(&[PROTOCOL_VERSION]);
        }
        header.encode(&mut buf);
        Ok(buf.freeze())
    }

    async fn message(&mut self, payload: Bytes) -> Result<(), RpcError> {
        let header = self.header(FrameTag::Message, payload.len())?;
        self.send.write_all_chunks(&mut [header, payload]).await.map_err(write_error)
    }

    /// Writes `err` as the terminal frame and finishes the stream.
    async fn fail(&mut self, err: &RpcError) {
        let (tag, payload) = match err {
            RpcError::Service(service) => (FrameTag::ServiceError, Bytes::from(service.payload.clone())),
            other => {
                let mut payload = BytesMut::new();
                encode_status(other.status_code(), &other.status_message(), &mut payload);
                (FrameTag::Status, payload.freeze())
            }
        };
        let frame = match self.header(tag, payload.len()) {
            Ok(header) => [header, payload],
            Err(too_large) => {
                // A service error larger than a frame: send a status saying so instead.
                let mut payload = BytesMut::new();
                encode_status(StatusCode::FrameTooLarge, &too_large.to_string(), &mut payload);
                let header = self.header(FrameTag::Status, payload.len()).expect("status messages are small");
                [header, payload.freeze()]
            }
        };
        if self.send.write_all_chunks(&mut { frame }).await.is_ok() {
            self.finish();
        }
    }

    /// Answers a request that never reached a handler, with a status code of its own.
    async fn refuse(&mut self, code: StatusCode, message: &str) {
        let mut payload = BytesMut::new();
        encode_status(code, message, &mut payload);
        if let Ok(header) = self.header(FrameTag::Status, payload.len())
            && self.send.write_all_chunks(&mut [header, payload.freeze()]).await.is_ok()
        {
            self.finish();
        }
    }

    fn finish(&mut self) {
        let _ = self.send.finish();
    }

    /// Finishes a successful response; one without messages still carries its version byte.
    async fn finish_ok(&mut self) {
        if !std::mem::replace(&mut self.started, true)
            && self.send.write_all(&[PROTOCOL_VERSION]).await.is_err()
        {
            return;
        }
        self.finish();
    }

    fn reset(&mut self, code: StreamCode) {
        let _ = self.send.reset(VarInt::from_u32(code.as_u32()));
    }
}

/// Serves one call; never fails: every problem is answered on the stream and logged.
pub(crate) async fn serve_call(send: SendStream, recv: RecvStream, shared: Arc<ServerShared>) {
    let mut reader = FrameReader::new(recv, shared.limits);
    let mut responder = Responder { send, started: false, max_frame_len: shared.limits.max_frame_len };

    let head = match tokio::time::timeout(shared.request_read_timeout, reader.read_request_head()).await {
        Ok(Ok(head)) => head,
        Ok(Err(HeadError::Wire(err))) => {
            tracing::warn!(error = %err, "rejecting a call with a malformed request head");
            let code = match err {
                WireError::UnsupportedVersion(_) => StatusCode::UnsupportedVersion,
                WireError::FrameTooLarge { .. } | WireError::HeadTooLarge { .. } => StatusCode::FrameTooLarge,
                _ => StatusCode::Protocol,
            };
            reader.stop(StreamCode::Protocol);
            responder.refuse(code, &err.to_string()).await;
            return;
        }
        Ok(Err(HeadError::Stream(err))) => {
            tracing::debug!(error = %err, "call stream failed before its head arrived");
            responder.reset(StreamCode::Protocol);
            return;
        }
        Err(_) => {
            tracing::warn!(timeout = ?shared.request_read_timeout, "request head did not arrive in time; freeing the stream");
            reader.stop(StreamCode::Cancelled);
            responder.refuse(StatusCode::DeadlineExceeded, "the request head did not arrive in time").await;
            return;
        }
    };

    if shared.shutdown.is_cancelled() {
        reader.stop(StreamCode::Shutdown);
        responder.refuse(StatusCode::Unavailable, "the server is shutting down").await;
        return;
    }
    let Some(handler) = shared.routes.get(&head.method) else {
        tracing::warn!(method = %head.method_name(), "call to an unknown method");
        reader.stop(StreamCode::Cancelled);
        responder.refuse(StatusCode::UnknownMethod, &head.method_name()).await;
        return;
    };
    if handler.kind() != head.kind {
        let message =
            format!("method `{}` is {:?} but was called as {:?}", head.method_name(), handler.kind(), head.kind);
        tracing::warn!("{message}");
        reader.stop(StreamCode::Protocol);
        responder.refuse(StatusCode::Protocol, &message).await;
        return;
    }
    let Some(_permit) = InFlight::acquire(&shared) else {
        tracing::warn!(method = %head.method_name(), limit = shared.max_in_flight_calls, "refusing a call: too many calls in flight");
        reader.stop(StreamCode::Cancelled);
        responder.refuse(StatusCode::Overloaded, "too many calls in flight on the server").await;
        return;
    };

    let deadline = head.deadline.map(|d| Instant::now() + d);
    let interruption = interruption(responder.send.stopped(), deadline);
    tokio::pin!(interruption);
    let result = run_handler(handler.clone(), reader, &mut responder, deadline, interruption.as_mut(), &shared).await;
    match result {
        Ok(()) => responder.finish_ok().await,
        Err(Outcome::Cancelled) => {
            tracing::debug!(method = %head.method_name(), "call cancelled by the client");
            responder.reset(StreamCode::Cancelled);
        }
        Err(Outcome::Failed(err)) => {
            log_failure(&head, &err);
            responder.fail(&err).await;
        }
    }
}

fn log_failure(head: &IncomingHead, err: &RpcError) {
    match err {
        RpcError::Service(_) => tracing::debug!(method = %head.method_name(), "handler returned a service error"),
        RpcError::Internal(_) => tracing::error!(method = %head.method_name(), error = %err, "handler failed"),
        _ => tracing::warn!(method = %head.method_name(), error = %err, "call failed"),
    }
}

/// How a call ended other than by success.
enum Outcome {
    /// The client gave up (stopped reading the response): nothing more to write.
    Cancelled,
    /// The call failed: write this error as the terminal frame.
    Failed(RpcError),
}

impl From<RpcError> for Outcome {
    fn from(err: RpcError) -> Self {
        Self::Failed(err)
    }
}

/// Counts a call in flight on the server; refuses past the configured maximum.
struct InFlight<'a>(&'a ServerShared);

impl<'a> InFlight<'a> {
    fn acquire(shared: &'a ServerShared) -> Option<Self> {
        let before = shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= shared.max_in_flight_calls {
            shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Self(shared))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reads the single request message of a unary or server-streaming call, bounded by the
/// deadline and by the server's read timeout.
async fn read_single_request(
    reader: &mut FrameReader,
    deadline: Option<Instant>,
    shared: &ServerShared,
) -> Result<Bytes, RpcError> {
    let read_limit = Instant::now() + shared.request_read_timeout;
    let limit = deadline.map_or(read_limit, |d| d.min(read_limit));
    let read = async {
        let Some(message) = reader.next_message().await? else {
            return Err(RpcError::Protocol("the request ended without its message".into()));
        };
        reader.expect_end().await?;
        Ok(message)
    };
    match tokio::time::timeout_at(limit, read).await {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(err)) => {
            reader.stop(StreamCode::Protocol);
            Err(err)
        }
        Err(_) => {
            reader.stop(StreamCode::Cancelled);
            Err(RpcError::Timeout)
        }
    }
}

/// A request stream that reads messages from the call's stream as the handler polls it.
fn request_stream(reader: FrameReader) -> RpcStream<Bytes> {
    RpcStream::new(futures::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        match reader.next_message().await {
            Ok(Some(message)) => Some((Ok(message), Some(reader))),
            Ok(None) => None,
            Err(err) => {
                reader.stop(StreamCode::Protocol);
                Some((Err(err), None))
            }
        }
    }))
}

/// Resolves when the call must stop early: the client stopped reading the response (its
/// call future was dropped), or the deadline passed. Created once per call.
async fn interruption(stopped: impl Future, deadline: Option<Instant>) -> Outcome {
    match deadline {
        Some(deadline) => tokio::select! {
            _ = stopped => Outcome::Cancelled,
            _ = tokio::time::sleep_until(deadline) => Outcome::Failed(RpcError::Timeout),
        },
        None => {
            stopped.await;
            Outcome::Cancelled
        }
    }
}

/// Runs a handler future until it finishes or the call is interrupted, turning a panic into
/// an internal error so the server and the connection live on.
async fn guarded<T>(
    fut: impl Future<Output = Result<T, RpcError>>,
    interruption: &mut Pin<&mut impl Future<Output = Outcome>>,
) -> Result<T, Outcome> {
    tokio::select! {
        biased;
        outcome = AssertUnwindSafe(fut).catch_unwind() => match outcome {
            Ok(result) => result.map_err(Outcome::Failed),
            Err(panic) => Err(Outcome::Failed(RpcError::Internal(format!(
                "the handler panicked: {}",
                panic_message(&panic)
            )))),
        },
        outcome = interruption.as_mut() => Err(outcome),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Writes every message of a response stream, honouring the deadline and cancellation.
async fn drive_responses(
    mut responses: RpcStream<Bytes>,
    responder: &mut Responder,
    interruption: &mut Pin<&mut impl Future<Output = Outcome>>,
) -> Result<(), Outcome> {
    loop {
        let next = guarded(async { Ok(responses.next().await) }, interruption).await?;
        match next {
            None => return Ok(()),
            Some(Ok(message)) => responder.message(message).await.map_err(|err| match err {
                RpcError::Cancelled(_) | RpcError::ConnectionLost(_) => Outcome::Cancelled,
                other => Outcome::Failed(other),
            })?,
            Some(Err(err)) => return Err(Outcome::Failed(err)),
        }
    }
}

async fn run_handler(
    handler: Handler,
    mut reader: FrameReader,
    responder: &mut Responder,
    deadline: Option<Instant>,
    mut interruption: Pin<&mut impl Future<Output = Outcome>>,
    shared: &ServerShared,
) -> Result<(), Outcome> {
    let interruption = &mut interruption;
    match handler {
        Handler::Unary(handler) => {
            let request = read_single_request(&mut reader, deadline, shared).await?;
            let response = guarded(handler(request), interruption).await?;
            responder.message(response).await.map_err(Outcome::from)
        }
        Handler::ServerStreaming(handler) => {
            let request = read_single_request(&mut reader, deadline, shared).await?;
            let responses = guarded(handler(request).map(Ok), interruption).await?;
            drive_responses(responses, responder, interruption).await
        }
        Handler::ClientStreaming(handler) => {
            let response = guarded(handler(request_stream(reader)), interruption).await?;
            responder.message(response).await.map_err(Outcome::from)
        }
        Handler::BidiStreaming(handler) => {
            let responses = guarded(handler(request_stream(reader)).map(Ok), interruption).await?;
            drive_responses(responses, responder, interruption).await
        }
    }
}
