//! Serving one call on one stream: read the head, find the handler, admit the call, run it
//! under its deadline while watching for cancellation, and answer on the stream.
//! Writing the response lives in `respond.rs`; deadlines and cancellation in `interrupt.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::StreamExt;
use quinn::{RecvStream, SendStream};
use tokio::time::Instant;

use super::ServerShared;
use super::interrupt::{Deadline, Interruption, Outcome, timeout_if_pending};
use super::respond::Responder;
use super::routes::{BidiStreamingFn, ClientStreamingFn, Handler, ServerStreamingFn, UnaryFn};
use crate::transport::{FrameReader, HeadError};
use crate::wire::{FrameTag, StatusCode, StreamCode, WireError};
use crate::{RpcError, RpcStream};

/// Serves one call; never fails: every problem is answered on the stream and logged.
pub(crate) async fn serve_call(send: SendStream, recv: RecvStream, shared: Arc<ServerShared>) {
    let mut reader = FrameReader::new(recv, shared.limits);
    let mut responder = Responder::new(send, shared.limits.max_frame_len);

    let read_timeout = shared.request_read_timeout;
    let routes = &shared.routes;
    let find = |method: &[u8]| routes.get(method);
    let head = match timeout_if_pending(|| Instant::now() + read_timeout, reader.read_request_head(find)).await {
        Some(Ok(head)) => head,
        Some(Err(HeadError::Wire(err))) => {
            tracing::warn!(error = %err, "rejecting a call with a malformed request head");
            let code = match err {
                WireError::UnsupportedVersion(_) => StatusCode::UnsupportedVersion,
                WireError::FrameTooLarge { .. } | WireError::HeadTooLarge { .. } => StatusCode::FrameTooLarge,
                _ => StatusCode::Protocol,
            };
            reader.stop(StreamCode::Protocol);
            refuse(&mut responder, code, &err.to_string()).await;
            return;
        }
        Some(Err(HeadError::Stream(err))) => {
            tracing::debug!(error = %err, "call stream failed before its head arrived");
            responder.reset(StreamCode::Protocol);
            return;
        }
        None => {
            tracing::warn!(timeout = ?read_timeout, "request head did not arrive in time; freeing the stream");
            reader.stop(StreamCode::Cancelled);
            refuse(&mut responder, StatusCode::DeadlineExceeded, "the request head did not arrive in time").await;
            return;
        }
    };

    if shared.shutting_down.load(Ordering::Acquire) {
        reader.stop(StreamCode::Shutdown);
        refuse(&mut responder, StatusCode::Unavailable, "the server is shutting down").await;
        return;
    }
    let (method, handler) = match head.route {
        Ok((name, handler)) => (MethodName(name), handler),
        Err(unknown) => {
            tracing::warn!(method = %unknown, "call to an unknown method");
            reader.stop(StreamCode::Cancelled);
            refuse(&mut responder, StatusCode::UnknownMethod, &unknown).await;
            return;
        }
    };
    if handler.kind() != head.kind {
        let message = format!("method `{method}` is {:?} but was called as {:?}", handler.kind(), head.kind);
        tracing::warn!("{message}");
        reader.stop(StreamCode::Protocol);
        refuse(&mut responder, StatusCode::Protocol, &message).await;
        return;
    }
    // A ping is a sign of life, not work: a server at its limit still answers it.
    let ping = method.0 == crate::wire::PING_METHOD.as_bytes();
    let permit = if ping { Some(None) } else { InFlight::acquire(&shared).map(Some) };
    let Some(_permit) = permit else {
        tracing::warn!(%method, limit = shared.max_in_flight_calls, "refusing a call: too many calls in flight");
        reader.stop(StreamCode::Cancelled);
        refuse(&mut responder, StatusCode::Overloaded, "too many calls in flight on the server").await;
        return;
    };

    let mut interruption = Interruption::new(Deadline::after(head.deadline));
    let call = Call { reader, responder: &mut responder, interruption: &mut interruption, shared: &shared };
    let result = match handler {
        // The handler stage is boxed: the task of every call then starts small (it is moved
        // several times on its way into the runtime) and the box, under 1 KiB, comes from
        // the allocator's fast path.
        Handler::Unary(handler) => Box::pin(call.unary(handler.as_ref())).await,
        Handler::ServerStreaming(handler) => Box::pin(call.server_streaming(handler.as_ref())).await,
        Handler::ClientStreaming(handler) => Box::pin(call.client_streaming(handler.as_ref())).await,
        Handler::BidiStreaming(handler) => Box::pin(call.bidi_streaming(handler.as_ref())).await,
    };
    match result {
        Ok(()) => responder.finish_ok().await,
        Err(Outcome::Cancelled) => {
            tracing::debug!(%method, "call cancelled by the client");
            responder.reset(StreamCode::Cancelled);
        }
        Err(Outcome::Failed(err)) => {
            log_failure(method, &err);
            // Boxed, like every rare path here: it keeps the future of each call small.
            Box::pin(responder.fail(&err)).await;
        }
    }
}

