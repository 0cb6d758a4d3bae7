//! Per-method policies end to end over loopback: a method's `deadline` cuts a slow handler
//! and a per-call timeout overrides it, `hash_key` routes equal keys to one server, and
//! `retries` lets an idempotent method recover from servers that refuse it.
#![allow(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use rpcnet::balance::{Balancer, CallInfo, Endpoint};
use rpcnet::{LoadBalancingStrategy, RpcConfig, RpcError, RpcServer, ServerHandle, rpc_service};
use tokio::time::Instant;

#[rpc_service]
pub trait Accounts {
    /// Waits `millis`, then answers the server's name; cut at 300 ms.
    #[rpc(deadline = "300ms")]
    async fn balance(&self, millis: u64) -> String;
    /// The same without a deadline of its own.
    async fn statement(&self, millis: u64) -> String;
    /// The server's name, the call keyed by the user.
    #[rpc(hash_key = "user_id")]
    async fn cart(&self, user_id: String, page: u32) -> String;
    /// The server's name; safe to repeat on two more servers.
    #[rpc(idempotent, retries = 2)]
    async fn profile(&self, user_id: String) -> String;
    /// The server's name; the channel's attempts apply.
    #[rpc(idempotent)]
    async fn settings(&self, user_id: String) -> String;
}

struct Named(String);

impl Accounts for Named {
    async fn balance(&self, millis: u64) -> String {
        // The handler's own work, whose length against the deadline is what the tests
        // check; nothing waits on it to order events.
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.0.clone()
    }

    async fn statement(&self, millis: u64) -> String {
        self.balance(millis).await
    }

    async fn cart(&self, _user_id: String, _page: u32) -> String {
        self.0.clone()
    }

    async fn profile(&self, _user_id: String) -> String {
        self.0.clone()
    }

    async fn settings(&self, _user_id: String) -> String {
        self.0.clone()
    }
}

fn config() -> RpcConfig {
    RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_millis(500))
}

fn start(name: &str) -> (SocketAddr, ServerHandle) {
    rpcnet_tests::subscribe();
    let mut server = RpcServer::new(config().with_shutdown_grace_period(Duration::from_millis(50)));
    server.add_service(AccountsServer::new(Named(name.to_owned())));
    server.spawn().unwrap()
}

/// A server that refuses every method of `Accounts` with `Unavailable`.
async fn start_refusing() -> (SocketAddr, ServerHandle) {
    rpcnet_tests::subscribe();
    let mut server = RpcServer::new(config().with_shutdown_grace_period(Duration::from_millis(50)));
    for method in [AccountsClient::METHOD_PROFILE, AccountsClient::METHOD_SETTINGS] {
        server.register(method, |_| async { Err(RpcError::Unavailable("refusing on purpose".into())) }).await;
    }
    server.spawn().unwrap()
}

/// Bounds a test that would otherwise wait for a 30 s handler.
async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), test).await.expect("the test finishes in time")
}

#[tokio::test]
async fn a_methods_deadline_cuts_a_slow_handler_and_other_methods_keep_the_default() {
    bounded(async {
        let (addr, handle) = start("a");
        let client = AccountsClient::connect(addr, config()).await.unwrap();

        let started = Instant::now();
        let err = client.balance(30_000).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, RpcError::Timeout), "{err:?}");
        assert!(took >= Duration::from_millis(300), "not before the deadline: {took:?}");
        assert!(took < Duration::from_secs(5), "about the method's 300 ms, far from 30 s: {took:?}");

        assert_eq!(client.statement(600).await.unwrap(), "a", "a method without a deadline waits longer");
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_per_call_timeout_overrides_the_methods_deadline() {
    bounded(async {
        let (addr, handle) = start("a");
        let client = AccountsClient::connect(addr, config()).await.unwrap();
        let patient = client.with_timeout(Duration::from_secs(10));
        assert_eq!(patient.balance(600).await.unwrap(), "a", "10 s for this call, over the method's 300 ms");

        let started = Instant::now();
        let err = client.with_timeout(Duration::from_millis(100)).statement(30_000).await.unwrap_err();
        assert!(matches!(err, RpcError::Timeout), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "a per-call timeout on a method without a deadline");
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_hash_key_sends_equal_keys_to_one_server_and_spreads_others() {
    bounded(async {
        let servers = [start("a"), start("b"), start("c")];
        let client = AccountsClient::builder()
            .endpoints(servers.iter().map(|(addr, _)| *addr))
            .config(config())
            .strategy(LoadBalancingStrategy::ConsistentHash)
            .connect()
            .await
            .unwrap();
        let mut owners: HashMap<String, usize> = HashMap::new();
        for user in 0..60 {
            let user_id = format!("user-{user}");
            let first = client.cart(user_id.clone(), 0).await.unwrap();
            for page in 1..4 {
                assert_eq!(client.cart(user_id.clone(), page).await.unwrap(), first, "{user_id} stays on one server");
            }
            *owners.entry(first).or_insert(0) += 1;
        }
        assert_eq!(owners.len(), 3, "60 users spread over every server: {owners:?}");

        // The caller's own affinity key wins over the argument.
        let pinned = client.with_affinity_key("one-key");
        let seen: HashSet<String> =
            futures::future::join_all((0..20).map(|user| pinned.cart(format!("user-{user}"), 0)))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        assert_eq!(seen.len(), 1, "one affinity key, one server: {seen:?}");
        for (_, handle) in servers {
            handle.shutdown().await;
        }
    })
    .await;
}

/// Always the first endpoint it is offered: a failed one is not offered again to its call.
struct First;

impl Balancer for First {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        (!endpoints.is_empty()).then_some(0)
    }
}

#[tokio::test]
async fn a_methods_retries_recover_from_two_refusing_servers() {
    bounded(async {
        let servers = [start_refusing().await, start_refusing().await, start("good")];
        let client_of = || {
            AccountsClient::builder()
                .endpoints(servers.iter().map(|(addr, _)| *addr))
                .config(config())
                .balancer(First)
                .max_attempts(1)
                .connect()
        };
        let client = client_of().await.unwrap();
        let err = client.settings("u".into()).await.unwrap_err();
        assert!(matches!(err, RpcError::Unavailable(_)), "the channel's one attempt: {err:?}");

        let client = client_of().await.unwrap();
        let err = client.with_retries(0).profile("u".into()).await.unwrap_err();
        assert!(matches!(err, RpcError::Unavailable(_)), "the client's own retries override the method's: {err:?}");

        let client = client_of().await.unwrap();
        assert_eq!(client.profile("u".into()).await.unwrap(), "good", "two refusals, two retries, the answer");
        for (_, handle) in servers {
            handle.shutdown().await;
        }
    })
    .await;
}
