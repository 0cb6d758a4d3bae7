//! The client side of typed calls: encode the arguments with the service's codec, call
//! through a channel, decode. Unary calls carry their method's `MethodPolicy` (its
//! `#[rpc(...)]` attributes); `keyed_channel` gives a `hash_key` method's call its key.

use serde::Serialize;
use serde::de::DeserializeOwned;

use std::borrow::Cow;

use super::{decode, encode};
use crate::channel::{Channel, MethodPolicy};
use crate::codec::Codec;
use crate::error::RpcError;
use crate::stream::RpcStream;

/// A unary call returning `Resp`.
pub async fn unary<C: Codec + Default, Req: Serialize, Resp: DeserializeOwned>(
    channel: &Channel,
    method: &'static str,
    policy: MethodPolicy,
    request: &Req,
) -> Result<Resp, RpcError> {
    let response = channel.unary(method, policy, encode::<C, _>(request)?).await?;
    decode::<C, _>(response)
}

/// A unary call of a method returning `Result<T, E>`: the service's `Err(E)` arrives as
/// `Ok(Err(E))`, and `Err(RpcError)` means the call itself failed.
pub async fn unary_fallible<C: Codec + Default, Req: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
    channel: &Channel,
    method: &'static str,
    policy: MethodPolicy,
    request: &Req,
) -> Result<Result<T, E>, RpcError> {
    match channel.unary(method, policy, encode::<C, _>(request)?).await {
        Ok(response) => Ok(Ok(decode::<C, _>(response)?)),
        Err(RpcError::Service(err)) => Ok(Err(decode::<C, _>(&err.payload[..])?)),
        Err(err) => Err(err),
    }
}

/// The channel for a call of a `#[rpc(hash_key = "arg")]` method: keyed by `key` encoded
/// with the service's codec, unless the caller set an affinity key of its own.
pub fn keyed_channel<'c, C: Codec + Default, K: Serialize>(
    channel: &'c Channel,
    key: &K,
) -> Result<Cow<'c, Channel>, RpcError> {
    if channel.options().affinity_key().is_some() {
        return Ok(Cow::Borrowed(channel));
    }
    let bytes = C::default().encode_to_vec(key)?;
    Ok(Cow::Owned(channel.with_options(channel.options().with_affinity_key(&bytes))))
}

/// A server-streaming call: one request, a stream of `Resp`.
pub async fn server_streaming<C: Codec + Default, Req: Serialize, Resp: DeserializeOwned + Send + 'static>(
    channel: &Channel,
    method: &'static str,
    request: &Req,
) -> Result<RpcStream<Resp>, RpcError> {
    let responses = channel.server_streaming(method, encode::<C, _>(request)?).await?;
    Ok(responses.map_messages(decode::<C, _>))
}

/// A client-streaming call: a stream of `Req`, one `Resp`.
pub async fn client_streaming<C: Codec + Default, Req: Serialize + Send + 'static, Resp: DeserializeOwned>(
    channel: &Channel,
    method: &'static str,
    requests: RpcStream<Req>,
) -> Result<Resp, RpcError> {
    let response = channel.client_streaming(method, requests.map_messages(|r| encode::<C, _>(&r))).await?;
    decode::<C, _>(response)
}

/// A client-streaming call of a method returning `Result<T, E>` (see [`unary_fallible`]).
pub async fn client_streaming_fallible<
    C: Codec + Default,
    Req: Serialize + Send + 'static,
    T: DeserializeOwned,
    E: DeserializeOwned,
>(
    channel: &Channel,
    method: &'static str,
    requests: RpcStream<Req>,
) -> Result<Result<T, E>, RpcError> {
    match channel.client_streaming(method, requests.map_messages(|r| encode::<C, _>(&r))).await {
        Ok(response) => Ok(Ok(decode::<C, _>(response)?)),
        Err(RpcError::Service(err)) => Ok(Err(decode::<C, _>(&err.payload[..])?)),
        Err(err) => Err(err),
    }
}

/// A bidirectional streaming call.
pub async fn bidi_streaming<
    C: Codec + Default,
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
>(
    channel: &Channel,
    method: &'static str,
    requests: RpcStream<Req>,
) -> Result<RpcStream<Resp>, RpcError> {
    let responses = channel.bidi_streaming(method, requests.map_messages(|r| encode::<C, _>(&r))).await?;
    Ok(responses.map_messages(decode::<C, _>))
}
