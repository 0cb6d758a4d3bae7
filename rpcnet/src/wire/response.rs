//! `ResponseDecoder`: the client's reading of one call's response stream, without I/O.
//! Chunks and the end of the stream go in; messages, the server's terminal frame and the
//! end come out, or the rule of the protocol that the server broke.

use bytes::Bytes;

use super::frame::{ended_inside_frame, front_frame_len, more_than, peek_frame, take_frame};
use super::payload::{Payload, Received};
use super::{
    CallKind, FrameHeader, FrameTag, Limits, PROTOCOL_VERSION, StreamDecoder, WireError, decode_metadata_frame,
    decode_status,
};

/// What a response stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseEvent {
    /// One response message.
    Message(Payload),
    /// The handler's own error, as its service encoded it. Terminal.
    ServiceError(Payload),
    /// An rpcnet status (see [`StatusCode`](super::StatusCode)); the code is kept as sent,
    /// known to this build or not. Terminal.
    Status {
        /// The status code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// The response's metadata (the payload of its METADATA frame, checked against the
    /// limits: read its entries with [`decode_metadata_frame`](super::decode_metadata_frame)).
    /// Only ever the first event.
    Metadata(Bytes),
    /// The server finished the stream.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The version byte has not arrived.
    Version,
    /// Frames follow. The last frame of the call (the one message of a unary or
    /// client-streaming call, or a terminal frame) stays among the bytes received until the
    /// end of the stream shows that nothing follows it.
    Frames,
    /// The end was reported, or the server broke the protocol.
    Done,
}

/// Decodes the response half of a call (see the layout in [`crate::wire`]).
///
/// Feed it as [`StreamDecoder`] says and [`poll`](Self::poll) until it returns
/// [`ResponseEvent::End`] or a terminal event; `Ok(None)` means "feed more". Streamed
/// messages come out as they arrive; the one message of a unary or client-streaming call,
/// and a terminal frame, come out once the stream has ended, so that anything after them
/// is refused.
///
/// ```
/// use bytes::Bytes;
/// use rpcnet::wire::{CallKind, Limits, ResponseDecoder, ResponseEvent, StreamDecoder};
/// let mut decoder = ResponseDecoder::new(CallKind::ServerStreaming, Limits::default());
/// decoder.handle_chunk(Bytes::from_static(&[1, 0, 0, 0, 0, 2, b'o', b'k']));
/// let Some(ResponseEvent::Message(message)) = decoder.poll().unwrap() else { panic!() };
/// assert_eq!(message.into_bytes(), "ok");
/// decoder.handle_end();
/// assert_eq!(decoder.poll().unwrap(), Some(ResponseEvent::End));
/// ```
#[derive(Debug)]
pub struct ResponseDecoder {
    max_frame_len: u32,
    limits: Limits,
    /// Whether a frame was read: a METADATA frame may only come first.
    framed: bool,
    /// Whether the call has exactly one response message (unary, client streaming).
    single: bool,
    received: Received,
    ended: bool,
    state: State,
    /// The header of the whole last frame at the front of `received`, once read: it is not
    /// parsed again when the end of the stream arrives.
    front: Option<FrameHeader>,
}

impl ResponseDecoder {
    /// A decoder for the response of a call of `kind`, enforcing `limits`.
    pub fn new(kind: CallKind, limits: Limits) -> Self {
        Self {
            max_frame_len: limits.max_frame_len,
            limits,
            framed: false,
            single: !kind.server_streams(),
            received: Received::default(),
            ended: false,
            state: State::Version,
            front: None,
        }
    }

