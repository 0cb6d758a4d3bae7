//! Unary calls end to end over loopback: payloads, errors, deadlines, cancellation.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{TestServer, eventually, ms};
use rpcnet::{CallOptions, RpcError};

#[tokio::test]
async fn echo_returns_the_payload_including_empty_and_large_ones() {
    let server = TestServer::start().await;
    let client = server.client().await;
    assert_eq!(client.call("test.echo", b"hello".to_vec()).await.unwrap(), b"hello");
    assert_eq!(client.call("test.echo", Vec::new()).await.unwrap(), b"", "empty messages are legal");
    let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    assert_eq!(client.call("test.echo", big.clone()).await.unwrap(), big, "a 1 MB payload spans many packets");
}

#[tokio::test]
async fn many_concurrent_calls_share_one_connection() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let calls = (0..200u32).map(|i| {
        let client = client.clone();
        async move { client.call("test.echo", i.to_le_bytes().to_vec()).await }
    });
    let results = futures::future::join_all(calls).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), (i as u32).to_le_bytes(), "call {i} must get its own answer");
    }
}

#[tokio::test]
async fn a_handler_error_arrives_as_a_service_error_with_its_payload() {
    let server = TestServer::start().await;
    let client = server.client().await;
    match client.call("test.fail", b"out of stock".to_vec()).await {
        Err(RpcError::Service(err)) => assert_eq!(err.payload, b"out of stock"),
        other => panic!("expected a service error, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_method_is_a_clear_error_and_the_connection_lives_on() {
    let server = TestServer::start().await;
    let client = server.client().await;
    match client.call("test.nope", vec![]).await {
        Err(RpcError::UnknownMethod(name)) => assert_eq!(name, "test.nope"),
        other => panic!("expected UnknownMethod, got {other:?}"),
    }
    assert_eq!(client.call("test.echo", b"still here".to_vec()).await.unwrap(), b"still here");
}

#[tokio::test]
async fn a_panicking_handler_fails_its_call_only() {
    let server = TestServer::start().await;
    let client = server.client().await;
    match client.call("test.panic", vec![]).await {
        Err(RpcError::Internal(message)) => assert!(message.contains("exploded on purpose"), "got {message}"),
        other => panic!("expected Internal, got {other:?}"),
    }
    assert_eq!(client.call("test.echo", b"ok".to_vec()).await.unwrap(), b"ok", "the connection survives");
}

#[tokio::test]
async fn a_deadline_fails_the_call_and_the_server_drops_the_handler() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let err = client.call_with_timeout("test.sleep", ms(10_000), Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "got {err:?}");
    let dropped = &server.probes.dropped;
    assert!(
        eventually(300, || dropped.load(Ordering::SeqCst) == 1).await,
        "the server must drop the handler once the deadline passes"
    );
    assert_eq!(client.call("test.echo", b"after".to_vec()).await.unwrap(), b"after");
}

#[tokio::test]
async fn dropping_the_call_future_cancels_the_handler_on_the_server() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let call = client.call_with("test.sleep", ms(10_000), CallOptions::new().without_timeout());
    // Let the call reach the handler, then drop it.
    let running = server.probes.running.clone();
    tokio::select! {
        _ = call => panic!("the call cannot finish: the handler sleeps 10 s"),
        _ = async { while running.load(Ordering::SeqCst) == 0 { tokio::time::sleep(Duration::from_millis(5)).await } } => {}
    }
    let dropped = &server.probes.dropped;
    assert!(
        eventually(300, || dropped.load(Ordering::SeqCst) == 1).await,
        "dropping the client future must reset the stream and drop the server's handler"
    );
    assert_eq!(server.probes.running.load(Ordering::SeqCst), 1, "the dropped handler never finished");
    assert_eq!(client.call("test.echo", b"next".to_vec()).await.unwrap(), b"next");
}

#[tokio::test]
async fn a_call_kind_mismatch_is_a_protocol_error() {
    let server = TestServer::start().await;
    let client = server.client().await;
    // test.count is server-streaming; calling it as unary breaks the protocol.
    let err = client.call("test.count", 3u32.to_le_bytes().to_vec()).await.unwrap_err();
    assert!(matches!(err, RpcError::Protocol(ref m) if m.contains("test.count")), "got {err:?}");
}

#[tokio::test]
async fn a_server_at_its_limit_still_answers_pings() {
    let server = TestServer::start_with(rpcnet::RpcConfig::dev("127.0.0.1:0").with_max_in_flight_calls(1)).await;
    let client = server.client().await;
    let pong = client.ping(Duration::from_secs(5)).await;
    assert!(pong.is_ok(), "every server answers the built-in ping: {pong:?}");
    let busy = tokio::spawn({
        let client = client.clone();
        async move { client.call("test.sleep", ms(500)).await }
    });
    assert!(eventually(200, || server.probes.running.load(Ordering::SeqCst) == 1).await);
    let refused = client.call("test.echo", b"x".to_vec()).await.unwrap_err();
    assert!(matches!(refused, RpcError::Overloaded(_)), "the one slot is taken: {refused:?}");
    assert!(client.ping(Duration::from_secs(5)).await.is_ok(), "a ping is a sign of life, not work: it gets through");
    assert_eq!(busy.await.unwrap().unwrap(), b"slept");
}

#[tokio::test]
#[should_panic(expected = "reserves for its built-in methods")]
async fn method_names_of_rpcnet_itself_are_refused() {
    let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
    server.register("rpcnet.ping", |req| async move { Ok(req) }).await;
}

#[tokio::test]
async fn large_udp_packets_on_loopback_carry_calls() {
    // 16 KiB packets: more than quinn's default receive size and initial congestion window
    // allow, which used to stall the handshake until the connect timeout.
    let config = |bind| rpcnet::RpcConfig::dev(bind).with_max_udp_payload_size(16_384);
    let mut server = rpcnet::RpcServer::new(config("127.0.0.1:0"));
    server.register("echo", |payload| async move { Ok(payload) }).await;
    let (addr, shutdown) = server.spawn().unwrap();
    let client = rpcnet::RpcClient::connect(addr, config("127.0.0.1:0").with_connect_timeout(Duration::from_secs(3)))
        .await
        .expect("the handshake completes with large packets");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(client.call("echo", big.clone()).await.unwrap(), big);
    shutdown.shutdown().await;
}
