//! The balanced channel's policies over mock connections in paused time: admission
//! (shedding, the FIFO queue and its deadline), retries and their budget, ejection and
//! readmission, departures, suspects and in-flight counting. No sockets, no sleeps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::balanced::{Balanced, Policy};
use super::connection::{Connection, Connector};
use super::source::EndpointSource;
use crate::balance::{Balancer, CallInfo, Endpoint, LeastConnections, RoundRobin};
use crate::client::CallOptions;
use crate::deadline::Deadline;
use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::Payload;

/// A server as the mock sees it: it answers every call with its name after the number of
/// milliseconds the request names (none: at once), counting the calls that reached it.
#[derive(Debug)]
struct MockServer {
    name: String,
    calls: AtomicUsize,
    /// Answers with this error instead, if set.
    fails_with: Mutex<Option<RpcError>>,
}

impl MockServer {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The connection to one mock server. Retiring it ends its calls in flight as lost and
/// refuses later ones, as `RpcClient::retire` does.
#[derive(Debug, Clone)]
struct MockConnection {
    server: Arc<MockServer>,
    retired: CancellationToken,
}

fn millis(message: &OutgoingMessage) -> u64 {
    match message {
        OutgoingMessage::Payload(bytes) if !bytes.is_empty() => std::str::from_utf8(bytes).unwrap().parse().unwrap(),
        _ => 0,
    }
}

impl MockConnection {
    /// One call: waits `millis`, bounded by the deadline and by retirement.
    async fn run(&self, millis: u64, deadline: Deadline) -> Result<Payload, RpcError> {
        if self.retired.is_cancelled() {
            return Err(RpcError::Connection("retired".into()));
        }
        self.server.calls.fetch_add(1, Ordering::SeqCst);
        let work = async {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            match self.server.fails_with.lock().unwrap().clone() {
                Some(err) => Err(err),
                None => Ok(Payload::from(Bytes::from(self.server.name.clone()))),
            }
        };
        let until = deadline.instant().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            result = work => result,
            () = self.retired.cancelled() => Err(RpcError::ConnectionLost("retired mid-call".into())),
            () = tokio::time::sleep_until(until) => Err(RpcError::Timeout),
        }
    }
}

impl Connection for MockConnection {
    async fn unary(&self, _: &str, message: OutgoingMessage, deadline: Deadline, _: Instant) -> Result<Payload, RpcError> {
        self.run(millis(&message), deadline).await
    }

    async fn server_streaming(
        &self,
        _: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        _: Instant,
    ) -> Result<RpcStream<Payload>, RpcError> {
        let name = self.run(0, deadline).await?;
        let count = millis(&message) as usize;
        Ok(RpcStream::from_iter(std::iter::repeat_n(name, count)))
    }

    async fn client_streaming(
        &self,
        _: &str,
        requests: RpcStream<OutgoingMessage>,
        deadline: Deadline,
        _: Instant,
    ) -> Result<Payload, RpcError> {
        let sent = requests.count().await;
        let name = self.run(0, deadline).await?;
        Ok(Payload::from(Bytes::from(format!("{} {sent}", String::from_utf8_lossy(&name.into_bytes())))))
    }

    async fn bidi_streaming(
        &self,
        _: &str,
        requests: RpcStream<OutgoingMessage>,
        deadline: Deadline,
        _: Instant,
    ) -> Result<RpcStream<Payload>, RpcError> {
        self.run(0, deadline).await?;
        Ok(requests.map_messages(|message| match message {
            OutgoingMessage::Payload(bytes) => Ok(Payload::from(bytes)),
            OutgoingMessage::Framed(_) => Err(RpcError::Protocol("framed".into())),
        }))
    }

    async fn ping(&self, _: Duration) -> Result<Duration, RpcError> {
        Ok(Duration::from_millis(1))
    }

    fn is_connected(&self) -> bool {
        !self.retired.is_cancelled()
    }

    fn retire(&self) {
        self.retired.cancel();
    }
}

/// Mock servers by address; connecting to one of `refused` fails.
#[derive(Debug, Default)]
struct MockConnector {
    servers: HashMap<SocketAddr, Arc<MockServer>>,
    refused: HashSet<SocketAddr>,
    connects: AtomicUsize,
}

