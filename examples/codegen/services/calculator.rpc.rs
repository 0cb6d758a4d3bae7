// The Calculator service: an ordinary Rust file holding the trait and its serde types.
// build.rs turns it into `$OUT_DIR/calculator.rs`; `rpcnet::include_service!` includes it.

use rpcnet::RpcStream;
use serde::{Deserialize, Serialize};

/// A sum, and the worker that computed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The sum.
    pub value: i64,
    /// The name of the worker that served the call.
    pub worker: String,
}

/// What a division can report instead of a quotient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CalcError {
    /// The divisor was zero.
    DivisionByZero,
    /// The quotient does not fit (`i64::MIN / -1`).
    Overflow,
}

/// Arithmetic over the network.
#[rpcnet::rpc_service]
pub trait Calculator {
    /// Adds two numbers; the answer names the worker.
    async fn add(&self, a: i64, b: i64) -> Answer;
    /// Divides `a` by `b`.
    #[rpc(idempotent)]
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    /// The numbers from 1 to `n`, one message each.
    async fn count(&self, n: u32) -> RpcStream<u32>;
}
