//! The example's flow, asserted: the generated cluster client defaults to the strategy of
//! `build.rs`, reaches every worker, switches strategy at run time, and carries typed errors
//! and streams.

use std::time::Duration;

use example_codegen::{CalcError, CalculatorClusterClient, run};
use rpcnet::LoadBalancingStrategy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_cluster_client_reaches_every_worker_and_switches_strategy() {
    assert_eq!(
        CalculatorClusterClient::DEFAULT_STRATEGY,
        LoadBalancingStrategy::RoundRobin,
        "build.rs chose round robin"
    );
    let summary = run(12).await.expect("the example runs");
    assert_eq!(summary.workers, ["worker-1", "worker-2", "worker-3"]);
    assert!(summary.discovery < Duration::from_secs(15));
    assert_eq!(summary.default_strategy, LoadBalancingStrategy::RoundRobin);
    assert_eq!(
        summary.default_calls.values().copied().collect::<Vec<_>>(),
        [4, 4, 4],
        "round robin gives each of three workers 4 of 12 calls made one after another: {:?}",
        summary.default_calls
    );
    assert_eq!(summary.switched_strategy, LoadBalancingStrategy::LeastConnections);
    assert_eq!(summary.switched_calls.values().sum::<usize>(), 12, "every switched call was answered");
    assert_eq!(summary.divisions, (Ok(3), Err(CalcError::DivisionByZero)), "the service's error arrives typed");
    assert_eq!(summary.counted, [1, 2, 3, 4, 5]);
}
