//! How typed values become message bytes and back: the `Codec` trait.
//! `BincodeCodec` (bincode 2 in serde mode, with a decode size limit) is the default;
//! the network layers only ever see the bytes.

mod bincode;

pub use self::bincode::{BincodeCodec, DEFAULT_DECODE_LIMIT};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::RpcError;

/// Turns values into message payloads and back.
///
/// One job, two directions. Errors are [`RpcError::Codec`], so a message that does not
/// decode fails that call only.
///
/// ```
/// use rpcnet::codec::{BincodeCodec, Codec};
/// let codec = BincodeCodec::new();
/// let bytes = codec.encode(&(2i64, "two")).unwrap();
/// let back: (i64, String) = codec.decode(&bytes).unwrap();
/// assert_eq!(back, (2, "two".to_string()));
/// ```
pub trait Codec: Send + Sync + 'static {
    /// Encodes `value` into a new buffer.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, RpcError>;
    /// Decodes a whole payload; bytes left over are an error.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, RpcError>;
}
