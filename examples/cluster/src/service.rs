//! The service the demo's workers offer: a computation whose answer names the worker that
//! did it, so the caller can count calls per worker. Safe to repeat, so a call whose worker
//! dies goes to another one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A result and who computed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Answer {
    /// x².
    pub(crate) value: u64,
    /// The worker's name.
    pub(crate) worker: String,
}

/// What a worker computes.
#[rpcnet::rpc_service]
pub(crate) trait Compute {
    /// x², after the worker's service time.
    #[rpc(idempotent)]
    async fn square(&self, x: u64) -> Answer;
}

/// A worker's implementation: its name and how long each call takes.
pub(crate) struct Worker {
    pub(crate) name: String,
    pub(crate) service_time: Duration,
}

impl Compute for Worker {
    async fn square(&self, x: u64) -> Answer {
        tokio::time::sleep(self.service_time).await;
        Answer { value: x.wrapping_mul(x), worker: self.name.clone() }
    }
}
