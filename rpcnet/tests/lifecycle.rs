//! Graceful shutdown and reconnection.

mod common;

use std::time::Duration;

use common::{TestServer, ms};
use rpcnet::{RpcConfig, RpcError};

#[tokio::test]
async fn shutdown_lets_calls_in_flight_finish_and_refuses_new_ones() {
    let server = TestServer::start().await;
    let config = RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_millis(300));
    let client = rpcnet::RpcClient::connect(server.addr, config).await.unwrap();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call("test.sleep", ms(300)).await }
    });
    let running = server.probes.running.clone();
    assert!(common::eventually(300, || running.load(std::sync::atomic::Ordering::SeqCst) == 1).await);

    let shutdown = server.shutdown.clone();
    let stopping = tokio::spawn(async move { shutdown.shutdown().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = client.call("test.echo", b"late".to_vec()).await.unwrap_err();
    assert!(refused.is_retry_safe(), "a call refused during shutdown never ran: {refused:?}");

    assert_eq!(slow.await.unwrap().unwrap(), b"slept", "the call in flight finishes");
    stopping.await.unwrap();
    let after = client.call("test.echo", b"after".to_vec()).await.unwrap_err();
    assert!(matches!(after, RpcError::Connection(_) | RpcError::Unavailable(_)), "got {after:?}");
}

#[tokio::test]
async fn shutdown_closes_calls_that_outlive_the_grace_period() {
    let config = RpcConfig::dev("127.0.0.1:0").with_shutdown_grace_period(Duration::from_millis(200));
    let server = TestServer::start_with(config).await;
    let client = server.client().await;
    let stuck = tokio::spawn({
        let client = client.clone();
        async move { client.call("test.sleep", ms(20_000)).await }
    });
    let running = server.probes.running.clone();
    assert!(common::eventually(300, || running.load(std::sync::atomic::Ordering::SeqCst) == 1).await);
    tokio::time::timeout(Duration::from_secs(5), server.shutdown.shutdown())
        .await
        .expect("shutdown ends after the grace period");
    let err = stuck.await.unwrap().unwrap_err();
    assert!(matches!(err, RpcError::ConnectionLost(_)), "got {err:?}");
}

#[tokio::test]
async fn a_client_reconnects_to_a_server_restarted_on_the_same_address() {
    let first = TestServer::start().await;
    let config = RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_millis(300));
    let client = rpcnet::RpcClient::connect(first.addr, config).await.unwrap();
    assert_eq!(client.call("test.echo", b"one".to_vec()).await.unwrap(), b"one");
    first.shutdown.shutdown().await;
    assert!(client.call("test.echo", b"gap".to_vec()).await.is_err(), "nobody serves the address now");

    let second = TestServer::start_with(RpcConfig::dev(first.addr.to_string())).await;
    assert_eq!(second.addr, first.addr);
    assert_eq!(client.call("test.echo", b"two".to_vec()).await.unwrap(), b"two", "the client reconnected");
    assert!(client.is_connected());
}

#[tokio::test]
async fn shutdown_of_a_server_that_never_started_returns_at_once() {
    let server = rpcnet::RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let handle = server.handle();
    tokio::time::timeout(Duration::from_secs(1), handle.shutdown()).await.expect("nothing to wait for");
    assert!(handle.is_shutting_down());
}

#[tokio::test]
async fn shutdown_in_steps_refuses_new_work_then_waits_for_the_calls_in_flight() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call("test.sleep", ms(300)).await }
    });
    let running = server.probes.running.clone();
    assert!(common::eventually(300, || running.load(std::sync::atomic::Ordering::SeqCst) == 1).await);

    server.shutdown.stop_accepting();
    assert!(server.shutdown.is_shutting_down());
    let refused = client.call("test.echo", b"late".to_vec()).await.unwrap_err();
    assert!(matches!(refused, RpcError::Unavailable(_)) && refused.is_retry_safe(), "got {refused:?}");
    let config = RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_millis(500));
    let newcomer = rpcnet::RpcClient::connect(server.addr, config).await;
    assert!(newcomer.is_err(), "a new connection is refused while draining");
    assert_eq!(server.shutdown.in_flight_calls(), 1, "the call in hand goes on");

    tokio::time::timeout(Duration::from_secs(5), server.shutdown.wait_for_in_flight())
        .await
        .expect("the slow call ends within its 300 ms");
    assert_eq!(slow.await.unwrap().unwrap(), b"slept", "its reply arrived");
    assert_eq!(server.shutdown.in_flight_calls(), 0);
    assert!(client.is_connected(), "connections stay open until shutdown");
    tokio::time::timeout(Duration::from_secs(5), server.shutdown.shutdown()).await.expect("nothing left to wait for");
    assert!(client.call("test.echo", b"after".to_vec()).await.is_err(), "the server is closed");
}

#[tokio::test]
async fn waiting_for_calls_in_flight_on_an_idle_server_returns_at_once() {
    let server = TestServer::start().await;
    tokio::time::timeout(Duration::from_secs(1), server.shutdown.wait_for_in_flight()).await.expect("no call runs");
    server.shutdown.shutdown().await;
}
