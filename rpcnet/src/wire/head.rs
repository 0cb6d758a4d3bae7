//! The request head: version, call kind, deadline, method and metadata.

use std::time::Duration;

use bytes::BufMut;

use super::metadata::{MetadataEntry, check_entries, decode_entries, encode_entries, entries_len};
use super::reader::{Reader, utf8};
use super::{Limits, PROTOCOL_VERSION, WireError};

/// Bytes before the head's fields: `version:u8` and `head_len:u16`.
pub const REQUEST_PREFIX_LEN: usize = 3;

/// The four shapes of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// One request message, one response message.
    Unary = 0,
    /// One request message, a stream of response messages.
    ServerStreaming = 1,
    /// A stream of request messages, one response message.
    ClientStreaming = 2,
    /// A stream each way, independent of each other.
    BidiStreaming = 3,
}

impl CallKind {
    /// The kind for a byte on the wire.
    pub fn from_u8(byte: u8) -> Result<Self, WireError> {
        match byte {
            0 => Ok(Self::Unary),
            1 => Ok(Self::ServerStreaming),
            2 => Ok(Self::ClientStreaming),
            3 => Ok(Self::BidiStreaming),
            other => Err(WireError::UnknownCallKind(other)),
        }
    }

    /// Whether the client sends a stream of messages (else exactly one).
    pub fn client_streams(self) -> bool {
        matches!(self, Self::ClientStreaming | Self::BidiStreaming)
    }

    /// Whether the server sends a stream of messages (else exactly one).
    pub fn server_streams(self) -> bool {
        matches!(self, Self::ServerStreaming | Self::BidiStreaming)
    }
}

/// A decoded request head, borrowing from the buffer it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// Shape of the call.
    pub kind: CallKind,
    /// Method name as registered on the server, e.g. `"Calculator.add"`.
    pub method: &'a str,
    /// How long the caller still waits, if it set a deadline. Millisecond precision.
    pub deadline: Option<Duration>,
    /// Optional key/value pairs for extensions (tracing context, tenant, ...).
    pub metadata: Vec<MetadataEntry<'a>>,
}

impl<'a> RequestHead<'a> {
    /// A head without deadline or metadata.
    pub fn new(kind: CallKind, method: &'a str) -> Self {
        Self { kind, method, deadline: None, metadata: Vec::new() }
    }

