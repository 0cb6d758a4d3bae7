//! One call on one stream from the client side: write the request, read the response, and
//! reset both halves if the caller gives up before the end.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use quinn::{RecvStream, SendStream, VarInt};
use tokio::time::Instant;

use crate::transport::{FrameReader, Outgoing, WriteAll};
use crate::wire::{CallKind, FRAME_HEADER_LEN, FrameHeader, FrameTag, Limits, RequestHead, StreamCode, decode_status};
use crate::{RpcError, RpcStream};

/// Encodes the head of a call and, for calls with exactly one request message, that
/// message's frame, before any stream is opened: a request that cannot be sent fails here.
pub(crate) fn encode_request(
    kind: CallKind,
    method: &str,
    timeout: Option<std::time::Duration>,
    message: Option<Bytes>,
    limits: &Limits,
) -> Result<Outgoing, RpcError> {
    let mut head = RequestHead::new(kind, method);
    head.deadline = timeout;
    let header = message.as_ref().map(|m| frame_header(m.len(), limits)).transpose()?;
    let mut encoded = Ok(());
    let outgoing = Outgoing::new(
        head.encoded_len() + crate::wire::FRAME_HEADER_LEN,
        |buf| {
            encoded = head.encode(limits, buf);
            if let Some(header) = header {
                header.encode(buf);
            }
        },
        message.unwrap_or_default(),
    );
    encoded?;
    Ok(outgoing)
}

fn frame_header(len: usize, limits: &Limits) -> Result<FrameHeader, RpcError> {
    FrameHeader::new(FrameTag::Message, len, limits.max_frame_len).map_err(|e| {
        RpcError::FrameTooLarge(format!("the request {e}; raise RpcConfig::with_max_frame_size on both sides"))
    })
}

/// The send half of a call; reset on drop unless finished, so the server learns at once
/// that the caller gave up (quinn would otherwise finish it as if the request were whole).
#[derive(Debug)]
pub(crate) struct RequestWriter {
    send: SendStream,
    limits: Limits,
    finished: bool,
}

impl RequestWriter {
    pub(crate) fn new(send: SendStream, limits: Limits) -> Self {
        Self { send, limits, finished: false }
    }

    /// Writes bytes prepared by [`encode_request`].
    pub(crate) fn write_request(&mut self, request: Outgoing) -> WriteAll<'_> {
        request.write(&mut self.send)
    }

    /// Writes one request message.
    pub(crate) async fn write_message(&mut self, message: Bytes) -> Result<(), RpcError> {
        let header = frame_header(message.len(), &self.limits)?;
        Outgoing::new(FRAME_HEADER_LEN, |buf| header.encode(buf), message).write(&mut self.send).await
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
    reader: FrameReader,
    version_read: bool,
    done: bool,
}

impl ResponseReader {
    pub(crate) fn new(recv: RecvStream, limits: Limits) -> Self {
        Self { reader: FrameReader::new(recv, limits), version_read: false, done: false }
    }

    /// The next response message; `None` at the end of the responses.
    pub(crate) async fn next_message(&mut self) -> Result<Option<Bytes>, RpcError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_frame().await;
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    async fn read_frame(&mut self) -> Result<Option<Bytes>, RpcError> {
        if !self.version_read {
            self.reader.read_response_version().await?;
            self.version_read = true;
        }
        match self.reader.next_frame().await? {
            None => Ok(None),
            Some((FrameTag::Message, payload)) => Ok(Some(payload)),
            Some((FrameTag::ServiceError, payload)) => {
                self.reader.expect_end().await?;
                Err(RpcError::service(payload))
            }
            Some((FrameTag::Status, payload)) => {
                let (code, message) = decode_status(&payload)?;
                let err = RpcError::from_status(code, message);
                self.reader.expect_end().await?;
                Err(err)
            }
        }
    }

    /// Reads the one response message of a unary or client-streaming call.
    pub(crate) async fn single_message(&mut self) -> Result<Bytes, RpcError> {
        debug_assert!(!self.version_read, "bug in rpcnet: single_message after next_message");
        let frame = self.reader.read_last_frame(true).await;
        self.done = true;
        match frame? {
            Some((FrameTag::Message, message)) => Ok(message),
            Some((FrameTag::ServiceError, payload)) => Err(RpcError::service(payload)),
            Some((FrameTag::Status, payload)) => {
                let (code, message) = decode_status(&payload)?;
                Err(RpcError::from_status(code, message))
            }
            None => Err(RpcError::Protocol("the server finished the call without a response".into())),
        }
    }

    /// A stream of the remaining responses, read as it is polled, ending at `deadline`.
    pub(crate) fn into_stream(
        self,
        writer: Option<tokio::task::JoinHandle<()>>,
        deadline: Option<Instant>,
    ) -> RpcStream<Bytes> {
        let writer = writer.map(tokio_util::task::AbortOnDropHandle::new);
        RpcStream::new(futures::stream::unfold((self, writer), move |(mut reader, writer)| async move {
            let next = match deadline {
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
            self.reader.stop(StreamCode::Cancelled);
        }
    }
}

/// Writes every request of `requests` as a message, then finishes; on a stream error the
/// request half is reset and the error returned.
pub(crate) async fn send_all<S>(writer: &mut RequestWriter, requests: S) -> Result<(), RpcError>
where
    S: Stream<Item = Result<Bytes, RpcError>> + Send,
{
    futures::pin_mut!(requests);
    while let Some(request) = requests.next().await {
        writer.write_message(request?).await?;
    }
    writer.finish();
    Ok(())
}