impl Connector for MockConnector {
    type Connection = MockConnection;

    async fn connect(&self, addr: SocketAddr) -> Result<MockConnection, RpcError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        if self.refused.contains(&addr) {
            return Err(RpcError::Connection(format!("{addr} refused the connection")));
        }
        let server = self.servers.get(&addr).expect("a mock server at every address").clone();
        Ok(MockConnection { server, retired: CancellationToken::new() })
    }
}

/// A cluster of mock servers `names`, and the endpoints of those listed in `refused` refuse.
struct Cluster {
    servers: Vec<Arc<MockServer>>,
    endpoints: Vec<Endpoint>,
}

impl Cluster {
    fn new(names: &[&str]) -> Self {
        let servers: Vec<Arc<MockServer>> = names
            .iter()
            .map(|name| {
                Arc::new(MockServer { name: (*name).to_owned(), calls: AtomicUsize::new(0), fails_with: Mutex::new(None) })
            })
            .collect();
        let endpoints = names
            .iter()
            .enumerate()
            .map(|(i, name)| Endpoint::new(*name, format!("10.0.0.{}:7000", i + 1).parse().unwrap()).with_label(*name))
            .collect();
        Self { servers, endpoints }
    }

    fn connector(&self, refused: &[&str]) -> MockConnector {
        let servers = self.endpoints.iter().zip(&self.servers).map(|(e, s)| (e.addr(), s.clone())).collect();
        let refused = self.endpoints.iter().filter(|e| refused.contains(&e.id())).map(Endpoint::addr).collect();
        MockConnector { servers, refused, connects: AtomicUsize::new(0) }
    }

    fn server(&self, name: &str) -> &MockServer {
        self.servers.iter().find(|s| s.name == name).expect("a server of that name")
    }

    /// A channel over every endpoint, connected as `ClientBuilder::connect` does.
    async fn channel(&self, balancer: impl Balancer, policy: Policy) -> Arc<Balanced<MockConnector>> {
        let balanced = Balanced::new(
            Arc::new(balancer),
            self.connector(&[]),
            self.endpoints.clone(),
            policy,
            Some(Duration::from_secs(30)),
            None,
        );
        balanced.endpoints.connect_all().await.unwrap();
        Arc::new(balanced)
    }
}

/// A request asking the mock server to take `millis` to answer.
fn work(millis: u64) -> OutgoingMessage {
    OutgoingMessage::Payload(Bytes::from(millis.to_string()))
}

fn name(payload: Payload) -> String {
    String::from_utf8(payload.into_bytes().to_vec()).unwrap()
}

fn capped(calls: u32, queue: bool) -> Policy {
    Policy { max_in_flight: Some(calls), queue, ..Policy::default() }
}

fn in_flight(balanced: &Balanced<MockConnector>) -> u32 {
    balanced.endpoint_stats().iter().map(|s| s.in_flight).sum()
}

/// Spawns a call that takes `millis`, and lets it start.
async fn spawn_work(balanced: &Arc<Balanced<MockConnector>>, millis: u64) -> tokio::task::JoinHandle<Result<String, RpcError>> {
    let balanced = balanced.clone();
    let call = tokio::spawn(async move {
        balanced.unary("Work.run", false, work(millis), CallOptions::new()).await.map(name)
    });
    tokio::task::yield_now().await;
    call
}

