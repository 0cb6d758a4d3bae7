//! Messages and frames on their way out. A typed message is encoded straight behind room
//! for its frame header (`OutgoingMessage::encode`); a raw payload gets its header when it
//! is sent, copied behind it if small, beside it if large. Buffers are carved from a
//! per-thread block (`block.rs`), so writing one allocates nothing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use quinn::SendStream;

use super::block::{carve, carve_exact, carve_growing};
use super::errors::write_error;
use crate::error::RpcError;
use crate::wire::{FRAME_HEADER_LEN, FrameHeader, FrameTag, Limits, PROTOCOL_VERSION, RequestHead, WireError};

/// Largest payload copied behind its header; above this a copy costs more than the second
/// chunk does.
const COALESCE_MAX: usize = 4 * 1024;

/// Bytes in front of an encoded message: the version byte (used when the frame opens a
/// response) and the frame header.
const ROOM: usize = 1 + FRAME_HEADER_LEN;

/// One message to send: a raw payload, or a payload a codec encoded into its frame.
#[derive(Debug, Clone)]
pub(crate) enum OutgoingMessage {
    /// The payload alone; its frame header is written when it is sent.
    Payload(Bytes),
    /// `[version byte][frame header][payload]`, the header filled in for the payload.
    Framed(Bytes),
}

impl OutgoingMessage {
    /// Encodes a payload with `encode`, which appends it to the buffer it is given, straight
    /// behind its frame header.
    /// `len`: the payload's length if known beforehand, so that the frame's buffer is
    /// allocated once at its size.
    pub(crate) fn encode<E>(
        tag: FrameTag,
        len: Option<usize>,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<Self, E> {
        let write = |buf: &mut BytesMut| {
            buf.put_u8(PROTOCOL_VERSION);
            buf.put_bytes(0, FRAME_HEADER_LEN);
            let start = buf.len();
            let result = encode(buf);
            // A payload over u32::MAX bytes gets a wrong header here; every sender refuses
            // payloads over its frame limit (at most 1 GiB) before sending one.
            let len = u32::try_from(buf.len() - start).unwrap_or(u32::MAX);
            let header = FrameHeader { tag, len }.to_bytes();
            buf[start - FRAME_HEADER_LEN..start].copy_from_slice(&header);
            result
        };
        let (result, framed) = match len {
            Some(len) => carve_exact(ROOM + len, write),
            None => carve_growing(write),
        };
        result.map(|()| Self::Framed(framed))
    }

    /// The payload's length.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Payload(payload) => payload.len(),
            Self::Framed(framed) => framed.len() - ROOM,
        }
    }

    /// The bytes to send for this message as a frame of `tag` behind `prefix`, refusing a
    /// payload over `max_len`, or a head that does not fit the wire's layout or limits.
    pub(crate) fn frame(self, tag: FrameTag, max_len: u32, prefix: Prefix<'_>) -> Result<Outgoing, WireError> {
        let header = FrameHeader::new(tag, self.len(), max_len)?;
        if let Prefix::Head(head, limits) = prefix {
            head.check(limits)?;
        }
        Ok(match (self, prefix) {
            (Self::Payload(payload), prefix) => Outgoing::new(
                prefix.len() + FRAME_HEADER_LEN,
                |buf| {
                    prefix.put(buf);
                    header.encode(buf);
                },
                payload,
            ),
            (Self::Framed(framed), Prefix::Version) => Outgoing::One(framed),
            (Self::Framed(framed), Prefix::Nothing) => Outgoing::One(framed.slice(1..)),
            (Self::Framed(framed), prefix) => {
                Outgoing::Two([carve(prefix.len(), |buf| prefix.put(buf)), framed.slice(1..)])
            }
        })
    }
}

/// What goes on a stream before a frame.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Prefix<'a> {
    /// Nothing: a frame after the first.
    Nothing,
    /// The version byte that opens a response.
    Version,
    /// A request head (checked against these limits before anything is written).
    Head(&'a RequestHead<'a>, &'a Limits),
}

impl Prefix<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Nothing => 0,
            Self::Version => 1,
            Self::Head(head, _) => head.encoded_len(),
        }
    }

    fn put(&self, buf: &mut BytesMut) {
        match self {
            Self::Nothing => {}
            Self::Version => buf.put_u8(PROTOCOL_VERSION),
            Self::Head(head, limits) => {
                head.encode(limits, buf).expect("bug in rpcnet: a checked head failed to encode")
            }
        }
    }
}

impl From<Bytes> for OutgoingMessage {
    fn from(payload: Bytes) -> Self {
        Self::Payload(payload)
    }
}

/// Bytes ready for one write on a call's stream (cloned only to send a request twice).
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// Prefix and payload in one buffer.
    One(Bytes),
    /// Prefix, then the payload as it was handed over.
    Two([Bytes; 2]),
}

impl Outgoing {
    /// A prefix alone: the head of a call whose messages follow as a stream.
    pub(crate) fn prefix(prefix: Prefix<'_>) -> Result<Self, WireError> {
        if let Prefix::Head(head, limits) = prefix {
            head.check(limits)?;
        }
        Ok(Self::One(carve(prefix.len(), |buf| prefix.put(buf))))
    }

