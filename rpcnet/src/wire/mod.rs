//! The rpcnet wire protocol, version 1: how one call is laid out on one QUIC stream.
//! Pure functions on bytes (no tokio, no quinn), so every decoder can be fuzzed and
//! every length is checked against [`Limits`] before anything is allocated.
//!
//! # Layout
//!
//! Every call owns one bidirectional QUIC stream. The client writes a request, the server
//! writes a response; each side marks the end of what it sends by finishing its half of the
//! stream (QUIC FIN). There is no "end" frame, so an empty message is an ordinary frame of
//! length zero. All integers are big-endian.
//!
//! ```text
//! Request  = RequestHead Frame*        client -> server, then FIN
//! Response = version:u8 Frame*         server -> client, then FIN
//!
//! RequestHead
//!   u8    version          1 (PROTOCOL_VERSION); a server answers any other value with
//!                          STATUS UNSUPPORTED_VERSION and reads nothing more
//!   u16   head_len         bytes in the fields below, at most Limits::max_head_len
//!   u8    kind             0 unary, 1 server streaming, 2 client streaming, 3 bidirectional
//!   u32   deadline_ms      0: no deadline; otherwise how long the caller still waits,
//!                          relative, so the clocks of client and server need not agree
//!   u8    method_len       1..=255
//!   [u8]  method           UTF-8, e.g. "Calculator.add"
//!   u8    metadata_count   at most Limits::max_metadata_entries
//!   metadata_count times:
//!     u8    key_len        1..=255
//!     [u8]  key            UTF-8
//!     u16   value_len
//!     [u8]  value
//!   (the fields must use exactly head_len bytes)
//!
//! Frame
//!   u8    tag              0 MESSAGE, 1 SERVICE_ERROR, 2 STATUS, 3 METADATA
//!   u32   len              at most Limits::max_frame_len (METADATA: Limits::max_head_len)
//!   [u8]  payload          len bytes
//!
//! METADATA payload (the same list as in a request head, filling the payload exactly)
//!   u8    metadata_count   at most Limits::max_metadata_entries
//!   metadata_count times: key_len u8, key, value_len u16, value
//! ```
//!
//! Metadata keys are 1 to 255 bytes of `a-z`, `0-9`, `-`, `_` and `.`. A key ending in `-bin`
//! carries any bytes; every other key carries UTF-8 text. Keys starting with `rpcnet-` are
//! reserved for rpcnet itself. A key appears at most once in a list.
//!
//! A request carries MESSAGE frames only: exactly one for unary and server-streaming calls,
//! any number for client-streaming and bidirectional calls. A response carries MESSAGE
//! frames (exactly one for a successful unary or client-streaming call) and may end with one
//! terminal frame, after which the server finishes the stream:
//!
//! - `SERVICE_ERROR`: the handler's own error, encoded by the service's codec; the client
//!   hands it back typed (see [`crate::ServiceError`]).
//! - `STATUS`: an rpcnet error. Payload = `u16 code` followed by a UTF-8 message of at most
//!   [`MAX_STATUS_MESSAGE_LEN`] bytes; codes are listed in [`StatusCode`].
//!
//! A response may open with one METADATA frame, the handler's response metadata, before any
//! other frame (and only there); a server sends it only when the handler set some, so a
//! response without metadata is laid out as before the frame existed.
//!
//! A side that gives up on a call resets its sending half and stops its receiving half with
//! one of the [`StreamCode`]s, so the peer learns why without a frame.
//!
//! # Decoders
//!
//! [`RequestDecoder`] (the server's half) and [`ResponseDecoder`] (the client's) hold these
//! rules: fed a stream's bytes in whatever chunks they arrive ([`StreamDecoder`]), they hand
//! out the head, each message as a [`Payload`] (in the pieces it arrived in, not copied),
//! and the end, or the [`WireError`] naming the rule that was broken. The transport only
//! feeds them.
//!
//! # Trace context
//!
//! With rpcnet's `opentelemetry` feature, a client writes the W3C trace context of its call's
//! span into the request head's metadata, under the names of the W3C Trace Context
//! recommendation: `traceparent` (`00-{trace id}-{parent span id}-{flags}`, lowercase hex)
//! and, only when it is not empty, `tracestate`. A server with the feature continues that
//! trace. They are ordinary metadata entries, not reserved `rpcnet-` ones: a server without
//! the feature hands them to its handlers like any other entry.
//!
//! # Built-in methods
//!
//! Method names starting with `rpcnet.` are reserved. Every server answers
//! [`PING_METHOD`] (`rpcnet.ping`), a unary call whose request and response are empty
//! messages, outside its limit of calls in flight: a sign of life that costs one small
//! stream. Clients following a cluster ping the workers they are connected to, at a
//! steady rhythm, to feed the phi-accrual detector.

