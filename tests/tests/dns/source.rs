//! `DnsSource` over the test's DNS server: endpoints appear and leave with the A records,
//! keep their identity, survive failures (no records, the server stopped) with the failure
//! counted, follow a TTL shorter than the refresh interval, come from SRV records with
//! their ports, feed a balanced typed client, and stop with their last handle.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use tracing::Level;

use hickory_server::proto::rr::RecordType;
use rpcnet::discovery::{DnsSource, DnsTarget, resolve_once};
use rpcnet::{EndpointSource, LoadBalancingStrategy, RpcConfig, RpcServer, ServerHandle, rpc_service};

use super::zone::TestDns;
use super::{Logged, PATIENCE, addrs, failures, failures_above, resolver, set_becomes};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A source following `target` on `dns`, refreshing every 100 ms, tagged `role=worker`.
fn follow(dns: &TestDns, target: &str) -> DnsSource {
    DnsSource::builder(target.parse().unwrap())
        .resolver(resolver(dns))
        .refresh_interval(Duration::from_millis(100))
        .min_refresh(Duration::from_millis(50))
        .tag("role", "worker")
        .build()
        .unwrap()
}

#[tokio::test]
async fn endpoints_appear_and_leave_as_the_records_change_and_keep_their_identity() {
    rpcnet_tests::subscribe();
    let dns = TestDns::start().await;
    dns.set_addresses("workers", &[ip("127.0.0.1"), ip("127.0.0.2")], 60).await;
    let source = follow(&dns, "dns:workers.rpcnet.test.:7946");
    let mut endpoints = source.endpoints();
    let first = set_becomes(&mut endpoints, &["127.0.0.1:7946", "127.0.0.2:7946"]).await;
    for endpoint in first.iter() {
        assert_eq!(endpoint.id(), endpoint.addr().to_string(), "an endpoint's id is its address");
        assert_eq!(endpoint.tag("role"), Some("worker"), "the source's tags are on every endpoint");
    }

    dns.set_addresses("workers", &[ip("127.0.0.1"), ip("127.0.0.2"), ip("::1")], 60).await;
    let grown = set_becomes(&mut endpoints, &["127.0.0.1:7946", "127.0.0.2:7946", "[::1]:7946"]).await;
    let kept =
        |set: &[rpcnet::Endpoint], addr: &str| set.iter().find(|e| e.addr().to_string() == addr).unwrap().clone();
    assert!(
        kept(&grown, "127.0.0.1:7946").same(&kept(&first, "127.0.0.1:7946")),
        "an address still in the records keeps its endpoint (and its counters and connection)"
    );

    dns.set_addresses("workers", &[ip("127.0.0.2"), ip("::1")], 60).await;
    set_becomes(&mut endpoints, &["127.0.0.2:7946", "[::1]:7946"]).await;
}

#[tokio::test]
async fn a_failure_keeps_the_last_good_set_counts_it_and_recovery_republishes() {
    let (logged, _capture) = Logged::capture();
    failures(""); // the recorder, before the source makes its counter
    let target = "dns:failing.rpcnet.test.:7000";
    let mut dns = TestDns::start().await;
    dns.set_addresses("failing", &[ip("127.0.0.1"), ip("127.0.0.2")], 60).await;
    let source = follow(&dns, target);
    let mut endpoints = source.endpoints();
    set_becomes(&mut endpoints, &["127.0.0.1:7000", "127.0.0.2:7000"]).await;
    assert_eq!(failures(target), 0);

    // An answer with no records.
    dns.remove("failing", RecordType::A).await;
    let counted = failures_above(target, 0).await;
    assert_eq!(addrs(&source.endpoints_now()), ["127.0.0.1:7000", "127.0.0.2:7000"], "the last good set stays");

    // No answer at all, attempt after attempt.
    dns.stop().await;
    let stopped = failures_above(target, counted).await;
    let streak = failures_above(target, stopped).await;
    assert!(streak >= 3, "every failed attempt counts: {streak}");
    assert_eq!(addrs(&source.endpoints_now()), ["127.0.0.1:7000", "127.0.0.2:7000"], "the last good set stays");
    assert!(!endpoints.has_changed().unwrap(), "nothing was published while failing");
    assert_eq!(logged.count(Level::WARN, "DNS resolution failed"), 1, "one warning for the whole streak");

    dns.set_addresses("failing", &[ip("127.0.0.3")], 60).await;
    dns.restart().await;
    set_becomes(&mut endpoints, &["127.0.0.3:7000"]).await;
    assert_eq!(logged.count(Level::INFO, "resolves again"), 1, "the recovery is logged");
}

