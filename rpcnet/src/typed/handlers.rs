//! The server side of typed calls: decode the arguments, encode what the handler returns.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{decode, encode};
use crate::{RpcError, RpcStream};

/// Encodes a handler's `Result`: `Ok` as the response message, `Err` as a service error the
/// client decodes back into `E`.
pub fn encode_result<T: Serialize, E: Serialize>(result: &Result<T, E>) -> Result<Bytes, RpcError> {
    match result {
        Ok(value) => encode(value),
        Err(err) => Err(RpcError::service(encode(err)?)),
    }
}

/// Encodes each message of a handler's response stream.
pub fn encode_stream<T: Serialize + Send + 'static>(stream: RpcStream<T>) -> RpcStream<Bytes> {
    stream.map_messages(|value| encode(&value))
}

/// Decodes each message of a request stream for a handler.
pub fn decode_stream<T: DeserializeOwned + Send + 'static>(stream: RpcStream<Bytes>) -> RpcStream<T> {
    stream.map_messages(|bytes| decode(&bytes))
}
