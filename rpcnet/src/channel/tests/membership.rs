//! A channel that follows a source: endpoints that leave end their calls at once, suspect
//! or filtered-out ones keep theirs, and suspects get a small share of new calls.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::mock::*;
use crate::balance::{Endpoint, RoundRobin};
use crate::channel::balanced::Policy;
use crate::client::CallOptions;
use crate::error::RpcError;

#[tokio::test(start_paused = true)]
async fn calls_on_an_endpoint_that_leaves_end_at_once_repeated_only_if_idempotent() {
    let cluster = Cluster::new(&["a", "b"]);
    let source = Source::new(cluster.endpoints.clone());
    let balanced = following(&cluster, &source, PreferB, Policy::default());
    let without_b: Vec<Endpoint> = cluster.endpoints.iter().filter(|e| e.id() != "b").cloned().collect();

    let started = Instant::now();
    let read_options = CallOptions::new();
    let read = balanced.unary("Work.read", IDEMPOTENT, work(30_000), &read_options);
    let write_options = CallOptions::new();
    let write = balanced.unary("Work.write", MethodPolicy::new(), work(30_000), &write_options);
    let (read, write, ()) = tokio::join!(read, write, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        source.publish(without_b.clone());
    });
    assert!(
        matches!(write, Err(RpcError::ConnectionLost(_))),
        "the write may have run on b: lost, not repeated: {write:?}"
    );
    assert!(!write.unwrap_err().is_retry_safe(), "and the caller is told it may have run");
    assert_eq!(name(read.unwrap()), "a", "the read goes to a");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100 + 30_000),
        "the write ended when b left, not at its deadline; the read then ran on a"
    );
    let late = balanced.unary("Work.write", MethodPolicy::new(), work(0), &CallOptions::new()).await.map(name);
    assert_eq!(late.unwrap(), "a", "b gets no new calls");
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_that_turns_suspect_or_is_filtered_out_keeps_its_calls_in_flight() {
    let cluster = Cluster::new(&["a", "b"]);
    let source = Source::new(cluster.endpoints.clone());
    let policy = Policy { filter: Some("role!=retired".parse().unwrap()), ..Policy::default() };
    let balanced = following(&cluster, &source, PreferB, policy);
    settle().await;
    let read_options = CallOptions::new();
    let read = balanced.unary("Work.read", IDEMPOTENT, work(400), &read_options);
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
    let write_options = CallOptions::new();
    let write = balanced.unary("Work.write", MethodPolicy::new(), work(400), &write_options);
    let (write, ()) = tokio::join!(write, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        source.publish(retagged.clone());
    });
    assert_eq!(name(write.unwrap()), "b", "a member the filter leaves out is alive: its call finishes");
    settle().await;
    let next = balanced.unary("Work.write", MethodPolicy::new(), work(0), &CallOptions::new()).await.map(name);
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
        let reply = balanced.unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new()).await.unwrap();
        *counts.entry(name(reply)).or_default() += 1;
    }
    assert_eq!(counts.get("c"), Some(&10), "1 share in 21 for the suspect (a tenth of a healthy one's): {counts:?}");
    assert_eq!((counts["a"], counts["b"]), (100, 100), "{counts:?}");
    assert!(balanced.endpoint_stats().iter().any(|s| s.label == "c" && s.suspect), "endpoint_stats shows it");
}
