//! Serving one call on one stream: read the head through the wire's `RequestDecoder`, find
//! the handler, admit the call, run it under its deadline while watching for cancellation,
//! answer on the stream and wait for the answer's delivery. Responses are written by
//! `respond.rs`; waits by `interrupt.rs`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use quinn::{RecvStream, SendStream};
use tokio::time::Instant;
use tracing::Span;

use super::context::{CallScope, Context};
use super::interrupt::{Interruption, Outcome, timeout_if_pending};
use super::layers::Layers;
use super::peer::Peer;
use super::respond::Responder;
use super::routes::{
    BidiStreamingFn, ClientStreamingFn, Handler, Route, Routes, ServerStreamingFn, UnaryFn, exactly_one,
};
use super::shared::{InFlight, ServerShared};
use crate::deadline::Deadline;
use crate::error::RpcError;
use crate::metadata::{Metadata, MetadataError};
use crate::stream::RpcStream;
use crate::telemetry::{self, InSpan};
use crate::transport::{OutgoingMessage, ReadBounds, ReceiveError, ReceiveHalf};
use crate::wire::{CallKind, Payload, RequestDecoder, RequestEvent, StatusCode, StreamCode, WireError};

/// The receiving half of a call on the server.
type Requests = ReceiveHalf<RequestDecoder>;

/// A request head as read off the stream, its method looked up among the routes: `route`
/// is what was found, or the method's name (for the error) when nothing was.
struct IncomingHead<'r> {
    kind: CallKind,
    deadline: Option<Duration>,
    route: Result<(&'r Arc<str>, &'r Handler), String>,
    metadata: Result<Metadata, MetadataError>,
}

/// Reads the head and looks its method up while the name is borrowed from the stream.
async fn read_head<'r>(requests: &mut Requests, routes: &'r Routes) -> Result<IncomingHead<'r>, ReceiveError> {
    requests
        .next(|decoder| {
            Ok(decoder.poll_head()?.map(|head| IncomingHead {
                kind: head.kind,
                deadline: head.deadline,
                route: routes.get(head.method).ok_or_else(|| head.method.to_owned()),
                // Most calls carry none: an empty `Metadata` allocates nothing.
                metadata: if head.metadata.is_empty() {
                    Ok(Metadata::new())
                } else {
                    Metadata::from_wire(&head.metadata)
                },
            }))
        })
        .await
}

