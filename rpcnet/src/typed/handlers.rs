//! The server side of typed calls: routes whose handlers decode the request with the
//! service's codec `C` (named by a `PhantomData<C>`), call the service's method, and encode
//! what it returns. Each handler is a plain function of the shared service and the request.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{decode, encode, service_error};
use crate::codec::Codec;
use crate::error::RpcError;
use crate::server::{Handler, Routes};
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::Payload;

fn encode_result<C: Codec + Default, T: Serialize, E: Serialize>(
    result: &Result<T, E>,
) -> Result<OutgoingMessage, RpcError> {
    match result {
        Ok(value) => encode::<C, _>(value),
        Err(err) => Err(service_error::<C, _>(err)),
    }
}

fn decode_stream<C: Codec + Default, T: DeserializeOwned + Send + 'static>(
    requests: RpcStream<Payload>,
) -> RpcStream<T> {
    requests.map_messages(decode::<C, _>)
}

fn encode_stream<C: Codec + Default, T: Serialize + Send + 'static>(
    responses: RpcStream<T>,
) -> RpcStream<OutgoingMessage> {
    responses.map_messages(|value| encode::<C, _>(&value))
}

/// Routes `method` to `handler(service, request)`, whose value is the response.
pub fn serve_unary<C, S, Req, Resp, F, Fut>(
    routes: &mut Routes,
    _codec: PhantomData<C>,
    method: &str,
    service: Arc<S>,
    handler: F,
) where
    C: Codec + Default,
    S: Send + Sync + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize,
    F: Fn(Arc<S>, Req) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    let route = move |request: Payload| {
        let service = Arc::clone(&service);
        Box::pin(async move { encode::<C, _>(&handler(service, decode::<C, Req>(request)?).await) }) as _
    };
    routes.insert(method, Handler::Unary(Arc::new(route)));
}

/// Routes `method` to a handler returning `Result<T, E>`: `Err(E)` goes back as a service
/// error, which the caller receives as `Ok(Err(E))`.
pub fn serve_unary_fallible<C, S, Req, T, E, F, Fut>(
    routes: &mut Routes,
    _codec: PhantomData<C>,
    method: &str,
    service: Arc<S>,
    handler: F,
) where
    C: Codec + Default,
    S: Send + Sync + 'static,
    Req: DeserializeOwned + Send + 'static,
    T: Serialize,
    E: Serialize,
    F: Fn(Arc<S>, Req) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let route = move |request: Payload| {
        let service = Arc::clone(&service);
        Box::pin(async move { encode_result::<C, _, _>(&handler(service, decode::<C, Req>(request)?).await) }) as _
    };
    routes.insert(method, Handler::Unary(Arc::new(route)));
}

/// Routes `method` to a handler of one request returning a stream; a request that does not
/// decode ends the stream with that error.
pub fn serve_server_streaming<C, S, Req, Resp, F, Fut>(
    routes: &mut Routes,
    _codec: PhantomData<C>,
    method: &str,
    service: Arc<S>,
    handler: F,
) where
    C: Codec + Default,
    S: Send + Sync + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Arc<S>, Req) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = RpcStream<Resp>> + Send + 'static,
{
    let route = move |request: Payload| {
        let service = Arc::clone(&service);
        Box::pin(async move {
            match decode::<C, Req>(request) {
                Ok(request) => encode_stream::<C, _>(handler(service, request).await),
                Err(err) => RpcStream::error(err),
            }
        }) as _
    };
    routes.insert(method, Handler::ServerStreaming(Arc::new(route)));
}

/// Routes `method` to a handler of a request stream returning one response.
pub fn serve_client_streaming<C, S, Req, Resp, F, Fut>(
    routes: &mut Routes,
    _codec: PhantomData<C>,
    method: &str,
    service: Arc<S>,
    handler: F,
) where
    C: Codec + Default,
    S: Send + Sync + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize,
    F: Fn(Arc<S>, RpcStream<Req>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send + 'static,
{
    let route = move |requests: RpcStream<Payload>| {
        let service = Arc::clone(&service);
        Box::pin(async move { encode::<C, _>(&handler(service, decode_stream::<C, Req>(requests)).await) }) as _
    };
    routes.insert(method, Handler::ClientStreaming(Arc::new(route)));
}

/// Routes `method` to a handler of a request stream returning `Result<T, E>`.
pub fn serve_client_streaming_fallible<C, S, Req, T, E, F, Fut>(
    routes: &mut Routes,
    _codec: PhantomData<C>,
    method: &str,
    service: Arc<S>,
    handler: F,
) where
    C: Codec + Default,
    S: Send + Sync + 'static,
    Req: DeserializeOwned + Send + 'static,
    T: Serialize,
    E: Serialize,
    F: Fn(Arc<S>, RpcStream<Req>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let route = move |requests: RpcStream<Payload>| {
        let service = Arc::clone(&service);
        Box::pin(async move { encode_result::<C, _, _>(&handler(service, decode_stream::<C, Req>(requests)).await) })
            as _
    };
    routes.insert(method, Handler::ClientStreaming(Arc::new(route)));
}

/// Routes `method` to a handler of a request stream returning a stream.
pub fn serve_bidi_streaming<C, S, Req, Resp, F, Fut>(
    routes: &mut Routes,
    _codec: PhantomData<C>,
    method: &str,
    service: Arc<S>,
    handler: F,
) where
    C: Codec + Default,
    S: Send + Sync + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Arc<S>, RpcStream<Req>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = RpcStream<Resp>> + Send + 'static,
{
    let route = move |requests: RpcStream<Payload>| {
        let service = Arc::clone(&service);
        Box::pin(async move { encode_stream::<C, _>(handler(service, decode_stream::<C, Req>(requests)).await) }) as _
    };
    routes.insert(method, Handler::BidiStreaming(Arc::new(route)));
}