#[tokio::test(start_paused = true)]
async fn calls_over_the_cap_are_shed_when_the_channel_does_not_queue() {
    let cluster = Cluster::new(&["a", "b"]);
    let balanced = cluster.channel(RoundRobin::new(), capped(1, false)).await;
    let busy = [spawn_work(&balanced, 400).await, spawn_work(&balanced, 400).await];
    assert_eq!(in_flight(&balanced), 2, "both endpoints hold a call");
    let err = balanced.unary("Work.run", false, work(0), CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Overloaded(_)), "every endpoint is at its cap of 1: {err:?}");
    assert!(err.is_retry_safe(), "a shed call never left the client");
    for call in busy {
        call.await.unwrap().unwrap();
    }
    assert_eq!(in_flight(&balanced), 0);
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_waits_for_a_slot_until_its_deadline_and_no_longer() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), capped(1, true)).await;
    let holder = spawn_work(&balanced, 300).await;
    let started = Instant::now();
    let late = balanced
        .unary("Work.run", false, work(0), CallOptions::new().with_timeout(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert!(matches!(late, RpcError::Timeout), "{late:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(50), "it waited exactly its deadline");
    let patient = balanced.unary("Work.run", false, work(0), CallOptions::new()).await.map(name);
    assert_eq!(patient.unwrap(), "a", "a call that can wait gets the slot once it frees");
    assert_eq!(started.elapsed(), Duration::from_millis(300), "the moment the holder finished");
    holder.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn queued_calls_get_their_slots_in_the_order_they_queued() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), capped(1, true)).await;
    let holder = spawn_work(&balanced, 300).await;
    let finished = Arc::new(Mutex::new(Vec::new()));
    let mut queued = Vec::new();
    for id in 0..4 {
        let (balanced, finished) = (balanced.clone(), finished.clone());
        queued.push(tokio::spawn(async move {
            balanced.unary("Work.run", false, work(5), CallOptions::new()).await.unwrap();
            finished.lock().unwrap().push(id);
        }));
        // Each call queues before the next is made.
        tokio::task::yield_now().await;
    }
    holder.await.unwrap().unwrap();
    for call in queued {
        call.await.unwrap();
    }
    assert_eq!(*finished.lock().unwrap(), [0, 1, 2, 3], "first queued, first served");
}

