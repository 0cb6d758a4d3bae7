//! The three streaming kinds end to end, with backpressure, errors and cancellation.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestServer, eventually, subscribe};
use futures::StreamExt;
use rpcnet::{CallOptions, RpcClient, RpcConfig, RpcError, RpcServer, RpcStream};

#[tokio::test]
async fn server_streaming_delivers_every_message_in_order() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let stream = client.call_server_streaming("test.count", 1000u32.to_le_bytes().to_vec()).await.unwrap();
    let numbers: Vec<u32> = stream
        .collect_messages()
        .await
        .unwrap()
        .into_iter()
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(numbers, (0..1000).collect::<Vec<_>>());
    let empty = client.call_server_streaming("test.count", 0u32.to_le_bytes().to_vec()).await.unwrap();
    assert!(empty.collect_messages().await.unwrap().is_empty(), "a stream may have no messages");
}

#[tokio::test]
async fn client_streaming_sees_every_request_including_empty_ones() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let parts = vec![b"ab".to_vec(), Vec::new(), b"cd".to_vec(), vec![b'e'; 100_000]];
    let expected: Vec<u8> = parts.concat();
    let reply = client.call_client_streaming("test.concat", futures::stream::iter(parts)).await.unwrap();
    assert_eq!(reply, expected);
    let reply = client.call_client_streaming("test.concat", futures::stream::empty()).await.unwrap();
    assert!(reply.is_empty(), "zero requests is a valid client stream");
}

#[tokio::test]
async fn a_refusal_reaches_a_client_whose_requests_are_still_to_come() {
    let server = TestServer::start().await;
    let client = server.client().await;
    // No request ever comes: the server's answer alone must end the call.
    let never = RpcStream::from_stream(futures::stream::pending::<bytes::Bytes>());
    let call = client.client_streaming_with("test.no_such_method", never, CallOptions::new().without_timeout());
    let err = tokio::time::timeout(Duration::from_secs(10), call).await.expect("the refusal ends the call");
    assert!(matches!(err, Err(RpcError::UnknownMethod(_))), "{err:?}");
    assert_eq!(client.call("test.echo", b"next".to_vec()).await.unwrap(), b"next");
}

#[tokio::test]
async fn bidirectional_streams_run_both_ways_at_once() {
    let server = TestServer::start().await;
    let client = server.client().await;
    // Feed requests through a channel, reading each answer before sending the next: this
    // only works if responses flow while the request side is still open.
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let requests = tokio_stream_from(rx);
    let mut responses = client.call_streaming("test.upper", requests).await.unwrap();
    for word in ["alpha", "beta", "gamma"] {
        tx.send(word.as_bytes().to_vec()).await.unwrap();
        let answer = responses.next().await.expect("an answer per request").unwrap();
        assert_eq!(answer, word.to_uppercase().as_bytes());
    }
    drop(tx);
    assert!(responses.next().await.is_none(), "closing the requests ends the responses");
}

fn tokio_stream_from<T: Send + 'static>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A server whose `produce` method streams up to 100,000 messages of 1 KiB, counting how
/// many it has handed to the network.
async fn producer_server(produced: Arc<AtomicUsize>) -> (std::net::SocketAddr, rpcnet::ServerHandle) {
    subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server
        .register_server_streaming("produce", move |_req| {
            let produced = produced.clone();
            async move {
                futures::stream::iter(0..100_000).map(move |_| {
                    produced.fetch_add(1, Ordering::SeqCst);
                    Ok(vec![7u8; 1024])
                })
            }
        })
        .await;
    server.spawn().unwrap()
}

#[tokio::test]
async fn a_slow_reader_holds_the_producer_back() {
    let produced = Arc::new(AtomicUsize::new(0));
    let (addr, _shutdown) = producer_server(produced.clone()).await;
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let mut stream = client.call_server_streaming("produce", vec![]).await.unwrap();
    for _ in 0..10 {
        stream.next().await.unwrap().unwrap();
    }
    // Give the producer every chance to run ahead, then check it was held back by flow
    // control: 100,000 messages of 1 KiB would be 100 MB.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ahead = produced.load(Ordering::SeqCst);
    assert!(ahead < 20_000, "the server produced {ahead} messages for a reader that took 10: no backpressure");
    // Reading on lets it continue.
    for _ in 0..5_000 {
        stream.next().await.unwrap().unwrap();
    }
    assert!(produced.load(Ordering::SeqCst) >= 5_010);
}

#[tokio::test]
async fn dropping_a_response_stream_stops_the_server_side() {
    let produced = Arc::new(AtomicUsize::new(0));
    let (addr, _shutdown) = producer_server(produced.clone()).await;
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let mut stream = client.call_server_streaming("produce", vec![]).await.unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    // Once the server notices, the count stops moving.
    let mut last = produced.load(Ordering::SeqCst);
    let settled = eventually(100, || {
        let now = produced.load(Ordering::SeqCst);
        let same = now == last;
        last = now;
        same
    })
    .await;
    assert!(settled, "the producer must stop after the client drops the stream");
    assert!(last < 100_000, "the producer stopped early ({last} of 100,000)");
}

