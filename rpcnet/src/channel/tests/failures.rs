//! Failures: ejection and its doubling back-off, which calls are repeated and within what
//! budget, service errors as answers, a broken balancer, and snapshot rebuilds.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::mock::*;
use crate::balance::{Balancer, CallInfo, Endpoint, RoundRobin};
use crate::channel::balanced::{Balanced, Policy};
use crate::channel::connection::Connection;
use crate::client::CallOptions;
use crate::error::RpcError;

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
        assert_eq!(
            name(balanced.unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new()).await.unwrap()),
            "a"
        );
    }
    assert_eq!(dead(&balanced).failures, 0, "while ejected it gets no call");

    tokio::time::advance(crate::channel::members::BASE_EJECTION).await;
    assert!(!dead(&balanced).ejected, "the first back-off is over");
    for _ in 0..4 {
        let reply = balanced.unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new()).await.unwrap();
        assert_eq!(name(reply), "a", "a call tried on the readmitted endpoint is retried on `a`");
    }
    let stats = dead(&balanced);
    assert_eq!(stats.failures, 1, "readmitted, it was tried once: {stats:?}");
    assert!(stats.ejected, "and, failing again, ejected again");
    tokio::time::advance(crate::channel::members::BASE_EJECTION).await;
    assert!(dead(&balanced).ejected, "the second back-off is twice as long");
    tokio::time::advance(crate::channel::members::BASE_EJECTION).await;
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
    let read_options = CallOptions::new();
    let read = balanced.unary("Work.read", IDEMPOTENT, work(1_000), &read_options);
    let (read, ()) = tokio::join!(read, async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        lose_a(&balanced);
    });
    assert_eq!(name(read.unwrap()), "b", "an idempotent call is repeated on the other endpoint");
    assert_eq!((cluster.server("a").calls(), cluster.server("b").calls()), (1, 1));

    let cluster = Cluster::new(&["a", "b"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let write_options = CallOptions::new();
    let write = balanced.unary("Work.write", MethodPolicy::new(), work(1_000), &write_options);
    let (write, ()) = tokio::join!(write, async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        lose_a(&balanced);
    });
    assert!(matches!(write, Err(RpcError::ConnectionLost(_))), "a call that may have run is not repeated: {write:?}");
    assert_eq!(cluster.server("b").calls(), 0, "it never reached b");
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
            let err = balanced.unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new()).await.unwrap_err();
            assert!(matches!(err, RpcError::Overloaded(_)), "every server refuses: {err:?}");
        }
        cluster.servers.iter().map(|s| s.calls()).sum::<usize>()
    };
    // Each call puts half a retry into the budget: every second call can be retried once.
    assert_eq!(attempts(0.5).await, 30, "20 calls, 10 retries: the budget, and not one more");
    assert_eq!(attempts(0.0).await, 20, "no budget, no retry: each call fails on its first refusal");
}

#[tokio::test(start_paused = true)]
async fn a_service_error_is_an_answer_not_an_endpoint_failure() {
    let cluster = Cluster::new(&["a"]);
    *cluster.servers[0].fails_with.lock().unwrap() = Some(RpcError::service("no"));
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    for _ in 0..3 {
        let err = balanced.unary("Work.run", IDEMPOTENT, work(0), &CallOptions::new()).await.unwrap_err();
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
    let err = balanced.unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new()).await.unwrap_err();
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
