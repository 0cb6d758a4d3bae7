//! Clusters on real loopback sockets: gossip discovery, tags, events, graceful leaves and
//! failures, the wrong credential, worker registries and cluster clients, and failover of a
//! typed cluster client when a worker is killed under load and restarted.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rpcnet::cluster::{
    ClusterClient, ClusterClientConfig, ClusterConfig, ClusterEvent, ClusterEvents, ClusterKey, ClusterMembership,
    Keyring, LoadBalancingStrategy, NodeRegistry, NodeState, PartitionDetector, WorkerRegistry,
};
use rpcnet::codec::{BincodeCodec, Codec};
use rpcnet::{RpcConfig, RpcError, RpcServer, rpc_service};

#[rpc_service]
pub trait Work {
    /// The worker's name, after `millis` of work; safe to repeat.
    #[rpc(idempotent)]
    async fn read(&self, millis: u64) -> String;
}

struct Named {
    name: String,
    calls: Arc<AtomicUsize>,
}

impl Work for Named {
    async fn read(&self, millis: u64) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.name.clone()
    }
}

/// A worker process, simulated by a runtime of its own: killing it drops every task and
/// closes its sockets at once, as a crash would.
struct Worker {
    rpc_addr: SocketAddr,
    gossip_addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    /// Its membership, to set tags or listen to events from the test (the handle works from
    /// any runtime; the membership runs in the worker's).
    cluster: ClusterMembership,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Worker {
    /// Starts a worker serving `Work` and gossiping in the cluster of `secret`, on the given
    /// addresses (port 0: any).
    fn start(
        secret: &str,
        name: &str,
        rpc: SocketAddr,
        gossip: SocketAddr,
        seeds: Vec<SocketAddr>,
        tags: &[(&str, &str)],
    ) -> Self {
        rpcnet_tests::subscribe();
        let secret = secret.to_owned();
        let name = name.to_owned();
        let tags: Vec<(String, String)> = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
            let calls = Arc::new(AtomicUsize::new(0));
            let (rpc_addr, gossip_addr, handle) = runtime.block_on(async {
                // A restarted worker takes its old ports back: they free up once the dead
                // runtime has dropped its sockets.
                let (rpc_addr, cluster) = retry_bind(|| async {
                    let mut server = RpcServer::new(RpcConfig::dev(rpc.to_string()));
                    server.add_service(WorkServer::new(Named { name: name.clone(), calls: calls.clone() }));
                    let (rpc_addr, _shutdown) = server.spawn()?;
                    let mut config = ClusterConfig::default()
                        .with_secret(&secret)
                        .with_bind_addr(gossip)
                        .with_name(name.clone())
                        .with_rpc_addr(rpc_addr)
                        .with_seeds(seeds.clone());
                    for (key, value) in &tags {
                        config = config.with_tag(key.clone(), value.clone());
                    }
                    Ok((rpc_addr, ClusterMembership::new(config).await?))
                })
                .await;
                let (gossip_addr, handle) = (cluster.gossip_addr(), cluster.clone());
                tokio::spawn(async move {
                    let _alive_until_killed = cluster;
                    std::future::pending::<()>().await
                });
                (rpc_addr, gossip_addr, handle)
            });
            Worker { rpc_addr, gossip_addr, calls, cluster: handle, runtime: Some(runtime) }
        })
        .join()
        .expect("worker thread")
    }

    /// Crashes the worker: its tasks stop and its sockets close without a word to anyone.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn retry_bind<T, F, Fut>(mut bind: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RpcError>>,
{
    for _ in 0..50 {
        match bind().await {
            Ok(value) => return value,
            Err(err) => tracing::debug!(%err, "address still in use, retrying"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not bind within 5 s");
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A member of the cluster of `secret` that serves nothing: the client side of a cluster.
/// Each test has a secret of its own, so that its clusters never meet another test's
/// (whose nodes may gossip to a port that this test reuses).
async fn member(secret: &str, name: &str, seeds: Vec<SocketAddr>) -> ClusterMembership {
    rpcnet_tests::subscribe();
    let config = ClusterConfig::default().with_secret(secret).with_name(name).with_seeds(seeds);
    ClusterMembership::new(config).await.unwrap()
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `limit`.
async fn eventually(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within {limit:?}");
}

/// Waits for the first event that `matches`, for at most `limit`.
async fn wait_for(events: &mut ClusterEvents, limit: Duration, mut matches: impl FnMut(&ClusterEvent) -> bool) -> bool {
    tokio::time::timeout(limit, async {
        while let Some(event) = events.recv().await {
            if matches(&event) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

fn names(cluster: &ClusterMembership, state: NodeState) -> Vec<String> {
    let mut names: Vec<String> =
        cluster.nodes().into_iter().filter(|n| n.state == state).map(|n| n.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_find_each_other_share_tags_and_tell_leaving_from_failing() {
    let secret = "members_find_each_other_share_tags_and_tell_leaving_from_failing";
    let seed = member(secret, "n0", vec![]).await;
    let mut seed_events = seed.subscribe();
    let mut others = Vec::new();
    for i in 1..5 {
        others.push(member(secret, &format!("n{i}"), vec![seed.gossip_addr()]).await);
    }
    eventually(Duration::from_secs(15), "5 members see each other", async || {
        std::iter::once(&seed).chain(&others).all(|m| names(m, NodeState::Alive).len() == 4)
    })
    .await;
    assert!(
        wait_for(
            &mut seed_events,
            Duration::from_secs(1),
            |e| matches!(e, ClusterEvent::NodeJoined(n) if n.name == "n4")
        )
        .await,
        "the seed saw n4 join"
    );

    others[0].set_tag("zone", "eu-1");
    assert_eq!(others[0].get_tag("zone").as_deref(), Some("eu-1"));
    let updated = wait_for(
        &mut seed_events,
        Duration::from_secs(5),
        |e| matches!(e, ClusterEvent::NodeTagsUpdated(n) if n.name == "n1" && n.tag("zone") == Some("eu-1")),
    )
    .await;
    assert!(updated, "a tag change reaches the others");
    eventually(Duration::from_secs(5), "everyone knows n1's zone", async || {
        std::iter::once(&seed)
            .chain(&others[1..])
            .all(|m| m.nodes().iter().any(|n| n.name == "n1" && n.tag("zone") == Some("eu-1")))
    })
    .await;
    others[0].remove_tag("zone");
    eventually(Duration::from_secs(5), "the removal spreads", async || {
        seed.nodes().iter().any(|n| n.name == "n1" && n.tag("zone").is_none())
    })
    .await;

    // A graceful leave is a departure, a silent stop is a failure.
    let leaving = others.remove(0);
    leaving.leave().await.unwrap();
    assert!(
        wait_for(
            &mut seed_events,
            Duration::from_secs(5),
            |e| matches!(e, ClusterEvent::NodeLeft(n) if n.name == "n1")
        )
        .await,
        "the seed saw n1 leave"
    );
    let failing = others.remove(0);
    failing.shutdown();
    let mut failed = false;
    let seen = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = seed_events.recv().await {
            match event {
                ClusterEvent::NodeFailed(n) if n.name == "n2" => return true,
                ClusterEvent::NodeFailed(n) if n.name == "n1" => failed = true,
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(seen, "the seed saw n2 fail");
    assert!(!failed, "a member that left is never reported failed");
    assert_eq!(names(&seed, NodeState::Left), ["n1"]);
    assert_eq!(names(&seed, NodeState::Failed), ["n2"]);
    assert_eq!(names(&seed, NodeState::Alive), ["n3", "n4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_secret_can_neither_join_nor_read_nor_inject() {
    let secret = "a_node_with_the_wrong_secret_can_neither_join_nor_read_nor_inject";
    let a = member(secret, "a", vec![]).await;
    let b = member(secret, "b", vec![a.gossip_addr()]).await;
    eventually(Duration::from_secs(10), "a and b see each other", async || names(&a, NodeState::Alive) == ["b"]).await;

    // Join: an intruder with another secret, seeded with a real member.
    let intruder = ClusterMembership::new(
        ClusterConfig::default()
            .with_secret("not the cluster's secret")
            .with_name("intruder")
            .with_seeds([a.gossip_addr()]),
    )
    .await
    .unwrap();
    // Read: a member that is told to join the intruder sends it sealed datagrams, which it
    // cannot open; and a plain socket shows that nothing travels in clear.
    b.join(vec![intruder.gossip_addr()]).await.unwrap();
    let eavesdropper = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    b.join(vec![eavesdropper.local_addr().unwrap()]).await.unwrap();
    let mut datagram = vec![0u8; 2048];
    let (len, from) =
        tokio::time::timeout(Duration::from_secs(5), eavesdropper.recv_from(&mut datagram)).await.unwrap().unwrap();
    let datagram = datagram[..len].to_vec();
    assert_eq!(from, b.gossip_addr());
    for secret in [b"127.0.0.1".as_slice(), b"b", a.gossip_addr().to_string().as_bytes()] {
        assert!(
            secret.len() < 2 || !datagram.windows(secret.len()).any(|w| w == secret),
            "a gossip datagram shows {:?} in clear",
            String::from_utf8_lossy(secret)
        );
    }
    // Inject: garbage, and a replay of the genuine datagram, sent to a member.
    let rejected_before = a.gossip_stats().rejected;
    eavesdropper.send_to(b"\x01forged membership update", a.gossip_addr()).await.unwrap();
    eavesdropper.send_to(&datagram, a.gossip_addr()).await.unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(intruder.nodes().is_empty(), "the intruder learned of {:?}", intruder.nodes());
    assert!(intruder.gossip_stats().rejected > 0, "the intruder cannot open what a member sent it");
    for m in [&a, &b] {
        assert!(!m.nodes().iter().any(|n| n.name == "intruder"), "a member admitted the intruder");
        assert_eq!(m.nodes().len(), 1, "a member knows only the other: {:?}", m.nodes());
    }
    assert!(
        a.gossip_stats().rejected >= rejected_before + 2,
        "the forged and the replayed datagrams are refused: {:?}",
        a.gossip_stats()
    );
    assert_eq!(names(&a, NodeState::Alive), ["b"], "nothing injected changed the membership");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_select_workers_by_tag_and_cluster_clients_call_them() {
    let secret = "registries_select_workers_by_tag_and_cluster_clients_call_them";
    let seed = member(secret, "client", vec![]).await;
    let worker = |name: &str, tags: &[(&str, &str)]| {
        Worker::start(secret, name, any_port(), any_port(), vec![seed.gossip_addr()], tags)
    };
    let workers = [
        worker("w-eu", &[("role", "worker"), ("zone", "eu-1")]),
        worker("w-us", &[("role", "worker"), ("zone", "us-1")]),
        worker("db", &[("role", "storage"), ("zone", "eu-1")]),
    ];
    let registry = Arc::new(WorkerRegistry::new(seed.clone(), LoadBalancingStrategy::RoundRobin));
    registry.start().await;
    eventually(Duration::from_secs(15), "three workers", async || registry.worker_count().await == 3).await;
    assert_eq!(registry.strategy(), &LoadBalancingStrategy::RoundRobin);

    let picked = registry.select_worker(Some("role=worker,zone=eu-1")).await.unwrap();
    assert_eq!((picked.label.as_str(), picked.addr), ("w-eu", workers[0].rpc_addr));
    assert_eq!(picked.tags.get("zone").map(String::as_str), Some("eu-1"));
    assert_eq!((picked.capacity, picked.active_connections, picked.suspect), (1, 0, false));
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..4 {
        seen.push(registry.select_worker(Some("role=worker")).await.unwrap().label);
    }
    seen.sort();
    assert_eq!(seen, ["w-eu", "w-eu", "w-us", "w-us"], "round robin over the two workers");
    assert_eq!(registry.select_worker(Some("zone!=eu-1")).await.unwrap().label, "w-us");
    assert_eq!(registry.select_worker(Some("role,zone=us-1")).await.unwrap().label, "w-us");
    match registry.select_worker(Some("role=gpu")).await {
        Err(RpcError::NoEndpointAvailable { filter, known, .. }) => {
            assert_eq!((filter.as_deref(), known), (Some("role=gpu"), 3));
        }
        other => panic!("expected NoEndpointAvailable, got {other:?}"),
    }
    let malformed = registry.select_worker(Some("role==worker")).await.unwrap_err();
    assert!(matches!(malformed, RpcError::Config(_)), "{malformed:?}");
    assert!(malformed.to_string().contains("role==worker"), "the error quotes the filter: {malformed}");

    // Raw-bytes calls through the cluster client, encoding `read(0)` as the typed client would.
    let client = ClusterClient::new(registry.clone(), ClusterClientConfig::default());
    let codec = BincodeCodec::new();
    let request = codec.encode(&0u64).unwrap();
    let reply = client.call_worker(WorkClient::METHOD_READ, request.clone(), Some("role=storage")).await.unwrap();
    assert_eq!(codec.decode::<String>(&reply).unwrap(), "db");
    let all = client.call_all_workers(WorkClient::METHOD_READ, request.clone(), Some("zone=eu-1")).await.unwrap();
    let mut answers: Vec<String> =
        all.into_iter().map(|(_, reply)| codec.decode::<String>(&reply.unwrap()).unwrap()).collect();
    answers.sort();
    assert_eq!(answers, ["db", "w-eu"]);
    let err = client.call_worker("Work.missing", request, Some("role=worker")).await.unwrap_err();
    assert!(matches!(err, RpcError::UnknownMethod(_)), "{err:?}");
    assert!(workers.iter().all(|w| w.calls.load(Ordering::SeqCst) <= 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_learns_how_many_events_it_missed() {
    let secret = "a_lagging_subscriber_learns_how_many_events_it_missed";
    let seed =
        ClusterMembership::new(ClusterConfig::default().with_secret(secret).with_name("seed").with_event_capacity(2))
            .await
            .unwrap();
    let mut lagging = seed.subscribe();
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(member(secret, &format!("m{i}"), vec![seed.gossip_addr()]).await);
    }
    eventually(Duration::from_secs(15), "four joins", async || names(&seed, NodeState::Alive).len() == 4).await;
    match lagging.recv().await {
        Some(ClusterEvent::Lagged { missed }) => assert!(missed >= 2, "missed {missed}"),
        other => panic!("expected Lagged first, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_clusters_workers_do_not_become_suspect() {
    let secret = "an_idle_clusters_workers_do_not_become_suspect";
    let seed = member(secret, "client", vec![]).await;
    let _workers: Vec<Worker> = ["w1", "w2", "w3"]
        .iter()
        .map(|name| {
            Worker::start(secret, name, any_port(), any_port(), vec![seed.gossip_addr()], &[("role", "worker")])
        })
        .collect();
    let registry = Arc::new(WorkerRegistry::new(seed.clone(), LoadBalancingStrategy::RoundRobin));
    registry.start().await;
    eventually(Duration::from_secs(15), "three workers", async || registry.worker_count().await == 3).await;
    let client = WorkClient::builder().registry(registry.clone()).connect().await.unwrap();
    // A burst of calls to every worker, then none: answers stop coming, pings go on.
    for _ in 0..90 {
        client.read(0).await.unwrap();
    }
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        for worker in registry.workers().await {
            assert!(
                worker.is_healthy(),
                "{} looks suspect {:?} into the idle period (φ {:?}): idle is not late",
                worker.label,
                idle.elapsed(),
                seed.phi(worker.id)
            );
        }
    }
    for worker in registry.workers().await {
        let phi = seed.phi(worker.id);
        assert!(
            phi.is_some_and(|phi| phi < seed.phi_threshold()),
            "pings keep {}'s φ low while no call goes to it: {phi:?}",
            worker.label
        );
    }
    assert!(client.endpoint_stats().iter().all(|s| !s.suspect), "{:?}", client.endpoint_stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_change_keeps_the_worker_its_calls_in_flight_and_its_counters() {
    let secret = "a_tag_change_keeps_the_worker_its_calls_in_flight_and_its_counters";
    let seed = member(secret, "client", vec![]).await;
    let worker = Worker::start(
        secret,
        "w1",
        any_port(),
        any_port(),
        vec![seed.gossip_addr()],
        &[("role", "worker"), ("label", "alpha")],
    );
    let registry = Arc::new(WorkerRegistry::new(seed.clone(), LoadBalancingStrategy::RoundRobin));
    registry.start().await;
    eventually(Duration::from_secs(15), "the worker", async || registry.worker_count().await == 1).await;
    assert_eq!(registry.workers().await[0].label, "alpha", "the `label` tag names the worker, as in the book");
    let client = WorkClient::builder().registry(registry.clone()).filter("role=worker").connect().await.unwrap();
    for _ in 0..5 {
        assert_eq!(client.read(0).await.unwrap(), "w1");
    }
    // An idempotent call is in flight when the worker changes a tag: were the change a
    // departure, the call would be cancelled and made again.
    let (read, ()) = tokio::join!(client.read(1_000), async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        worker.cluster.set_tag("zone", "eu-2");
        eventually(Duration::from_secs(5), "the client's registry sees the new tag", async || {
            registry.workers().await.iter().any(|w| w.tags.get("zone").map(String::as_str) == Some("eu-2"))
        })
        .await;
    });
    assert_eq!(read.unwrap(), "w1");
    assert_eq!(worker.calls.load(Ordering::SeqCst), 6, "the call in flight ran once");
    let stats = client.endpoint_stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0].tags.get("zone").map(String::as_str), Some("eu-2"), "the endpoint has the new tags");
    assert_eq!(stats[0].successes, 6, "and the counters from before the change: {stats:?}");
    worker.cluster.set_tag("label", "beta");
    eventually(Duration::from_secs(5), "the new label", async || registry.workers().await[0].label == "beta").await;
}

/// A worker of raw methods `jobs.read` and `jobs.write` (each sleeps `u64` ms, then
/// answers its name), whose RPC server the test can stop while its membership lives on.
struct RawWorker {
    cluster: ClusterMembership,
    shutdown: rpcnet::ShutdownHandle,
    calls: Arc<AtomicUsize>,
}

async fn raw_worker(secret: &str, name: &str, seed: SocketAddr) -> RawWorker {
    let calls = Arc::new(AtomicUsize::new(0));
    let config = RpcConfig::dev("127.0.0.1:0").with_shutdown_grace_period(Duration::from_millis(50));
    let mut server = RpcServer::new(config);
    for method in ["jobs.read", "jobs.write"] {
        let (calls, name) = (calls.clone(), name.to_owned());
        server
            .register(method, move |request| {
                let (calls, name) = (calls.clone(), name.clone());
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let millis = u64::from_le_bytes(request.try_into().unwrap_or_default());
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    Ok(name.into_bytes())
                }
            })
            .await;
    }
    let (addr, shutdown) = server.spawn().unwrap();
    let config = ClusterConfig::default()
        .with_secret(secret)
        .with_name(name)
        .with_rpc_addr(addr)
        .with_seeds([seed])
        .with_tag("role", "worker");
    RawWorker { cluster: ClusterMembership::new(config).await.unwrap(), shutdown, calls }
}

/// Starts `method` (1 s of work) and stops the RPC server of the worker that runs it.
async fn call_and_stop_its_worker(
    client: &ClusterClient,
    workers: &[RawWorker],
    method: &str,
) -> (Result<Vec<u8>, RpcError>, usize) {
    let call = client.call_worker(method, 1_000u64.to_le_bytes().to_vec(), Some("role=worker"));
    let before: Vec<usize> = workers.iter().map(|w| w.calls.load(Ordering::SeqCst)).collect();
    let stop = async {
        for _ in 0..200 {
            if let Some(i) = workers.iter().zip(&before).position(|(w, &b)| w.calls.load(Ordering::SeqCst) > b) {
                workers[i].shutdown.shutdown().await;
                return i;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no worker started {method}");
    };
    tokio::join!(call, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_client_repeats_only_the_methods_marked_idempotent() {
    let secret = "a_cluster_client_repeats_only_the_methods_marked_idempotent";
    let seed = member(secret, "client", vec![]).await;
    let mut workers = Vec::new();
    for name in ["a", "b", "c"] {
        workers.push(raw_worker(secret, name, seed.gossip_addr()).await);
    }
    let registry = Arc::new(WorkerRegistry::new(seed.clone(), LoadBalancingStrategy::RoundRobin));
    registry.start().await;
    eventually(Duration::from_secs(15), "three workers", async || registry.worker_count().await == 3).await;
    let config = ClusterClientConfig::default()
        .with_rpc_config(RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_millis(300)))
        .with_idempotent_methods(["jobs.read"]);
    assert!(config.is_idempotent("jobs.read") && !config.is_idempotent("jobs.write"));
    let client = ClusterClient::new(registry.clone(), config);

    let (read, stopped) = call_and_stop_its_worker(&client, &workers, "jobs.read").await;
    let total: usize = workers.iter().map(|w| w.calls.load(Ordering::SeqCst)).sum();
    assert!(read.is_ok(), "a read whose worker stopped mid-call is repeated elsewhere: {read:?}");
    assert_eq!(total, 2, "it ran on the stopped worker, then once more on another");
    assert_ne!(String::from_utf8(read.unwrap()).unwrap(), ["a", "b", "c"][stopped]);

    let before: Vec<usize> = workers.iter().map(|w| w.calls.load(Ordering::SeqCst)).collect();
    let (write, stopped_too) = call_and_stop_its_worker(&client, &workers, "jobs.write").await;
    assert_ne!(stopped, stopped_too, "the write ran on a worker whose server was still up");
    assert!(matches!(write, Err(RpcError::ConnectionLost(_))), "a write is not repeated: {write:?}");
    let after: Vec<usize> = workers.iter().map(|w| w.calls.load(Ordering::SeqCst)).collect();
    let ran: usize = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    assert_eq!(ran, 1, "the write ran once, on the worker that stopped");
    for worker in &workers {
        worker.cluster.shutdown();
    }
}

fn sorted_names(nodes: &[rpcnet::cluster::NodeInfo]) -> Vec<String> {
    let mut names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_registry_lists_every_member_with_its_state_and_tags() {
    let secret = "the_node_registry_lists_every_member_with_its_state_and_tags";
    let a = member(secret, "a", vec![]).await;
    let tagged = |name: &str, zone: &str| {
        ClusterConfig::default()
            .with_secret(secret)
            .with_name(name)
            .with_seeds([a.gossip_addr()])
            .with_tag("role", "worker")
            .with_tag("zone", zone)
    };
    let b = ClusterMembership::new(tagged("b", "eu-1")).await.unwrap();
    let c = ClusterMembership::new(tagged("c", "us-1")).await.unwrap();
    let d = member(secret, "d", vec![a.gossip_addr()]).await;
    let registry = Arc::new(NodeRegistry::new(a.clone()));
    registry.start().await;
    let mut events = registry.subscribe();
    eventually(Duration::from_secs(15), "three members, with their tags", async || {
        registry.node_count().await == 3 && registry.nodes_with_tag("zone").await.len() == 2
    })
    .await;
    assert_eq!(sorted_names(&registry.nodes().await), ["b", "c", "d"]);
    assert_eq!(sorted_names(&registry.live_nodes().await), ["b", "c", "d"]);
    assert_eq!(sorted_names(&registry.nodes_with_tag("role").await), ["b", "c"]);
    assert_eq!(sorted_names(&registry.nodes_matching("role=worker,zone=eu-1").await.unwrap()), ["b"]);
    assert_eq!(sorted_names(&registry.nodes_matching("zone!=eu-1").await.unwrap()), ["c", "d"]);
    let malformed = registry.nodes_matching("zone=").await.unwrap_err();
    assert!(matches!(malformed, RpcError::Config(_)) && malformed.to_string().contains("zone="), "{malformed}");

    c.shutdown();
    assert!(
        wait_for(&mut events, Duration::from_secs(15), |e| matches!(e, ClusterEvent::NodeFailed(n) if n.name == "c"))
            .await,
        "the registry's subscription sees c fail"
    );
    eventually(Duration::from_secs(2), "the cached list follows", async || {
        registry.nodes().await.iter().any(|n| n.name == "c" && n.state == NodeState::Failed)
    })
    .await;
    assert_eq!(registry.node_count().await, 3, "a failed member is still listed, as failed");
    assert_eq!(sorted_names(&registry.live_nodes().await), ["b", "d"]);
    assert_eq!(sorted_names(&registry.nodes_matching("role=worker").await.unwrap()), ["b"]);
    for m in [&a, &b, &d] {
        m.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partition_detector_tells_a_lone_survivor_it_is_the_minority() {
    let secret = "the_partition_detector_tells_a_lone_survivor_it_is_the_minority";
    let config = ClusterConfig::default()
        .with_secret(secret)
        .with_name("a")
        .with_partition_detection(0.3, Duration::from_secs(6));
    let a = ClusterMembership::new(config).await.unwrap();
    let b = member(secret, "b", vec![a.gossip_addr()]).await;
    let c = member(secret, "c", vec![a.gossip_addr()]).await;
    let detector = PartitionDetector::new(a.clone());
    let mut events = detector.subscribe();
    eventually(Duration::from_secs(15), "a sees the other two", async || detector.status().reachable == 3).await;
    let whole = detector.status();
    assert_eq!((whole.reachable, whole.expected), (3, 3));
    assert!(whole.has_quorum() && !whole.is_minority());

    // From a's side, b and c failing at once is a split that leaves it alone.
    b.shutdown();
    c.shutdown();
    let detected = wait_for(
        &mut events,
        Duration::from_secs(20),
        |e| matches!(e, ClusterEvent::PartitionDetected(info) if info.minority && info.lost.len() == 2),
    )
    .await;
    assert!(detected, "a reports the split, and that it is on the minority side");
    let alone = detector.status();
    assert_eq!((alone.reachable, alone.expected), (1, 3), "{alone:?}");
    assert!(alone.is_minority(), "one of three is no majority");
    a.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_a_flag_day_and_an_old_only_node_is_out_after() {
    let secret = "keys_rotate_without_a_flag_day_and_an_old_only_node_is_out_after";
    let old = ClusterKey::from_secret(&format!("{secret} old"));
    let new = ClusterKey::from_secret(&format!("{secret} new"));
    let node = |name: &str, keyring: Keyring, seeds: Vec<SocketAddr>| {
        ClusterMembership::new(ClusterConfig::default().with_keyring(keyring).with_name(name).with_seeds(seeds))
    };
    // Mid-rotation: a still seals with the old key, b already with the new; both accept both.
    let a = node("a", Keyring::new(old.clone()).with_key(new.clone()), vec![]).await.unwrap();
    let b = node("b", Keyring::new(new.clone()).with_key(old.clone()), vec![a.gossip_addr()]).await.unwrap();
    eventually(Duration::from_secs(15), "a and b see each other across the rotation", async || {
        names(&a, NodeState::Alive) == ["b"] && names(&b, NodeState::Alive) == ["a"]
    })
    .await;
    // Rotation done: c knows the new key only, and talks to b, which seals with it.
    let c = node("c", Keyring::new(new.clone()), vec![b.gossip_addr()]).await.unwrap();
    eventually(Duration::from_secs(15), "c joins through b", async || {
        names(&b, NodeState::Alive) == ["a", "c"] && names(&c, NodeState::Alive).contains(&"b".to_owned())
    })
    .await;
    // A node that never got the new key is out of the rotated cluster.
    let rejected_before = c.gossip_stats().rejected;
    let stale = node("stale", Keyring::new(old), vec![c.gossip_addr()]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!c.nodes().iter().any(|n| n.name == "stale"), "c admitted a node without the new key");
    assert!(c.gossip_stats().rejected > rejected_before, "c refuses what the old-only node sends");
    assert!(stale.nodes().iter().all(|n| n.name != "c"), "and the old-only node cannot read c");
    for m in [&a, &b, &c, &stale] {
        m.shutdown();
    }
}

/// Counts a load's outcomes per worker.
#[derive(Default)]
struct Tally {
    per_worker: Mutex<HashMap<String, usize>>,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn calls_to(&self, name: &str) -> usize {
        self.per_worker.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_no_retryable_call_and_gets_traffic_again_after_a_restart() {
    let secret = "a_killed_worker_loses_no_retryable_call_and_gets_traffic_again_after_a_restart";
    let mut workers = vec![Worker::start(secret, "w1", any_port(), any_port(), vec![], &[("role", "worker")])];
    let seed = workers[0].gossip_addr;
    for name in ["w2", "w3"] {
        workers.push(Worker::start(secret, name, any_port(), any_port(), vec![seed], &[("role", "worker")]));
    }
    // Two client nodes, each with its own membership, registry and typed cluster client.
    let mut clients = Vec::new();
    for name in ["c1", "c2"] {
        let cluster = member(secret, name, vec![seed]).await;
        let registry = Arc::new(WorkerRegistry::new(cluster.clone(), LoadBalancingStrategy::LeastConnections));
        registry.start().await;
        let client = WorkClient::builder().registry(registry.clone()).filter("role=worker").connect().await.unwrap();
        clients.push((cluster, registry, client));
    }
    for (_, registry, _) in &clients {
        eventually(Duration::from_secs(15), "clients see 3 workers", async || registry.worker_count().await == 3).await;
    }
    // Survivors listen for w2's failure from before it dies.
    let observer = member(secret, "observer", vec![seed]).await;
    eventually(Duration::from_secs(15), "the observer joins", async || names(&observer, NodeState::Alive).len() == 5)
        .await;
    // Every survivor: both clients, the observer, and the two other workers.
    let mut watchers: Vec<(String, ClusterEvents)> =
        clients.iter().map(|(c, _, _)| (c.local_node().name, c.subscribe())).collect();
    watchers.push(("observer".into(), observer.subscribe()));
    for (name, worker) in [("w1", &workers[0]), ("w3", &workers[2])] {
        watchers.push((name.into(), worker.cluster.subscribe()));
    }

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for (_, _, client) in &clients {
        for _ in 0..8 {
            let (client, tally, stop) = (client.clone(), tally.clone(), stop.clone());
            load.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match client.read(5).await {
                        Ok(name) => *tally.per_worker.lock().unwrap().entry(name).or_default() += 1,
                        Err(err) => tally.failures.lock().unwrap().push(err.to_string()),
                    }
                }
            }));
        }
    }
    eventually(Duration::from_secs(10), "every worker serves", async || {
        ["w1", "w2", "w3"].iter().all(|w| tally.calls_to(w) > 20)
    })
    .await;

    let (w2_rpc, w2_gossip) = (workers[1].rpc_addr, workers[1].gossip_addr);
    workers[1].kill();
    let killed = Instant::now();
    for (survivor, watcher) in &mut watchers {
        let seen =
            wait_for(watcher, Duration::from_secs(15), |e| matches!(e, ClusterEvent::NodeFailed(n) if n.name == "w2"));
        assert!(seen.await, "survivor {survivor} did not see w2 fail");
    }
    let detected = killed.elapsed();
    tracing::info!(?detected, "every survivor saw w2 fail");
    for (_, registry, _) in &clients {
        eventually(Duration::from_secs(2), "w2 leaves the registries", async || registry.worker_count().await == 2)
            .await;
    }
    // Traffic to the dead worker stops.
    let before = tally.calls_to("w2");
    let w1_before = tally.calls_to("w1");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(tally.calls_to("w2"), before, "calls reached a dead worker");
    assert!(tally.calls_to("w1") > w1_before + 20, "the survivors carry the load");

    // The same worker, restarted on the same addresses, rejoins and gets traffic again.
    let restarted = Worker::start(secret, "w2", w2_rpc, w2_gossip, vec![seed], &[("role", "worker")]);
    assert_eq!((restarted.rpc_addr, restarted.gossip_addr), (w2_rpc, w2_gossip));
    eventually(Duration::from_secs(15), "the restarted worker serves again", async || {
        restarted.calls.load(Ordering::SeqCst) > 20
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let failures = tally.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} calls failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    for (cluster, _, _) in &clients {
        // Alive, not just up: a probe that timed out under load may leave it suspect for a
        // moment, until it refutes.
        eventually(Duration::from_secs(5), "the restarted w2 is alive again for every client", async || {
            cluster.nodes().iter().any(|n| n.name == "w2" && n.state == NodeState::Alive)
        })
        .await;
    }
    let total: usize = ["w1", "w2", "w3"].iter().map(|w| tally.calls_to(w)).sum();
    assert!(total > 500, "only {total} calls made");
    drop(workers);
}