#[tokio::test]
async fn an_error_in_a_response_stream_reaches_the_client_after_the_messages_before_it() {
    subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server
        .register_server_streaming("flaky", |_req| async move {
            futures::stream::iter(vec![Ok(b"one".to_vec()), Ok(b"two".to_vec()), Err(RpcError::service("broke"))])
        })
        .await;
    let (addr, _shutdown) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let items: Vec<_> = client.call_server_streaming("flaky", vec![]).await.unwrap().collect().await;
    assert_eq!(items.len(), 3, "two messages, then the error, then the end: {items:?}");
    assert_eq!(items[0].as_ref().unwrap(), b"one");
    assert_eq!(items[1].as_ref().unwrap(), b"two");
    assert!(matches!(&items[2], Err(RpcError::Service(e)) if e.payload == b"broke"), "got {:?}", items[2]);
}

#[tokio::test]
async fn a_streaming_call_with_a_deadline_ends_with_timeout() {
    let server = TestServer::start().await;
    let client = server.client().await;
    // An upload that never ends: the deadline ends the call.
    let never = RpcStream::from_stream(futures::stream::pending::<rpcnet::Bytes>());
    let options = CallOptions::new().with_timeout(Duration::from_millis(100));
    let err = client.client_streaming_with("test.concat", never, options).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "got {err:?}");
    assert_eq!(client.call("test.echo", b"fine".to_vec()).await.unwrap(), b"fine");
}

#[tokio::test]
async fn unknown_streaming_method_fails_in_the_stream() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut stream = client.call_server_streaming("test.missing", vec![]).await.unwrap();
    let first = stream.next().await.expect("one item: the error");
    assert!(matches!(first, Err(RpcError::UnknownMethod(_))), "got {first:?}");
    assert!(stream.next().await.is_none(), "the stream ends after the error");
}

#[tokio::test]
async fn one_streaming_handler_serves_every_streaming_kind_of_call() {
    let server = TestServer::start().await;
    let client = server.client().await;
    // `test.upper` is one `register_streaming` handler; bidirectional calls to it are above.
    let responses = client.call_server_streaming("test.upper", b"solo".to_vec()).await.unwrap();
    assert_eq!(responses.collect_messages().await.unwrap(), vec![b"SOLO".to_vec()], "its one request, streamed");
    let reply = client.call_client_streaming("test.upper", futures::stream::iter([b"only".to_vec()])).await.unwrap();
    assert_eq!(reply, b"ONLY", "its one response to a client-streaming call");
}

#[tokio::test]
async fn a_streaming_handler_answering_a_client_stream_not_exactly_once_is_a_protocol_error() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let two = futures::stream::iter([b"a".to_vec(), b"b".to_vec()]);
    let err = client.call_client_streaming("test.upper", two).await.unwrap_err();
    assert!(
        matches!(&err, RpcError::Protocol(m) if m.contains("test.upper") && m.contains("second")),
        "two responses to a client-streaming call must fail it, naming the method: {err:?}"
    );
    let err = client.call_client_streaming("test.upper", futures::stream::empty()).await.unwrap_err();
    assert!(
        matches!(&err, RpcError::Protocol(m) if m.contains("without a response")),
        "no response to a client-streaming call must fail it: {err:?}"
    );
    assert_eq!(client.call("test.echo", b"fine".to_vec()).await.unwrap(), b"fine", "the connection lives on");
}

#[tokio::test]
async fn a_unary_call_to_a_streaming_method_is_refused() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let err = client.call("test.upper", b"x".to_vec()).await.unwrap_err();
    assert!(matches!(&err, RpcError::Protocol(m) if m.contains("called as Unary")), "got {err:?}");
}

#[tokio::test]
async fn a_broken_upload_fails_the_call_instead_of_being_acknowledged() {
    subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0").with_max_frame_size(1024));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    server
        .register_streaming("upload", move |mut requests| {
            let seen = seen_tx.clone();
            async move {
                let mut accepted = 0u32;
                while requests.next().await.is_some() {
                    accepted += 1;
                }
                let _ = seen.send((accepted, requests.error().cloned()));
                // Answers as if the upload were whole: the server must not let this through.
                futures::stream::iter([Ok(accepted.to_le_bytes().to_vec())])
            }
        })
        .await;
    let (addr, _shutdown) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let parts = futures::stream::iter([b"small".to_vec(), vec![0; 4096]]);
    let err = client.call_client_streaming("upload", parts).await.unwrap_err();
    assert!(matches!(err, RpcError::FrameTooLarge(_)), "the caller gets the error that cut the upload: {err:?}");
    let (accepted, error) = seen_rx.recv().await.expect("the handler ran");
    assert_eq!(accepted, 1, "the handler saw the request before the broken one");
    assert!(matches!(error, Some(RpcError::FrameTooLarge(_))), "the handler can see the error: {error:?}");
}
