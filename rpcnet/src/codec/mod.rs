//! How typed values become message payloads and back: the `Codec` trait, and `BincodeCodec`
//! (bincode 2 through serde, with a decode size limit), the default. Knows nothing of the
//! network: payloads go in and out as bytes.

mod bincode;

pub use self::bincode::{BincodeCodec, DEFAULT_DECODE_LIMIT};
/// The buffer types of the [`Codec`] trait, so that a codec needs no dependency of its own.
pub use bytes::{Buf, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// Turns values into message payloads and back: the format a service speaks.
///
/// One job, two directions. `encode` appends to a buffer the caller owns (a frame with its
/// header already in front, so a message is not copied again to be sent); `decode` reads a
/// whole payload, which may arrive in several pieces ([`Buf`]), and fails on bytes left over.
/// A message that does not encode or decode fails its own call only, as
/// [`RpcError::Codec`](crate::RpcError::Codec).
///
/// A service chooses its codec with `#[rpc_service(codec = "path::To::Codec")]`; the codec
/// must implement `Default`, and both sides of a service must use the same one.
///
/// ```
/// use bytes::BytesMut;
/// use rpcnet::codec::{BincodeCodec, Codec};
/// let codec = BincodeCodec::new();
/// let mut bytes = BytesMut::new();
/// codec.encode(&(2i64, "two"), &mut bytes).unwrap();
/// let back: (i64, String) = codec.decode(&bytes[..]).unwrap();
/// assert_eq!(back, (2, "two".to_string()));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an rpcnet codec",
    label = "named as the codec of a service",
    note = "implement `rpcnet::codec::Codec` and `Default` for it, or leave `codec` out to use bincode"
)]
pub trait Codec: Send + Sync + 'static {
    /// Appends the encoding of `value` to `out`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut BytesMut) -> Result<(), CodecError>;
    /// Decodes one whole payload into a value; bytes left over are an error.
    fn decode<T: DeserializeOwned>(&self, payload: impl Buf) -> Result<T, CodecError>;

    /// How many bytes `encode` will append for `value`, if the codec can tell without
    /// writing them. The frame is then allocated once at its size instead of growing (a
    /// large message would otherwise be copied as its buffer grows, into memory the process
    /// has not touched yet). Default: `None`, the buffer grows as needed.
    fn encoded_len<T: Serialize + ?Sized>(&self, value: &T) -> Option<usize> {
        let _ = value;
        None
    }

    /// The encoding of `value` in a buffer of its own, for raw-bytes calls
    /// ([`RpcClient::call`](crate::RpcClient::call)).
    fn encode_to_vec<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut out = BytesMut::new();
        self.encode(value, &mut out)?;
        Ok(out.into())
    }
}

/// A value that did not encode, or bytes that are not a message of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The value cannot be written in the codec's format.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The bytes are not a valid message of the type, or exceed the decode limit.
    #[error("cannot decode message: {0}")]
    Decode(String),
    /// The message decoded with bytes to spare: sender and receiver disagree on its type.
    #[error("message has {0} bytes left over after decoding (sender and receiver disagree on its type?)")]
    LeftOver(usize),
}