/// Answers a call that never reached a handler (boxed: a rare path).
async fn refuse(responder: &mut Responder, code: StatusCode, message: &str) {
    Box::pin(responder.refuse(code, message)).await;
}

fn log_failure(method: MethodName<'_>, err: &RpcError) {
    match err {
        RpcError::Service(_) => tracing::debug!(%method, "handler returned a service error"),
        RpcError::Internal(_) => tracing::error!(%method, error = %err, "handler failed"),
        _ => tracing::warn!(%method, error = %err, "call failed"),
    }
}

/// A registered method name (UTF-8, as every registered name), shown in logs and messages.
#[derive(Clone, Copy)]
struct MethodName<'a>(&'a [u8]);

impl std::fmt::Display for MethodName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.0))
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

/// One admitted call: its request reader, its response writer, and what can interrupt it.
struct Call<'a> {
    reader: FrameReader,
    responder: &'a mut Responder,
    interruption: &'a mut Interruption,
    shared: &'a ServerShared,
}

impl Call<'_> {
    /// Reads the single request message of a unary or server-streaming call, bounded by
    /// the deadline and by the server's read timeout (armed only if the message is late).
    async fn single_request(&mut self) -> Result<Bytes, RpcError> {
        let reader = &mut self.reader;
        let read = async {
            match reader.read_last_frame(false).await? {
                Some((FrameTag::Message, message)) => Ok(message),
                Some((tag, _)) => Err(RpcError::Protocol(format!("unexpected {tag:?} frame in a request"))),
                None => Err(RpcError::Protocol("the request ended without its message".into())),
            }
        };
        let (deadline, read_timeout) = (&mut self.interruption.deadline, self.shared.request_read_timeout);
        let limit = || {
            let read_limit = Instant::now() + read_timeout;
            deadline.instant().map_or(read_limit, |d| d.min(read_limit))
        };
        match timeout_if_pending(limit, read).await {
            Some(Ok(message)) => Ok(message),
            Some(Err(err)) => {
                self.reader.stop(StreamCode::Protocol);
                Err(err)
            }
            None => {
                self.reader.stop(StreamCode::Cancelled);
                Err(RpcError::Timeout)
            }
        }
    }

    async fn unary(mut self, handler: &UnaryFn) -> Result<(), Outcome> {
        let request = self.single_request().await?;
        let response = self.interruption.guard(&self.responder.send, handler(request)).await?;
        self.responder.message(response).await.map_err(Outcome::from)
    }

    async fn server_streaming(mut self, handler: &ServerStreamingFn) -> Result<(), Outcome> {
        let request = self.single_request().await?;
        let responses = self.interruption.guard(&self.responder.send, async { Ok(handler(request).await) }).await?;
        self.drive(responses).await
    }

    async fn client_streaming(self, handler: &ClientStreamingFn) -> Result<(), Outcome> {
        let requests = request_stream(self.reader);
        let response = self.interruption.guard(&self.responder.send, handler(requests)).await?;
        self.responder.message(response).await.map_err(Outcome::from)
    }

    async fn bidi_streaming(self, handler: &BidiStreamingFn) -> Result<(), Outcome> {
        let requests = request_stream(self.reader);
        let responses = self.interruption.guard(&self.responder.send, async { Ok(handler(requests).await) }).await?;
        drive(responses, self.responder, self.interruption).await
    }

    async fn drive(self, responses: RpcStream<Bytes>) -> Result<(), Outcome> {
        drive(responses, self.responder, self.interruption).await
    }
}

/// Writes every message of a response stream, honouring the deadline and cancellation.
async fn drive(
    mut responses: RpcStream<Bytes>,
    responder: &mut Responder,
    interruption: &mut Interruption,
) -> Result<(), Outcome> {
    loop {
        match interruption.guard(&responder.send, async { Ok(responses.next().await) }).await? {
            None => return Ok(()),
            Some(Ok(message)) => responder.message(message).await.map_err(|err| match err {
                RpcError::Cancelled(_) | RpcError::ConnectionLost(_) => Outcome::Cancelled,
                other => Outcome::Failed(other),
            })?,
            Some(Err(err)) => return Err(Outcome::Failed(err)),
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
