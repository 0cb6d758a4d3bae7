//! One server and one client on loopback, with the development certificate:
//! a unary call, a service error, a deadline, and a server stream.
//!
//! ```text
//! cargo run -p example-hello
//! ```
#![allow(clippy::print_stdout)]

use std::time::Duration;

use rpcnet::{RpcClient, RpcConfig, RpcError, RpcServer};

/// The server of this example: three raw-bytes methods.
async fn server() -> RpcServer {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server
        .register("greet", |name| async move { Ok(format!("Hello, {}!", String::from_utf8_lossy(&name)).into_bytes()) })
        .await;
    server.register("fail", |_| async move { Err(RpcError::service("out of stock")) }).await;
    server
        .register("slow", |_| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(Vec::new())
        })
        .await;
    server
        .register_server_streaming("count", |n| async move {
            let n = n.first().copied().unwrap_or(0);
            rpcnet::RpcStream::from_iter((1..=n).map(|i| vec![i]))
        })
        .await;
    server
}

#[tokio::main]
async fn main() -> Result<(), RpcError> {
    tracing_subscriber::fmt().with_env_filter("rpcnet=info").init();
    let (addr, shutdown) = server().await.spawn()?;
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await?;

    let reply = client.call("greet", b"rpcnet".to_vec()).await?;
    println!("greet -> {}", String::from_utf8_lossy(&reply));

    match client.call("fail", Vec::new()).await {
        Err(RpcError::Service(err)) => println!("fail -> the handler's own error: {err}"),
        other => println!("fail -> unexpected: {other:?}"),
    }

    let late = client.call_with_timeout("slow", Vec::new(), Duration::from_millis(200)).await;
    println!("slow with a 200 ms deadline -> {late:?}");

    let counted = client.call_server_streaming("count", vec![5]).await?.collect_messages().await?;
    println!("count to 5 -> {counted:?}");

    shutdown.shutdown().await;
    Ok(())
}
