//! Typed clients balanced over several local servers, the whole stack over loopback:
//! strategies, a custom balancer, affinity, locality, ejection of an endpoint that cannot be
//! reached, failover when a server shuts down, suspects. The channel's policies (admission,
//! queueing, retries and their budget, back-off, departures) are unit-tested in
//! `rpcnet/src/channel/tests.rs` over mock connections in paused time.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rpcnet::balance::{Balancer, CallInfo, Endpoint};
use rpcnet::{LoadBalancingStrategy, RpcConfig, RpcError, RpcServer, RpcStream, ServerHandle, rpc_service};
use serde::{Deserialize, Serialize};

/// The service's own error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal(String);

#[rpc_service]
pub trait Whoami {
    /// The server's name (after the server's delay).
    async fn name(&self) -> String;
    /// Always refuses, with the service's own error.
    async fn refuse(&self) -> Result<String, Refusal>;
    /// The numbers 1 to `n`, streamed.
    async fn count(&self, n: u32) -> RpcStream<u32>;
    /// Sleeps, then answers the server's name.
    async fn work(&self, millis: u64) -> String;
    /// Like `work`, but safe to repeat.
    #[rpc(idempotent)]
    async fn read(&self, millis: u64) -> String;
}

struct Named {
    name: String,
    calls: Arc<AtomicUsize>,
    delay: Duration,
}

impl Whoami for Named {
    async fn name(&self) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.name.clone()
    }

    async fn refuse(&self) -> Result<String, Refusal> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(Refusal(format!("{} says no", self.name)))
    }

    async fn count(&self, n: u32) -> RpcStream<u32> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        RpcStream::from_iter(1..=n)
    }

    async fn work(&self, millis: u64) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.name.clone()
    }

    async fn read(&self, millis: u64) -> String {
        self.work(millis).await
    }
}

struct Server {
    addr: SocketAddr,
    shutdown: ServerHandle,
    calls: Arc<AtomicUsize>,
}

fn start(name: &str) -> Server {
    start_slow(name, Duration::ZERO)
}

/// A server whose `name` answers after `delay`.
fn start_slow(name: &str, delay: Duration) -> Server {
    rpcnet_tests::subscribe();
    let calls = Arc::new(AtomicUsize::new(0));
    let config = RpcConfig::dev("127.0.0.1:0").with_shutdown_grace_period(Duration::from_millis(50));
    let mut server = RpcServer::new(config);
    server.add_service(WhoamiServer::new(Named { name: name.to_owned(), calls: calls.clone(), delay }));
    let (addr, shutdown) = server.spawn().unwrap();
    Server { addr, shutdown, calls }
}

fn config() -> RpcConfig {
    RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_millis(300))
}

/// An address nobody listens on.
fn dead_addr() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap()
}

/// A typed client balancing over `servers` with `strategy`.
async fn client_of(servers: &[Server], strategy: LoadBalancingStrategy) -> WhoamiClient {
    WhoamiClient::builder()
        .endpoints(servers.iter().map(|s| s.addr))
        .config(config())
        .strategy(strategy)
        .connect()
        .await
        .unwrap()
}

