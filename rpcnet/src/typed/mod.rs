//! Typed calls: what the code `#[rpc_service]` generates calls into. A method's arguments
//! travel as one tuple encoded by the codec; a handler's `Err(E)` travels as a SERVICE_ERROR
//! frame and comes back to the caller as `Ok(Err(E))`.

mod byte_buf;
mod calls;
mod handlers;

pub use byte_buf::ByteBuf;

pub use calls::{bidi_streaming, client_streaming, client_streaming_fallible, server_streaming, unary, unary_fallible};
pub use handlers::{decode_stream, encode_result, encode_stream};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use bytes::BufMut;

use crate::RpcError;
use crate::codec::{BincodeCodec, Codec, DEFAULT_DECODE_LIMIT};
use crate::transport::carve_growing;

/// A type that can travel as an argument or a result of an rpc method.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel in an rpcnet call",
    label = "used as an argument or result of an rpc method",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it; it must also be `Send + 'static`"
)]
pub trait RpcMessage: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> RpcMessage for T {}

/// Encodes a value with the default codec (bincode, as [`BincodeCodec`] does), straight into
/// a buffer carved from this thread's block: no allocation of its own.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, RpcError> {
    let (result, bytes) = carve_growing(|buf| {
        bincode::serde::encode_into_std_write(value, &mut buf.writer(), BincodeCodec::<DEFAULT_DECODE_LIMIT>::config())
    });
    result.map_err(|e| RpcError::Codec(format!("cannot encode message: {e}")))?;
    Ok(bytes)
}

/// Decodes a value with the default codec.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RpcError> {
    BincodeCodec::new().decode(bytes)
}
