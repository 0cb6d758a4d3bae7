//! Deadlines, cancellation and stalled writes that cost nothing while a call does not have
//! to wait: timers and the watch on the client's interest are armed only when a future
//! returns `Pending`. Plain futures, so that each call's state holds the wrapped one once.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::FutureExt;
use futures::future::CatchUnwind;
use quinn::SendStream;
use tokio::time::{Instant, Sleep};

use crate::deadline::Deadline;
use crate::error::RpcError;
use crate::transport::WriteAll;

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

pin_project_lite::pin_project! {
    /// Runs a future; a timer for `limit()` is armed (boxed, so the state stays small) only
    /// if it cannot finish at once. Resolves to `None` when the timer fires first.
    pub(crate) struct TimeoutIfPending<F, L> {
        #[pin]
        fut: F,
        limit: Option<L>,
        timer: Option<Pin<Box<Sleep>>>,
    }
}

pub(crate) fn timeout_if_pending<F: Future, L: FnOnce() -> Instant>(limit: L, fut: F) -> TimeoutIfPending<F, L> {
    TimeoutIfPending { fut, limit: Some(limit), timer: None }
}

impl<F: Future, L: FnOnce() -> Instant> Future for TimeoutIfPending<F, L> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.fut.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let timer = match this.timer {
            Some(timer) => timer,
            None => {
                let limit = this.limit.take().expect("bug in rpcnet: TimeoutIfPending armed twice");
                this.timer.insert(Box::pin(tokio::time::sleep_until(limit())))
            }
        };
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(None)
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
        let deadline = self.deadline;
        self.armed
            .get_or_insert_with(|| {
                let stopped = send.stopped();
                let deadline = deadline.instant();
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
    pub(crate) fn guard<'a, F: Future>(&'a mut self, send: &'a SendStream, fut: F) -> Guarded<'a, F> {
        Guarded { fut: AssertUnwindSafe(fut).catch_unwind(), interruption: self, send }
    }
}

pin_project_lite::pin_project! {
    /// A handler future under watch; see [`Interruption::guard`].
    pub(crate) struct Guarded<'a, F> {
        #[pin]
        fut: CatchUnwind<AssertUnwindSafe<F>>,
        interruption: &'a mut Interruption,
        send: &'a SendStream,
    }
}

impl<T, F: Future<Output = Result<T, RpcError>>> Future for Guarded<'_, F> {
    type Output = Result<T, Outcome>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.fut.poll(cx) {
            return Poll::Ready(settle(output));
        }
        this.interruption.arm(this.send).poll(cx).map(Err)
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

/// Why a response write stopped before its last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteCut {
    /// The call's deadline passed.
    Deadline,
    /// The peer took nothing for the whole write timeout: it does not read.
    Stalled,
}

/// A response write bounded by the call's deadline and by `stall`, the longest it may go
/// without progress; a peer that reads slowly but steadily is not cut off. The timer is
/// armed only once the write has to wait.
pub(crate) struct BoundedWrite<'a> {
    write: WriteAll<'a>,
    deadline: Deadline,
    stall: Duration,
    timer: Option<(Pin<Box<Sleep>>, usize)>,
}

pub(crate) fn bounded_write(write: WriteAll<'_>, deadline: Deadline, stall: Duration) -> BoundedWrite<'_> {
    BoundedWrite { write, deadline, stall, timer: None }
}

impl Future for BoundedWrite<'_> {
    type Output = Result<Result<(), RpcError>, WriteCut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(written) = Pin::new(&mut this.write).poll(cx) {
            return Poll::Ready(Ok(written));
        }
        let remaining = this.write.remaining();
        let (deadline, stall) = (this.deadline, this.stall);
        let limit = |now: Instant| deadline.min(now + stall);
        match &mut this.timer {
            None => this.timer = Some((Box::pin(tokio::time::sleep_until(limit(Instant::now()))), remaining)),
            Some((timer, before)) if remaining < *before => {
                timer.as_mut().reset(limit(Instant::now()));
                *before = remaining;
            }
            Some(_) => {}
        }
        let (timer, _) = this.timer.as_mut().expect("armed above");
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(if deadline.has_passed(Instant::now()) { WriteCut::Deadline } else { WriteCut::Stalled }))
    }
}
