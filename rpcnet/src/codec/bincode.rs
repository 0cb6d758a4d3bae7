//! The default codec: bincode 2 through serde, with a limit on what one decode may allocate.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Codec;
use crate::RpcError;

/// Bytes one decode may allocate with [`BincodeCodec`]'s default limit: 16 MiB, the default
/// frame limit, so no message that fits a frame is refused for its size.
pub const DEFAULT_DECODE_LIMIT: usize = 16 * 1024 * 1024;

/// bincode 2 (serde mode, standard varint configuration) with a decode limit of `LIMIT`
/// bytes, so a length field inside a message cannot make the decoder allocate more.
#[derive(Debug, Clone, Copy, Default)]
pub struct BincodeCodec<const LIMIT: usize = DEFAULT_DECODE_LIMIT>;

impl BincodeCodec {
    /// The codec with the default decode limit ([`DEFAULT_DECODE_LIMIT`]).
    pub const fn new() -> Self {
        Self
    }
}

impl<const LIMIT: usize> BincodeCodec<LIMIT> {
    pub(crate) fn config() -> impl bincode::config::Config {
        bincode::config::standard().with_limit::<LIMIT>()
    }
}

impl<const LIMIT: usize> Codec for BincodeCodec<LIMIT> {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, RpcError> {
        bincode::serde::encode_to_vec(value, Self::config())
            .map_err(|e| RpcError::Codec(format!("cannot encode message: {e}")))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, RpcError> {
        let (value, used) = bincode::serde::decode_from_slice(bytes, Self::config())
            .map_err(|e| RpcError::Codec(format!("cannot decode message: {e}")))?;
        if used != bytes.len() {
            return Err(RpcError::Codec(format!(
                "message has {} bytes left over after decoding (sender and receiver disagree on its type?)",
                bytes.len() - used
            )));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        id: u64,
        items: Vec<String>,
        note: Option<String>,
    }

    #[test]
    fn round_trips_structs_and_unit() {
        let codec = BincodeCodec::<DEFAULT_DECODE_LIMIT>;
        let order = Order { id: 7, items: vec!["a".into(), "b".into()], note: None };
        let bytes = codec.encode(&order).unwrap();
        assert_eq!(codec.decode::<Order>(&bytes).unwrap(), order);
        let unit = codec.encode(&()).unwrap();
        assert!(unit.is_empty(), "unit encodes to nothing: empty messages must be legal");
        codec.decode::<()>(&unit).unwrap();
    }

    #[test]
    fn a_length_field_cannot_make_the_decoder_allocate_past_the_limit() {
        let small = BincodeCodec::<64>;
        // A Vec<u8> claiming 1,000,000 elements followed by a few bytes.
        let lying = BincodeCodec::<DEFAULT_DECODE_LIMIT>.encode(&vec![0u8; 1_000_000]).unwrap();
        let err = small.decode::<Vec<u8>>(&lying[..8]).unwrap_err();
        assert!(matches!(err, RpcError::Codec(_)), "got {err:?}");
    }

    #[test]
    fn garbage_and_leftovers_are_codec_errors() {
        let codec = BincodeCodec::<DEFAULT_DECODE_LIMIT>;
        assert!(matches!(codec.decode::<Order>(&[0xff; 3]), Err(RpcError::Codec(_))));
        let mut bytes = codec.encode(&5u32).unwrap();
        bytes.push(0);
        let err = codec.decode::<u32>(&bytes).unwrap_err();
        assert!(err.to_string().contains("left over"), "got {err}");
    }
}
