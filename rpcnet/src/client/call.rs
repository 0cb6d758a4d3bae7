//! One call on one stream from the client side: write the request, read the response
//! through the wire's `ResponseDecoder`, and reset both halves if the caller gives up first.

use std::time::Duration;

use futures::{Stream, StreamExt};
use quinn::{RecvStream, SendStream, VarInt};

use super::options::{CallMetadata, ResponseMetadata};
use crate::deadline::Deadline;
use crate::error::RpcError;
use crate::metadata::Metadata;
use crate::stream::RpcStream;
use crate::transport::{Outgoing, OutgoingMessage, Prefix, ReceiveHalf, WriteAll};
use crate::wire::{
    CallKind, FrameTag, Limits, Payload, RequestHead, ResponseDecoder, ResponseEvent, StreamCode, WireError,
    decode_metadata_frame,
};

/// A request the client cannot send: a message too large for its own frame limit, a head
/// (with its metadata) over the head limits, or a method name the wire cannot carry.
fn request_error(err: WireError) -> RpcError {
    match err {
        WireError::FrameTooLarge { .. } => {
            RpcError::FrameTooLarge(format!("the request {err}; raise RpcConfig::with_max_frame_size on both sides"))
        }
        WireError::HeadTooLarge { .. } => RpcError::FrameTooLarge(format!(
            "the call's metadata is too large: {err}; send less, or raise RpcConfig::with_max_head_size on both sides"
        )),
        WireError::TooManyMetadataEntries { .. } => RpcError::FrameTooLarge(format!(
            "the call's metadata has too many entries: {err}; send fewer, or raise \
             RpcConfig::with_max_metadata_entries on both sides"
        )),
        other => other.into(),
    }
}

/// Encodes the head of a call (with `left`, what remains of its deadline) and, for calls
/// with exactly one request message, that message's frame, before any stream is opened: a
/// request that cannot be sent fails here.
pub(crate) fn encode_request(
    kind: CallKind,
    method: &str,
    left: Option<Duration>,
    metadata: Option<&Metadata>,
    message: Option<OutgoingMessage>,
    limits: &Limits,
) -> Result<Outgoing, RpcError> {
    let mut head = RequestHead::new(kind, method);
    head.deadline = left;
    if let Some(metadata) = metadata {
        head.metadata = metadata.wire_entries();
    }
    let prefix = Prefix::Head(&head, limits);
    match message {
        Some(message) => message.frame(FrameTag::Message, limits.max_frame_len, prefix),
        None => Outgoing::prefix(prefix),
    }
    .map_err(request_error)
}

/// The send half of a call; reset on drop unless finished, so the server learns at once
/// that the caller gave up (quinn would otherwise finish it as if the request were whole).
#[derive(Debug)]
pub(crate) struct RequestWriter {
    send: SendStream,
    max_frame_len: u32,
    finished: bool,
}

impl RequestWriter {
    pub(crate) fn new(send: SendStream, limits: Limits) -> Self {
        Self { send, max_frame_len: limits.max_frame_len, finished: false }
    }

    /// Writes bytes prepared by [`encode_request`].
    pub(crate) fn write_request(&mut self, request: Outgoing) -> WriteAll<'_> {
        request.write(&mut self.send)
    }

    /// Writes one request message of a stream.
    pub(crate) async fn write_message(&mut self, message: OutgoingMessage) -> Result<(), RpcError> {
        let frame = message.frame(FrameTag::Message, self.max_frame_len, Prefix::Nothing).map_err(request_error)?;
        frame.write(&mut self.send).await
    }

    /// Marks the end of the requests.
    pub(crate) fn finish(&mut self) {
        self.finished = true;
        let _ = self.send.finish();
    }
}

impl Drop for RequestWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.send.reset(VarInt::from_u32(StreamCode::Cancelled.as_u32()));
        }
    }
}

/// The receive half of a call; stops the stream on drop unless the response was read to
/// its end, so the server drops the handler of a call nobody waits for.
#[derive(Debug)]
pub(crate) struct ResponseReader {
    half: ReceiveHalf<ResponseDecoder>,
    done: bool,
    /// Where the response's metadata goes, if the caller wants it.
    metadata: Option<ResponseMetadata>,
    limits: Limits,
}

impl ResponseReader {
    pub(crate) fn new(recv: RecvStream, kind: CallKind, limits: Limits, metadata: &CallMetadata) -> Self {
        let decoder = ResponseDecoder::new(kind, limits);
        Self { half: ReceiveHalf::new(recv, decoder), done: false, metadata: metadata.response.clone(), limits }
    }