/// Serves one call; never fails: every problem is answered on the stream and logged.
pub(crate) async fn serve_call(
    send: SendStream,
    recv: RecvStream,
    shared: Arc<ServerShared>,
    bounds: ReadBounds,
    peer: Arc<Peer>,
) {
    let mut requests = ReceiveHalf::bounded(recv, RequestDecoder::new(shared.limits), bounds);
    let mut responder = Responder::new(send, shared.limits, shared.write_timeout);

    let read_timeout = shared.request_read_timeout;
    let head =
        match timeout_if_pending(|| Instant::now() + read_timeout, read_head(&mut requests, &shared.routes)).await {
            Some(Ok(head)) => head,
            Some(Err(ReceiveError::Wire(err))) => {
                tracing::warn!(error = %err, "rejecting a call with a malformed request head");
                let code = match err {
                    WireError::UnsupportedVersion(_) => StatusCode::UnsupportedVersion,
                    WireError::FrameTooLarge { .. } | WireError::HeadTooLarge { .. } => StatusCode::FrameTooLarge,
                    _ => StatusCode::Protocol,
                };
                requests.stop(StreamCode::Protocol);
                refuse(&mut responder, code, &err.to_string()).await;
                return;
            }
            Some(Err(ReceiveError::Stream(err))) => {
                tracing::debug!(error = %err, "call stream failed before its head arrived");
                responder.reset(StreamCode::Protocol);
                return;
            }
            None | Some(Err(ReceiveError::Stalled(_))) => {
                tracing::warn!(timeout = ?read_timeout, "request head did not arrive in time; freeing the stream");
                requests.stop(StreamCode::TimedOut);
                refuse(&mut responder, StatusCode::DeadlineExceeded, "the request head did not arrive in time").await;
                return;
            }
        };
    // The call's time starts now, with its head: whatever the handler does first counts.
    let deadline = match head.deadline {
        Some(left) => Deadline::At(Instant::now() + left),
        None => Deadline::Never,
    };
    responder.deadline = deadline;

    if shared.is_shutting_down() {
        requests.stop(StreamCode::Shutdown);
        refuse(&mut responder, StatusCode::Unavailable, "the server is shutting down").await;
        responder.delivered().await;
        return;
    }
    let (method, handler) = match head.route {
        Ok(route) => route,
        Err(unknown) => {
            tracing::warn!(method = %unknown, "call to an unknown method");
            requests.stop(StreamCode::Cancelled);
            refuse(&mut responder, StatusCode::UnknownMethod, &unknown).await;
            return;
        }
    };
    let metadata = match head.metadata {
        Ok(metadata) => metadata,
        Err(err) => {
            tracing::warn!(%method, error = %err, "rejecting a call with malformed metadata");
            requests.stop(StreamCode::Protocol);
            refuse(&mut responder, StatusCode::Protocol, &err.to_string()).await;
            return;
        }
    };
    let Some(route) = handler.route(head.kind) else {
        let message = format!("method `{method}` is {:?} but was called as {:?}", handler.kind(), head.kind);
        tracing::warn!("{message}");
        requests.stop(StreamCode::Protocol);
        refuse(&mut responder, StatusCode::Protocol, &message).await;
        return;
    };
    // A ping is a sign of life, not work: a server at its limit still answers it.
    let ping = &**method == crate::wire::PING_METHOD;
    let context = Context::new(method.clone(), deadline.instant(), peer, metadata);
    // Health checks pass whatever the policy: the ping proves only that the server runs.
    if let Some(authorization) = shared.authorization.as_ref().filter(|_| !ping)
        && let Some((code, message)) = authorization.refusal(&context)
    {
        requests.stop(StreamCode::Cancelled);
        refuse(&mut responder, code, &message).await;
        return;
    }
    let permit = if ping { Some(None) } else { InFlight::acquire(&shared).map(Some) };
    let Some(permit) = permit else {
        tracing::warn!(%method, limit = shared.max_in_flight_calls, "refusing a call: too many calls in flight");
        requests.stop(StreamCode::Cancelled);
        refuse(&mut responder, StatusCode::Overloaded, "too many calls in flight on the server").await;
        return;
    };

    let span = telemetry::server_span(method, shared.local_addr, context.peer_address(), context.metadata());
    let stage = match &shared.layers {
        None => Stage::Handler(route),
        Some(layers) => Stage::Layers(layers, handler, head.kind, context.clone()),
    };
    let call = serve_admitted(stage, method, requests, &mut responder, &shared, span.as_ref());
    CallScope::new(context, shared.limits).run(call).await;
    // In a shutdown, the handler's place goes to the next call while this task (which the
    // shutdown waits for) waits for the reply to be acknowledged.
    if shared.is_shutting_down() {
        drop(permit);
        responder.delivered().await;
    }
}

