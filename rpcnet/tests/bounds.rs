//! Resources a careless or hostile peer could hold are bounded in time: replies it never
//! reads, frames it stops sending, connections that never call, connections beyond a
//! per-address limit, and connections attempted while the server shuts down.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::raw::{self, Answer, head, read_answer};
use common::{TestServer, eventually, ms};
use rpcnet::wire::{CallKind, FRAME_HEADER_LEN, FrameHeader, FrameTag, StatusCode, decode_status};
use rpcnet::{RpcClient, RpcConfig, RpcError, RpcServer};

const WAIT: Duration = Duration::from_secs(10);

/// A raw unary call to `test.big` for a reply of `len` bytes, whose reply is never read.
async fn unread_big_call(conn: &quinn::Connection, len: u64) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, recv) = conn.open_bi().await.unwrap();
    let mut request = head(CallKind::Unary, "test.big", None);
    request.extend(raw::message(&ms(len)));
    send.write_all(&request).await.unwrap();
    send.finish().unwrap();
    (send, recv)
}

#[tokio::test]
async fn a_client_that_never_reads_its_replies_loses_its_calls_after_the_write_timeout() {
    let config =
        RpcConfig::dev("127.0.0.1:0").with_max_in_flight_calls(4).with_write_timeout(Duration::from_millis(300));
    let server = TestServer::start_with(config).await;
    let attacker = raw::connect(server.addr).await;
    // 4 replies of 8 MiB: more than quinn buffers for a connection, so some writes stall.
    let mut unread = Vec::new();
    for _ in 0..4 {
        unread.push(unread_big_call(&attacker.connection, 8 << 20).await);
    }
    assert!(eventually(500, || server.shutdown.in_flight_calls() > 0).await, "the calls were admitted");

    // Every call slot comes back although the attacker still reads nothing.
    let handle = server.shutdown.clone();
    assert!(
        eventually(1_000, || handle.in_flight_calls() == 0).await,
        "calls whose replies are not read must end: {} still in flight",
        handle.in_flight_calls()
    );
    let good = server.client().await;
    for _ in 0..4 {
        assert_eq!(good.call("test.echo", b"good".to_vec()).await.unwrap(), b"good", "never Overloaded");
    }
    // A stalled reply ends in a reset that says it timed out.
    let mut reset = 0;
    for (_send, mut recv) in unread {
        if let Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) = recv.read_to_end(usize::MAX).await {
            assert_eq!(code.into_inner(), 4, "StreamCode::TimedOut");
            reset += 1;
        }
    }
    assert!(reset > 0, "at least one reply was too large to be written and was reset");
}

