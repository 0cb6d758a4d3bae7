//! rpcnet through `#[rpc_service]`: a typed `echo(Vec<u8>) -> Vec<u8>`, called on one server
//! or balanced over several.

use std::net::SocketAddr;
use std::path::Path;

use rpcnet::{LoadBalancingStrategy, RpcConfig, RpcServer, ServerEndpoint};

use crate::Tuning;

/// The benchmark's service.
#[rpcnet::rpc_service]
pub(crate) trait Echo {
    /// Returns the payload.
    async fn echo(&self, payload: Vec<u8>) -> Vec<u8>;
}

struct Mirror;

impl Echo for Mirror {
    async fn echo(&self, payload: Vec<u8>) -> Vec<u8> {
        payload
    }
}

/// Without a default deadline, so that typed calls compare with `rpcnet` (raw bytes, no
/// deadline) and raw quinn.
fn tuned(config: RpcConfig, tuning: &Tuning) -> RpcConfig {
    let config = config.with_max_frame_size(64 << 20).with_default_timeout(None);
    match tuning.max_udp_payload {
        Some(size) => config.with_max_udp_payload_size(size),
        None => config,
    }
}

pub(crate) fn server(cert_dir: &Path, tuning: &Tuning) -> (RpcServer, ServerEndpoint) {
    let config =
        RpcConfig::new(cert_dir.join("server.pem"), "127.0.0.1:0").with_key_path(cert_dir.join("server-key.pem"));
    let mut server = RpcServer::new(tuned(config, tuning));
    server.add_service(EchoServer::new(Mirror));
    let endpoint = server.bind().unwrap();
    (server, endpoint)
}

pub(crate) async fn connect(addr: SocketAddr, cert_dir: &Path, tuning: &Tuning) -> EchoClient {
    let config = RpcConfig::new(cert_dir.join("ca.pem"), "127.0.0.1:0");
    EchoClient::connect(addr, tuned(config, tuning)).await.unwrap()
}

/// One client balancing over `addrs` with `strategy`, all on one client endpoint.
pub(crate) async fn connect_balanced(
    addrs: &[SocketAddr],
    cert_dir: &Path,
    tuning: &Tuning,
    strategy: LoadBalancingStrategy,
) -> EchoClient {
    let config = RpcConfig::new(cert_dir.join("ca.pem"), "127.0.0.1:0");
    EchoClient::builder()
        .endpoints(addrs.iter().copied())
        .config(tuned(config, tuning))
        .strategy(strategy)
        .connect()
        .await
        .unwrap()
}

/// `client` with two metadata entries on each call and a tower layer that does nothing.
pub(crate) fn dressed(client: &EchoClient) -> EchoClient {
    let mut metadata = rpcnet::Metadata::new();
    metadata.insert("request-id", "0123456789abcdef").unwrap();
    metadata.insert("tenant", "bench").unwrap();
    client.with_metadata(metadata).with_layer(tower::layer::util::Identity::new())
}
