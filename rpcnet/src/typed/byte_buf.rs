//! `ByteBuf`: how generated code sends a `Vec<u8>`. serde writes it as bytes, which bincode
//! encodes exactly as it encodes a sequence of `u8` (length, then the bytes), so the wire
//! does not change; only the cost does: one copy instead of one call per byte.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A `Vec<u8>` that serde handles as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByteBuf(pub Vec<u8>);

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `bytes`, not `byte_buf`: decoding from a slice, bincode then lends the bytes and
        // one exact copy makes the Vec, where `byte_buf` zeroes a Vec first and copies after.
        deserializer.deserialize_bytes(ByteBufVisitor)
    }
}

struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = ByteBuf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<ByteBuf, E> {
        Ok(ByteBuf(bytes.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<ByteBuf, E> {
        Ok(ByteBuf(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
        // Formats that write bytes as a sequence; the size hint is not trusted for allocation.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(ByteBuf(bytes))
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::codec::{BincodeCodec, Codec};

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = BytesMut::new();
        BincodeCodec::new().encode(value, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn bytes_and_a_sequence_of_u8_are_the_same_on_the_wire() {
        let payload: Vec<u8> = (0..=255).collect();
        let as_sequence = encode(&payload);
        let as_bytes = encode(&ByteBuf(payload.clone()));
        assert_eq!(as_sequence, as_bytes, "a peer that declares Vec<u8> must read what ByteBuf writes");
        assert_eq!(BincodeCodec::new().decode::<ByteBuf>(&as_sequence[..]).unwrap().0, payload);
        assert_eq!(BincodeCodec::new().decode::<Vec<u8>>(&as_bytes[..]).unwrap(), payload);
        assert_eq!(encode(&(ByteBuf(vec![1]), 7u32)), encode(&(vec![1u8], 7u32)), "in a tuple too");
    }
}
