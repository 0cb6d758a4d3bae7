//! The streaming handlers of the book's "Concepts" chapter, written as it writes them
//! (`async_stream::stream!` over the request frames, `yield Ok(..)`), called every way
//! its client snippets call streaming methods.

use async_stream::stream;
use futures::StreamExt;
use futures::stream as frames;
use rpcnet::{RpcClient, RpcConfig, RpcServer};

#[tokio::test]
async fn the_concepts_chapters_handlers_serve_its_three_client_helpers() {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server
        .register_streaming("echo_stream", |mut reqs| async move {
            stream! {
                while let Some(payload) = reqs.next().await {
                    yield Ok(payload); // echo back exactly what we received
                }
            }
        })
        .await;
    server
        .register_streaming("uppercase", |mut reqs| async move {
            stream! {
                while let Some(bytes) = reqs.next().await {
                    let mut owned = bytes.clone();
                    owned.make_ascii_uppercase();
                    yield Ok(owned);
                }
            }
        })
        .await;
    let (addr, shutdown) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();

    let requests = frames::iter(vec![b"hello".to_vec(), b"world".to_vec()]);
    let responses = client.call_streaming("uppercase", requests).await.unwrap();
    let mut responses = Box::pin(responses);
    let mut seen = Vec::new();
    while let Some(frame) = responses.next().await {
        seen.push(frame.unwrap());
    }
    assert_eq!(seen, [b"HELLO".to_vec(), b"WORLD".to_vec()], "bidirectional: one answer per frame");

    let stream = client.call_server_streaming("echo_stream", b"item".to_vec()).await.unwrap();
    let items = stream.collect_messages().await.unwrap();
    assert_eq!(items, [b"item".to_vec()], "server streaming: the one request, echoed");

    let uploads = frames::iter(vec![b"chunk-a".to_vec()]);
    let digest = client.call_client_streaming("uppercase", uploads).await.unwrap();
    assert_eq!(digest, b"CHUNK-A", "client streaming: the one answer");

    shutdown.shutdown().await;
}
