//! Bad input from a peer gets a clear error and leaves the server and the connection
//! serving other calls. A raw QUIC client sends what `RpcClient` never would. Bad input
//! from the program (an unusable bind address) is a configuration error, never a panic.

mod common;

use std::time::Duration;

use common::raw::{self, Answer, echo, exchange, head, message, read_answer};
use common::{TestServer, ms};
use rpcnet::wire::{CallKind, StatusCode};
use rpcnet::{RpcClient, RpcConfig, RpcError};

fn status(code: StatusCode) -> u16 {
    code as u16
}

fn assert_status(answer: &Answer, code: StatusCode) {
    match answer {
        Answer::Status(got, message) => assert_eq!(*got, status(code), "wrong status, message: {message}"),
        other => panic!("expected status {code:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_from_its_header_alone() {
    let server = TestServer::start_with(RpcConfig::dev("127.0.0.1:0").with_max_frame_size(1024)).await;
    let raw = raw::connect(server.addr).await;
    // Announce 1 MB but send none of it: the answer can only come from the header.
    let (mut send, mut recv) = raw.connection.open_bi().await.unwrap();
    let mut request = head(CallKind::Unary, "test.echo", None);
    request.extend_from_slice(&[0, 0, 0x10, 0, 0]);
    send.write_all(&request).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut recv)).await.unwrap();
    assert_status(&answer, StatusCode::FrameTooLarge);
    assert_eq!(echo(&raw.connection, b"ok").await, Answer::Message(b"ok".to_vec()), "the connection lives on");
}

#[tokio::test]
async fn a_client_learns_why_the_server_refused_its_large_request() {
    let server = TestServer::start_with(RpcConfig::dev("127.0.0.1:0").with_max_frame_size(64 * 1024)).await;
    let client = RpcClient::connect(server.addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let err = client.call("test.echo", vec![0; 1 << 20]).await.unwrap_err();
    assert!(matches!(err, RpcError::FrameTooLarge(_)), "got {err:?}");
    assert_eq!(client.call("test.echo", b"small".to_vec()).await.unwrap(), b"small");
}

#[tokio::test]
async fn the_client_refuses_to_send_a_frame_over_its_own_limit() {
    let server = TestServer::start().await;
    let client =
        RpcClient::connect(server.addr, RpcConfig::dev("127.0.0.1:0").with_max_frame_size(1024)).await.unwrap();
    let err = client.call("test.echo", vec![0; 2048]).await.unwrap_err();
    assert!(matches!(err, RpcError::FrameTooLarge(ref m) if m.contains("2048")), "got {err:?}");
}

#[tokio::test]
async fn truncated_garbage_and_unknown_version_heads_get_clear_statuses() {
    let server = TestServer::start().await;
    let raw = raw::connect(server.addr).await;
    let conn = &raw.connection;

    let full = head(CallKind::Unary, "test.echo", None);
    assert_status(&exchange(conn, &full[..full.len() - 3]).await, StatusCode::Protocol);
    assert_status(&exchange(conn, &[1, 0, 7, 9, 0, 0, 0, 0, 1, b'm', 0]).await, StatusCode::Protocol);
    assert_status(&exchange(conn, &[1, 0, 3, 0xff, 0xff, 0xff]).await, StatusCode::Protocol);
    assert_status(&exchange(conn, b"GET / HTTP/1.1\r\n\r\n").await, StatusCode::UnsupportedVersion);
    assert_status(&exchange(conn, &[1, 0xff, 0xff]).await, StatusCode::FrameTooLarge);
    // A valid head with a request frame of the wrong tag.
    let mut wrong_tag = full.clone();
    wrong_tag.extend_from_slice(&[2, 0, 0, 0, 0]);
    assert_status(&exchange(conn, &wrong_tag).await, StatusCode::Protocol);
    // Two messages on a unary call.
    let mut two = full.clone();
    two.extend(message(b"a"));
    two.extend(message(b"b"));
    assert_status(&exchange(conn, &two).await, StatusCode::Protocol);

    assert_eq!(echo(conn, b"alive").await, Answer::Message(b"alive".to_vec()), "the connection lives on");
    assert_eq!(raw.connection.close_reason(), None);
}

#[tokio::test]
async fn unknown_method_is_answered_on_the_wire() {
    let server = TestServer::start().await;
    let raw = raw::connect(server.addr).await;
    let mut request = head(CallKind::Unary, "nobody.home", None);
    request.extend(message(b""));
    match exchange(&raw.connection, &request).await {
        Answer::Status(code, method) => {
            assert_eq!(code, status(StatusCode::UnknownMethod));
            assert_eq!(method, "nobody.home", "the status names the method");
        }
        other => panic!("got {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_that_stops_mid_frame_is_cut_off_by_its_deadline() {
    // One stream per connection: the next call can only start once the stalled one is freed.
    let config = RpcConfig::dev("127.0.0.1:0").with_max_concurrent_streams(1);
    let server = TestServer::start_with(config).await;
    let raw = raw::connect(server.addr).await;
    let (mut send, mut recv) = raw.connection.open_bi().await.unwrap();
    let mut request = head(CallKind::Unary, "test.echo", Some(200));
    request.extend_from_slice(&[0, 0, 0, 0, 100]); // a 100-byte message...
    request.extend_from_slice(&[0; 10]); // ...of which 10 bytes arrive
    send.write_all(&request).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut recv)).await.unwrap();
    assert_status(&answer, StatusCode::DeadlineExceeded);
    drop((send, recv));
    let answer = tokio::time::timeout(Duration::from_secs(5), echo(&raw.connection, b"next")).await;
    assert_eq!(answer.expect("the stalled stream must be freed"), Answer::Message(b"next".to_vec()));
}

#[tokio::test]
async fn a_peer_that_stops_mid_frame_without_deadline_is_cut_off_by_the_read_timeout() {
    let config = RpcConfig::dev("127.0.0.1:0").with_request_read_timeout(Duration::from_millis(200));
    let server = TestServer::start_with(config).await;
    let raw = raw::connect(server.addr).await;
    let (mut send, mut recv) = raw.connection.open_bi().await.unwrap();
    send.write_all(&head(CallKind::Unary, "test.echo", None)[..4]).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut recv)).await.unwrap();
    assert_status(&answer, StatusCode::DeadlineExceeded);
}