/// Runs an admitted call's handler and answers with what it returned, inside the call's
/// scope (its [`Context`]).
async fn serve_admitted(
    stage: Stage<'_>,
    method: &str,
    requests: Requests,
    responder: &mut Responder,
    shared: &ServerShared,
    span: Option<&Span>,
) {
    let mut interruption = Interruption::new(responder.deadline);
    let call = Call { requests, responder, interruption: &mut interruption, shared };
    let route = match stage {
        Stage::Handler(route) => route,
        // Boxed as the handler stages are.
        Stage::Layers(layers, handler, kind, context) => {
            let result = InSpan::new(span, Box::pin(call.layered(layers, handler, kind, context))).await;
            return answer(result, method, responder, span).await;
        }
    };
    let result = match route {
        // The handler stage is boxed: the task of every call then starts small (it is moved
        // several times on its way into the runtime) and the box, under 1 KiB, comes from
        // the allocator's fast path. It runs inside the call's span, so the handler's logs
        // and the calls it makes are children of it. Wrapping the box, not the call's whole
        // future, spares that future a move (callgrind, typed 64 B x 64: 14,200 server
        // instructions a call against 14,330 through `Instrument` around `CallScope::run`).
        Route::Unary(handler) => InSpan::new(span, Box::pin(call.unary(handler))).await,
        Route::ServerStreaming(handler) => InSpan::new(span, Box::pin(call.server_streaming(handler))).await,
        Route::ClientStreaming(handler) => InSpan::new(span, Box::pin(call.client_streaming(handler))).await,
        Route::BidiStreaming(handler) => InSpan::new(span, Box::pin(call.bidi_streaming(handler))).await,
        Route::BidiOneRequest(handler) => InSpan::new(span, Box::pin(call.bidi_one_request(handler))).await,
        Route::BidiOneResponse(handler) => InSpan::new(span, Box::pin(call.bidi_one_response(handler, method))).await,
    };
    // Written out, not through `answer`: a nested future on the path of every call costs.
    match result {
        Ok(()) => {
            telemetry::record_ok(span);
            responder.finish_ok().await;
        }
        Err(Outcome::Cancelled) => {
            telemetry::record_cancelled(span);
            tracing::debug!(%method, "call cancelled by the client");
            responder.reset(StreamCode::Cancelled);
        }
        Err(Outcome::Failed(err)) => {
            telemetry::record_failed(span, &err);
            log_failure(method, &err);
            // Boxed, like every rare path here: it keeps the future of each call small.
            Box::pin(responder.fail(&err)).await;
        }
    }
}

/// Finishes the response of a call through the layers, as `serve_admitted` does its own.
async fn answer(result: Result<(), Outcome>, method: &str, responder: &mut Responder, span: Option<&Span>) {
    match result {
        Ok(()) => {
            telemetry::record_ok(span);
            responder.finish_ok().await;
        }
        Err(Outcome::Cancelled) => {
            telemetry::record_cancelled(span);
            responder.reset(StreamCode::Cancelled);
        }
        Err(Outcome::Failed(err)) => {
            telemetry::record_failed(span, &err);
            log_failure(method, &err);
            responder.fail(&err).await;
        }
    }
}

/// What runs an admitted call: its handler, or the server's layers around it.
enum Stage<'a> {
    Handler(Route<'a>),
    Layers(&'a Layers, &'a Handler, CallKind, Context),
}

/// Answers a call that never reached a handler (boxed: a rare path).
async fn refuse(responder: &mut Responder, code: StatusCode, message: &str) {
    Box::pin(responder.refuse(code, message)).await;
}

/// How to stop the request half after `err`: a stalled frame timed out, anything else broke
/// the protocol or the stream.
fn stop_code(err: &ReceiveError) -> StreamCode {
    match err {
        ReceiveError::Stalled(after) => {
            tracing::warn!(?after, "a request frame stalled; ending the call");
            StreamCode::TimedOut
        }
        ReceiveError::Wire(_) | ReceiveError::Stream(_) => StreamCode::Protocol,
    }
}

fn log_failure(method: &str, err: &RpcError) {
    match err {
        RpcError::Service(_) => tracing::debug!(%method, "handler returned a service error"),
        RpcError::Internal(_) => tracing::error!(%method, error = %err, "handler failed"),
        _ => tracing::warn!(%method, error = %err, "call failed"),
    }
}

/// The next request message; `None` at the end of the requests.
async fn next_request(requests: &mut Requests) -> Result<Option<Payload>, ReceiveError> {
    match requests.next(RequestDecoder::poll_message).await? {
        RequestEvent::Message(message) => Ok(Some(message)),
        RequestEvent::End => Ok(None),
    }
}

/// One admitted call: its request stream, its response writer, and what can interrupt it.
struct Call<'a> {
    requests: Requests,
    responder: &'a mut Responder,
    interruption: &'a mut Interruption,
    shared: &'a ServerShared,
}