#[tokio::test]
async fn a_client_stream_stalled_inside_a_frame_without_deadline_is_cut_off() {
    let config = RpcConfig::dev("127.0.0.1:0").with_request_read_timeout(Duration::from_millis(200));
    let server = TestServer::start_with(config).await;
    let raw = raw::connect(server.addr).await;
    for kind_and_method in [(CallKind::ClientStreaming, "test.concat"), (CallKind::BidiStreaming, "test.upper")] {
        let (mut send, mut recv) = raw.connection.open_bi().await.unwrap();
        let mut request = head(kind_and_method.0, kind_and_method.1, None);
        request.extend(raw::message(b"a whole first message"));
        request.extend_from_slice(&[0, 0, 0, 0, 100]); // a 100-byte message...
        request.extend_from_slice(&[0; 10]); // ...of which 10 bytes arrive, then nothing
        send.write_all(&request).await.unwrap();
        let ended = tokio::time::timeout(WAIT, async {
            match kind_and_method.0 {
                CallKind::ClientStreaming => read_answer(&mut recv).await,
                _ => {
                    // The bidirectional echo answered the first message; the stall ends the call.
                    let bytes = recv.read_to_end(1 << 20).await.expect("the server ends the call");
                    Answer::Message(bytes)
                }
            }
        })
        .await
        .expect("a stalled frame must not hold the call forever");
        match ended {
            Answer::Status(code, message) => {
                assert_eq!(code, StatusCode::DeadlineExceeded as u16, "{message}")
            }
            Answer::Message(bytes) => {
                let (tag, payload) = last_frame(&bytes);
                assert_eq!(tag, FrameTag::Status, "the call ends with a status: {bytes:?}");
                assert_eq!(decode_status(payload).unwrap().0, StatusCode::DeadlineExceeded as u16);
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(server.shutdown.in_flight_calls(), 0, "both calls are over");
}

/// The tag and payload of the last frame of a whole response (version byte, frames).
fn last_frame(response: &[u8]) -> (FrameTag, &[u8]) {
    assert_eq!(response.first(), Some(&1), "the version byte");
    let mut rest = &response[1..];
    loop {
        let header = FrameHeader::decode(rest, u32::MAX).unwrap().expect("a whole frame header");
        let (payload, after) = rest[FRAME_HEADER_LEN..].split_at(header.len as usize);
        if after.is_empty() {
            return (header.tag, payload);
        }
        rest = after;
    }
}

#[tokio::test]
async fn a_connection_that_opens_no_call_is_closed_after_the_handshake_idle_timeout() {
    let config = RpcConfig::dev("127.0.0.1:0").with_handshake_idle_timeout(Duration::from_millis(200));
    let server = TestServer::start_with(config).await;
    let silent = raw::connect(server.addr).await;
    let reason = tokio::time::timeout(WAIT, silent.connection.closed()).await.expect("the server closes it");
    assert!(
        matches!(&reason, quinn::ConnectionError::ApplicationClosed(close) if close.error_code.into_inner() == 2),
        "closed for opening no call: {reason:?}"
    );
    assert!(eventually(500, || server.shutdown.open_connections() == 0).await, "its place is given back");

    // A client that waits longer than that before its first call simply reconnects.
    let client = server.client().await;
    let handle = server.shutdown.clone();
    assert!(eventually(1_000, || handle.open_connections() == 0).await, "the idle client was closed too");
    // Once the client has learnt it (the close can still be on its way when the server
    // has forgotten the connection), its next call reconnects.
    assert!(eventually(1_000, || !client.is_connected()).await, "the client sees its connection closed");
    assert_eq!(client.call("test.echo", b"late".to_vec()).await.unwrap(), b"late");
}

#[tokio::test]
async fn connections_beyond_the_per_address_limit_are_refused_at_once() {
    let config = RpcConfig::dev("127.0.0.1:0").with_max_connections_per_address(2);
    let server = TestServer::start_with(config).await;
    let (first, second) = (server.client().await, server.client().await);
    let slow_connect = RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_secs(30));
    let third = tokio::time::timeout(WAIT, RpcClient::connect(server.addr, slow_connect)).await.expect("no wait");
    match third {
        Err(RpcError::Connection(message)) => assert!(message.contains("refused"), "says why: {message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(first.call("test.echo", b"1".to_vec()).await.unwrap(), b"1");
    assert_eq!(second.call("test.echo", b"2".to_vec()).await.unwrap(), b"2");
}

#[tokio::test]
async fn a_connection_attempted_during_shutdown_is_refused_at_once() {
    let config = RpcConfig::dev("127.0.0.1:0").with_shutdown_grace_period(Duration::from_secs(20));
    let server = TestServer::start_with(config).await;
    let client = server.client().await;
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call("test.sleep", ms(1_000)).await }
    });
    let running = server.probes.running.clone();
    assert!(eventually(500, || running.load(Ordering::SeqCst) == 1).await);
    let shutdown = server.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.shutdown().await });
    assert!(eventually(500, || server.shutdown.is_shutting_down()).await);

    // The connect timeout is far longer than the call still running: a refusal that
    // arrives at all arrives at once.
    let late = RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_secs(30));
    match RpcClient::connect(server.addr, late).await {
        Err(RpcError::Connection(message)) => assert!(message.contains("refused"), "says why: {message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!slow.is_finished(), "the refusal came while the call in flight still ran");
    assert_eq!(slow.await.unwrap().unwrap(), b"slept");
    stopping.await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_delivers_every_reply_of_the_calls_in_flight() {
    const CALLS: usize = 64;
    const REPLY: usize = 256 * 1024;
    common::subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let (started, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(tokio::sync::Semaphore::new(0)));
    let (s, r) = (started.clone(), release.clone());
    server
        .register("gated.big", move |_req| {
            let (started, release) = (s.clone(), r.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                release.acquire().await.expect("never closed").forget();
                Ok(vec![9; REPLY])
            }
        })
        .await;
    let (addr, shutdown) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call("gated.big", Vec::new()).await })
        })
        .collect();
    assert!(eventually(1_000, || started.load(Ordering::SeqCst) == CALLS).await, "every call reached its handler");

    let stopping = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.shutdown().await }
    });
    assert!(eventually(500, || shutdown.is_shutting_down()).await);
    release.add_permits(CALLS);
    let mut delivered = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(reply) if reply.len() == REPLY => delivered += 1,
            other => panic!("a reply was lost in shutdown: {:?}", other.map(|r| r.len())),
        }
    }
    assert_eq!(delivered, CALLS);
    tokio::time::timeout(WAIT, stopping).await.expect("shutdown ends once the replies are delivered").unwrap();
}