#[tokio::test]
async fn the_server_enforces_the_deadline_it_was_sent() {
    let server = TestServer::start().await;
    let raw = raw::connect(server.addr).await;
    // The raw client has no timer of its own: only the server can end this call early.
    let mut request = head(CallKind::Unary, "test.sleep", Some(100));
    request.extend(message(&ms(10_000)));
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange(&raw.connection, &request)).await.unwrap();
    assert_status(&answer, StatusCode::DeadlineExceeded);
}

#[tokio::test]
async fn calls_beyond_the_stream_limit_wait_their_turn() {
    let config = RpcConfig::dev("127.0.0.1:0").with_max_concurrent_streams(2);
    let server = TestServer::start_with(config).await;
    let client = server.client().await;
    let calls = (0..6).map(|_| {
        let client = client.clone();
        async move { client.call("test.sleep", ms(100)).await }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap(), b"slept", "every waiting call runs eventually");
    }
    let peak = server.probes.peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak <= 2, "at most 2 calls ran at once on one connection, saw {peak}");
}

#[tokio::test]
async fn calls_beyond_the_in_flight_limit_are_refused_as_overloaded() {
    let config = RpcConfig::dev("127.0.0.1:0").with_max_in_flight_calls(2);
    let server = TestServer::start_with(config).await;
    let client = server.client().await;
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call("test.sleep", ms(500)).await })
        })
        .collect();
    let running = server.probes.running.clone();
    assert!(common::eventually(300, || running.load(std::sync::atomic::Ordering::SeqCst) == 2).await);
    let err = client.call("test.echo", b"x".to_vec()).await.unwrap_err();
    assert!(matches!(err, RpcError::Overloaded(_)), "got {err:?}");
    assert!(err.is_retry_safe(), "a refused call never ran and may go elsewhere");
    for call in busy {
        assert_eq!(call.await.unwrap().unwrap(), b"slept");
    }
    assert_eq!(client.call("test.echo", b"y".to_vec()).await.unwrap(), b"y", "capacity comes back");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let config = RpcConfig::dev("127.0.0.1:0").with_max_connections(1);
    let server = TestServer::start_with(config).await;
    let first = server.client().await;
    let second = RpcClient::connect(server.addr, RpcConfig::dev("127.0.0.1:0")).await;
    assert!(matches!(second, Err(RpcError::Connection(_))), "got {second:?}");
    assert_eq!(first.call("test.echo", b"1".to_vec()).await.unwrap(), b"1", "the first connection is unaffected");
}

#[tokio::test]
async fn the_deadline_starts_when_the_head_arrives_not_when_the_handler_first_waits() {
    common::subscribe();
    let mut server = rpcnet::RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    // A handler that computes for 150 ms before its first wait, then waits 80 ms: 230 ms in
    // all. Under a deadline of 100 ms counted from its first wait, it would finish in time.
    server
        .register("test.busy_then_wait", |_req| async move {
            std::thread::sleep(Duration::from_millis(150));
            tokio::time::sleep(Duration::from_millis(80)).await;
            Ok(b"done".to_vec())
        })
        .await;
    let (addr, shutdown) = server.spawn().unwrap();
    let raw = raw::connect(addr).await;
    let mut request = head(CallKind::Unary, "test.busy_then_wait", Some(100));
    request.extend(message(b""));
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange(&raw.connection, &request)).await.unwrap();
    assert_status(&answer, StatusCode::DeadlineExceeded);
    shutdown.shutdown().await;
}

#[tokio::test]
async fn a_host_name_bind_address_binds_and_serves() {
    common::subscribe();
    let mut server = rpcnet::RpcServer::new(RpcConfig::dev("localhost:0"));
    server.register("echo", |request| async move { Ok(request) }).await;
    let (addr, _shutdown) = server.spawn().expect("`localhost:0` binds");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "bound to {addr}");
    let client = RpcClient::connect(addr, RpcConfig::dev("localhost:0")).await.expect("a client binds it too");
    assert_eq!(client.call("echo", b"named".to_vec()).await.unwrap(), b"named");
}

#[tokio::test]
async fn an_unusable_bind_address_is_a_configuration_error_from_bind_and_connect() {
    common::subscribe();
    let mut server = rpcnet::RpcServer::new(RpcConfig::dev("nonsense"));
    let err = server.bind().unwrap_err();
    assert!(matches!(&err, RpcError::Config(m) if m.contains("`nonsense`")), "bind names the address: {err:?}");
    let server = TestServer::start().await;
    let err = RpcClient::connect(server.addr, RpcConfig::dev("localhost")).await.unwrap_err();
    assert!(matches!(&err, RpcError::Config(m) if m.contains("`localhost`")), "connect names the address: {err:?}");
}