    /// `prefix` writes what goes before the payload (version byte, head, frame header), at
    /// most `prefix_len` bytes.
    pub(crate) fn new(prefix_len: usize, prefix: impl FnOnce(&mut BytesMut), payload: Bytes) -> Self {
        if payload.len() <= COALESCE_MAX {
            Self::One(carve(prefix_len + payload.len(), |buf| {
                prefix(buf);
                buf.extend_from_slice(&payload);
            }))
        } else {
            Self::Two([carve(prefix_len, prefix), payload])
        }
    }

    /// Writes every byte; see [`WriteAll`].
    pub(crate) fn write(self, send: &mut SendStream) -> WriteAll<'_> {
        let (chunks, end) = match self {
            Self::One(bytes) => ([bytes, Bytes::new()], 1),
            Self::Two(chunks) => (chunks, 2),
        };
        WriteAll { send, chunks, start: 0, end }
    }
}

/// The future of [`Outgoing::write`]: quinn's `write_chunks` polled afresh until every chunk
/// is written. A plain future rather than `write_chunk` or an `async fn`: those are several
/// times larger, and the state of every call carries this one. `write_chunks` writes nothing
/// unless it completes, so making it anew at each poll loses nothing.
#[derive(Debug)]
pub(crate) struct WriteAll<'a> {
    send: &'a mut SendStream,
    chunks: [Bytes; 2],
    start: usize,
    end: usize,
}

impl WriteAll<'_> {
    /// Bytes not written yet: a write that makes progress is not stalled.
    pub(crate) fn remaining(&self) -> usize {
        self.chunks[self.start..self.end].iter().map(Bytes::len).sum()
    }
}

impl Future for WriteAll<'_> {
    type Output = Result<(), RpcError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        while this.start < this.end {
            let write = this.send.write_chunks(&mut this.chunks[this.start..this.end]);
            let written = ready!(std::pin::pin!(write).poll(cx)).map_err(write_error)?;
            this.start += written.chunks;
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(outgoing: Outgoing) -> Vec<u8> {
        match outgoing {
            Outgoing::One(one) => one.to_vec(),
            Outgoing::Two([a, b]) => [a, b].concat(),
        }
    }

    #[test]
    fn an_encoded_message_is_the_same_frame_as_a_raw_one() {
        let encoded = OutgoingMessage::encode::<()>(FrameTag::Message, None, |buf| {
            buf.extend_from_slice(b"hello");
            Ok(())
        })
        .unwrap();
        assert_eq!(encoded.len(), 5);
        let raw = OutgoingMessage::from(Bytes::from_static(b"hello"));
        let head = RequestHead::new(crate::wire::CallKind::Unary, "S.m");
        let limits = Limits::default();
        for prefix in [Prefix::Nothing, Prefix::Version, Prefix::Head(&head, &limits)] {
            let a = encoded.clone().frame(FrameTag::Message, 1024, prefix).unwrap();
            let b = raw.clone().frame(FrameTag::Message, 1024, prefix).unwrap();
            assert_eq!(bytes(a), bytes(b), "behind {prefix:?}");
        }
        let big = OutgoingMessage::from(Bytes::from(vec![0; 2048]));
        assert!(matches!(big.frame(FrameTag::Message, 1024, Prefix::Nothing), Err(WireError::FrameTooLarge { .. })));
    }

    /// A length given beforehand is a hint for the allocation: an encoder that writes less
    /// or more than it (a `Serialize` impl that lies to the codec's measure) still gets the
    /// frame of what it wrote, small or large.
    #[test]
    fn a_wrong_length_hint_still_frames_what_was_written() {
        let head = RequestHead::new(crate::wire::CallKind::Unary, "S.m");
        let limits = Limits::default();
        for (hint, written) in [(5, 5), (2, 100), (100, 2), (40_000, 70_000), (70_000, 40_000), (1 << 20, 3)] {
            let payload: Vec<u8> = (0..written).map(|i| i as u8).collect();
            let encoded = OutgoingMessage::encode::<()>(FrameTag::Message, Some(hint), |buf| {
                buf.extend_from_slice(&payload);
                Ok(())
            })
            .unwrap();
            assert_eq!(encoded.len(), written, "hint {hint}");
            let raw = OutgoingMessage::from(Bytes::from(payload));
            let a = encoded.frame(FrameTag::Message, 1 << 21, Prefix::Head(&head, &limits)).unwrap();
            let b = raw.frame(FrameTag::Message, 1 << 21, Prefix::Head(&head, &limits)).unwrap();
            assert_eq!(bytes(a), bytes(b), "hint {hint}, written {written}");
        }
    }

    #[test]
    fn an_encode_inside_an_encode_gets_a_buffer_of_its_own() {
        let outer = OutgoingMessage::encode::<()>(FrameTag::Message, Some(3), |buf| {
            let inner = OutgoingMessage::encode::<()>(FrameTag::Message, Some(2), |inner| {
                inner.extend_from_slice(b"in");
                Ok(())
            })
            .unwrap();
            assert_eq!(inner.len(), 2);
            buf.extend_from_slice(b"out");
            Ok(())
        })
        .unwrap();
        let Outgoing::One(framed) = outer.frame(FrameTag::Message, 64, Prefix::Nothing).unwrap() else {
            panic!("an encoded message is sent in one piece");
        };
        assert!(framed.ends_with(b"out"));
    }
}