    /// The number of bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        REQUEST_PREFIX_LEN + self.body_len()
    }

    fn body_len(&self) -> usize {
        1 + 4 + 1 + self.method.len() + entries_len(&self.metadata)
    }

    /// Checks that the head fits the layout and `limits`, as [`encode`](Self::encode) does
    /// before writing anything.
    pub fn check(&self, limits: &Limits) -> Result<(), WireError> {
        if self.method.is_empty() || self.method.len() > usize::from(u8::MAX) {
            return Err(WireError::Malformed("method name (must be 1 to 255 bytes)"));
        }
        check_entries(&self.metadata, limits)?;
        let body_len = self.body_len();
        if body_len > usize::from(limits.max_head_len) {
            return Err(WireError::HeadTooLarge { len: body_len, max: usize::from(limits.max_head_len) });
        }
        Ok(())
    }

    /// Writes the head. Fails, writing nothing, if a field does not fit the layout or `limits`.
    pub fn encode(&self, limits: &Limits, out: &mut impl BufMut) -> Result<(), WireError> {
        self.check(limits)?;
        self.encode_checked(out);
        Ok(())
    }

    /// Writes a head that [`check`](Self::check) accepted.
    pub fn encode_checked(&self, out: &mut impl BufMut) {
        let body_len = self.body_len();
        out.put_u8(PROTOCOL_VERSION);
        out.put_u16(body_len as u16);
        out.put_u8(self.kind as u8);
        out.put_u32(encode_deadline(self.deadline));
        out.put_u8(self.method.len() as u8);
        out.put_slice(self.method.as_bytes());
        encode_entries(&self.metadata, out);
    }

    /// Checks the version and declared length of a head from its first bytes.
    ///
    /// Returns `Ok(None)` until [`REQUEST_PREFIX_LEN`] bytes are available, then the total
    /// length of the head, so a reader knows how much to wait for before calling
    /// [`decode`](Self::decode). Fails as soon as the version or the length is wrong.
    pub fn peek_len(buf: &[u8], limits: &Limits) -> Result<Option<usize>, WireError> {
        let Some(&version) = buf.first() else { return Ok(None) };
        if version != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        if buf.len() < REQUEST_PREFIX_LEN {
            return Ok(None);
        }
        let body_len = usize::from(u16::from_be_bytes([buf[1], buf[2]]));
        if body_len > usize::from(limits.max_head_len) {
            return Err(WireError::HeadTooLarge { len: body_len, max: usize::from(limits.max_head_len) });
        }
        Ok(Some(REQUEST_PREFIX_LEN + body_len))
    }

    /// Decodes a head from the start of `buf`, validating every field.
    ///
    /// Returns `Ok(None)` if `buf` holds only part of the head, otherwise the head and the
    /// number of bytes it used. Never reads past the declared length.
    pub fn decode(buf: &'a [u8], limits: &Limits) -> Result<Option<(Self, usize)>, WireError> {
        let Some(total) = Self::peek_len(buf, limits)? else { return Ok(None) };
        let Some(body) = buf.get(REQUEST_PREFIX_LEN..total) else { return Ok(None) };
        let mut r = Reader(body);
        let kind = CallKind::from_u8(r.u8("call kind")?)?;
        let deadline = decode_deadline(r.u32("deadline")?);
        let method = r.take_u8_prefixed("method name")?;
        if method.is_empty() {
            return Err(WireError::Malformed("method name (empty)"));
        }
        let method = utf8(method, "method name")?;
        let metadata = decode_entries(&mut r, limits)?;
        if !r.0.is_empty() {
            return Err(WireError::Malformed("request head (bytes left over after the last field)"));
        }
        Ok(Some((Self { kind, method, deadline, metadata }, total)))
    }
}

/// Milliseconds on the wire; 0 means "no deadline", so a deadline that is already due still
/// travels as 1 ms and the server fails it at once instead of running it unbounded.
fn encode_deadline(deadline: Option<Duration>) -> u32 {
    match deadline {
        None => 0,
        Some(d) => {
            // u64 arithmetic: a u128 division costs more than the rest of the head.
            let ms = d.as_secs().saturating_mul(1000).saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)));
            ms.clamp(1, u64::from(u32::MAX)) as u32
        }
    }
}