#[tokio::test(start_paused = true)]
async fn a_queued_server_stream_waits_for_a_slot_no_longer_than_the_default_deadline() {
    let cluster = Cluster::new(&["a"]);
    let balanced = Balanced::new(
        Arc::new(RoundRobin::new()),
        cluster.connector(&[]),
        cluster.endpoints.clone(),
        capped(1, true),
        Some(Duration::from_millis(200)),
        None,
    );
    balanced.endpoints.connect_all().await.unwrap();
    let balanced = Arc::new(balanced);
    let holder = {
        let balanced = balanced.clone();
        tokio::spawn(async move {
            let options = CallOptions::new().with_timeout(Duration::from_secs(10));
            balanced.unary("Work.run", false, work(1_500), options).await
        })
    };
    tokio::task::yield_now().await;
    let started = Instant::now();
    let waited = balanced.server_streaming("Work.count", work(1), CallOptions::new()).await.err();
    assert!(matches!(waited, Some(RpcError::Timeout)), "{waited:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(200), "the wait for a slot ends at the default deadline");
    holder.await.unwrap().unwrap();
    let stream = balanced.server_streaming("Work.count", work(2), CallOptions::new()).await.unwrap();
    assert_eq!(stream.collect_messages().await.unwrap().len(), 2, "once free, the stream runs with no deadline");
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_that_cannot_be_reached_is_ejected_readmitted_after_its_back_off_and_ejected_again() {
    let cluster = Cluster::new(&["a", "dead"]);
    let balanced = Balanced::new(
        Arc::new(RoundRobin::new()),
        cluster.connector(&["dead"]),
        cluster.endpoints.clone(),
        Policy::default(),
        None,
        None,
    );
    balanced.endpoints.connect_all().await.unwrap();
    let dead = |b: &Balanced<MockConnector>| b.endpoint_stats().into_iter().find(|s| s.id == "dead").unwrap();
    assert!(dead(&balanced).ejected, "connecting failed: ejected");
    for _ in 0..4 {
        assert_eq!(name(balanced.unary("Work.run", false, work(0), CallOptions::new()).await.unwrap()), "a");
    }
    assert_eq!(dead(&balanced).failures, 0, "while ejected it gets no call");

    tokio::time::advance(super::members::BASE_EJECTION).await;
    assert!(!dead(&balanced).ejected, "the first back-off is over");
    for _ in 0..4 {
        let reply = balanced.unary("Work.run", false, work(0), CallOptions::new()).await.unwrap();
        assert_eq!(name(reply), "a", "a call tried on the readmitted endpoint is retried on `a`");
    }
    let stats = dead(&balanced);
    assert_eq!(stats.failures, 1, "readmitted, it was tried once: {stats:?}");
    assert!(stats.ejected, "and, failing again, ejected again");
    tokio::time::advance(super::members::BASE_EJECTION).await;
    assert!(dead(&balanced).ejected, "the second back-off is twice as long");
    tokio::time::advance(super::members::BASE_EJECTION).await;
    assert!(!dead(&balanced).ejected);
}

#[tokio::test(start_paused = true)]
async fn only_idempotent_calls_are_repeated_when_their_connection_is_lost_mid_call() {
    let cluster = Cluster::new(&["a", "b"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    // Round robin: the first call goes to `a`, whose connection breaks while it runs.
    let lose_a = |balanced: &Balanced<MockConnector>| {
        let member = balanced.endpoints.members().into_iter().find(|m| m.endpoint.id() == "a").unwrap();
        member.made_connection().unwrap().retire();
    };
    let read = balanced.unary("Work.read", true, work(1_000), CallOptions::new());
    let (read, ()) = tokio::join!(read, async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        lose_a(&balanced);
    });
    assert_eq!(name(read.unwrap()), "b", "an idempotent call is repeated on the other endpoint");
    assert_eq!((cluster.server("a").calls(), cluster.server("b").calls()), (1, 1));

    let cluster = Cluster::new(&["a", "b"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let write = balanced.unary("Work.write", false, work(1_000), CallOptions::new());
    let (write, ()) = tokio::join!(write, async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        lose_a(&balanced);
    });
    assert!(matches!(write, Err(RpcError::ConnectionLost(_))), "a call that may have run is not repeated: {write:?}");
    assert_eq!(cluster.server("b").calls(), 0, "it never reached b");
}

/// A source of endpoints whose set and health the test changes.
struct Source {
    endpoints: watch::Sender<Arc<Vec<Endpoint>>>,
    suspects: Mutex<Vec<String>>,
}

impl Source {
    fn new(endpoints: Vec<Endpoint>) -> Arc<Self> {
        Arc::new(Self { endpoints: watch::Sender::new(Arc::new(endpoints)), suspects: Mutex::new(Vec::new()) })
    }

    fn publish(&self, endpoints: Vec<Endpoint>) {
        self.endpoints.send_replace(Arc::new(endpoints));
    }

    fn suspect(&self, label: &str) {
        self.suspects.lock().unwrap().push(label.to_owned());
        self.endpoints.send_modify(|_| {});
    }
}

impl EndpointSource for Source {
    fn endpoints(&self) -> watch::Receiver<Arc<Vec<Endpoint>>> {
        self.endpoints.subscribe()
    }

    fn is_suspect(&self, endpoint: &Endpoint) -> bool {
        self.suspects.lock().unwrap().iter().any(|label| label == endpoint.label())
    }
}

/// Always picks the endpoint labelled `b` if it is among those offered.
struct PreferB;

impl Balancer for PreferB {
    fn pick(&self, endpoints: &[Endpoint], _: &CallInfo<'_>) -> Option<usize> {
        Some(endpoints.iter().position(|e| e.label() == "b").unwrap_or(0))
    }
}

fn following(cluster: &Cluster, source: &Arc<Source>, balancer: impl Balancer, policy: Policy) -> Arc<Balanced<MockConnector>> {
    let source: Arc<dyn EndpointSource> = source.clone();
    let balanced =
        Balanced::new(Arc::new(balancer), cluster.connector(&[]), Vec::new(), policy, None, Some(source));
    balanced.endpoints.follow();
    Arc::new(balanced)
}

/// Lets the channel's task that follows its source take the latest set.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn calls_on_an_endpoint_that_leaves_end_at_once_repeated_only_if_idempotent() {
    let cluster = Cluster::new(&["a", "b"]);
    let source = Source::new(cluster.endpoints.clone());
    let balanced = following(&cluster, &source, PreferB, Policy::default());
    let without_b: Vec<Endpoint> = cluster.endpoints.iter().filter(|e| e.id() != "b").cloned().collect();

    let started = Instant::now();
    let read = balanced.unary("Work.read", true, work(30_000), CallOptions::new());
    let write = balanced.unary("Work.write", false, work(30_000), CallOptions::new());
    let (read, write, ()) = tokio::join!(read, write, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        source.publish(without_b.clone());
    });
    assert!(matches!(write, Err(RpcError::ConnectionLost(_))), "the write may have run on b: lost, not repeated: {write:?}");
    assert!(!write.unwrap_err().is_retry_safe(), "and the caller is told it may have run");
    assert_eq!(name(read.unwrap()), "a", "the read goes to a");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100 + 30_000),
        "the write ended when b left, not at its deadline; the read then ran on a"
    );
    let late = balanced.unary("Work.write", false, work(0), CallOptions::new()).await.map(name);
    assert_eq!(late.unwrap(), "a", "b gets no new calls");
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_that_turns_suspect_or_is_filtered_out_keeps_its_calls_in_flight() {
    let cluster = Cluster::new(&["a", "b"]);
    let source = Source::new(cluster.endpoints.clone());
    let policy = Policy { filter: Some("role!=retired".parse().unwrap()), ..Policy::default() };
    let balanced = following(&cluster, &source, PreferB, policy);
    settle().await;
    let read = balanced.unary("Work.read", true, work(400), CallOptions::new());
    let (read, ()) = tokio::join!(read, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        source.suspect("b");
    });
    assert_eq!(name(read.unwrap()), "b", "the call finishes where it started");
    assert_eq!((cluster.server("a").calls(), cluster.server("b").calls()), (0, 1), "and was not repeated");

    let retagged: Vec<Endpoint> = cluster
        .endpoints
        .iter()
        .map(|e| if e.id() == "b" { e.clone().with_tag("role", "retired") } else { e.clone() })
        .collect();
    let write = balanced.unary("Work.write", false, work(400), CallOptions::new());
    let (write, ()) = tokio::join!(write, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        source.publish(retagged.clone());
    });
    assert_eq!(name(write.unwrap()), "b", "a member the filter leaves out is alive: its call finishes");
    settle().await;
    let next = balanced.unary("Work.write", false, work(0), CallOptions::new()).await.map(name);
    assert_eq!(next.unwrap(), "a", "but it gets no new calls");
}

