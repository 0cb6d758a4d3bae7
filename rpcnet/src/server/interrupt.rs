//! Deadlines and cancellation that cost nothing while a call does not have to wait: timers
//! and the watch on the client's interest are armed only when a future returns `Pending`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use quinn::SendStream;
use tokio::time::Instant;

use crate::RpcError;

/// How a call ended other than by success.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The client gave up (stopped reading the response): nothing more to write.
    Cancelled,
    /// The call failed: write this error as the terminal frame.
    Failed(RpcError),
}

impl From<RpcError> for Outcome {
    fn from(err: RpcError) -> Self {
        Self::Failed(err)
    }
}

/// Runs `fut`; only if it cannot finish at once is a timer armed for `limit()`. The timer is
/// boxed so that the futures of calls that never wait stay small.
pub(crate) async fn timeout_if_pending<F: Future>(limit: impl FnOnce() -> Instant, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    if let Poll::Ready(output) = futures::poll!(fut.as_mut()) {
        return Some(output);
    }
    let timer = Box::pin(tokio::time::sleep_until(limit()));
    tokio::select! {
        biased;
        output = fut => Some(output),
        () = timer => None,
    }
}

/// A call's deadline, fixed from the moment a wait first needs it. Calls that never wait
/// never read the clock; the few microseconds of work before a first wait are not billed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    budget: Option<Duration>,
    at: Option<Instant>,
}

impl Deadline {
    pub(crate) fn after(budget: Option<Duration>) -> Self {
        Self { budget, at: None }
    }

    pub(crate) fn instant(&mut self) -> Option<Instant> {
        if self.at.is_none() {
            self.at = self.budget.map(|budget| Instant::now() + budget);
        }
        self.at
    }
}

/// What can end a call early: its deadline, or the client stopping its receive half (a
/// dropped call future). Armed on first need, then shared by every wait of the call.
pub(crate) struct Interruption {
    pub(crate) deadline: Deadline,
    armed: Option<Pin<Box<dyn Future<Output = Outcome> + Send>>>,
}

impl Interruption {
    pub(crate) fn new(deadline: Deadline) -> Self {
        Self { deadline, armed: None }
    }

    fn arm(&mut self, send: &SendStream) -> Pin<&mut (dyn Future<Output = Outcome> + Send)> {
        let deadline = self.deadline.instant();
        let stopped = send.stopped();
        self.armed
            .get_or_insert_with(|| {
                Box::pin(async move {
                    match deadline {
                        Some(deadline) => tokio::select! {
                            _ = stopped => Outcome::Cancelled,
                            () = tokio::time::sleep_until(deadline) => Outcome::Failed(RpcError::Timeout),
                        },
                        None => {
                            let _ = stopped.await;
                            Outcome::Cancelled
                        }
                    }
                })
            })
            .as_mut()
    }

    /// Runs a handler future until it finishes or the call is interrupted, turning a panic
    /// into an internal error so the server and the connection live on.
    pub(crate) async fn guard<T>(
        &mut self,
        send: &SendStream,
        fut: impl Future<Output = Result<T, RpcError>>,
    ) -> Result<T, Outcome> {
        let mut fut = pin!(AssertUnwindSafe(fut).catch_unwind());
        if let Poll::Ready(output) = futures::poll!(fut.as_mut()) {
            return settle(output);
        }
        let interrupted = self.arm(send);
        tokio::select! {
            biased;
            output = fut => settle(output),
            outcome = interrupted => Err(outcome),
        }
    }
}

fn settle<T>(output: std::thread::Result<Result<T, RpcError>>) -> Result<T, Outcome> {
    match output {
        Ok(result) => result.map_err(Outcome::Failed),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            Err(Outcome::Failed(RpcError::Internal(format!("the handler panicked: {message}"))))
        }
    }
}