impl Call<'_> {
    /// Reads the single request message of a unary or server-streaming call, bounded by
    /// the deadline and by the server's read timeout (armed only if the message is late).
    async fn single_request(&mut self) -> Result<Payload, RpcError> {
        // A single-message request never ends without its message: the decoder fails it.
        let read = self.requests.next(RequestDecoder::poll_message);
        let (deadline, read_timeout) = (self.interruption.deadline, self.shared.request_read_timeout);
        match timeout_if_pending(|| deadline.min(Instant::now() + read_timeout), read).await {
            Some(Ok(RequestEvent::Message(message))) => Ok(message),
            Some(Ok(RequestEvent::End)) => unreachable!("bug in rpcnet: a single-message request ended empty"),
            Some(Err(err)) => {
                self.requests.stop(stop_code(&err));
                Err(err.into())
            }
            None => {
                self.requests.stop(StreamCode::TimedOut);
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
        drive(responses, self.responder, self.interruption).await
    }

    async fn client_streaming(self, handler: &ClientStreamingFn) -> Result<(), Outcome> {
        let requests = request_stream(self.requests);
        let response = self.interruption.guard(&self.responder.send, handler(requests)).await?;
        self.responder.message(response).await.map_err(Outcome::from)
    }

    async fn bidi_streaming(self, handler: &BidiStreamingFn) -> Result<(), Outcome> {
        let requests = request_stream(self.requests);
        let responses = self.interruption.guard(&self.responder.send, async { Ok(handler(requests).await) }).await?;
        drive(responses, self.responder, self.interruption).await
    }

    /// A call through the server's layers: its request read as its kind says, then handed
    /// with its context to the layers, whose reply is written as the handler's would be.
    async fn layered(
        mut self,
        layers: &Layers,
        handler: &Handler,
        kind: CallKind,
        context: Context,
    ) -> Result<(), Outcome> {
        let request =
            if kind.client_streams() { Err(request_stream(self.requests)) } else { Ok(self.single_request().await?) };
        let reply = layers.call(context, kind, request, handler);
        let reply = self.interruption.guard(&self.responder.send, reply).await?;
        match reply.into_parts() {
            Ok(message) => self.responder.message(message).await.map_err(Outcome::from),
            Err(responses) => drive(responses, self.responder, self.interruption).await,
        }
    }

    /// A server-streaming call to a bidirectional handler: the one request is read (and
    /// bounded) as for any server-streaming call, then handed over as a stream of one.
    async fn bidi_one_request(mut self, handler: &BidiStreamingFn) -> Result<(), Outcome> {
        let request = self.single_request().await?;
        let requests = RpcStream::from_iter([request]);
        let responses = self.interruption.guard(&self.responder.send, async { Ok(handler(requests).await) }).await?;
        drive(responses, self.responder, self.interruption).await
    }

    /// A client-streaming call to a bidirectional handler: its responses must be exactly
    /// one, since the caller reads exactly one.
    async fn bidi_one_response(self, handler: &BidiStreamingFn, method: &str) -> Result<(), Outcome> {
        let requests = request_stream(self.requests);
        let responses = self.interruption.guard(&self.responder.send, async { Ok(handler(requests).await) }).await?;
        let response = self.interruption.guard(&self.responder.send, exactly_one(responses, method)).await?;
        self.responder.message(response).await.map_err(Outcome::from)
    }
}

/// Writes every message of a response stream, honouring the deadline and cancellation.
async fn drive(
    mut responses: RpcStream<OutgoingMessage>,
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
fn request_stream(requests: Requests) -> RpcStream<Payload> {
    RpcStream::new(futures::stream::unfold(Some(requests), |state| async move {
        let mut requests = state?;
        match next_request(&mut requests).await {
            Ok(Some(message)) => Some((Ok(message), Some(requests))),
            Ok(None) => None,
            Err(err) => {
                requests.stop(stop_code(&err));
                Some((Err(err.into()), None))
            }
        }
    }))
}
