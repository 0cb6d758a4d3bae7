//! Reading wire frames from a quinn stream, and turning quinn's errors into `RpcError`s.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use quinn::{ConnectionError, ReadError, RecvStream, VarInt, WriteError};

use crate::RpcError;
use crate::wire::{
    CallKind, FRAME_HEADER_LEN, FrameHeader, FrameTag, Limits, PROTOCOL_VERSION, RawRequestHead, StreamCode, WireError,
};

/// Payload bytes buffered up front for a frame that spans several packets; the buffer grows
/// as data arrives, so a peer that only announces a large frame costs little.
const INITIAL_ASSEMBLY_CAPACITY: usize = 64 * 1024;

/// A request head read off a stream, with its method already looked up: `route` is what
/// the lookup found, or the method name (for the error) when nothing was.
#[derive(Debug)]
pub(crate) struct IncomingHead<R> {
    pub(crate) kind: CallKind,
    pub(crate) deadline: Option<Duration>,
    pub(crate) route: Result<R, String>,
}

/// Why a request head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The bytes are not a valid head.
    Wire(WireError),
    /// The stream failed or ended before a whole head arrived.
    Stream(RpcError),
}

/// Reads wire frames from the receiving half of a call's stream.
///
/// One async primitive, [`fill`](Self::fill), pulls the next chunk from quinn; everything
/// else is a synchronous parse of what is buffered, so the futures of a call stay small.
/// Chunks are kept without copying; a frame that spans chunks is assembled in a buffer that
/// grows as its payload arrives (never sized from the announced length alone).
#[derive(Debug)]
pub(crate) struct FrameReader {
    recv: RecvStream,
    /// Received bytes not yet parsed.
    buf: Bytes,
    /// A frame whose header was parsed and whose payload is still arriving.
    partial: Option<PartialFrame>,
    limits: Limits,
}

#[derive(Debug)]
struct PartialFrame {
    tag: FrameTag,
    len: usize,
    payload: BytesMut,
}

impl FrameReader {
    pub(crate) fn new(recv: RecvStream, limits: Limits) -> Self {
        Self { recv, buf: Bytes::new(), partial: None, limits }
    }

    /// Reads the next chunk into the partial frame or the buffer; false when the peer
    /// finished the stream.
    async fn fill(&mut self) -> Result<bool, RpcError> {
        // Never read past a partial frame, so its chunks land straight in its buffer.
        let want = self.partial.as_ref().map_or(usize::MAX, |p| p.len - p.payload.len());
        let Some(chunk) = self.recv.read_chunk(want, true).await.map_err(read_error)? else {
            return Ok(false);
        };
        if let Some(partial) = &mut self.partial {
            partial.payload.extend_from_slice(&chunk.bytes);
        } else if self.buf.is_empty() {
            self.buf = chunk.bytes;
        } else {
            // Only a few bytes (a header cut by a packet boundary) are ever joined here.
            let mut joined = BytesMut::with_capacity(self.buf.len() + chunk.bytes.len());
            joined.extend_from_slice(&self.buf);
            joined.extend_from_slice(&chunk.bytes);
            self.buf = joined.freeze();
        }
        Ok(true)
    }

    /// Parses a request head from the buffer, if a whole one is there, and looks its method
    /// up with `find` while the name is still borrowed from the received bytes.
    fn parse_head<R>(&mut self, find: impl Fn(&[u8]) -> Option<R>) -> Result<Option<IncomingHead<R>>, WireError> {
        let Some((head, total)) = RawRequestHead::decode(&self.buf, &self.limits)? else { return Ok(None) };
        let route = find(head.method).ok_or_else(|| String::from_utf8_lossy(head.method).into_owned());
        let (kind, deadline) = (head.kind, head.deadline);
        self.buf.advance(total);
        Ok(Some(IncomingHead { kind, deadline, route }))
    }

    /// Reads and validates a request head, looking its method up with `find`.
    pub(crate) async fn read_request_head<R>(
        &mut self,
        find: impl Fn(&[u8]) -> Option<R>,
    ) -> Result<IncomingHead<R>, HeadError> {
        loop {
            if let Some(head) = self.parse_head(&find).map_err(HeadError::Wire)? {
                return Ok(head);
            }
            if !self.fill().await.map_err(HeadError::Stream)? {
                return Err(HeadError::Wire(WireError::Malformed("request head (the stream ended inside it)")));
            }
        }
    }

    /// Reads the version byte that opens a response.
    pub(crate) async fn read_response_version(&mut self) -> Result<(), RpcError> {
        while self.buf.is_empty() {
            if !self.fill().await? {
                return Err(RpcError::Protocol("the server finished the stream without a response".into()));
            }
        }
        match self.buf[0] {
            PROTOCOL_VERSION => {
                self.buf.advance(1);
                Ok(())
            }
            other => Err(WireError::UnsupportedVersion(other).into()),
        }
    }

