//! `RequestDecoder`: the server's reading of one call's request stream, without I/O. Chunks
//! and the end of the stream go in; the head, each message and the end come out, or the
//! rule of the protocol that the peer broke.

use bytes::Bytes;

use super::frame::{ended_inside_frame, front_frame_len, more_than, peek_frame, take_frame};
use super::payload::{Payload, Received};
use super::{FrameHeader, FrameTag, Limits, RequestHead, StreamDecoder, WireError};

/// What a request stream carries after its head.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestEvent {
    /// One request message.
    Message(Payload),
    /// The client finished the stream: no more messages.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The head has not arrived whole.
    Head,
    /// Client-streaming and bidirectional calls: any number of messages, then the end.
    Stream,
    /// Unary and server-streaming calls: exactly one message, then the end. The message
    /// stays among the bytes received until the end of the stream shows that nothing
    /// follows it.
    Single,
    /// The end was reported, or the peer broke the protocol: nothing more to read.
    Done,
}

/// Decodes the request half of a call (see the layout in [`crate::wire`]).
///
/// Call order: feed what the stream delivers with [`handle_chunk`](StreamDecoder::handle_chunk)
/// and [`handle_end`](StreamDecoder::handle_end); [`poll_head`](Self::poll_head) until it
/// returns the head, then [`poll_message`](Self::poll_message) until it returns
/// [`RequestEvent::End`]. `Ok(None)` from either means "feed more". The one message of a
/// unary or server-streaming call comes out once the stream has ended, so that a request
/// with anything after its message is refused before a handler runs.
///
/// ```
/// use bytes::Bytes;
/// use rpcnet::wire::{CallKind, FrameHeader, FrameTag, Limits, RequestDecoder, RequestEvent, RequestHead, StreamDecoder};
/// let limits = Limits::default();
/// let mut bytes = Vec::new();
/// RequestHead::new(CallKind::Unary, "Calc.add").encode(&limits, &mut bytes).unwrap();
/// FrameHeader::new(FrameTag::Message, 2, limits.max_frame_len).unwrap().encode(&mut bytes);
/// bytes.extend_from_slice(b"hi");
///
/// let mut decoder = RequestDecoder::new(limits);
/// decoder.handle_chunk(Bytes::from(bytes));
/// assert_eq!(decoder.poll_head().unwrap().unwrap().method, "Calc.add");
/// assert_eq!(decoder.poll_message().unwrap(), None, "the message waits for the end of the stream");
/// decoder.handle_end();
/// let Some(RequestEvent::Message(message)) = decoder.poll_message().unwrap() else { panic!() };
/// assert_eq!(message.into_bytes(), "hi");
/// ```
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    received: Received,
    ended: bool,
    state: State,
    /// Bytes of the head still at the front of `received`: the head that `poll_head`
    /// returned borrows them, so they are discarded on the next poll.
    head_len: usize,
    /// The header of the whole frame at the front of `received`, once read: a single
    /// message waiting for the end of the stream is not parsed again.
    front: Option<FrameHeader>,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self { limits, received: Received::default(), ended: false, state: State::Head, head_len: 0, front: None }
    }

    /// The request head, once it has arrived whole; fails as soon as the bytes received
    /// cannot start a valid one (wrong version, declared length over the limit).
    pub fn poll_head(&mut self) -> Result<Option<RequestHead<'_>>, WireError> {
        debug_assert!(matches!(self.state, State::Head), "bug in rpcnet: poll_head after the head");
        // A head cut by a packet boundary is joined first (heads are small and bounded).
        if self.received.front().len() < self.received.len() {
            let total = match self.received.peek::<{ super::REQUEST_PREFIX_LEN }>() {
                Some(prefix) => RequestHead::peek_len(&prefix, &self.limits),
                None => self.received.first().map_or(Ok(None), |v| RequestHead::peek_len(&[v], &self.limits)),
            };
            match total {
                Ok(Some(total)) if self.received.len() >= total => drop(self.received.contiguous(total)),
                Ok(_) => {}
                Err(err) => return self.fail(err),
            }
        }
        // `head` borrows `received`; `state` and `head_len` are other fields, so they can
        // change meanwhile.
        match RequestHead::decode(self.received.front(), &self.limits) {
            Ok(Some((head, total))) => {
                self.head_len = total;
                self.state = if head.kind.client_streams() { State::Stream } else { State::Single };
                Ok(Some(head))
            }
            Ok(None) if self.ended => {
                self.state = State::Done;
                Err(WireError::Ended("request head (the stream ended inside it)"))
            }
            Ok(None) => Ok(None),
            Err(err) => {
                self.state = State::Done;
                Err(err)
            }
        }
    }

    /// The next message, or the end of the requests.
    pub fn poll_message(&mut self) -> Result<Option<RequestEvent>, WireError> {
        if self.head_len > 0 {
            self.received.advance(std::mem::take(&mut self.head_len));
        }
        let single = match self.state {
            State::Head => unreachable!("bug in rpcnet: poll_message before the head"),
            State::Done => return Ok(Some(RequestEvent::End)),
            State::Single => true,
            State::Stream => false,
        };
        let header = match self.front {
            Some(header) => Some(header),
            None => match peek_frame(&self.received, self.limits.max_frame_len) {
                Ok(header) => header,
                Err(err) => return self.fail(err),
            },
        };
        match header {
            Some(header) if header.tag != FrameTag::Message => {
                self.fail(WireError::UnexpectedFrame { tag: header.tag, side: "request" })
            }
            Some(header) if single && more_than(&self.received, header) => self.fail(WireError::TrailingData),
            Some(header) if single && !self.ended => {
                self.front = Some(header);
                Ok(None)
            }
            Some(header) => {
                if single {
                    self.state = State::Done;
                }
                self.front = None;
                Ok(Some(RequestEvent::Message(take_frame(&mut self.received, header))))
            }
            None if !self.ended => Ok(None),
            None if !self.received.is_empty() => self.fail(ended_inside_frame(&self.received)),
            None if single => self.fail(WireError::Ended("the request ended without its message")),
            None => {
                self.state = State::Done;
                Ok(Some(RequestEvent::End))
            }
        }
    }

    fn fail<T>(&mut self, err: WireError) -> Result<T, WireError> {
        self.state = State::Done;
        Err(err)
    }
}