async fn tally(client: &WhoamiClient, calls: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..calls {
        *counts.entry(client.name().await.unwrap()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn round_robin_spreads_calls_exactly() {
    let servers = [start("a"), start("b"), start("c")];
    let client = client_of(&servers, LoadBalancingStrategy::RoundRobin).await;
    let counts = tally(&client, 30).await;
    assert_eq!(counts, HashMap::from([("a".into(), 10), ("b".into(), 10), ("c".into(), 10)]));
    let stats = client.endpoint_stats();
    assert_eq!(stats.len(), 3);
    assert!(stats.iter().all(|s| s.successes == 10 && s.in_flight == 0 && s.latency.is_some()), "{stats:?}");
}

/// Routes every call to the endpoint labelled `b`.
struct OnlyB;

impl Balancer for OnlyB {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        endpoints.iter().position(|e| e.label() == "b")
    }
}

#[tokio::test]
async fn a_custom_balancer_routes_as_it_says() {
    let servers = [start("a"), start("b"), start("c")];
    let endpoints =
        servers.iter().zip(["a", "b", "c"]).map(|(s, label)| Endpoint::new(label, s.addr).with_label(label));
    let client = WhoamiClient::builder().endpoints(endpoints).config(config()).balancer(OnlyB).connect().await.unwrap();
    assert_eq!(tally(&client, 12).await, HashMap::from([("b".into(), 12)]));
    assert_eq!(servers[0].calls.load(Ordering::SeqCst) + servers[2].calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_same_affinity_key_always_reaches_the_same_server() {
    let servers = [start("a"), start("b"), start("c")];
    let client = client_of(&servers, LoadBalancingStrategy::ConsistentHash).await;
    let mut owners = HashMap::new();
    for user in 0..60 {
        let keyed = client.with_affinity_key(format!("user-{user}"));
        let first = keyed.name().await.unwrap();
        for _ in 0..3 {
            assert_eq!(keyed.name().await.unwrap(), first, "user-{user} must stay on one server");
        }
        *owners.entry(first).or_insert(0) += 1;
    }
    assert_eq!(owners.len(), 3, "60 keys spread over every server: {owners:?}");
}

#[tokio::test]
async fn locality_prefers_the_callers_zone_and_falls_back() {
    let servers = [start("us"), start("eu"), start("eu2")];
    let zones = ["us-1", "eu-1", "eu-1"];
    let endpoints: Vec<Endpoint> = servers
        .iter()
        .zip(zones)
        .enumerate()
        .map(|(i, (s, z))| Endpoint::new(format!("n{i}"), s.addr).with_tag("zone", z))
        .collect();
    let local = WhoamiClient::builder()
        .endpoints(endpoints.clone())
        .config(config())
        .strategy(LoadBalancingStrategy::RoundRobin)
        .prefer_zone("eu-1")
        .connect()
        .await
        .unwrap();
    assert_eq!(tally(&local, 10).await, HashMap::from([("eu".into(), 5), ("eu2".into(), 5)]));
    let elsewhere = WhoamiClient::builder()
        .endpoints(endpoints)
        .config(config())
        .strategy(LoadBalancingStrategy::RoundRobin)
        .prefer_zone("ap-1")
        .connect()
        .await
        .unwrap();
    assert_eq!(tally(&elsewhere, 9).await.len(), 3, "no ap-1 endpoint: every endpoint serves");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_ejected_and_calls_go_elsewhere() {
    let servers = [start("a"), start("b")];
    let client = WhoamiClient::builder()
        .endpoints([servers[0].addr, dead_addr(), servers[1].addr])
        .config(config())
        .strategy(LoadBalancingStrategy::RoundRobin)
        .connect()
        .await
        .unwrap();
    let counts = tally(&client, 20).await;
    assert_eq!(counts.values().sum::<usize>(), 20, "no call is lost to the dead endpoint");
    let stats = client.endpoint_stats();
    let dead = stats.iter().find(|s| s.successes == 0).expect("the dead endpoint served nothing");
    assert!(dead.ejected, "the dead endpoint is ejected: {stats:?}");
}

#[tokio::test]
async fn a_server_that_shuts_down_loses_no_call() {
    let servers = [start("a"), start("b"), start("c")];
    let client = client_of(&servers, LoadBalancingStrategy::RoundRobin).await;
    assert_eq!(tally(&client, 6).await.len(), 3);
    servers[1].shutdown.shutdown().await;
    let counts = tally(&client, 30).await;
    assert_eq!(counts.values().sum::<usize>(), 30, "every call succeeds: {counts:?}");
    assert!(!counts.contains_key("b"));
}

fn in_flight(client: &WhoamiClient) -> u32 {
    client.endpoint_stats().iter().map(|s| s.in_flight).sum()
}

#[tokio::test]
async fn weighted_round_robin_follows_capacity_through_a_typed_client() {
    let servers = [start("big"), start("small"), start("drained")];
    let endpoints = servers
        .iter()
        .zip(["3", "1", "0"])
        .enumerate()
        .map(|(i, (s, capacity))| Endpoint::new(format!("n{i}"), s.addr).with_tag("capacity", capacity));
    let client = WhoamiClient::builder()
        .endpoints(endpoints)
        .config(config())
        .strategy(LoadBalancingStrategy::WeightedRoundRobin)
        .connect()
        .await
        .unwrap();
    let mut order = Vec::new();
    for _ in 0..8 {
        order.push(client.name().await.unwrap());
    }
    assert_eq!(order, ["big", "big", "small", "big", "big", "big", "small", "big"], "smooth 3:1, none for capacity=0");
    assert_eq!(servers[2].calls.load(Ordering::SeqCst), 0, "capacity=0 gets no traffic");
}

#[tokio::test]
async fn peak_ewma_keeps_calls_away_from_a_slow_server_through_a_typed_client() {
    let servers = [start("fast-1"), start("fast-2"), start_slow("slow", Duration::from_millis(150))];
    let client = client_of(&servers, LoadBalancingStrategy::PeakEwma).await;
    let counts = tally(&client, 40).await;
    assert_eq!(counts.values().sum::<usize>(), 40);
    // Until its first answer the slow server is unknown and may win a comparison; once its
    // 150 ms are known it loses every comparison with a fast one (a few ms) for far longer
    // than this test runs. Calls are sequential, so it gets its first call at most.
    assert!(counts.get("slow").copied().unwrap_or(0) <= 1, "the slow server got {counts:?}");
    let slow = client.endpoint_stats().into_iter().find(|s| s.successes > 0 && s.addr == servers[2].addr);
    if let Some(slow) = slow {
        assert!(slow.latency.unwrap() >= Duration::from_millis(150), "{slow:?}");
    }
}

#[tokio::test]
async fn a_finished_server_stream_stops_counting_in_flight_while_still_held() {
    let servers = [start("a")];
    let client = client_of(&servers, LoadBalancingStrategy::RoundRobin).await;
    let mut numbers = client.count(3).await.unwrap();
    assert_eq!(in_flight(&client), 1, "an open stream is a call in flight");
    let mut seen = Vec::new();
    while let Some(n) = numbers.next().await {
        seen.push(n.unwrap());
    }
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(in_flight(&client), 0, "the stream ended: its call is over even though it is still held");
    drop(numbers);
}

#[tokio::test]
async fn a_typed_service_error_is_an_answer_not_an_endpoint_failure() {
    let servers = [start("a")];
    let client = client_of(&servers, LoadBalancingStrategy::RoundRobin).await;
    for _ in 0..3 {
        assert_eq!(client.refuse().await.unwrap(), Err(Refusal("a says no".into())));
    }
    let stats = &client.endpoint_stats()[0];
    assert_eq!((stats.successes, stats.failures, stats.ejected), (3, 0, false), "{stats:?}");
}

/// Picks one past the last endpoint: a broken balancer.
struct PastTheEnd;

impl Balancer for PastTheEnd {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        Some(endpoints.len())
    }
}

#[tokio::test]
async fn a_balancer_picking_outside_the_set_is_reported_as_its_bug() {
    let servers = [start("a"), start("b")];
    let client = WhoamiClient::builder()
        .endpoints(servers.iter().map(|s| s.addr))
        .config(config())
        .balancer(PastTheEnd)
        .connect()
        .await
        .unwrap();
    let err = client.name().await.unwrap_err();
    assert!(matches!(err, RpcError::InvalidPick { index: 2, endpoints: 2 }), "{err:?}");
    assert!(err.to_string().contains("a bug in its `Balancer::pick`"), "{err}");
}

/// A source of endpoints whose health the test sets.
struct Marked {
    endpoints: tokio::sync::watch::Sender<Arc<Vec<Endpoint>>>,
    suspects: std::sync::Mutex<Vec<String>>,
}

impl Marked {
    fn new(endpoints: Vec<Endpoint>) -> Arc<Self> {
        Arc::new(Self {
            endpoints: tokio::sync::watch::Sender::new(Arc::new(endpoints)),
            suspects: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Marks the endpoint labelled `label` suspect, and publishes the same set again.
    fn suspect(&self, label: &str) {
        self.suspects.lock().unwrap().push(label.to_owned());
        self.endpoints.send_modify(|_| {});
    }
}

impl rpcnet::EndpointSource for Marked {
    fn endpoints(&self) -> tokio::sync::watch::Receiver<Arc<Vec<Endpoint>>> {
        self.endpoints.subscribe()
    }

    fn is_suspect(&self, endpoint: &Endpoint) -> bool {
        self.suspects.lock().unwrap().iter().any(|label| label == endpoint.label())
    }
}

fn labelled(servers: &[Server], labels: &[&str]) -> Vec<Endpoint> {
    servers.iter().zip(labels).map(|(s, label)| Endpoint::new(*label, s.addr).with_label(*label)).collect()
}

#[tokio::test]
async fn a_suspect_endpoint_gets_some_but_less_traffic() {
    let servers = [start("a"), start("b"), start("c")];
    let source = Marked::new(labelled(&servers, &["a", "b", "c"]));
    source.suspect("c");
    let client = WhoamiClient::builder()
        .registry(source.clone())
        .config(config())
        .strategy(LoadBalancingStrategy::RoundRobin)
        .connect()
        .await
        .unwrap();
    let counts = tally(&client, 210).await;
    let (a, b, c) = (counts["a"], counts["b"], counts.get("c").copied().unwrap_or(0));
    assert!(c > 0, "a suspect still gets calls, so that it is seen to recover: {counts:?}");
    assert!(c * 5 < a && c * 5 < b, "but far fewer than a healthy endpoint: {counts:?}");
    assert_eq!(a + b + c, 210);
    let stats = client.endpoint_stats();
    assert!(stats.iter().any(|s| s.label == "c" && s.suspect), "endpoint_stats shows it: {stats:?}");
}
