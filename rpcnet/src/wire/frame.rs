//! Frames: a tag, a length, and that many payload bytes.

use bytes::BufMut;

use super::WireError;
use super::payload::{Payload, Received};

/// Bytes in a frame header: `tag:u8` and `len:u32`.
pub const FRAME_HEADER_LEN: usize = 5;

/// What a frame's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameTag {
    /// An application message.
    Message = 0,
    /// The handler's own error, encoded by the service codec. Terminal.
    ServiceError = 1,
    /// An rpcnet status: `u16 code` then a UTF-8 message. Terminal.
    Status = 2,
    /// Response metadata: a metadata list, only as the first frame of a response.
    Metadata = 3,
}

impl FrameTag {
    /// The tag for a byte on the wire.
    pub fn from_u8(byte: u8) -> Result<Self, WireError> {
        match byte {
            0 => Ok(Self::Message),
            1 => Ok(Self::ServiceError),
            2 => Ok(Self::Status),
            3 => Ok(Self::Metadata),
            other => Err(WireError::UnknownFrameTag(other)),
        }
    }

    /// Whether the sender finishes the stream right after this frame.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::ServiceError | Self::Status)
    }
}

/// The five bytes in front of every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the payload is.
    pub tag: FrameTag,
    /// Payload length in bytes.
    pub len: u32,
}

impl FrameHeader {
    /// A header for a payload of `len` bytes, or an error if `len` exceeds `max_len`.
    pub fn new(tag: FrameTag, len: usize, max_len: u32) -> Result<Self, WireError> {
        match u32::try_from(len) {
            Ok(len) if len <= max_len => Ok(Self { tag, len }),
            _ => Err(WireError::FrameTooLarge { len: len as u64, max: u64::from(max_len) }),
        }
    }

    /// Writes the header.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(self.tag as u8);
        out.put_u32(self.len);
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_LEN] {
        let len = self.len.to_be_bytes();
        [self.tag as u8, len[0], len[1], len[2], len[3]]
    }

    /// Decodes a header from the start of `buf`, checking its length against `max_len`.
    ///
    /// Returns `Ok(None)` if fewer than [`FRAME_HEADER_LEN`] bytes are available. The caller
    /// can allocate `len` bytes once this returns `Ok(Some(_))`: the bound was checked.
    pub fn decode(buf: &[u8], max_len: u32) -> Result<Option<Self>, WireError> {
        let Some(&tag) = buf.first() else { return Ok(None) };
        let tag = FrameTag::from_u8(tag)?;
        let Some(len) = buf.get(1..FRAME_HEADER_LEN) else { return Ok(None) };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if len > max_len {
            return Err(WireError::FrameTooLarge { len: u64::from(len), max: u64::from(max_len) });
        }
        Ok(Some(Self { tag, len }))
    }
}

/// The header of the frame at the front of `received`, once the whole frame has arrived.
/// A frame's tag is checked from its first byte and its length against `max_len` from its
/// header alone, so a frame that will be refused is refused before its payload arrives.
pub(crate) fn peek_frame(received: &Received, max_len: u32) -> Result<Option<FrameHeader>, WireError> {
    let Some(header) = received.peek::<FRAME_HEADER_LEN>() else {
        if let Some(tag) = received.first() {
            FrameTag::from_u8(tag)?;
        }
        return Ok(None);
    };
    let header = FrameHeader::decode(&header, max_len)?.expect("five bytes are a whole header");
    Ok((received.len() >= FRAME_HEADER_LEN + header.len as usize).then_some(header))
}

/// The length, header included, of the frame whose header is at the front of `received`.
pub(crate) fn front_frame_len(received: &Received) -> Option<usize> {
    let header = received.peek::<FRAME_HEADER_LEN>()?;
    Some(FRAME_HEADER_LEN + u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize)
}

/// Takes the frame whose whole header `peek_frame` returned off the front of `received`.
pub(crate) fn take_frame(received: &mut Received, header: FrameHeader) -> Payload {
    received.advance(FRAME_HEADER_LEN);
    received.take(header.len as usize)
}

/// Whether `received` holds bytes beyond the frame `header` at its front.
pub(crate) fn more_than(received: &Received, header: FrameHeader) -> bool {
    received.len() > FRAME_HEADER_LEN + header.len as usize
}

/// Why a stream that ended with `received` still buffered ended too early: inside a frame
/// header, or inside a frame's payload.
pub(crate) fn ended_inside_frame(received: &Received) -> WireError {
    match received.peek::<FRAME_HEADER_LEN>() {
        None => WireError::Ended("stream ended inside a frame header"),
        Some(header) => {
            WireError::EndedInFrame { len: u32::from_be_bytes([header[1], header[2], header[3], header[4]]) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_header_matches_the_documented_bytes() {
        let header = FrameHeader::new(FrameTag::Message, 0x0102_0304, u32::MAX).unwrap();
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(out, [0x00, 0x01, 0x02, 0x03, 0x04], "tag then big-endian length");
        assert_eq!(header.to_bytes().as_slice(), out.as_slice(), "both encoders must agree");
        assert_eq!(FrameHeader::decode(&out, u32::MAX), Ok(Some(header)));
    }

    #[test]
    fn terminal_tags_are_terminal() {
        assert_eq!(FrameHeader::decode(&[1, 0, 0, 0, 0], 0).unwrap().unwrap().tag, FrameTag::ServiceError);
        assert_eq!(FrameHeader::decode(&[2, 0, 0, 0, 3], 3).unwrap().unwrap().tag, FrameTag::Status);
        assert!(FrameTag::ServiceError.is_terminal() && FrameTag::Status.is_terminal());
        assert!(!FrameTag::Message.is_terminal(), "messages keep the stream open");
        assert!(!FrameTag::Metadata.is_terminal(), "response metadata comes before what ends the call");
    }

    #[test]
    fn empty_payload_is_legal() {
        assert_eq!(
            FrameHeader::decode(&[0, 0, 0, 0, 0], 0),
            Ok(Some(FrameHeader { tag: FrameTag::Message, len: 0 })),
            "end of stream is FIN, so a zero-length message is an ordinary message"
        );
    }

    #[test]
    fn length_over_the_limit_is_refused_from_the_header_alone() {
        assert_eq!(
            FrameHeader::decode(&[0, 0, 0, 0x04, 0x01], 1024),
            Err(WireError::FrameTooLarge { len: 1025, max: 1024 })
        );
        assert!(FrameHeader::new(FrameTag::Message, 1025, 1024).is_err(), "encoder checks too");
    }

    #[test]
    fn short_input_asks_for_more_and_bad_tag_fails_at_once() {
        for cut in 0..FRAME_HEADER_LEN {
            assert_eq!(FrameHeader::decode(&[0, 0, 0, 0, 1][..cut], 10), Ok(None));
        }
        assert_eq!(FrameHeader::decode(&[9], 10), Err(WireError::UnknownFrameTag(9)));
    }
}
