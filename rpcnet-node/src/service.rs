//! The service every worker node offers: a computation that names the worker that did it
//! (idempotent: a balanced client may repeat it elsewhere), and an append that must not run
//! twice (not idempotent: a call caught on a dying worker fails, fast and clearly).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A result and who computed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Answer {
    /// The result.
    pub(crate) value: u64,
    /// The worker's name.
    pub(crate) worker: String,
}

/// What a worker offers.
#[rpcnet::rpc_service]
pub(crate) trait Work {
    /// x², after the worker's service time. Safe to repeat.
    #[rpc(idempotent)]
    async fn square(&self, x: u64) -> Answer;
    /// Appends `x` to the worker's log and returns the log's length: running it twice
    /// would append twice.
    async fn append(&self, x: u64) -> Answer;
}

/// A worker's implementation.
pub(crate) struct Worker {
    pub(crate) name: String,
    pub(crate) service_time: Duration,
    pub(crate) appended: AtomicU64,
}

impl Work for Worker {
    async fn square(&self, x: u64) -> Answer {
        tokio::time::sleep(self.service_time).await;
        Answer { value: x.wrapping_mul(x), worker: self.name.clone() }
    }

    async fn append(&self, _x: u64) -> Answer {
        tokio::time::sleep(self.service_time).await;
        Answer { value: self.appended.fetch_add(1, Ordering::Relaxed) + 1, worker: self.name.clone() }
    }
}