fn decode_deadline(ms: u32) -> Option<Duration> {
    (ms != 0).then(|| Duration::from_millis(u64::from(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(head: &RequestHead<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        head.encode(&Limits::default(), &mut out).expect("head fits the default limits");
        out
    }

    #[test]
    fn unary_head_matches_the_documented_bytes() {
        let mut head = RequestHead::new(CallKind::Unary, "Calc.add");
        head.deadline = Some(Duration::from_millis(1500));
        let bytes = encode(&head);
        let expected: &[u8] = &[
            0x01, // version
            0x00, 0x0f, // head_len = 15
            0x00, // unary
            0x00, 0x00, 0x05, 0xdc, // deadline 1500 ms
            0x08, b'C', b'a', b'l', b'c', b'.', b'a', b'd', b'd', // method
            0x00, // no metadata
        ];
        assert_eq!(bytes, expected, "encoding must follow the layout in wire/mod.rs");
        assert_eq!(head.encoded_len(), bytes.len(), "encoded_len must predict the size");
        let (decoded, used) = RequestHead::decode(&bytes, &Limits::default()).unwrap().unwrap();
        assert_eq!(decoded, head, "decode must invert encode");
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn metadata_round_trips() {
        let mut head = RequestHead::new(CallKind::BidiStreaming, "Chat.talk");
        head.metadata = vec![("trace", b"abc".as_slice()), ("tenant", b"".as_slice())];
        let bytes = encode(&head);
        let (decoded, _) = RequestHead::decode(&bytes, &Limits::default()).unwrap().unwrap();
        assert_eq!(decoded, head, "metadata must survive a round trip, empty values included");
    }

    #[test]
    fn every_prefix_of_a_head_is_incomplete_not_an_error() {
        let mut head = RequestHead::new(CallKind::ServerStreaming, "S.m");
        head.metadata = vec![("k", b"v".as_slice())];
        let bytes = encode(&head);
        for cut in 0..bytes.len() {
            assert_eq!(
                RequestHead::decode(&bytes[..cut], &Limits::default()),
                Ok(None),
                "a head cut at {cut} bytes must ask for more input"
            );
        }
    }

    #[test]
    fn deadline_rounds_up_and_never_encodes_as_none() {
        assert_eq!(encode_deadline(Some(Duration::ZERO)), 1, "a due deadline must still travel");
        assert_eq!(encode_deadline(Some(Duration::from_micros(1001))), 2, "partial ms round up");
        assert_eq!(encode_deadline(Some(Duration::from_secs(u64::MAX))), u32::MAX, "saturates");
        assert_eq!(encode_deadline(None), 0);
    }

    #[test]
    fn wrong_version_is_reported_from_the_first_byte() {
        assert_eq!(
            RequestHead::decode(&[7], &Limits::default()),
            Err(WireError::UnsupportedVersion(7)),
            "a reader must not wait for more bytes of a version it cannot parse"
        );
    }

    #[test]
    fn oversized_head_is_refused_before_its_body_arrives() {
        let limits = Limits { max_head_len: 16, ..Limits::default() };
        assert_eq!(RequestHead::peek_len(&[1, 0x00, 0x11], &limits), Err(WireError::HeadTooLarge { len: 17, max: 16 }),);
    }

    #[test]
    fn malformed_heads_are_errors() {
        let limits = Limits::default();
        // kind 9
        assert_eq!(
            RequestHead::decode(&[1, 0, 7, 9, 0, 0, 0, 0, 1, b'm', 0], &limits),
            Err(WireError::UnknownCallKind(9))
        );
        // empty method
        assert!(RequestHead::decode(&[1, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0], &limits).is_err());
        // method length runs past head_len
        assert_eq!(
            RequestHead::decode(&[1, 0, 7, 0, 0, 0, 0, 0, 9, b'm', 0], &limits),
            Err(WireError::Malformed("method name"))
        );
        // invalid UTF-8
        assert_eq!(
            RequestHead::decode(&[1, 0, 8, 0, 0, 0, 0, 0, 1, 0xff, 0], &limits),
            Err(WireError::InvalidUtf8("method name"))
        );
        // trailing bytes inside head_len
        assert!(matches!(
            RequestHead::decode(&[1, 0, 9, 0, 0, 0, 0, 0, 1, b'm', 0, 0xaa], &limits),
            Err(WireError::Malformed(_))
        ));
        // too many metadata entries
        let tight = Limits { max_metadata_entries: 1, ..limits };
        assert_eq!(
            RequestHead::decode(&[1, 0, 8, 0, 0, 0, 0, 0, 1, b'm', 2], &tight),
            Err(WireError::TooManyMetadataEntries { count: 2, max: 1 })
        );
    }

    #[test]
    fn a_metadata_key_that_is_not_utf8_is_refused() {
        let bad_key = [1, 0, 12, 0, 0, 0, 0, 0, 1, b'm', 1, 1, 0xff, 0, 0];
        assert_eq!(RequestHead::decode(&bad_key, &Limits::default()), Err(WireError::InvalidUtf8("metadata key")));
    }

    #[test]
    fn encode_refuses_what_decode_would_refuse() {
        let limits = Limits::default();
        let long = "m".repeat(256);
        assert!(RequestHead::new(CallKind::Unary, &long).encode(&limits, &mut Vec::new()).is_err());
        assert!(RequestHead::new(CallKind::Unary, "").encode(&limits, &mut Vec::new()).is_err());
        let mut head = RequestHead::new(CallKind::Unary, "m");
        head.metadata = vec![("k", &[0u8; 10][..]); 33];
        assert!(head.encode(&limits, &mut Vec::new()).is_err(), "33 entries exceed the default 32");
    }
}
