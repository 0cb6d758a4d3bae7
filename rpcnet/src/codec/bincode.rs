//! The default codec: bincode 2 through serde, with a limit on what one decode may allocate.

use bincode::de::read::Reader;
use bincode::error::DecodeError;
use bytes::{Buf, BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Codec, CodecError};

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
    fn config() -> impl bincode::config::Config {
        bincode::config::standard().with_limit::<LIMIT>()
    }
}

impl<const LIMIT: usize> Codec for BincodeCodec<LIMIT> {
    fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut BytesMut) -> Result<(), CodecError> {
        bincode::serde::encode_into_std_write(value, &mut out.writer(), Self::config())
            .map(drop)
            .map_err(|e| CodecError::Encode(e.to_string()))
    }

    fn encoded_len<T: Serialize + ?Sized>(&self, value: &T) -> Option<usize> {
        // A walk over the value that adds up lengths and copies nothing: a few instructions
        // per field, and for a byte string its length alone.
        let mut size = bincode::enc::write::SizeWriter::default();
        bincode::serde::encode_into_writer(value, &mut size, Self::config()).ok()?;
        Some(size.bytes_written)
    }

    fn decode<T: DeserializeOwned>(&self, payload: impl Buf) -> Result<T, CodecError> {
        let decode_error = |e: DecodeError| CodecError::Decode(e.to_string());
        // A payload in one piece is decoded from the slice, which lets bincode lend bytes
        // (one copy into a `Vec<u8>` field, none in between); pieces are read in turn.
        if payload.remaining() == payload.chunk().len() {
            let bytes = payload.chunk();
            let (value, used) = bincode::serde::decode_from_slice(bytes, Self::config()).map_err(decode_error)?;
            return match bytes.len() - used {
                0 => Ok(value),
                left => Err(CodecError::LeftOver(left)),
            };
        }
        let mut reader = BufReader(payload);
        let value = bincode::serde::decode_from_reader(&mut reader, Self::config()).map_err(decode_error)?;
        match reader.0.remaining() {
            0 => Ok(value),
            left => Err(CodecError::LeftOver(left)),
        }
    }
}

/// bincode's reader over a payload in pieces.
struct BufReader<B>(B);

impl<B: Buf> Reader for BufReader<B> {
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), DecodeError> {
        if self.0.remaining() < bytes.len() {
            return Err(DecodeError::UnexpectedEnd { additional: bytes.len() - self.0.remaining() });
        }
        self.0.copy_to_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        id: u64,
        items: Vec<String>,
        note: Option<String>,
    }

    fn encode<T: Serialize>(value: &T) -> BytesMut {
        let mut out = BytesMut::new();
        BincodeCodec::<DEFAULT_DECODE_LIMIT>.encode(value, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_structs_and_unit() {
        let codec = BincodeCodec::<DEFAULT_DECODE_LIMIT>;
        let order = Order { id: 7, items: vec!["a".into(), "b".into()], note: None };
        let bytes = encode(&order);
        assert_eq!(codec.decode::<Order>(&bytes[..]).unwrap(), order);
        let unit = encode(&());
        assert!(unit.is_empty(), "unit encodes to nothing: empty messages must be legal");
        codec.decode::<()>(&unit[..]).unwrap();
    }

    #[test]
    fn a_payload_in_pieces_decodes_as_one_in_a_piece() {
        let order = Order { id: 9, items: vec!["x".repeat(100), "y".into()], note: Some("n".into()) };
        let bytes = encode(&order).freeze();
        let pieces = || bytes.slice(..3).chain(bytes.slice(3..50)).chain(bytes.slice(50..));
        assert_eq!(BincodeCodec::new().decode::<Order>(pieces()).unwrap(), order);
        let longer = pieces().chain(Bytes::from_static(&[0]));
        assert_eq!(BincodeCodec::new().decode::<Order>(longer), Err(CodecError::LeftOver(1)));
    }

    #[test]
    fn a_length_field_cannot_make_the_decoder_allocate_past_the_limit() {
        let small = BincodeCodec::<64>;
        // A Vec<u8> claiming 1,000,000 elements followed by a few bytes.
        let lying = encode(&vec![0u8; 1_000_000]);
        let err = small.decode::<Vec<u8>>(&lying[..8]).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "got {err:?}");
    }

    #[test]
    fn encoded_len_is_the_length_encode_writes() {
        let codec = BincodeCodec::new();
        let big = vec![7u8; 300_000];
        let order = Order { id: u64::MAX, items: vec!["a".repeat(200), String::new()], note: Some("n".into()) };
        let lens = [
            (codec.encoded_len(&()), encode(&()).len()),
            (codec.encoded_len(&5u8), encode(&5u8).len()),
            (codec.encoded_len(&order), encode(&order).len()),
            (codec.encoded_len(&(&big,)), encode(&(&big,)).len()),
            (codec.encoded_len(&vec![1u8; 251]), encode(&vec![1u8; 251]).len()),
            (codec.encoded_len(&Some(vec![order.id; 70])), encode(&Some(vec![order.id; 70])).len()),
        ];
        for (measured, written) in lens {
            assert_eq!(measured, Some(written));
        }
    }

    #[test]
    fn garbage_and_leftovers_are_codec_errors() {
        let codec = BincodeCodec::<DEFAULT_DECODE_LIMIT>;
        assert!(matches!(codec.decode::<Order>(&[0xff; 3][..]), Err(CodecError::Decode(_))));
        let mut bytes = encode(&5u32);
        bytes.put_u8(0);
        let err = codec.decode::<u32>(&bytes[..]).unwrap_err();
        assert!(err.to_string().contains("left over"), "got {err}");
    }
}
