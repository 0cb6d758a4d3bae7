//! Method policies on a balanced channel: a method's retries bound its attempts over the
//! channel's, a call's own retries over the method's, the shared budget bounds them all;
//! a method's deadline applies to calls that set none.

use std::time::Duration;

use tokio::time::Instant;

use super::mock::*;
use crate::balance::RoundRobin;
use crate::channel::balanced::Policy;
use crate::client::CallOptions;
use crate::error::RpcError;

/// Servers `a`, `b`, `c` refuse every call with `Overloaded`; `d` answers.
fn three_refusing_then_one() -> Cluster {
    let cluster = Cluster::new(&["a", "b", "c", "d"]);
    for name in ["a", "b", "c"] {
        *cluster.server(name).fails_with.lock().unwrap() = Some(RpcError::Overloaded("busy".into()));
    }
    cluster
}

fn one_attempt() -> Policy {
    Policy { max_attempts: 1, ..Policy::default() }
}

#[tokio::test(start_paused = true)]
async fn a_methods_retries_replace_the_channels_attempts() {
    let cluster = three_refusing_then_one();
    let balanced = cluster.channel(RoundRobin::new(), one_attempt()).await;
    let err = balanced.unary("Work.run", IDEMPOTENT, work(0), &CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Overloaded(_)), "one attempt, as the channel says: {err:?}");

    let cluster = three_refusing_then_one();
    let balanced = cluster.channel(RoundRobin::new(), one_attempt()).await;
    let retried = IDEMPOTENT.with_retries(3);
    let reply = balanced.unary("Work.run", retried, work(0), &CallOptions::new()).await.unwrap();
    assert_eq!(name(reply), "d", "three refusals, three retries, then the answer");
    let calls: Vec<usize> = cluster.servers.iter().map(|s| s.calls()).collect();
    assert_eq!(calls, [1, 1, 1, 1], "each endpoint tried once");
}

#[tokio::test(start_paused = true)]
async fn a_methods_retries_stop_at_their_count() {
    let cluster = three_refusing_then_one();
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let err = balanced.unary("Work.run", IDEMPOTENT.with_retries(1), work(0), &CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Overloaded(_)), "{err:?}");
    assert_eq!(cluster.servers.iter().map(|s| s.calls()).sum::<usize>(), 2, "one call and one retry");
}

#[tokio::test(start_paused = true)]
async fn a_calls_own_retries_override_its_methods() {
    let cluster = three_refusing_then_one();
    let balanced = cluster.channel(RoundRobin::new(), one_attempt()).await;
    let options = CallOptions::new().with_retries(0);
    let err = balanced.unary("Work.run", IDEMPOTENT.with_retries(3), work(0), &options).await.unwrap_err();
    assert!(matches!(err, RpcError::Overloaded(_)), "{err:?}");
    assert_eq!(cluster.servers.iter().map(|s| s.calls()).sum::<usize>(), 1, "with_retries(0): no retry");

    let cluster = three_refusing_then_one();
    let balanced = cluster.channel(RoundRobin::new(), one_attempt()).await;
    let options = CallOptions::new().with_retries(3);
    let reply = balanced.unary("Work.run", MethodPolicy::new(), work(0), &options).await.unwrap();
    assert_eq!(name(reply), "d", "a call's own retries apply to a method that sets none");
}

#[tokio::test(start_paused = true)]
async fn a_methods_retries_draw_on_the_shared_budget() {
    let cluster = three_refusing_then_one();
    let policy = Policy { retry_ratio: 0.0, min_retries_per_second: 1, ..Policy::default() };
    let balanced = cluster.channel(RoundRobin::new(), policy).await;
    let err = balanced.unary("Work.run", IDEMPOTENT.with_retries(3), work(0), &CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Overloaded(_)), "{err:?}");
    assert_eq!(cluster.servers.iter().map(|s| s.calls()).sum::<usize>(), 2, "the budget affords one retry this second");
}

#[tokio::test(start_paused = true)]
async fn a_methods_deadline_applies_unless_the_call_sets_its_own() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let method = MethodPolicy::new().with_deadline(Duration::from_millis(50));

    let started = Instant::now();
    let err = balanced.unary("Work.run", method, work(10_000), &CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(50), "the method's deadline, not the channel's 30 s");

    let started = Instant::now();
    let own = CallOptions::new().with_timeout(Duration::from_millis(200));
    let err = balanced.unary("Work.run", method, work(10_000), &own).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(200), "the call's own deadline wins");

    let reply = balanced.unary("Work.run", method, work(40), &CallOptions::new()).await.unwrap();
    assert_eq!(name(reply), "a", "a call within the method's deadline answers");

    let started = Instant::now();
    let err = balanced.unary("Work.run", MethodPolicy::new(), work(100_000), &CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(30), "no method deadline: the channel's default");
}