    /// Leaves the response's metadata (its first event, if any) where the caller asked, and
    /// reads the event after it.
    async fn keep_metadata(&mut self, list: bytes::Bytes) -> Result<ResponseEvent, RpcError> {
        if let Some(place) = &self.metadata {
            let entries = decode_metadata_frame(&list, &self.limits)?;
            let metadata = Metadata::from_wire(&entries)
                .map_err(|err| RpcError::Protocol(format!("the server's response metadata: {err}")))?;
            place.set(metadata);
        }
        Ok(self.half.next(ResponseDecoder::poll).await?)
    }

    /// The next response message; `None` at the end of the responses. The server's
    /// terminal frame is its error.
    pub(crate) async fn next_message(&mut self) -> Result<Option<Payload>, RpcError> {
        if self.done {
            return Ok(None);
        }
        let event = match self.half.next(ResponseDecoder::poll).await {
            // Boxed, not a nested future: only calls whose server sent metadata come here.
            Ok(ResponseEvent::Metadata(list)) => Box::pin(self.keep_metadata(list)).await,
            other => other.map_err(RpcError::from),
        };
        if !matches!(event, Ok(ResponseEvent::Message(_))) {
            self.done = true;
        }
        match event? {
            ResponseEvent::Message(message) => Ok(Some(message)),
            ResponseEvent::End => Ok(None),
            ResponseEvent::ServiceError(payload) => Err(RpcError::service(payload.into_bytes())),
            ResponseEvent::Status { code, message } => Err(RpcError::from_status(code, &message)),
            ResponseEvent::Metadata(_) => Err(RpcError::Protocol("a second metadata frame".into())),
        }
    }

    /// Reads the one response message of a unary or client-streaming call. The decoder
    /// hands it out only once the stream has ended, so the response is then read whole.
    pub(crate) async fn single_message(&mut self) -> Result<Payload, RpcError> {
        debug_assert!(!self.done, "bug in rpcnet: single_message after the response");
        let event = match self.half.next(ResponseDecoder::poll).await {
            // Boxed, not a nested future: only calls whose server sent metadata come here.
            Ok(ResponseEvent::Metadata(list)) => Box::pin(self.keep_metadata(list)).await,
            other => other.map_err(RpcError::from),
        };
        self.done = true;
        match event? {
            ResponseEvent::Message(message) => Ok(message),
            ResponseEvent::End => Err(RpcError::Protocol("the server finished the call without a response".into())),
            ResponseEvent::ServiceError(payload) => Err(RpcError::service(payload.into_bytes())),
            ResponseEvent::Status { code, message } => Err(RpcError::from_status(code, &message)),
            ResponseEvent::Metadata(_) => Err(RpcError::Protocol("a second metadata frame".into())),
        }
    }

    /// A stream of the remaining responses, read as it is polled, ending at `deadline`.
    pub(crate) fn into_stream(
        self,
        writer: Option<tokio::task::JoinHandle<()>>,
        deadline: Deadline,
    ) -> RpcStream<Payload> {
        let writer = writer.map(tokio_util::task::AbortOnDropHandle::new);
        RpcStream::new(futures::stream::unfold((self, writer), move |(mut reader, writer)| async move {
            let next = match deadline.instant() {
                Some(deadline) => {
                    tokio::time::timeout_at(deadline, reader.next_message()).await.unwrap_or(Err(RpcError::Timeout))
                }
                None => reader.next_message().await,
            };
            match next {
                Ok(Some(message)) => Some((Ok(message), (reader, writer))),
                Ok(None) => None,
                Err(err) => {
                    reader.done = true;
                    Some((Err(err), (reader, writer)))
                }
            }
        }))
    }
}

impl Drop for ResponseReader {
    fn drop(&mut self) {
        if !self.done {
            self.half.stop(StreamCode::Cancelled);
        }
    }
}

/// Writes every request of `requests` as a message, then finishes; on a stream error the
/// request half is reset and the error returned.
pub(crate) async fn send_all<S>(writer: &mut RequestWriter, requests: S) -> Result<(), RpcError>
where
    S: Stream<Item = Result<OutgoingMessage, RpcError>> + Send,
{
    futures::pin_mut!(requests);
    while let Some(request) = requests.next().await {
        writer.write_message(request?).await?;
    }
    writer.finish();
    Ok(())
}
