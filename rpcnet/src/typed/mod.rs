//! Typed calls: what the code `#[rpc_service]` generates calls into. A method's arguments
//! travel as one tuple encoded by the codec; a handler's `Err(E)` travels as a SERVICE_ERROR
//! frame and comes back to the caller as `Ok(Err(E))`.

mod calls;
mod handlers;

pub use calls::{bidi_streaming, client_streaming, client_streaming_fallible, server_streaming, unary, unary_fallible};
pub use handlers::{decode_stream, encode_result, encode_stream};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::RpcError;
use crate::codec::{BincodeCodec, Codec};

/// A type that can travel as an argument or a result of an rpc method.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel in an rpcnet call",
    label = "used as an argument or result of an rpc method",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it; it must also be `Send + 'static`"
)]
pub trait RpcMessage: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> RpcMessage for T {}

/// Encodes a value with the default codec.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, RpcError> {
    BincodeCodec::new().encode(value).map(Bytes::from)
}

/// Decodes a value with the default codec.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RpcError> {
    BincodeCodec::new().decode(bytes)
}

/// Compile-time check, placed at an argument or result type, that it can travel.
pub const fn assert_message<T: RpcMessage>() {}
