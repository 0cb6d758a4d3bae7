//! The client side of typed calls: encode the arguments, call through a channel, decode.
//! For unary calls, `idempotent` says whether the method was marked `#[rpc(idempotent)]`:
//! a balanced channel may then repeat a call whose server died before answering.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{decode, encode};
use crate::channel::Channel;
use crate::{RpcError, RpcStream};

/// A unary call returning `Resp`.
pub async fn unary<Req: Serialize, Resp: DeserializeOwned>(
    channel: &Channel,
    method: &'static str,
    idempotent: bool,
    request: &Req,
) -> Result<Resp, RpcError> {
    let response = channel.unary(method, idempotent, encode(request)?).await?;
    decode(&response)
}

/// A unary call of a method returning `Result<T, E>`: the service's `Err(E)` arrives as
/// `Ok(Err(E))`, and `Err(RpcError)` means the call itself failed.
pub async fn unary_fallible<Req: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
    channel: &Channel,
    method: &'static str,
    idempotent: bool,
    request: &Req,
) -> Result<Result<T, E>, RpcError> {
    match channel.unary(method, idempotent, encode(request)?).await {
        Ok(response) => Ok(Ok(decode(&response)?)),
        Err(RpcError::Service(err)) => Ok(Err(decode(&err.payload)?)),
        Err(err) => Err(err),
    }
}

/// A server-streaming call: one request, a stream of `Resp`.
pub async fn server_streaming<Req: Serialize, Resp: DeserializeOwned + Send + 'static>(
    channel: &Channel,
    method: &'static str,
    request: &Req,
) -> Result<RpcStream<Resp>, RpcError> {
    let responses = channel.server_streaming(method, encode(request)?).await?;
    Ok(responses.map_messages(|bytes| decode(&bytes)))
}

/// A client-streaming call: a stream of `Req`, one `Resp`.
pub async fn client_streaming<Req: Serialize + Send + 'static, Resp: DeserializeOwned>(
    channel: &Channel,
    method: &'static str,
    requests: RpcStream<Req>,
) -> Result<Resp, RpcError> {
    let response = channel.client_streaming(method, requests.map_messages(|r| encode(&r))).await?;
    decode(&response)
}

/// A client-streaming call of a method returning `Result<T, E>` (see [`unary_fallible`]).
pub async fn client_streaming_fallible<Req: Serialize + Send + 'static, T: DeserializeOwned, E: DeserializeOwned>(
    channel: &Channel,
    method: &'static str,
    requests: RpcStream<Req>,
) -> Result<Result<T, E>, RpcError> {
    match channel.client_streaming(method, requests.map_messages(|r| encode(&r))).await {
        Ok(response) => Ok(Ok(decode(&response)?)),
        Err(RpcError::Service(err)) => Ok(Err(decode(&err.payload)?)),
        Err(err) => Err(err),
    }
}

/// A bidirectional streaming call.
pub async fn bidi_streaming<Req: Serialize + Send + 'static, Resp: DeserializeOwned + Send + 'static>(
    channel: &Channel,
    method: &'static str,
    requests: RpcStream<Req>,
) -> Result<RpcStream<Resp>, RpcError> {
    let responses = channel.bidi_streaming(method, requests.map_messages(|r| encode(&r))).await?;
    Ok(responses.map_messages(|bytes| decode(&bytes)))
}
