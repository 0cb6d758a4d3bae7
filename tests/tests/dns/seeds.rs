//! Gossip seeds given as a DNS name: a node whose only seed is a name that does not
//! resolve yet keeps trying while alone, and joins a running node once the test's DNS
//! server publishes that node's gossip address.

use std::time::Duration;

use rpcnet::cluster::{ClusterConfig, ClusterEvent, ClusterMembership};

use super::zone::TestDns;
use super::{PATIENCE, failures_above, resolver};

fn quick() -> ClusterConfig {
    ClusterConfig::dev().with_gossip_interval(Duration::from_millis(200)).with_probe_timeout(Duration::from_millis(100))
}

#[tokio::test]
async fn a_node_whose_seed_is_a_dns_name_joins_once_the_name_resolves() {
    rpcnet_tests::subscribe();
    let dns = TestDns::start().await;
    let running = ClusterMembership::new(quick().with_name("running")).await.unwrap();
    let port = running.gossip_addr().port();
    let target = format!("dns:seeds.rpcnet.test.:{port}");
    let joining = ClusterMembership::new(
        quick().with_name("joining").with_seed_names([target.as_str()]).with_seed_resolver(resolver(&dns)),
    )
    .await
    .unwrap();
    let mut events = joining.subscribe();

    // Not in DNS yet: the seed task fails, counts it, and tries again.
    failures_above(&target, 0).await;
    assert!(joining.nodes().is_empty(), "no seed, no member: {:?}", joining.nodes());

    dns.set_addresses("seeds", &[running.gossip_addr().ip()], 60).await;
    let joined = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.recv().await {
            if let ClusterEvent::NodeJoined(node) = event
                && node.name == "running"
            {
                return;
            }
        }
    })
    .await;
    assert!(joined.is_ok(), "the node joined through its DNS seed: {:?}", joining.nodes());
    running.shutdown();
    joining.shutdown();
}

#[tokio::test]
async fn a_malformed_seed_name_is_refused_at_start() {
    let err = ClusterMembership::new(quick().with_seed_names(["seeds.rpcnet.test:7946"])).await.unwrap_err();
    assert!(err.to_string().contains("dns:"), "the error shows the syntax: {err}");
}