    /// The next event of the response.
    pub fn poll(&mut self) -> Result<Option<ResponseEvent>, WireError> {
        match self.state {
            State::Done => return Ok(Some(ResponseEvent::End)),
            State::Version => match self.received.first() {
                Some(PROTOCOL_VERSION) => {
                    self.received.advance(1);
                    self.state = State::Frames;
                }
                Some(other) => return self.fail(WireError::UnsupportedVersion(other)),
                None if self.ended => {
                    return self.fail(WireError::Ended("the server finished the stream without a response"));
                }
                None => return Ok(None),
            },
            State::Frames => {}
        }
        let header = match self.front.take() {
            Some(header) => Some(header),
            None => match peek_frame(&self.received, self.max_len_of_next()) {
                Ok(header) => header,
                Err(err) => return self.fail(err),
            },
        };
        let Some(header) = header else {
            if !self.ended {
                return Ok(None);
            }
            if !self.received.is_empty() {
                return self.fail(ended_inside_frame(&self.received));
            }
            if self.single {
                return self.fail(WireError::Ended("the server finished the call without a response"));
            }
            self.state = State::Done;
            return Ok(Some(ResponseEvent::End));
        };
        if header.tag == FrameTag::Metadata {
            return self.metadata(header);
        }
        self.framed = true;
        let last = self.single || header.tag.is_terminal();
        if last && more_than(&self.received, header) {
            return self.fail(WireError::TrailingData);
        }
        if last && !self.ended {
            self.front = Some(header);
            return Ok(None);
        }
        if last {
            self.state = State::Done;
        }
        let payload = take_frame(&mut self.received, header);
        match header.tag {
            FrameTag::Message => Ok(Some(ResponseEvent::Message(payload))),
            FrameTag::ServiceError => Ok(Some(ResponseEvent::ServiceError(payload))),
            FrameTag::Status => {
                let payload = payload.into_bytes();
                match decode_status(&payload) {
                    Ok((code, message)) => Ok(Some(ResponseEvent::Status { code, message: message.to_owned() })),
                    Err(err) => self.fail(err),
                }
            }
            FrameTag::Metadata => unreachable!("handled above"),
        }
    }

    /// The longest frame that may come next: a METADATA frame is bounded like a request
    /// head, so that it is refused from its header alone.
    fn max_len_of_next(&self) -> u32 {
        match self.received.first() {
            Some(tag) if tag == FrameTag::Metadata as u8 && !self.framed => u32::from(self.limits.max_head_len),
            _ => self.max_frame_len,
        }
    }

    /// The METADATA frame at the front, whole: refused unless it is the first frame.
    fn metadata(&mut self, header: FrameHeader) -> Result<Option<ResponseEvent>, WireError> {
        if self.framed {
            return self
                .fail(WireError::UnexpectedFrame { tag: FrameTag::Metadata, side: "response after its first frame" });
        }
        self.framed = true;
        let payload = take_frame(&mut self.received, header).into_bytes();
        match decode_metadata_frame(&payload, &self.limits) {
            Ok(_) => Ok(Some(ResponseEvent::Metadata(payload))),
            Err(err) => self.fail(err),
        }
    }

    fn fail<T>(&mut self, err: WireError) -> Result<T, WireError> {
        self.state = State::Done;
        Err(err)
    }
}

impl StreamDecoder for ResponseDecoder {
    fn handle_chunk(&mut self, chunk: Bytes) {
        self.received.push(chunk);
    }

    fn handle_end(&mut self) {
        self.ended = true;
    }

    fn buffered(&self) -> usize {
        self.received.len()
    }