impl StreamDecoder for RequestDecoder {
    fn handle_chunk(&mut self, chunk: Bytes) {
        self.received.push(chunk);
    }

    fn handle_end(&mut self) {
        self.ended = true;
    }

    fn buffered(&self) -> usize {
        self.received.len() - self.head_len
    }

    fn frame_in_progress(&self) -> Option<usize> {
        match self.state {
            State::Stream | State::Single if self.head_len == 0 => front_frame_len(&self.received),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{CallKind, FrameHeader};

    fn head(kind: CallKind) -> Vec<u8> {
        let mut out = Vec::new();
        RequestHead::new(kind, "S.m").encode(&Limits::default(), &mut out).unwrap();
        out
    }

    fn frame(tag: FrameTag, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        FrameHeader::new(tag, payload.len(), u32::MAX).unwrap().encode(&mut out);
        out.extend_from_slice(payload);
        out
    }

    /// Feeds `bytes` one byte at a time, then the end, and collects what comes out.
    fn decode(bytes: &[u8]) -> Result<Vec<RequestEvent>, WireError> {
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut events = Vec::new();
        let mut chunks = bytes.chunks(1).map(Bytes::copy_from_slice);
        loop {
            if matches!(decoder.state, State::Head) {
                if decoder.poll_head()?.is_none() {
                    match chunks.next() {
                        Some(chunk) => decoder.handle_chunk(chunk),
                        None => decoder.handle_end(),
                    }
                }
                continue;
            }
            match decoder.poll_message()? {
                Some(RequestEvent::End) => {
                    events.push(RequestEvent::End);
                    return Ok(events);
                }
                Some(event) => events.push(event),
                None => match chunks.next() {
                    Some(chunk) => decoder.handle_chunk(chunk),
                    None => decoder.handle_end(),
                },
            }
        }
    }

    fn message(bytes: &'static [u8]) -> RequestEvent {
        RequestEvent::Message(Payload::from(Bytes::from_static(bytes)))
    }

    #[test]
    fn a_unary_request_is_its_head_one_message_and_the_end() {
        let request = [head(CallKind::Unary), frame(FrameTag::Message, b"abc")].concat();
        assert_eq!(decode(&request).unwrap(), [message(b"abc"), RequestEvent::End]);
    }

    #[test]
    fn a_client_stream_carries_any_number_of_messages_even_none() {
        let none = head(CallKind::ClientStreaming);
        assert_eq!(decode(&none).unwrap(), [RequestEvent::End]);
        let two =
            [head(CallKind::BidiStreaming), frame(FrameTag::Message, b""), frame(FrameTag::Message, b"x")].concat();
        assert_eq!(decode(&two).unwrap(), [message(b""), message(b"x"), RequestEvent::End], "empty messages are legal");
    }

    #[test]
    fn a_single_message_call_refuses_a_second_message_a_missing_one_and_other_frames() {
        let two =
            [head(CallKind::ServerStreaming), frame(FrameTag::Message, b"a"), frame(FrameTag::Message, b"b")].concat();
        assert_eq!(decode(&two), Err(WireError::TrailingData));
        assert_eq!(decode(&head(CallKind::Unary)), Err(WireError::Ended("the request ended without its message")));
        let status = [head(CallKind::Unary), frame(FrameTag::Status, b"\0\x01")].concat();
        assert_eq!(decode(&status), Err(WireError::UnexpectedFrame { tag: FrameTag::Status, side: "request" }));
    }

    #[test]
    fn a_stream_that_ends_early_says_where() {
        let unary = head(CallKind::Unary);
        assert_eq!(decode(&unary[..4]), Err(WireError::Ended("request head (the stream ended inside it)")));
        let cut_header = [unary.clone(), vec![0, 0]].concat();
        assert_eq!(decode(&cut_header), Err(WireError::Ended("stream ended inside a frame header")));
        let cut_payload = [unary, frame(FrameTag::Message, b"0123456789")[..8].to_vec()].concat();
        assert_eq!(decode(&cut_payload), Err(WireError::EndedInFrame { len: 10 }));
    }

    #[test]
    fn limits_are_enforced_before_the_bytes_they_guard_arrive() {
        let limits = Limits { max_frame_len: 1024, ..Limits::default() };
        let mut decoder = RequestDecoder::new(limits);
        let mut bytes = head(CallKind::ClientStreaming);
        bytes.extend_from_slice(&[0, 0, 0, 0x04, 0x01]); // announces 1025 bytes
        decoder.handle_chunk(Bytes::from(bytes));
        assert!(decoder.poll_head().unwrap().is_some());
        assert_eq!(decoder.poll_message(), Err(WireError::FrameTooLarge { len: 1025, max: 1024 }));

        let mut decoder = RequestDecoder::new(Limits::default());
        decoder.handle_chunk(Bytes::from_static(b"G"));
        assert_eq!(decoder.poll_head().map(|h| h.is_some()), Err(WireError::UnsupportedVersion(b'G')));
        let mut decoder = RequestDecoder::new(Limits::default());
        decoder.handle_chunk(Bytes::from(head(CallKind::ClientStreaming)));
        assert!(decoder.poll_head().unwrap().is_some());
        decoder.handle_chunk(Bytes::from_static(&[9]));
        assert_eq!(
            decoder.poll_message(),
            Err(WireError::UnknownFrameTag(9)),
            "an unknown frame tag is refused from its first byte, before its length arrives"
        );
    }

    #[test]
    fn buffered_counts_what_arrived_and_was_not_handed_out() {
        let mut decoder = RequestDecoder::new(Limits::default());
        decoder.handle_chunk(Bytes::from([head(CallKind::Unary), frame(FrameTag::Message, b"abcd")].concat()));
        decoder.poll_head().unwrap();
        assert_eq!(decoder.poll_message().unwrap(), None);
        assert_eq!(decoder.buffered(), 9, "the message waiting for the end counts, with its header");
        decoder.handle_end();
        assert!(matches!(decoder.poll_message().unwrap(), Some(RequestEvent::Message(_))));
        assert_eq!(decoder.buffered(), 0);
    }
}
