//! The Calculator of DESIGN.md as a typed service: `#[rpc_service]` on a trait gives the
//! server glue and the typed client. [`run`] serves it on loopback with the development
//! certificate and makes one call of every kind, which `main` prints and a test asserts.

use std::time::Duration;

use futures::StreamExt;
use rpcnet::{RpcConfig, RpcError, RpcServer, RpcStream};
use serde::{Deserialize, Serialize};

/// What a division reports instead of a quotient: the service's own error, typed.
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
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Divides `a` by `b`; safe to repeat on another server.
    #[rpc(idempotent)]
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    /// Server streaming: the numbers from 1 to `n`.
    async fn count(&self, n: u32) -> RpcStream<u32>;
    /// Client streaming: the sum of every number sent.
    async fn sum(&self, numbers: RpcStream<i64>) -> i64;
    /// Bidirectional: the running total after each number.
    async fn running(&self, numbers: RpcStream<i64>) -> RpcStream<i64>;
}

/// The implementation the server runs.
#[derive(Debug)]
pub struct Calc;

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        if b == 0 {
            return Err(CalcError::DivisionByZero);
        }
        a.checked_div(b).ok_or(CalcError::Overflow)
    }

    async fn count(&self, n: u32) -> RpcStream<u32> {
        RpcStream::from_iter(1..=n)
    }

    async fn sum(&self, mut numbers: RpcStream<i64>) -> i64 {
        let mut total = 0i64;
        while let Some(Ok(n)) = numbers.next().await {
            total = total.wrapping_add(n);
        }
        total
    }

    async fn running(&self, numbers: RpcStream<i64>) -> RpcStream<i64> {
        let mut total = 0i64;
        numbers.map_messages(move |n| {
            total = total.wrapping_add(n);
            Ok(total)
        })
    }
}

/// What one call of every kind returned.
#[derive(Debug)]
pub struct Summary {
    /// `add(2, 3)`.
    pub sum: i64,
    /// `div(7, 2)` and `div(1, 0)`.
    pub divisions: (Result<i64, CalcError>, Result<i64, CalcError>),
    /// `count(5)`, collected.
    pub counted: Vec<u32>,
    /// `sum` of 1 to 100, sent as a stream.
    pub streamed_sum: i64,
    /// `running` over 1, 2, 3, 4.
    pub running: Vec<i64>,
    /// A `sum` whose stream outlives its 50 ms deadline: the call's own error.
    pub late: Result<i64, RpcError>,
}

/// Serves the Calculator on 127.0.0.1 (port 0) and calls every method once through the
/// generated client.
pub async fn run() -> Result<Summary, RpcError> {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(CalculatorServer::new(Calc));
    let (addr, shutdown) = server.spawn()?;

    let client = CalculatorClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await?;
    let sum = client.add(2, 3).await?;
    let divisions = (client.div(7, 2).await?, client.div(1, 0).await?);
    let counted = client.count(5).await?.collect_messages().await?;
    let streamed_sum = client.sum(RpcStream::from_iter(1..=100)).await?;
    let running = client.running(RpcStream::from_iter([1, 2, 3, 4])).await?.collect_messages().await?;
    // A stream that never ends keeps the call open past its deadline.
    let late =
        client.with_timeout(Duration::from_millis(50)).sum(RpcStream::from_stream(futures::stream::pending())).await;

    shutdown.shutdown().await;
    Ok(Summary { sum, divisions, counted, streamed_sum, running, late })
}
