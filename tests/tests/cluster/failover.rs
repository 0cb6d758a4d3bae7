//! Failover: a worker killed under load loses no retryable call and gets traffic again
//! after a restart; a cluster client repeats only the methods marked idempotent.

use super::*;

/// A worker of raw methods `jobs.read` and `jobs.write` (each sleeps `u64` ms, then
/// answers its name), whose RPC server the test can stop while its membership lives on.
struct RawWorker {
    cluster: ClusterMembership,
    shutdown: rpcnet::ServerHandle,
    /// Calls started, watched so that a test can wait for the next one.
    calls: Arc<tokio::sync::watch::Sender<usize>>,
}

impl RawWorker {
    fn calls(&self) -> usize {
        *self.calls.borrow()
    }
}

/// The index of the first worker to start a call beyond its count in `before`.
async fn first_to_start(workers: &[RawWorker], before: &[usize]) -> usize {
    let waits = workers.iter().zip(before).map(|(worker, &before)| {
        let mut calls = worker.calls.subscribe();
        Box::pin(async move {
            let _ = calls.wait_for(|&now| now > before).await;
        })
    });
    let started = futures::future::select_all(waits);
    let ((), first, _) =
        tokio::time::timeout(Duration::from_secs(10), started).await.expect("a worker starts the call");
    first
}

async fn raw_worker(secret: &str, name: &str, seed: SocketAddr) -> RawWorker {
    let calls = Arc::new(tokio::sync::watch::Sender::new(0));
    let config = RpcConfig::dev("127.0.0.1:0").with_shutdown_grace_period(Duration::from_millis(50));
    let mut server = RpcServer::new(config);
    for method in ["jobs.read", "jobs.write"] {
        let (calls, name) = (calls.clone(), name.to_owned());
        server
            .register(method, move |request| {
                let (calls, name) = (calls.clone(), name.clone());
                async move {
                    calls.send_modify(|calls| *calls += 1);
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
    let before: Vec<usize> = workers.iter().map(RawWorker::calls).collect();
    let stop = async {
        let i = first_to_start(workers, &before).await;
        workers[i].shutdown.shutdown().await;
        i
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
    let config = ClusterClientConfig::dev()
        .with_rpc_config(RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_millis(300)))
        .with_idempotent_methods(["jobs.read"]);
    assert!(config.is_idempotent("jobs.read") && !config.is_idempotent("jobs.write"));
    let client = ClusterClient::new(registry.clone(), config);

    let (read, stopped) = call_and_stop_its_worker(&client, &workers, "jobs.read").await;
    let total: usize = workers.iter().map(|w| w.calls()).sum();
    assert!(read.is_ok(), "a read whose worker stopped mid-call is repeated elsewhere: {read:?}");
    assert_eq!(total, 2, "it ran on the stopped worker, then once more on another");
    assert_ne!(String::from_utf8(read.unwrap()).unwrap(), ["a", "b", "c"][stopped]);

    let before: Vec<usize> = workers.iter().map(|w| w.calls()).collect();
    let (write, stopped_too) = call_and_stop_its_worker(&client, &workers, "jobs.write").await;
    assert_ne!(stopped, stopped_too, "the write ran on a worker whose server was still up");
    assert!(matches!(write, Err(RpcError::ConnectionLost(_))), "a write is not repeated: {write:?}");
    let after: Vec<usize> = workers.iter().map(|w| w.calls()).collect();
    let ran: usize = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    assert_eq!(ran, 1, "the write ran once, on the worker that stopped");
    for worker in &workers {
        worker.cluster.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_worker_that_leaves_the_cluster_ends_at_the_departure_not_at_its_deadline() {
    let secret = "a_write_on_a_worker_that_leaves_the_cluster_ends_at_the_departure";
    let seed = member(secret, "client", vec![]).await;
    let workers =
        [raw_worker(secret, "a", seed.gossip_addr()).await, raw_worker(secret, "b", seed.gossip_addr()).await];
    let registry = Arc::new(WorkerRegistry::new(seed.clone(), LoadBalancingStrategy::RoundRobin));
    registry.start().await;
    eventually(Duration::from_secs(15), "two workers", async || registry.worker_count().await == 2).await;
    let client = ClusterClient::new(registry.clone(), ClusterClientConfig::dev());

    // 60 s of work, beyond the default 30 s deadline: only the departure can end it sooner.
    let write = client.call_worker("jobs.write", 60_000u64.to_le_bytes().to_vec(), Some("role=worker"));
    let leave = async {
        let i = first_to_start(&workers, &[0, 0]).await;
        // The worker leaves the cluster; its RPC server, and the handler, live on.
        workers[i].cluster.leave().await.unwrap();
        Instant::now()
    };
    let (write, left_at) = tokio::join!(write, leave);
    let after_departure = left_at.elapsed();
    assert!(matches!(write, Err(RpcError::ConnectionLost(_))), "lost, not timed out nor repeated: {write:?}");
    assert!(!write.unwrap_err().is_retry_safe(), "the caller is told it may have run");
    let ran: usize = workers.iter().map(|w| w.calls()).sum();
    assert_eq!(ran, 1, "not repeated on the other worker");
    assert!(after_departure < Duration::from_secs(15), "ended {after_departure:?} after the departure");
    for worker in &workers {
        worker.cluster.shutdown();
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
        let client =
            WorkClient::builder().registry(registry.clone()).filter("role=worker").dev().connect().await.unwrap();
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
