//! rpcnet doing the same exchange: a raw-bytes `echo` handler and `RpcClient::call_with`,
//! without a deadline (as raw quinn) or with one (what a default client does).

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use rpcnet::{CallOptions, RpcClient, RpcConfig, RpcServer, ServerEndpoint};

use crate::Tuning;

fn tuned(config: RpcConfig, tuning: &Tuning) -> RpcConfig {
    match tuning.max_udp_payload {
        Some(size) => config.with_max_udp_payload_size(size),
        None => config,
    }
}

pub(crate) async fn server(cert_dir: &Path, tuning: &Tuning) -> (RpcServer, ServerEndpoint) {
    let config =
        RpcConfig::new(cert_dir.join("server.pem"), "127.0.0.1:0").with_key_path(cert_dir.join("server-key.pem"));
    let mut server = RpcServer::new(tuned(config, tuning).with_max_frame_size(64 << 20));
    server.register("echo", |payload| async move { Ok(payload) }).await;
    let endpoint = server.bind().unwrap();
    (server, endpoint)
}

pub(crate) async fn connect(addr: SocketAddr, cert_dir: &Path, tuning: &Tuning) -> RpcClient {
    let config = RpcConfig::new(cert_dir.join("ca.pem"), "127.0.0.1:0");
    RpcClient::connect(addr, tuned(config, tuning).with_max_frame_size(64 << 20)).await.unwrap()
}

/// One call through the `Vec<u8>` API, without deadline.
pub(crate) async fn echo_vec(client: &RpcClient, payload: Vec<u8>) -> usize {
    let options = CallOptions::new().without_timeout();
    let reply: Vec<u8> = client.call_with("echo", payload, options).await.map(Vec::from).unwrap();
    reply.len()
}

/// One call; with `deadline`, it carries the default 30 s deadline (a timer on both sides).
pub(crate) async fn echo(client: &RpcClient, payload: Bytes, deadline: bool) -> usize {
    let options = if deadline { CallOptions::new() } else { CallOptions::new().without_timeout() };
    client.call_with("echo", payload, options).await.unwrap().len()
}