#[tokio::test]
async fn a_ttl_shorter_than_the_refresh_interval_drives_the_refresh() {
    rpcnet_tests::subscribe();
    let dns = TestDns::start().await;
    dns.set_addresses("short", &[ip("127.0.0.1")], 1).await;
    let source = DnsSource::builder("dns:short.rpcnet.test.:80".parse().unwrap())
        .resolver(resolver(&dns))
        .refresh_interval(Duration::from_secs(3600))
        .min_refresh(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut endpoints = source.endpoints();
    set_becomes(&mut endpoints, &["127.0.0.1:80"]).await;
    // With an hour between refreshes, only the records' 1 s TTL can bring the change in time.
    dns.set_addresses("short", &[ip("127.0.0.9")], 1).await;
    set_becomes(&mut endpoints, &["127.0.0.9:80"]).await;
}

#[tokio::test]
async fn srv_records_give_each_host_its_port() {
    rpcnet_tests::subscribe();
    let dns = TestDns::start().await;
    dns.set_addresses("a", &[ip("127.0.0.1")], 60).await;
    dns.set_addresses("b", &[ip("127.0.0.2"), ip("127.0.0.3")], 60).await;
    dns.set_srv("_rpc._udp.svc", &[(7001, "a"), (7002, "b")], 60).await;
    let target = "dns+srv:_rpc._udp.svc.rpcnet.test.";

    let once = resolve_once(&target.parse::<DnsTarget>().unwrap(), &resolver(&dns)).await.unwrap();
    let once: Vec<String> = once.addrs.iter().map(ToString::to_string).collect();
    assert_eq!(once, ["127.0.0.1:7001", "127.0.0.2:7002", "127.0.0.3:7002"], "resolve_once, for seeds");

    let source = follow(&dns, target);
    let mut endpoints = source.endpoints();
    set_becomes(&mut endpoints, &["127.0.0.1:7001", "127.0.0.2:7002", "127.0.0.3:7002"]).await;
    dns.set_srv("_rpc._udp.svc", &[(7005, "a")], 60).await;
    set_becomes(&mut endpoints, &["127.0.0.1:7005"]).await;
}

#[tokio::test]
async fn the_task_stops_when_the_last_handle_is_dropped() {
    let dns = TestDns::start().await;
    dns.set_addresses("gone", &[ip("127.0.0.1")], 60).await;
    let source = follow(&dns, "dns:gone.rpcnet.test.:1");
    let mut endpoints = source.endpoints();
    set_becomes(&mut endpoints, &["127.0.0.1:1"]).await;
    let clone = source.clone();
    drop(source);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), endpoints.changed()).await.is_err(),
        "a clone still keeps it running"
    );
    drop(clone);
    // The task owns the sending half: once it ends, `changed` reports the sender gone.
    let ended = tokio::time::timeout(PATIENCE, async { while endpoints.changed().await.is_ok() {} }).await;
    assert!(ended.is_ok(), "the task still runs after its last handle was dropped");
}

#[rpc_service]
pub trait Whoami {
    async fn name(&self) -> String;
}

struct Named(String);

impl Whoami for Named {
    async fn name(&self) -> String {
        self.0.clone()
    }
}

fn start(name: &str) -> (std::net::SocketAddr, ServerHandle) {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(WhoamiServer::new(Named(name.to_owned())));
    server.spawn().unwrap()
}

/// The names that answer `calls` calls.
async fn answering(client: &WhoamiClient, calls: usize) -> HashSet<String> {
    let mut names = HashSet::new();
    for _ in 0..calls {
        names.insert(client.name().await.unwrap());
    }
    names
}

/// SRV records publish the two servers: they share 127.0.0.1 and differ by port, which A
/// records cannot say.
#[tokio::test]
async fn a_balanced_client_calls_the_servers_that_dns_publishes() {
    rpcnet_tests::subscribe();
    let (alpha, _alpha) = start("alpha");
    let (beta, _beta) = start("beta");
    let dns = TestDns::start().await;
    dns.set_addresses("host", &[ip("127.0.0.1")], 60).await;
    dns.set_srv("_rpc._udp.whoami", &[(alpha.port(), "host")], 60).await;
    let source = follow(&dns, "dns+srv:_rpc._udp.whoami.rpcnet.test.");
    let mut endpoints = source.endpoints();
    set_becomes(&mut endpoints, &[&alpha.to_string()]).await;
    let client = WhoamiClient::builder()
        .registry(source.clone())
        .filter("role=worker")
        .strategy(LoadBalancingStrategy::RoundRobin)
        .dev()
        .connect()
        .await
        .unwrap();
    assert_eq!(answering(&client, 4).await, HashSet::from(["alpha".to_owned()]));

    dns.set_srv("_rpc._udp.whoami", &[(alpha.port(), "host"), (beta.port(), "host")], 60).await;
    let mut both = [alpha.to_string(), beta.to_string()];
    both.sort();
    set_becomes(&mut endpoints, &[&both[0], &both[1]]).await;
    let all = HashSet::from(["alpha".to_owned(), "beta".to_owned()]);
    let seen = tokio::time::timeout(PATIENCE, async {
        loop {
            if answering(&client, 4).await == all {
                break;
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "beta, once in DNS, gets calls too");

    dns.set_srv("_rpc._udp.whoami", &[(beta.port(), "host")], 60).await;
    set_becomes(&mut endpoints, &[&beta.to_string()]).await;
    let only_beta = tokio::time::timeout(PATIENCE, async {
        while answering(&client, 4).await != HashSet::from(["beta".to_owned()]) {}
    })
    .await;
    assert!(only_beta.is_ok(), "alpha, gone from DNS, gets no more calls");
}
