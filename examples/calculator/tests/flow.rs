//! The example's flow, asserted: every kind of call of a `#[rpc_service]` trait reaches the
//! server and comes back typed through the generated client.

use example_calculator::{CalcError, run};
use rpcnet::RpcError;

#[tokio::test]
async fn every_kind_of_typed_call_round_trips() {
    let summary = run().await.expect("the example runs");
    assert_eq!(summary.sum, 5);
    assert_eq!(summary.divisions, (Ok(3), Err(CalcError::DivisionByZero)), "the service's error arrives typed");
    assert_eq!(summary.counted, [1, 2, 3, 4, 5], "server streaming, in order");
    assert_eq!(summary.streamed_sum, 5050, "client streaming saw every number");
    assert_eq!(summary.running, [1, 3, 6, 10], "bidirectional, one answer per request");
    assert!(matches!(summary.late, Err(RpcError::Timeout)), "a call past its deadline: {:?}", summary.late);
}
