//! Registries: workers selected by tag, called through cluster clients; health from pings
//! (an idle cluster stays healthy); a tag change keeps the worker; the node registry.

use super::*;

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
    assert_eq!(registry.healthy_count().await, 3, "no worker is suspect");

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
    let client = ClusterClient::new(registry.clone(), ClusterClientConfig::dev());
    let codec = BincodeCodec::new();
    let request = codec.encode_to_vec(&0u64).unwrap();
    let reply = client.call_worker(WorkClient::METHOD_READ, request.clone(), Some("role=storage")).await.unwrap();
    assert_eq!(codec.decode::<String>(&reply[..]).unwrap(), "db");
    let all = client.call_all_workers(WorkClient::METHOD_READ, request.clone(), Some("zone=eu-1")).await.unwrap();
    let mut answers: Vec<String> =
        all.into_iter().map(|(_, reply)| codec.decode::<String>(&reply.unwrap()[..]).unwrap()).collect();
    answers.sort();
    assert_eq!(answers, ["db", "w-eu"]);
    let err = client.call_worker("Work.missing", request, Some("role=worker")).await.unwrap_err();
    assert!(matches!(err, RpcError::UnknownMethod(_)), "{err:?}");
    assert!(workers.iter().all(|w| w.calls.load(Ordering::SeqCst) <= 2));
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
    let client = WorkClient::builder().registry(registry.clone()).dev().connect().await.unwrap();
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
    let client = WorkClient::builder().registry(registry.clone()).filter("role=worker").dev().connect().await.unwrap();
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
    // Names and tags travel as metadata, a moment after the member itself: wait for them.
    eventually(Duration::from_secs(15), "three members, with their names and tags", async || {
        registry.node_count().await == 3
            && registry.nodes_with_tag("zone").await.len() == 2
            && sorted_names(&registry.nodes().await) == ["b", "c", "d"]
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
    assert_eq!(a.node_count(), 3, "the membership counts as its registry does");
    assert_eq!(sorted_names(&a.members()), ["b", "c", "d"]);
    assert_eq!(sorted_names(&registry.live_nodes().await), ["b", "d"]);
    assert_eq!(sorted_names(&registry.nodes_matching("role=worker").await.unwrap()), ["b"]);
    for m in [&a, &b, &d] {
        m.shutdown();
    }
}
