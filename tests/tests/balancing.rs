//! Typed clients balanced over several local servers: strategies, a custom balancer,
//! affinity, locality, load shedding, passive ejection and retries.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rpcnet::balance::{Balancer, CallInfo, Endpoint};
use rpcnet::{LoadBalancingStrategy, RpcConfig, RpcError, RpcServer, RpcStream, ShutdownHandle, rpc_service};
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
    shutdown: ShutdownHandle,
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

/// Shuts `server` down after `delay`, while calls run.
async fn stop_after(server: &Server, delay: Duration) {
    tokio::time::sleep(delay).await;
    server.shutdown.shutdown().await;
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
        .strategy(LoadBalancingStrategy::Locality {
            zone: "eu-1".into(),
            inner: Box::new(LoadBalancingStrategy::RoundRobin),
        })
        .connect()
        .await
        .unwrap();
    assert_eq!(tally(&local, 10).await, HashMap::from([("eu".into(), 5), ("eu2".into(), 5)]));
    let elsewhere = WhoamiClient::builder()
        .endpoints(endpoints)
        .config(config())
        .strategy(LoadBalancingStrategy::Locality {
            zone: "ap-1".into(),
            inner: Box::new(LoadBalancingStrategy::RoundRobin),
        })
        .connect()
        .await
        .unwrap();
    assert_eq!(tally(&elsewhere, 9).await.len(), 3, "no ap-1 endpoint: every endpoint serves");
}