#[tokio::test(start_paused = true)]
async fn a_suspect_endpoint_gets_some_but_less_traffic() {
    let cluster = Cluster::new(&["a", "b", "c"]);
    let source = Source::new(cluster.endpoints.clone());
    source.suspect("c");
    let balanced = following(&cluster, &source, RoundRobin::new(), Policy::default());
    settle().await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..210 {
        let reply = balanced.unary("Work.run", false, work(0), CallOptions::new()).await.unwrap();
        *counts.entry(name(reply)).or_default() += 1;
    }
    assert_eq!(counts.get("c"), Some(&10), "1 share in 21 for the suspect (a tenth of a healthy one's): {counts:?}");
    assert_eq!((counts["a"], counts["b"]), (100, 100), "{counts:?}");
    assert!(balanced.endpoint_stats().iter().any(|s| s.label == "c" && s.suspect), "endpoint_stats shows it");
}

#[tokio::test(start_paused = true)]
async fn once_the_retry_budget_is_spent_calls_fail_instead_of_retrying() {
    let attempts = |ratio: f64| async move {
        let cluster = Cluster::new(&["a", "b"]);
        for server in &cluster.servers {
            *server.fails_with.lock().unwrap() = Some(RpcError::Overloaded("busy".into()));
        }
        let policy = Policy { retry_ratio: ratio, min_retries_per_second: 0, ..Policy::default() };
        let balanced = cluster.channel(RoundRobin::new(), policy).await;
        for _ in 0..20 {
            let err = balanced.unary("Work.run", false, work(0), CallOptions::new()).await.unwrap_err();
            assert!(matches!(err, RpcError::Overloaded(_)), "every server refuses: {err:?}");
        }
        cluster.servers.iter().map(|s| s.calls()).sum::<usize>()
    };
    // Each call puts half a retry into the budget: every second call can be retried once.
    assert_eq!(attempts(0.5).await, 30, "20 calls, 10 retries: the budget, and not one more");
    assert_eq!(attempts(0.0).await, 20, "no budget, no retry: each call fails on its first refusal");
}