    /// Parses a frame from what is buffered; starts assembling one that is incomplete.
    fn parse_frame(&mut self) -> Result<Option<(FrameTag, Bytes)>, RpcError> {
        if let Some(partial) = &self.partial {
            if partial.payload.len() < partial.len {
                return Ok(None);
            }
            let PartialFrame { tag, payload, .. } = self.partial.take().expect("checked above");
            return Ok(Some((tag, payload.freeze())));
        }
        let Some(header) = FrameHeader::decode(&self.buf, self.limits.max_frame_len)? else { return Ok(None) };
        self.buf.advance(FRAME_HEADER_LEN);
        let len = header.len as usize;
        if self.buf.len() >= len {
            return Ok(Some((header.tag, self.buf.split_to(len))));
        }
        let mut payload = BytesMut::with_capacity(len.min(INITIAL_ASSEMBLY_CAPACITY).max(self.buf.len()));
        payload.extend_from_slice(&std::mem::take(&mut self.buf));
        self.partial = Some(PartialFrame { tag: header.tag, len, payload });
        Ok(None)
    }

    /// Reads the next frame; `None` when the peer finished the stream between frames.
    pub(crate) async fn next_frame(&mut self) -> Result<Option<(FrameTag, Bytes)>, RpcError> {
        loop {
            if let Some(frame) = self.parse_frame()? {
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return match &self.partial {
                    None if self.buf.is_empty() => Ok(None),
                    None => Err(RpcError::Protocol("stream ended inside a frame header".into())),
                    Some(partial) => Err(RpcError::Protocol(format!(
                        "stream ended inside a frame of {} bytes (the peer stopped sending mid-frame)",
                        partial.len
                    ))),
                };
            }
        }
    }

    /// Reads the last frame of the stream and its end, in one loop: the one message of a
    /// unary request or response. The frame header is checked against the limit as soon as
    /// it arrives, so an oversized frame is refused before its payload is read; the payload
    /// is copied only if it spans chunks. `None` if the stream ends with no frame at all.
    ///
    /// With `after_version`, the frame must be preceded by the version byte that opens a
    /// response (a whole unary response, read in one loop).
    pub(crate) async fn read_last_frame(&mut self, after_version: bool) -> Result<Option<(FrameTag, Bytes)>, RpcError> {
        debug_assert!(self.partial.is_none(), "bug in rpcnet: read_last_frame after next_frame");
        let skip = usize::from(after_version);
        let mut header: Option<FrameHeader> = None;
        let mut assembled: Option<BytesMut> = None;
        loop {
            let received: &[u8] = assembled.as_deref().unwrap_or(&self.buf);
            if header.is_none() && received.len() > skip {
                if after_version && received[0] != PROTOCOL_VERSION {
                    return Err(WireError::UnsupportedVersion(received[0]).into());
                }
                header = FrameHeader::decode(&received[skip..], self.limits.max_frame_len)?;
            }
            if let Some(header) = &header
                && received.len() > skip + FRAME_HEADER_LEN + header.len as usize
            {
                return Err(RpcError::Protocol("unexpected data after the last message of the call".into()));
            }
            let Some(chunk) = self.recv.read_chunk(usize::MAX, true).await.map_err(read_error)? else { break };
            match &mut assembled {
                Some(assembled) => assembled.extend_from_slice(&chunk.bytes),
                None if self.buf.is_empty() => self.buf = chunk.bytes,
                None => {
                    let needed = self.buf.len() + chunk.bytes.len();
                    let total = header.map_or(needed, |h| skip + FRAME_HEADER_LEN + h.len as usize);
                    let mut buf = BytesMut::with_capacity(total.min(INITIAL_ASSEMBLY_CAPACITY).max(needed));
                    buf.extend_from_slice(&std::mem::take(&mut self.buf));
                    buf.extend_from_slice(&chunk.bytes);
                    assembled = Some(buf);
                }
            }
        }
        let mut received = assembled.map_or_else(|| std::mem::take(&mut self.buf), BytesMut::freeze);
        match header {
            None if received.len() <= skip && !after_version => Ok(None),
            None if received.len() <= skip => {
                Err(RpcError::Protocol("the server finished the call without a response".into()))
            }
            None => Err(RpcError::Protocol("stream ended inside a frame header".into())),
            Some(header) if received.len() < skip + FRAME_HEADER_LEN + header.len as usize => Err(RpcError::Protocol(
                format!("stream ended inside a frame of {} bytes (the peer stopped sending mid-frame)", header.len),
            )),
            Some(header) => {
                received.advance(skip + FRAME_HEADER_LEN);
                Ok(Some((header.tag, received)))
            }
        }
    }

