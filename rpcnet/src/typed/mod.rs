//! Typed calls: what the code `#[rpc_service]` generates calls into. A method's arguments
//! travel as one tuple encoded by the service's codec; a handler's `Err(E)` travels as a
//! SERVICE_ERROR frame and comes back to the caller as `Ok(Err(E))`.

mod byte_buf;
mod calls;
mod handlers;

pub use byte_buf::ByteBuf;

pub use calls::{
    bidi_streaming, client_streaming, client_streaming_fallible, keyed_channel, server_streaming, unary, unary_fallible,
};
pub use handlers::{
    serve_bidi_streaming, serve_client_streaming, serve_client_streaming_fallible, serve_server_streaming, serve_unary,
    serve_unary_fallible,
};

use bytes::Buf;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::error::RpcError;
use crate::transport::OutgoingMessage;
use crate::wire::FrameTag;

/// The codec of services that name none: bincode with the default decode limit.
pub type DefaultCodec = crate::codec::BincodeCodec;

/// A type that can travel as an argument or a result of an rpc method.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel in an rpcnet call",
    label = "used as an argument or result of an rpc method",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it; it must also be `Send + 'static`"
)]
pub trait RpcMessage: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> RpcMessage for T {}

/// Encodes a message with codec `C` straight into its outgoing frame, allocated at the
/// message's size when the codec can tell it.
pub(crate) fn encode<C: Codec + Default, T: Serialize + ?Sized>(value: &T) -> Result<OutgoingMessage, RpcError> {
    let codec = C::default();
    let len = codec.encoded_len(value);
    Ok(OutgoingMessage::encode(FrameTag::Message, len, |buf| codec.encode(value, buf))?)
}

/// Decodes a message with codec `C`, from the pieces it arrived in.
pub(crate) fn decode<C: Codec + Default, T: DeserializeOwned>(payload: impl Buf) -> Result<T, RpcError> {
    Ok(C::default().decode(payload)?)
}

/// A handler's own error, encoded with codec `C` into the payload of a SERVICE_ERROR frame.
pub(crate) fn service_error<C: Codec + Default, E: Serialize>(err: &E) -> RpcError {
    let mut payload = bytes::BytesMut::new();
    match C::default().encode(err, &mut payload) {
        Ok(()) => RpcError::service(payload.freeze()),
        Err(encode) => encode.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde::Serializer;

    use super::*;
    use crate::transport::OutgoingMessage;

    /// Writes more each time it is serialized: the codec's measure of it is wrong by the
    /// time it is encoded.
    struct Growing(Cell<usize>);

    impl Serialize for Growing {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let len = self.0.get();
            self.0.set(len * 3);
            serializer.serialize_bytes(&vec![9; len])
        }
    }

    fn decoded(message: OutgoingMessage) -> Vec<u8> {
        let OutgoingMessage::Framed(framed) = &message else { panic!("a typed message is encoded into its frame") };
        let payload = framed.slice(framed.len() - message.len()..);
        decode::<DefaultCodec, ByteBuf>(payload).unwrap().0
    }

    #[test]
    fn a_message_that_writes_more_than_measured_is_encoded_whole() {
        for first in [10, 20_000, 300_000] {
            let message = encode::<DefaultCodec, _>(&Growing(Cell::new(first))).unwrap();
            assert_eq!(decoded(message), vec![9; first * 3], "measured at {first} bytes");
        }
    }

    #[test]
    fn a_large_message_is_encoded_whole() {
        let payload: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let message = encode::<DefaultCodec, _>(&ByteBuf(payload.clone())).unwrap();
        assert_eq!(decoded(message), payload);
    }
}