mod frame;
mod head;
mod metadata;
mod payload;
mod reader;
mod request;
mod response;
mod status;

pub use frame::{FRAME_HEADER_LEN, FrameHeader, FrameTag};
pub use head::{CallKind, REQUEST_PREFIX_LEN, RequestHead};
pub use metadata::{MetadataEntry, decode_metadata_frame, encode_metadata_frame};
pub use payload::Payload;
pub use request::{RequestDecoder, RequestEvent};
pub use response::{ResponseDecoder, ResponseEvent};
pub use status::{MAX_STATUS_MESSAGE_LEN, StatusCode, StreamCode, decode_status, encode_status};

use bytes::Bytes;
use thiserror::Error;

/// What the transport feeds a decoder of one half of a call's stream: the chunks as they
/// arrive, then the end of the stream. The decoders ([`RequestDecoder`],
/// [`ResponseDecoder`]) own the protocol's rules; the transport only moves bytes.
pub trait StreamDecoder {
    /// The next bytes of the stream.
    fn handle_chunk(&mut self, chunk: Bytes);
    /// The peer finished the stream: no bytes follow.
    fn handle_end(&mut self);
    /// Bytes received and not yet handed out, for bounds on memory.
    fn buffered(&self) -> usize;
    /// The length (header included) of the frame at the front, once its header has
    /// arrived: what the stream will hold when that frame is whole. `None` before the
    /// header, inside a request head or a response's version byte, and after the end.
    fn frame_in_progress(&self) -> Option<usize>;
}

/// The only protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// The built-in ping: a unary call with empty request and response, answered by every
/// server outside its limit of calls in flight.
pub const PING_METHOD: &str = "rpcnet.ping";

/// Method names starting with this are rpcnet's own; a server refuses to register them.
pub const RESERVED_METHOD_PREFIX: &str = "rpcnet.";

/// Bounds a decoder enforces before it allocates or reads further.
///
/// ```
/// let limits = rpcnet::wire::Limits::default();
/// assert_eq!(limits.max_frame_len, 16 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload accepted, in bytes. Default 16 MiB.
    pub max_frame_len: u32,
    /// Largest request head (the part counted by `head_len`), in bytes. Default 8 KiB.
    pub max_head_len: u16,
    /// Most metadata entries in one request head. Default 32.
    pub max_metadata_entries: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_frame_len: 16 * 1024 * 1024, max_head_len: 8 * 1024, max_metadata_entries: 32 }
    }
}

/// Why some bytes are not a valid piece of the rpcnet protocol.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The first byte names a protocol version this build does not speak.
    #[error("unsupported protocol version {0} (this build speaks version {PROTOCOL_VERSION})")]
    UnsupportedVersion(u8),
    /// A request head declares more bytes than [`Limits::max_head_len`].
    #[error("request head of {len} bytes exceeds the limit of {max} bytes")]
    HeadTooLarge {
        /// Declared length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// A frame declares a payload longer than [`Limits::max_frame_len`].
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Declared length.
        len: u64,
        /// Configured limit.
        max: u64,
    },
    /// The call kind byte is not one of the four kinds.
    #[error("unknown call kind {0}")]
    UnknownCallKind(u8),
    /// The frame tag byte is not one of the three tags.
    #[error("unknown frame tag {0}")]
    UnknownFrameTag(u8),
    /// The head has more metadata entries than [`Limits::max_metadata_entries`].
    #[error("{count} metadata entries exceed the limit of {max}")]
    TooManyMetadataEntries {
        /// Declared count.
        count: usize,
        /// Configured limit.
        max: usize,
    },
    /// A method name or metadata key is empty or not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A field does not fit the layout (too short, too long, empty where it must not be).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A frame that has no place on this half of the stream (a STATUS frame in a request).
    #[error("unexpected {tag:?} frame in a {side}")]
    UnexpectedFrame {
        /// The frame's tag.
        tag: FrameTag,
        /// `"request"` or `"response"`.
        side: &'static str,
    },
    /// Bytes after the message or terminal frame that ends the call.
    #[error("unexpected data after the last message of the call")]
    TrailingData,
    /// The stream ended before what it must carry (what is missing says where).
    #[error("{0}")]
    Ended(&'static str),
    /// The stream ended inside a frame's payload.
    #[error("stream ended inside a frame of {len} bytes (the peer stopped sending mid-frame)")]
    EndedInFrame {
        /// The frame's declared length.
        len: u32,
    },
}
