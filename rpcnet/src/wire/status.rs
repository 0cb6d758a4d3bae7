//! Status codes carried in STATUS frames, and the codes used to reset or stop a stream.

use bytes::BufMut;

use super::WireError;

/// Longest status message a sender writes; longer messages are cut at a char boundary.
pub const MAX_STATUS_MESSAGE_LEN: usize = 1024;

/// Why the server failed a call, in a STATUS frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusCode {
    /// No handler is registered under the method name.
    UnknownMethod = 1,
    /// The call's deadline passed before the handler finished.
    DeadlineExceeded = 2,
    /// The call was cancelled.
    Cancelled = 3,
    /// A message could not be encoded or decoded.
    Codec = 4,
    /// The request broke the protocol (bad head, wrong frame, wrong call kind).
    Protocol = 5,
    /// A frame exceeded the receiver's size limit.
    FrameTooLarge = 6,
    /// The server refused the call: too many calls in flight. Safe to retry elsewhere.
    Overloaded = 7,
    /// The server is shutting down and did not start the call. Safe to retry elsewhere.
    Unavailable = 8,
    /// The handler failed unexpectedly (it panicked).
    Internal = 9,
    /// The request's protocol version is not spoken by this server.
    UnsupportedVersion = 10,
    /// The server's access policy does not let this client call the method: the handler
    /// did not run. Not worth retrying elsewhere: the same identity is refused there too.
    PermissionDenied = 11,
}

impl StatusCode {
    /// The code for a number on the wire, if this build knows it.
    pub fn from_u16(code: u16) -> Option<Self> {
        Some(match code {
            1 => Self::UnknownMethod,
            2 => Self::DeadlineExceeded,
            3 => Self::Cancelled,
            4 => Self::Codec,
            5 => Self::Protocol,
            6 => Self::FrameTooLarge,
            7 => Self::Overloaded,
            8 => Self::Unavailable,
            9 => Self::Internal,
            10 => Self::UnsupportedVersion,
            11 => Self::PermissionDenied,
            _ => return None,
        })
    }
}

/// Application error codes for resetting (`RESET_STREAM`) or stopping (`STOP_SENDING`) one
/// half of a call's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamCode {
    /// The side gave up on the call (dropped future, deadline passed).
    Cancelled = 1,
    /// The peer broke the protocol on this stream.
    Protocol = 2,
    /// The side is closing and abandons the call.
    Shutdown = 3,
    /// The side ran out of time on this stream: the call's deadline passed, or the peer
    /// read nothing (or sent nothing inside a frame) for longer than the side allows.
    TimedOut = 4,
}

impl StreamCode {
    /// The numeric code, for quinn's `VarInt`.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// Writes a STATUS payload: `code:u16` and the message, cut to [`MAX_STATUS_MESSAGE_LEN`].
pub fn encode_status(code: StatusCode, message: &str, out: &mut impl BufMut) {
    out.put_u16(code as u16);
    out.put_slice(truncate_at_char_boundary(message, MAX_STATUS_MESSAGE_LEN).as_bytes());
}

/// Reads a STATUS payload: the raw code (unknown codes are kept, not rejected) and message.
pub fn decode_status(payload: &[u8]) -> Result<(u16, &str), WireError> {
    let Some((code, message)) = payload.split_first_chunk::<2>() else {
        return Err(WireError::Malformed("status (shorter than its 2-byte code)"));
    };
    let message = std::str::from_utf8(message).map_err(|_| WireError::InvalidUtf8("status message"))?;
    Ok((u16::from_be_bytes(*code), message))
}

fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_matches_the_documented_bytes() {
        let mut out = Vec::new();
        encode_status(StatusCode::UnknownMethod, "no such method", &mut out);
        assert_eq!(&out[..2], &[0x00, 0x01], "code first, big-endian");
        assert_eq!(decode_status(&out), Ok((1, "no such method")));
    }

    #[test]
    fn every_code_round_trips_and_unknown_codes_are_kept() {
        for raw in 1..=11u16 {
            let code = StatusCode::from_u16(raw).expect("codes 1..=11 are defined");
            assert_eq!(code as u16, raw);
        }
        assert_eq!(StatusCode::from_u16(999), None);
        assert_eq!(decode_status(&[0x03, 0xe7]), Ok((999, "")), "newer peers may send new codes");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let message = "é".repeat(MAX_STATUS_MESSAGE_LEN);
        let mut out = Vec::new();
        encode_status(StatusCode::Internal, &message, &mut out);
        let (_, decoded) = decode_status(&out).expect("cut message must stay valid UTF-8");
        assert_eq!(decoded.len(), MAX_STATUS_MESSAGE_LEN);
    }

    #[test]
    fn short_or_invalid_status_is_an_error() {
        assert!(decode_status(&[0x01]).is_err());
        assert!(decode_status(&[0x00, 0x01, 0xff]).is_err());
    }
}