    /// Reads a frame that must be a MESSAGE; `None` at the end of the stream.
    pub(crate) async fn next_message(&mut self) -> Result<Option<Bytes>, RpcError> {
        match self.next_frame().await? {
            None => Ok(None),
            Some((FrameTag::Message, payload)) => Ok(Some(payload)),
            Some((tag, _)) => Err(RpcError::Protocol(format!("unexpected {tag:?} frame in a request"))),
        }
    }

    /// Checks that the peer finished the stream with nothing after the last frame.
    pub(crate) async fn expect_end(&mut self) -> Result<(), RpcError> {
        if self.buf.is_empty() && self.partial.is_none() && !self.fill().await? {
            return Ok(());
        }
        Err(RpcError::Protocol("unexpected data after the last message of the call".into()))
    }

    /// Tells the peer to stop sending on this stream.
    pub(crate) fn stop(&mut self, code: StreamCode) {
        let _ = self.recv.stop(VarInt::from_u32(code.as_u32()));
    }
}

/// A failed read on a call's stream.
pub(crate) fn read_error(err: ReadError) -> RpcError {
    match err {
        ReadError::Reset(code) => RpcError::Cancelled(format!("the peer reset the stream ({})", describe_code(code))),
        ReadError::ConnectionLost(e) => connection_error(e, true),
        ReadError::ClosedStream | ReadError::IllegalOrderedRead => {
            RpcError::Internal(format!("bug in rpcnet: read on a closed stream: {err}"))
        }
        ReadError::ZeroRttRejected => RpcError::Connection("the server rejected early data".into()),
    }
}

/// A failed write on a call's stream.
pub(crate) fn write_error(err: WriteError) -> RpcError {
    match err {
        WriteError::Stopped(code) => {
            RpcError::Cancelled(format!("the peer stopped reading the stream ({})", describe_code(code)))
        }
        WriteError::ConnectionLost(e) => connection_error(e, true),
        WriteError::ClosedStream => RpcError::Internal(format!("bug in rpcnet: write on a closed stream: {err}")),
        WriteError::ZeroRttRejected => RpcError::Connection("the server rejected early data".into()),
    }
}

fn describe_code(code: VarInt) -> &'static str {
    match code.into_inner() {
        c if c == StreamCode::Cancelled as u64 => "cancelled",
        c if c == StreamCode::Protocol as u64 => "protocol violation",
        c if c == StreamCode::Shutdown as u64 => "shutting down",
        _ => "unknown code",
    }
}

/// A connection-level failure. `in_flight` says whether a request may already have been
/// sent, which decides between [`RpcError::ConnectionLost`] and [`RpcError::Connection`].
pub(crate) fn connection_error(err: ConnectionError, in_flight: bool) -> RpcError {
    // TLS alerts travel as QUIC CRYPTO_ERROR codes 0x100 + alert.
    let tls_alert = |code: quinn::TransportErrorCode| {
        let code = u64::from(code);
        (0x100..0x200).contains(&code).then(|| (code - 0x100) as u8)
    };
    match &err {
        ConnectionError::TransportError(e) => {
            if let Some(alert) = tls_alert(e.code) {
                return RpcError::Tls(format!("{} ({})", e.reason, alert_name(alert)));
            }
        }
        ConnectionError::ConnectionClosed(close) => {
            if let Some(alert) = tls_alert(close.error_code) {
                return RpcError::Tls(format!(
                    "the peer refused the handshake: {} ({})",
                    String::from_utf8_lossy(&close.reason),
                    alert_name(alert)
                ));
            }
        }
        ConnectionError::ApplicationClosed(close) if close.error_code == crate::transport::endpoint::SHUTDOWN_CODE => {
            let message = format!("the server closed the connection: {}", String::from_utf8_lossy(&close.reason));
            return if in_flight { RpcError::ConnectionLost(message) } else { RpcError::Unavailable(message) };
        }
        _ => {}
    }
    if in_flight { RpcError::ConnectionLost(err.to_string()) } else { RpcError::Connection(err.to_string()) }
}

fn alert_name(alert: u8) -> &'static str {
    match alert {
        40 => "handshake failure",
        42 => "bad certificate",
        43 => "unsupported certificate",
        44 => "certificate revoked",
        45 => "certificate expired",
        46 => "certificate unknown",
        48 => "unknown CA: the certificate is not signed by a trusted authority",
        49 => "access denied",
        51 => "decrypt error",
        116 => "certificate required: the server requires a client certificate",
        120 => "no application protocol: the peer does not speak rpcnet",
        _ => "TLS alert",
    }
}
