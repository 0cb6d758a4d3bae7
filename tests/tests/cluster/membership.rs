//! Membership: members find each other, share tags, tell leaving from failing; keys keep
//! strangers out and rotate; a lagging subscriber is told; a lone survivor knows it is the
//! minority.

use super::*;

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
        |e| matches!(e, ClusterEvent::NodeUpdated(n) if n.name == "n1" && n.tag("zone") == Some("eu-1")),
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
    // A member's name is known once its metadata is, which is when NodeJoined is emitted:
    // alive under an address only, it has not been announced yet.
    eventually(Duration::from_secs(15), "four joins", async || {
        names(&seed, NodeState::Alive) == ["m0", "m1", "m2", "m3"]
    })
    .await;
    match lagging.recv().await {
        Some(ClusterEvent::Lagged { missed }) => assert!(missed >= 2, "missed {missed}"),
        other => panic!("expected Lagged first, got {other:?}"),
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