#[tokio::test]
async fn calls_over_the_per_endpoint_cap_are_shed_or_queued() {
    let servers = [start("a"), start("b")];
    let capped = WhoamiClient::builder()
        .endpoints(servers.iter().map(|s| s.addr))
        .config(config())
        .max_in_flight_per_endpoint(1)
        .connect()
        .await
        .unwrap();
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let client = capped.clone();
            tokio::spawn(async move { client.work(400).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = capped.name().await.unwrap_err();
    assert!(matches!(err, RpcError::Overloaded(_)), "both endpoints are at their cap of 1: {err:?}");
    for call in busy {
        call.await.unwrap().unwrap();
    }

    let queued = WhoamiClient::builder()
        .endpoints(servers.iter().map(|s| s.addr))
        .config(config())
        .max_in_flight_per_endpoint(1)
        .queue_when_overloaded(true)
        .connect()
        .await
        .unwrap();
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let client = queued.clone();
            tokio::spawn(async move { client.work(300).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = queued.with_timeout(Duration::from_millis(50)).name().await.unwrap_err();
    assert!(matches!(late, RpcError::Timeout), "a queued call still honours its deadline: {late:?}");
    let name = queued.name().await.unwrap();
    assert!(name == "a" || name == "b", "a queued call runs once a slot frees");
    for call in busy {
        call.await.unwrap().unwrap();
    }
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

#[tokio::test]
async fn only_idempotent_calls_are_repeated_when_their_server_dies_mid_call() {
    let servers = [start("a"), start("b")];
    let client = client_of(&servers, LoadBalancingStrategy::RoundRobin).await;
    // Round robin: the first call of each pair goes to `a`, which dies while it runs.
    let (read, ()) = tokio::join!(client.read(1_000), stop_after(&servers[0], Duration::from_millis(150)));
    assert_eq!(read.unwrap(), "b", "an idempotent call is repeated on the surviving server");

    let servers = [start("c"), start("d")];
    let client = client_of(&servers, LoadBalancingStrategy::RoundRobin).await;
    let (write, ()) = tokio::join!(client.work(1_000), stop_after(&servers[0], Duration::from_millis(150)));
    assert!(matches!(write, Err(RpcError::ConnectionLost(_))), "a non-idempotent call is not repeated: {write:?}");
}

#[tokio::test]
async fn least_connections_sends_less_to_a_slow_server() {
    let servers = [start("a"), start("b"), start("c")];
    let client = client_of(&servers, LoadBalancingStrategy::LeastConnections).await;
    // A long call pins `a`'s in-flight count; the short ones that follow avoid it.
    let first = client.work(500);
    let rest = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        tally(&client, 20).await
    };
    let (first, counts) = tokio::join!(first, rest);
    let busy = first.unwrap();
    assert_eq!(counts.get(&busy), None, "the endpoint with a call in flight gets none of {counts:?}");
}

/// Waits (at most 10 s, in 10 ms steps) until `done` holds for the client's endpoint stats.
async fn wait_for_stats(client: &WhoamiClient, what: &str, done: impl Fn(&[rpcnet::EndpointStats]) -> bool) {
    for _ in 0..1_000 {
        if done(&client.endpoint_stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting for {what}: {:?}", client.endpoint_stats());
}

fn in_flight(client: &WhoamiClient) -> u32 {
    client.endpoint_stats().iter().map(|s| s.in_flight).sum()
}

#[tokio::test]
async fn a_dropped_or_timed_out_typed_call_stops_counting_in_flight() {
    let servers = [start("a")];
    let client = client_of(&servers, LoadBalancingStrategy::LeastConnections).await;
    let aborted = {
        let client = client.clone();
        tokio::spawn(async move { client.work(10_000).await })
    };
    wait_for_stats(&client, "the call to be in flight", |s| s[0].in_flight == 1).await;
    aborted.abort();
    assert!(aborted.await.unwrap_err().is_cancelled());
    assert_eq!(in_flight(&client), 0, "an aborted call no longer counts in flight");

    let timed_out = client.with_timeout(Duration::from_millis(100)).work(10_000).await;
    assert!(matches!(timed_out, Err(RpcError::Timeout)), "{timed_out:?}");
    assert_eq!(in_flight(&client), 0, "a call past its deadline no longer counts in flight");
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
async fn an_ejected_endpoint_is_readmitted_after_its_back_off() {
    let servers = [start("a")];
    let client = WhoamiClient::builder()
        .endpoints([servers[0].addr, dead_addr()])
        .config(config())
        .strategy(LoadBalancingStrategy::RoundRobin)
        .connect()
        .await
        .unwrap();
    let dead = |stats: &[rpcnet::EndpointStats]| stats[1].clone();
    assert!(dead(&client.endpoint_stats()).ejected, "connecting failed: ejected");
    assert_eq!(tally(&client, 4).await, HashMap::from([("a".into(), 4)]));
    assert_eq!(dead(&client.endpoint_stats()).failures, 0, "while ejected it gets no call");

    // The first back-off is 500 ms; then it is eligible again and round robin tries it.
    wait_for_stats(&client, "the back-off to end", |s| !dead(s).ejected).await;
    assert_eq!(tally(&client, 4).await, HashMap::from([("a".into(), 4)]), "the retry goes to `a`");
    let stats = dead(&client.endpoint_stats());
    assert!(stats.failures >= 1, "readmitted, it was tried again: {stats:?}");
    assert!(stats.ejected, "and, failing again, ejected again: {stats:?}");
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

#[tokio::test]
async fn queued_calls_get_their_slots_in_the_order_they_queued() {
    let servers = [start("a")];
    let client = WhoamiClient::builder()
        .endpoints([servers[0].addr])
        .config(config())
        .max_in_flight_per_endpoint(1)
        .queue_when_overloaded(true)
        .connect()
        .await
        .unwrap();
    let holder = {
        let client = client.clone();
        tokio::spawn(async move { client.work(300).await })
    };
    wait_for_stats(&client, "the first call to hold the slot", |s| s[0].in_flight == 1).await;
    let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut queued = Vec::new();
    for id in 0..4 {
        let (client, finished) = (client.clone(), finished.clone());
        queued.push(tokio::spawn(async move {
            client.work(5).await.unwrap();
            finished.lock().unwrap().push(id);
        }));
        // Each call queues before the next starts.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    holder.await.unwrap().unwrap();
    for call in queued {
        call.await.unwrap();
    }
    assert_eq!(*finished.lock().unwrap(), [0, 1, 2, 3], "first queued, first served");
}

#[tokio::test]
async fn a_queued_server_stream_waits_for_a_slot_no_longer_than_the_default_deadline() {
    let servers = [start("a")];
    let client = WhoamiClient::builder()
        .endpoints([servers[0].addr])
        .config(config().with_default_timeout(Duration::from_millis(200)))
        .max_in_flight_per_endpoint(1)
        .queue_when_overloaded(true)
        .connect()
        .await
        .unwrap();
    let holder = {
        let client = client.with_timeout(Duration::from_secs(10));
        tokio::spawn(async move { client.work(1_500).await })
    };
    wait_for_stats(&client, "the first call to hold the slot", |s| s[0].in_flight == 1).await;
    let waited = client.count(1).await.err();
    assert!(matches!(waited, Some(RpcError::Timeout)), "the wait for a slot ends at the default deadline: {waited:?}");
    holder.await.unwrap().unwrap();
    let numbers: Vec<_> = client.count(2).await.unwrap().collect().await;
    assert_eq!(numbers.len(), 2, "once the slot is free, the stream runs (with no deadline of its own)");
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

#[tokio::test]
async fn an_endpoint_that_turns_suspect_keeps_its_calls_in_flight() {
    let servers = [start("a"), start("b")];
    let source = Marked::new(labelled(&servers, &["a", "b"]));
    let client =
        WhoamiClient::builder().registry(source.clone()).config(config()).balancer(OnlyB).connect().await.unwrap();
    // An idempotent call, which would be repeated elsewhere if its endpoint left the set.
    let (read, ()) = tokio::join!(client.read(400), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        source.suspect("b");
    });
    assert_eq!(read.unwrap(), "b", "the call finishes where it started");
    assert_eq!(servers[1].calls.load(Ordering::SeqCst), 1, "b ran it once");
    assert_eq!(servers[0].calls.load(Ordering::SeqCst), 0, "and it was not repeated on a");
}

/// A server that takes one call at a time, busy with a long one: it refuses every other
/// call with `Overloaded` before running it, which is safe to retry elsewhere.
async fn busy_server(name: &str) -> (Server, tokio::task::JoinHandle<()>) {
    rpcnet_tests::subscribe();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0").with_max_in_flight_calls(1));
    server.add_service(WhoamiServer::new(Named { name: name.to_owned(), calls: calls.clone(), delay: Duration::ZERO }));
    let (addr, shutdown) = server.spawn().unwrap();
    let occupant = WhoamiClient::builder().endpoint(addr).config(config()).connect().await.unwrap();
    let busy = tokio::spawn(async move {
        let _ = occupant.work(2_000).await;
    });
    for _ in 0..200 {
        if calls.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the long call occupies {name}");
    (Server { addr, shutdown, calls }, busy)
}

/// Attempts made by `calls` sequential calls that all fail, with this retry budget.
async fn attempts(servers: &[Server], calls: usize, ratio: f64, min_per_second: u32) -> u64 {
    let client = WhoamiClient::builder()
        .endpoints(servers.iter().map(|s| s.addr))
        .config(config())
        .strategy(LoadBalancingStrategy::RoundRobin)
        .max_attempts(3)
        .retry_budget(ratio)
        .min_retries_per_second(min_per_second)
        .connect()
        .await
        .unwrap();
    for _ in 0..calls {
        let err = client.name().await.unwrap_err();
        assert!(matches!(err, RpcError::Overloaded(_)), "every server refuses: {err:?}");
    }
    client.endpoint_stats().iter().map(|s| s.failures).sum()
}

#[tokio::test]
async fn once_the_retry_budget_is_spent_calls_fail_instead_of_retrying() {
    let (a, busy_a) = busy_server("a").await;
    let (b, busy_b) = busy_server("b").await;
    let servers = [a, b];
    // Each call puts half a retry into the budget: every second call can be retried once.
    assert_eq!(attempts(&servers, 20, 0.5, 0).await, 30, "20 calls, 10 retries: the budget, and not one more");
    assert_eq!(attempts(&servers, 20, 0.0, 0).await, 20, "no budget, no retry: each call fails on its first refusal");
    busy_a.await.unwrap();
    busy_b.await.unwrap();
}
