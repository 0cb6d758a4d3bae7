//! Mock connections for the channel's tests: servers that answer after the time a request
//! names, connections that can be retired or refused, a cluster of them, and a source of
//! endpoints whose set and health a test changes.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::balance::{Balancer, CallInfo, Endpoint};
use crate::channel::balanced::{Balanced, Policy};
use crate::channel::connection::{Connection, Connector};
use crate::channel::source::EndpointSource;
use crate::client::{CallMetadata, CallOptions};
use crate::deadline::Deadline;
use crate::error::RpcError;
use crate::stream::RpcStream;
use crate::transport::OutgoingMessage;
use crate::wire::Payload;

pub(super) use crate::channel::policy::MethodPolicy;

/// The policy of a method marked `#[rpc(idempotent)]`.
pub(super) const IDEMPOTENT: MethodPolicy = MethodPolicy::new().with_idempotent(true);

/// A server as the mock sees it: it answers every call with its name after the number of
/// milliseconds the request names (none: at once), counting the calls that reached it.
#[derive(Debug)]
pub(super) struct MockServer {
    pub(super) name: String,
    calls: AtomicUsize,
    /// Answers with this error instead, if set.
    pub(super) fails_with: Mutex<Option<RpcError>>,
}

impl MockServer {
    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The connection to one mock server. Retiring it ends its calls in flight as lost and
/// refuses later ones, as `RpcClient::retire` does.
#[derive(Debug, Clone)]
pub(super) struct MockConnection {
    server: Arc<MockServer>,
    retired: CancellationToken,
}

pub(super) fn millis(message: &OutgoingMessage) -> u64 {
    match message {
        OutgoingMessage::Payload(bytes) if !bytes.is_empty() => std::str::from_utf8(bytes).unwrap().parse().unwrap(),
        _ => 0,
    }
}

impl MockConnection {
    /// One call: waits `millis`, bounded by the deadline and by retirement.
    pub(super) async fn run(&self, millis: u64, deadline: Deadline) -> Result<Payload, RpcError> {
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
    async fn unary(
        &self,
        _: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        _: Instant,
        _: bool,
        _: &CallMetadata,
    ) -> Result<Payload, RpcError> {
        self.run(millis(&message), deadline).await
    }

    async fn server_streaming(
        &self,
        _: &str,
        message: OutgoingMessage,
        deadline: Deadline,
        _: Instant,
        _: &CallMetadata,
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
        _: &CallMetadata,
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
        _: &CallMetadata,
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
pub(super) struct MockConnector {
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
pub(super) struct Cluster {
    pub(super) servers: Vec<Arc<MockServer>>,
    pub(super) endpoints: Vec<Endpoint>,
}

impl Cluster {
    pub(super) fn new(names: &[&str]) -> Self {
        let servers: Vec<Arc<MockServer>> = names
            .iter()
            .map(|name| {
                Arc::new(MockServer {
                    name: (*name).to_owned(),
                    calls: AtomicUsize::new(0),
                    fails_with: Mutex::new(None),
                })
            })
            .collect();
        let endpoints = names
            .iter()
            .enumerate()
            .map(|(i, name)| Endpoint::new(*name, format!("10.0.0.{}:7000", i + 1).parse().unwrap()).with_label(*name))
            .collect();
        Self { servers, endpoints }
    }

    pub(super) fn connector(&self, refused: &[&str]) -> MockConnector {
        let servers = self.endpoints.iter().zip(&self.servers).map(|(e, s)| (e.addr(), s.clone())).collect();
        let refused = self.endpoints.iter().filter(|e| refused.contains(&e.id())).map(Endpoint::addr).collect();
        MockConnector { servers, refused, connects: AtomicUsize::new(0) }
    }

    pub(super) fn server(&self, name: &str) -> &MockServer {
        self.servers.iter().find(|s| s.name == name).expect("a server of that name")
    }

    /// A channel over every endpoint, connected as `ClientBuilder::connect` does.
    pub(super) async fn channel(&self, balancer: impl Balancer, policy: Policy) -> Arc<Balanced<MockConnector>> {
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
pub(super) fn work(millis: u64) -> OutgoingMessage {
    OutgoingMessage::Payload(Bytes::from(millis.to_string()))
}

pub(super) fn name(payload: Payload) -> String {
    String::from_utf8(payload.into_bytes().to_vec()).unwrap()
}

pub(super) fn capped(calls: u32, queue: bool) -> Policy {
    Policy { max_in_flight: Some(calls), queue, ..Policy::default() }
}

pub(super) fn in_flight(balanced: &Balanced<MockConnector>) -> u32 {
    balanced.endpoint_stats().iter().map(|s| s.in_flight).sum()
}

/// Spawns a call that takes `millis`, and lets it start.
pub(super) async fn spawn_work(
    balanced: &Arc<Balanced<MockConnector>>,
    millis: u64,
) -> tokio::task::JoinHandle<Result<String, RpcError>> {
    let balanced = balanced.clone();
    let call = tokio::spawn(async move {
        balanced.unary("Work.run", MethodPolicy::new(), work(millis), &CallOptions::new()).await.map(name)
    });
    tokio::task::yield_now().await;
    call
}

/// A source of endpoints whose set and health the test changes.
pub(super) struct Source {
    endpoints: watch::Sender<Arc<Vec<Endpoint>>>,
    suspects: Mutex<Vec<String>>,
}

impl Source {
    pub(super) fn new(endpoints: Vec<Endpoint>) -> Arc<Self> {
        Arc::new(Self { endpoints: watch::Sender::new(Arc::new(endpoints)), suspects: Mutex::new(Vec::new()) })
    }

    pub(super) fn publish(&self, endpoints: Vec<Endpoint>) {
        self.endpoints.send_replace(Arc::new(endpoints));
    }

    pub(super) fn suspect(&self, label: &str) {
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
pub(super) struct PreferB;

impl Balancer for PreferB {
    fn pick(&self, endpoints: &[Endpoint], _: &CallInfo<'_>) -> Option<usize> {
        Some(endpoints.iter().position(|e| e.label() == "b").unwrap_or(0))
    }
}

pub(super) fn following(
    cluster: &Cluster,
    source: &Arc<Source>,
    balancer: impl Balancer,
    policy: Policy,
) -> Arc<Balanced<MockConnector>> {
    let source: Arc<dyn EndpointSource> = source.clone();
    let balanced = Balanced::new(Arc::new(balancer), cluster.connector(&[]), Vec::new(), policy, None, Some(source));
    balanced.endpoints.follow();
    Arc::new(balanced)
}

/// Lets the channel's task that follows its source take the latest set.
pub(super) async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}