#[tokio::test(start_paused = true)]
async fn least_connections_keeps_new_calls_off_an_endpoint_with_one_in_flight() {
    let cluster = Cluster::new(&["a", "b", "c"]);
    let balanced = cluster.channel(LeastConnections::new(), Policy::default()).await;
    let long = spawn_work(&balanced, 500).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..20 {
        let reply = balanced.unary("Work.run", false, work(0), CallOptions::new()).await.unwrap();
        *counts.entry(name(reply)).or_default() += 1;
    }
    let busy = long.await.unwrap().unwrap();
    assert_eq!(counts.get(&busy), None, "the endpoint with a call in flight gets none of {counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_or_timed_out_call_stops_counting_in_flight() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let aborted = spawn_work(&balanced, 10_000).await;
    assert_eq!(in_flight(&balanced), 1);
    aborted.abort();
    assert!(aborted.await.unwrap_err().is_cancelled());
    assert_eq!(in_flight(&balanced), 0, "an aborted call no longer counts in flight");
    let options = CallOptions::new().with_timeout(Duration::from_millis(100));
    let timed_out = balanced.unary("Work.run", false, work(10_000), options).await;
    assert!(matches!(timed_out, Err(RpcError::Timeout)), "{timed_out:?}");
    assert_eq!(in_flight(&balanced), 0, "nor does a call that timed out");
}

#[tokio::test(start_paused = true)]
async fn a_finished_response_stream_stops_counting_in_flight_while_still_held() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let mut stream = balanced.server_streaming("Work.count", work(3), CallOptions::new()).await.unwrap();
    assert_eq!(in_flight(&balanced), 1, "an open stream is a call in flight");
    let mut seen = 0;
    while let Some(item) = stream.next().await {
        item.unwrap();
        seen += 1;
    }
    assert_eq!(seen, 3);
    assert_eq!(in_flight(&balanced), 0, "the stream ended: its call is over though it is still held");
    drop(stream);
}

#[tokio::test(start_paused = true)]
async fn a_service_error_is_an_answer_not_an_endpoint_failure() {
    let cluster = Cluster::new(&["a"]);
    *cluster.servers[0].fails_with.lock().unwrap() = Some(RpcError::service("no"));
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    for _ in 0..3 {
        let err = balanced.unary("Work.run", true, work(0), CallOptions::new()).await.unwrap_err();
        assert!(matches!(err, RpcError::Service(_)), "{err:?}");
    }
    let stats = &balanced.endpoint_stats()[0];
    assert_eq!((stats.successes, stats.failures, stats.ejected), (3, 0, false), "{stats:?}");
    assert_eq!(cluster.servers[0].calls(), 3, "and it is never repeated");
}

/// Picks one past the last endpoint: a broken balancer.
struct PastTheEnd;

impl Balancer for PastTheEnd {
    fn pick(&self, endpoints: &[Endpoint], _: &CallInfo<'_>) -> Option<usize> {
        Some(endpoints.len())
    }
}

#[tokio::test(start_paused = true)]
async fn a_balancer_picking_outside_the_set_is_reported_as_its_bug() {
    let cluster = Cluster::new(&["a", "b"]);
    let balanced = cluster.channel(PastTheEnd, Policy::default()).await;
    let err = balanced.unary("Work.run", false, work(0), CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::InvalidPick { index: 2, endpoints: 2 }), "{err:?}");
    assert_eq!(cluster.servers.iter().map(|s| s.calls()).sum::<usize>(), 0, "the call was not sent");
}

#[tokio::test(start_paused = true)]
async fn callers_that_see_one_due_readmission_rebuild_the_snapshot_once() {
    let cluster = Cluster::new(&["a", "b"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let set = &balanced.endpoints;
    let member = set.members()[0].clone();
    set.eject(&member, &RpcError::Connection("test".into()));
    let ejected = set.current(0).generation;
    assert_eq!(set.current(0).eligible.len(), 1, "the ejected endpoint is left out");
    // Two calls saw the ejection's snapshot once its back-off had passed.
    tokio::time::advance(Duration::from_secs(1)).await;
    let first = set.current(crate::balance::nanos_since_epoch(Instant::now().into_std())).generation;
    set.readmit(ejected);
    assert_eq!(first, ejected + 1, "the first call rebuilds");
    assert_eq!(set.current(0).generation, first, "the second finds it rebuilt and leaves it");
    assert_eq!(set.current(0).eligible.len(), 2, "the endpoint is back");
}
