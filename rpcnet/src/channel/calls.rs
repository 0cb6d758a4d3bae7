//! The four call kinds over a balanced channel. A unary call that fails where repeating is
//! safe goes to another endpoint (`retry.rs` decides); a streaming call may change endpoint
//! only while its streams have not started, and holds its slot until its responses end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::time::Instant;

use super::admission::Slot;
use super::balanced::Balanced;
use super::connection::{Connection, Connector};
use super::members::Member;
use super::policy::MethodPolicy;
use crate::client::CallOptions;
use crate::deadline::Deadline;
use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::Payload;

impl<K: Connector> Balanced<K> {
    /// A unary call. `policy`: what the method's attributes say. Idempotent, a call whose
    /// endpoint was lost to it may be repeated on another; its deadline applies unless the
    /// call has its own; its retries bound the attempts unless the call's options do.
    pub(crate) async fn unary(
        &self,
        method: &str,
        policy: MethodPolicy,
        message: OutgoingMessage,
        options: &CallOptions,
    ) -> Result<Payload, RpcError> {
        // One clock reading serves the deadline, the pick and the first attempt, unless the
        // call waits for a slot or a connection in between.
        let mut now = Instant::now();
        let deadline = options.deadline(policy.deadline().or(self.default_timeout), now);
        let idempotent = policy.is_idempotent() || options.is_idempotent();
        let max_attempts = options.retries().or(policy.retries()).map(|retries| retries.saturating_add(1));
        self.retry.called();
        let mut failed: Vec<Arc<Member<K::Connection>>> = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                now = Instant::now();
            }
            let slot = match self.try_place(method, options, &failed, None, now)? {
                Some(slot) => slot,
                // Boxed: waiting for a slot is rare, and its state would bloat every call's.
                None => {
                    let slot = Box::pin(self.place(method, options, &failed, deadline)).await?;
                    now = Instant::now();
                    slot
                }
            };
            let connection = match slot.member.made_connection() {
                Some(connection) => Ok(connection),
                // Boxed: connecting happens once per endpoint.
                None => {
                    let connection = Box::pin(self.endpoints.connect(&slot.member)).await;
                    now = Instant::now();
                    connection
                }
            };
            // The call future is built where it is awaited: built first and moved there, it
            // was copied once per call (~90 instructions).
            let result = match connection {
                Ok(connection) => {
                    connection.unary(method, message.clone(), deadline, now, idempotent, options.call_metadata()).await
                }
                Err(err) => Err(err),
            };
            let ended = Instant::now();
            self.finish(&slot, &result, ended);
            let err = match result {
                Ok(response) => return Ok(response),
                Err(err) => err,
            };
            let verdict = self.retry.after_failure(&err, idempotent, attempt, max_attempts, deadline, ended);
            self.eject_if(verdict.eject, &slot, &err, ended);
            if !verdict.retry {
                return Err(err);
            }
            tracing::debug!(method, endpoint = slot.member.endpoint.id(), error = %err, attempt, "retrying on another endpoint");
            self.retries.increment(1);
            failed.push(slot.member.clone());
        }
    }

    /// Places a streaming call: an endpoint that cannot be connected to is ejected and the
    /// call goes to another (nothing was sent yet); once the streams start, it stays.
    /// `queue_deadline` bounds the wait for a slot and a connection.
    async fn place_stream(
        &self,
        method: &str,
        options: &CallOptions,
        queue_deadline: Deadline,
    ) -> Result<(Slot<K::Connection>, K::Connection), RpcError> {
        let mut failed: Vec<Arc<Member<K::Connection>>> = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let slot = self.place(method, options, &failed, queue_deadline).await?;
            let connection = match slot.member.made_connection() {
                Some(connection) => Ok(connection),
                None => self.endpoints.connect(&slot.member).await,
            };
            match connection.cloned() {
                Ok(connection) => return Ok((slot, connection)),
                Err(err) => {
                    if !self.retry.after_failure(&err, false, attempt, None, queue_deadline, Instant::now()).retry {
                        return Err(err);
                    }
                    self.retries.increment(1);
                    failed.push(slot.member.clone());
                }
            }
        }
    }

    /// A server-streaming call. The stream has no default deadline; waiting for a slot ends
    /// at the call's own deadline, else at the configured default one (never, if the call
    /// was made `without_timeout`).
    pub(crate) async fn server_streaming(
        &self,
        method: &str,
        message: OutgoingMessage,
        options: &CallOptions,
    ) -> Result<RpcStream<Payload>, RpcError> {
        let now = Instant::now();
        let (deadline, queue_deadline) = (options.deadline(None, now), options.deadline(self.default_timeout, now));
        let (slot, connection) = self.place_stream(method, options, queue_deadline).await?;
        let result =
            connection.server_streaming(method, message, deadline, Instant::now(), options.call_metadata()).await;
        self.finish(&slot, &result, Instant::now());
        Ok(hold(slot, result?))
    }

    /// A client-streaming call, with the default deadline unless it sets its own.
    pub(crate) async fn client_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        options: &CallOptions,
    ) -> Result<Payload, RpcError> {
        let deadline = options.deadline(self.default_timeout, Instant::now());
        let (slot, connection) = self.place_stream(method, options, deadline).await?;
        let result =
            connection.client_streaming(method, requests, deadline, Instant::now(), options.call_metadata()).await;
        self.finish(&slot, &result, Instant::now());
        result
    }

    /// A bidirectional streaming call; deadlines as for [`server_streaming`](Self::server_streaming).
    pub(crate) async fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<OutgoingMessage>,
        options: &CallOptions,
    ) -> Result<RpcStream<Payload>, RpcError> {
        let now = Instant::now();
        let (deadline, queue_deadline) = (options.deadline(None, now), options.deadline(self.default_timeout, now));
        let (slot, connection) = self.place_stream(method, options, queue_deadline).await?;
        let result =
            connection.bidi_streaming(method, requests, deadline, Instant::now(), options.call_metadata()).await;
        self.finish(&slot, &result, Instant::now());
        Ok(hold(slot, result?))
    }
}

/// Keeps `slot` (the call in flight) until the response stream ends, fails or is dropped.
fn hold<C: Connection>(slot: Slot<C>, stream: RpcStream<Payload>) -> RpcStream<Payload> {
    RpcStream::new(Held { stream, slot: Some(slot) })
}

/// A response stream that holds its call's slot until it ends or fails, so that a finished
/// stream the caller still holds no longer counts in flight.
struct Held<C> {
    stream: RpcStream<Payload>,
    slot: Option<Slot<C>>,
}

impl<C> Stream for Held<C> {
    type Item = Result<Payload, RpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = Pin::new(&mut this.stream).poll_next(cx);
        if matches!(item, Poll::Ready(None | Some(Err(_)))) {
            this.slot = None;
        }
        item
    }
}
