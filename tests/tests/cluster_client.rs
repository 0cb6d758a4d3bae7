//! The `XClusterClient` that `#[rpc_service]` generates (as `rpcnet-build` does): least
//! connections by default, another strategy through its builder, made from a list of
//! endpoints, and the service's methods reached through `Deref`.
#![allow(missing_docs)]

use std::net::SocketAddr;

use rpcnet::{LoadBalancingStrategy, RpcConfig, RpcServer, ServerHandle, rpc_service};

#[rpc_service]
pub trait Who {
    async fn name(&self) -> String;
}

struct Named(&'static str);

impl Who for Named {
    async fn name(&self) -> String {
        self.0.to_owned()
    }
}

fn serve(name: &'static str) -> (SocketAddr, ServerHandle) {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(WhoServer::new(Named(name)));
    server.spawn().unwrap()
}

#[tokio::test]
async fn a_cluster_client_balances_with_its_default_strategy_unless_its_builder_picks_another() {
    rpcnet_tests::subscribe();
    assert_eq!(WhoClusterClient::DEFAULT_STRATEGY, LoadBalancingStrategy::LeastConnections, "the macro's default");
    let (a, _sa) = serve("a");
    let (b, _sb) = serve("b");

    let client = WhoClusterClient::from_endpoints([a, b], RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let mut to_a = 0;
    for _ in 0..200 {
        to_a += usize::from(client.name().await.unwrap() == "a");
    }
    // Sequential calls find both endpoints idle: least connections breaks the tie at random,
    // evenly. Fewer than 60 of 200 on either side has probability below 1e-8.
    assert!((60..=140).contains(&to_a), "idle endpoints tie, and ties are shared evenly: {to_a} of 200 went to a");

    let round_robin = WhoClusterClient::builder()
        .endpoints([a, b])
        .dev()
        .strategy(LoadBalancingStrategy::RoundRobin)
        .connect()
        .await
        .unwrap();
    let first = round_robin.name().await.unwrap();
    let second = round_robin.name().await.unwrap();
    assert_ne!(first, second, "round robin, chosen at run time, alternates");
    let stats = round_robin.endpoint_stats();
    assert_eq!(stats.iter().map(|s| s.successes).sum::<u64>(), 2, "the plain client's methods work through Deref");

    let plain: WhoClient = round_robin.into();
    assert!(["a", "b"].contains(&plain.name().await.unwrap().as_str()), "it converts into the plain client");
}
