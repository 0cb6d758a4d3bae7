//! How gossip values become bytes and back: bincode, under a decode limit of a datagram's
//! worth. Shared by the message layout (`wire.rs`) and the members' metadata (`meta.rs`).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest message a decoder accepts: a datagram's worth, with room.
const DECODE_LIMIT: usize = 64 * 1024;

pub(crate) fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, config()).expect("bug in rpcnet: gossip messages always encode")
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, config()).map(|(value, _)| value)
}