    fn frame_in_progress(&self) -> Option<usize> {
        match self.state {
            State::Frames => front_frame_len(&self.received),
            State::Version | State::Done => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameHeader, StatusCode, encode_status};

    fn frame(tag: FrameTag, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        FrameHeader::new(tag, payload.len(), u32::MAX).unwrap().encode(&mut out);
        out.extend_from_slice(payload);
        out
    }

    fn status(code: StatusCode, message: &str) -> Vec<u8> {
        let mut payload = Vec::new();
        encode_status(code, message, &mut payload);
        frame(FrameTag::Status, &payload)
    }

    /// Feeds `bytes` in chunks of `size`, then the end, and collects events up to the end
    /// or the first terminal one.
    fn decode(kind: CallKind, bytes: &[u8], size: usize) -> Result<Vec<ResponseEvent>, WireError> {
        let mut decoder = ResponseDecoder::new(kind, Limits::default());
        let mut chunks = bytes.chunks(size).map(Bytes::copy_from_slice);
        let mut events = Vec::new();
        loop {
            match decoder.poll()? {
                Some(event @ ResponseEvent::Message(_)) => events.push(event),
                Some(event) => {
                    events.push(event);
                    return Ok(events);
                }
                None => match chunks.next() {
                    Some(chunk) => decoder.handle_chunk(chunk),
                    None => decoder.handle_end(),
                },
            }
        }
    }

    fn message(bytes: &'static [u8]) -> ResponseEvent {
        ResponseEvent::Message(Payload::from(Bytes::from_static(bytes)))
    }

    #[test]
    fn every_kind_of_response_decodes_whatever_the_chunking() {
        let unary = [vec![1], frame(FrameTag::Message, b"sum")].concat();
        let stream = [vec![1], frame(FrameTag::Message, b"a"), frame(FrameTag::Message, b"bc")].concat();
        let failed = [vec![1], frame(FrameTag::Message, b"a"), status(StatusCode::Internal, "boom")].concat();
        for size in [1, 2, 3, 100] {
            assert_eq!(
                decode(CallKind::Unary, &unary, size).unwrap(),
                [message(b"sum"), ResponseEvent::End],
                "chunks of {size}"
            );
            assert_eq!(
                decode(CallKind::BidiStreaming, &stream, size).unwrap(),
                [message(b"a"), message(b"bc"), ResponseEvent::End]
            );
            assert_eq!(
                decode(CallKind::ServerStreaming, &failed, size).unwrap(),
                [message(b"a"), ResponseEvent::Status { code: StatusCode::Internal as u16, message: "boom".into() }]
            );
        }
        let service = [vec![1], frame(FrameTag::ServiceError, b"no")].concat();
        assert_eq!(
            decode(CallKind::ClientStreaming, &service, 2).unwrap(),
            [ResponseEvent::ServiceError(Payload::from(Bytes::from_static(b"no")))]
        );
    }

    #[test]
    fn a_single_response_must_be_whole_and_alone() {
        assert_eq!(
            decode(CallKind::Unary, &[1], 1),
            Err(WireError::Ended("the server finished the call without a response"))
        );
        assert_eq!(
            decode(CallKind::Unary, &[], 1),
            Err(WireError::Ended("the server finished the stream without a response"))
        );
        let two = [vec![1], frame(FrameTag::Message, b"a"), frame(FrameTag::Message, b"b")].concat();
        assert_eq!(decode(CallKind::Unary, &two, 3), Err(WireError::TrailingData));
        let after_status = [vec![1], status(StatusCode::Overloaded, "busy"), vec![0]].concat();
        assert_eq!(decode(CallKind::ServerStreaming, &after_status, 4), Err(WireError::TrailingData));
        assert_eq!(decode(CallKind::Unary, &[7], 1), Err(WireError::UnsupportedVersion(7)));
        let cut = [vec![1], frame(FrameTag::Message, b"abcdef")[..7].to_vec()].concat();
        assert_eq!(decode(CallKind::Unary, &cut, 2), Err(WireError::EndedInFrame { len: 6 }));
    }

    #[test]
    fn response_metadata_comes_first_bounded_and_once() {
        let mut list = Vec::new();
        crate::wire::encode_metadata_frame(&[("served-by", b"n1")], &Limits::default(), &mut list).unwrap();
        let metadata = ResponseEvent::Metadata(Bytes::from(list.clone()));
        let unary = [vec![1], frame(FrameTag::Metadata, &list), frame(FrameTag::Message, b"ok")].concat();
        for size in [1, 3, 100] {
            assert_eq!(decode(CallKind::Unary, &unary, size).unwrap()[0], metadata, "chunks of {size}");
        }
        let mut decoder = ResponseDecoder::new(CallKind::Unary, Limits::default());
        decoder.handle_chunk(Bytes::from(unary));
        decoder.handle_end();
        assert_eq!(decoder.poll().unwrap(), Some(metadata));
        assert_eq!(decoder.poll().unwrap(), Some(message(b"ok")));

        let late = [vec![1], frame(FrameTag::Message, b"a"), frame(FrameTag::Metadata, &list)].concat();
        assert!(matches!(
            decode(CallKind::ServerStreaming, &late, 100),
            Err(WireError::UnexpectedFrame { tag: FrameTag::Metadata, .. })
        ));
        // Refused from the header alone: nothing of a 9 KiB frame is waited for.
        let mut decoder = ResponseDecoder::new(CallKind::Unary, Limits::default());
        let mut big = vec![1];
        FrameHeader::new(FrameTag::Metadata, 9 * 1024, u32::MAX).unwrap().encode(&mut big);
        decoder.handle_chunk(Bytes::from(big));
        assert_eq!(decoder.poll(), Err(WireError::FrameTooLarge { len: 9 * 1024, max: 8 * 1024 }));
        let bad = [vec![1], frame(FrameTag::Metadata, &[5]), frame(FrameTag::Message, b"ok")].concat();
        assert!(decode(CallKind::Unary, &bad, 100).is_err(), "a malformed list fails the call");
    }

    #[test]
    fn a_streamed_message_comes_out_before_the_end() {
        let mut decoder = ResponseDecoder::new(CallKind::ServerStreaming, Limits::default());
        decoder.handle_chunk(Bytes::from([vec![1], frame(FrameTag::Message, b"now")].concat()));
        assert_eq!(decoder.poll().unwrap(), Some(message(b"now")), "no need to wait for the end");
        assert_eq!(decoder.poll().unwrap(), None);
    }
}
