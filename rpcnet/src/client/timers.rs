//! Client-side deadlines that share timers: the calls of one client whose deadlines fall in
//! the same short slot wait on one timer task, registering only their wakers. A tokio timer
//! per call costs more than everything else rpcnet does for a small call.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::deadline::Deadline;
use crate::error::RpcError;

/// Slots kept at once: enough for the default deadline and a few per-call ones in use side
/// by side without each call starting a timer of its own.
const SLOTS: usize = 4;

/// Shortest and longest slot. A deadline fires at most one slot late, and a slot is 1/64 of
/// the call's timeout within these bounds: a 250 ms deadline fires at most 4 ms late, a 30 s
/// one at most 100 ms late. The server holds the same deadline and stops the handler on
/// time either way; the slot only delays the client's own give-up.
const MIN_SLOT: Duration = Duration::from_millis(1);
const MAX_SLOT: Duration = Duration::from_millis(100);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shared timers of one client.
#[derive(Debug, Default)]
pub(crate) struct DeadlineTimers {
    slots: Mutex<[Option<Slot>; SLOTS]>,
}

/// Deadlines in `[start, end]` wait on `bucket`, which fires at `end`.
#[derive(Debug)]
struct Slot {
    start: Instant,
    end: Instant,
    bucket: Arc<Bucket>,
}

/// The calls waiting on one timer: their wakers, woken all at once when it fires.
#[derive(Debug)]
struct Bucket {
    fired: AtomicBool,
    wakers: Mutex<Slab<Waker>>,
    /// The task that sleeps until the slot ends; aborted once no call or slot needs it.
    _timer: AbortOnDropHandle<()>,
}

impl Bucket {
    fn start(end: Instant) -> Arc<Self> {
        Arc::new_cyclic(|this: &Weak<Bucket>| {
            let this = this.clone();
            let timer = tokio::spawn(async move {
                tokio::time::sleep_until(end).await;
                if let Some(bucket) = this.upgrade() {
                    bucket.fire();
                }
            });
            Bucket {
                fired: AtomicBool::new(false),
                wakers: Mutex::new(Slab::new()),
                _timer: AbortOnDropHandle::new(timer),
            }
        })
    }

    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        for waker in lock(&self.wakers).drain() {
            waker.wake();
        }
    }

    fn has_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

impl DeadlineTimers {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The bucket that fires at `due`, at most one slot late, for a call that started at
    /// `now`.
    fn bucket(&self, due: Instant, now: Instant) -> Arc<Bucket> {
        let timeout = due.saturating_duration_since(now);
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.iter().flatten().find(|s| s.start <= due && due <= s.end) {
            return slot.bucket.clone();
        }
        let end = due + (timeout / 64).clamp(MIN_SLOT, MAX_SLOT);
        let bucket = Bucket::start(end);
        // Replace the slot that ends first: it is the most likely to be over.
        let replaced = slots.iter_mut().min_by_key(|slot| slot.as_ref().map(|s| s.end)).expect("SLOTS is not zero");
        *replaced = Some(Slot { start: due, end, bucket: bucket.clone() });
        bucket
    }

    /// `fut`, failing with [`RpcError::Timeout`] once `deadline` has passed (`now` is when
    /// the call started); as is without a deadline.
    pub(crate) fn bound<F>(&self, deadline: Deadline, now: Instant, fut: F) -> WithDeadline<F> {
        WithDeadline { fut, bucket: deadline.instant().map(|due| self.bucket(due, now)), registered: None }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`DeadlineTimers::bound`]. Its waker is registered with the bucket on
    /// the first wait (and again only if it changes); later polls check with one atomic
    /// load whether the bucket fired.
    pub(crate) struct WithDeadline<F> {
        #[pin]
        fut: F,
        bucket: Option<Arc<Bucket>>,
        registered: Option<(usize, Waker)>,
    }

    impl<F> PinnedDrop for WithDeadline<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let (Some(bucket), Some((key, _))) = (this.bucket.as_ref(), this.registered.take()) {
                lock(&bucket.wakers).try_remove(key);
            }
        }
    }
}

impl<T, F: Future<Output = Result<T, RpcError>>> Future for WithDeadline<F> {
    type Output = Result<T, RpcError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.fut.poll(cx) {
            return Poll::Ready(output);
        }
        let Some(bucket) = this.bucket.as_ref() else { return Poll::Pending };
        if bucket.has_fired() {
            return Poll::Ready(Err(RpcError::Timeout));
        }
        if this.registered.as_ref().is_some_and(|(_, waker)| waker.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        let mut wakers = lock(&bucket.wakers);
        // Checked again under the lock: `fire` sets the flag before it takes the wakers.
        if bucket.has_fired() {
            return Poll::Ready(Err(RpcError::Timeout));
        }
        if let Some((key, _)) = this.registered.take() {
            wakers.try_remove(key);
        }
        let key = wakers.insert(cx.waker().clone());
        *this.registered = Some((key, cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> futures::future::Pending<Result<(), RpcError>> {
        futures::future::pending()
    }

    /// A deadline `timeout` from now, and now.
    fn after(timeout: Duration) -> (Deadline, Instant) {
        let now = Instant::now();
        (Deadline::At(now + timeout), now)
    }

    fn bucket(timers: &DeadlineTimers, timeout: Duration) -> Arc<Bucket> {
        let now = Instant::now();
        timers.bucket(now + timeout, now)
    }

    #[tokio::test(start_paused = true)]
    async fn calls_in_one_slot_share_a_timer_and_time_out_at_its_end() {
        let timers = DeadlineTimers::new();
        let first = bucket(&timers, Duration::from_millis(640));
        tokio::time::advance(Duration::from_millis(3)).await;
        let second = bucket(&timers, Duration::from_millis(640));
        assert!(Arc::ptr_eq(&first, &second), "deadlines 3 ms apart share a 10 ms slot");
        let other = bucket(&timers, Duration::from_secs(5));
        assert!(!Arc::ptr_eq(&first, &other), "a deadline in another slot has its own");

        let started = Instant::now();
        let (deadline, now) = after(Duration::from_millis(640));
        let result = timers.bound(deadline, now, never()).await;
        assert!(matches!(result, Err(RpcError::Timeout)), "got {result:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(640) && waited <= Duration::from_millis(651),
            "fires at the deadline, at most one slot (10 ms) late: {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_finishes_first_wins_and_no_timeout_means_none() {
        let timers = DeadlineTimers::new();
        let quick = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok::<_, RpcError>(7)
        };
        let (deadline, now) = after(Duration::from_millis(100));
        assert_eq!(timers.bound(deadline, now, quick).await.unwrap(), 7);
        let slow = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, RpcError>(8)
        };
        assert_eq!(
            timers.bound(Deadline::Never, Instant::now(), slow).await.unwrap(),
            8,
            "without a timeout the call waits"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn many_slots_in_use_at_once_still_each_fire_on_time() {
        let timers = DeadlineTimers::new();
        let started = Instant::now();
        let calls = (1..=10u64).map(|i| {
            let timers = &timers;
            async move {
                let (deadline, now) = after(Duration::from_millis(100 * i));
                let result = timers.bound(deadline, now, never()).await;
                (i, result, started.elapsed())
            }
        });
        for (i, result, waited) in futures::future::join_all(calls).await {
            assert!(matches!(result, Err(RpcError::Timeout)), "call {i}: {result:?}");
            let deadline = Duration::from_millis(100 * i);
            assert!(waited >= deadline && waited <= deadline + deadline / 64 + MIN_SLOT, "call {i}: {waited:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_call_leaves_no_waker_and_an_unused_timer_stops() {
        let timers = DeadlineTimers::new();
        let (deadline, now) = after(Duration::from_secs(1));
        let mut call = Box::pin(timers.bound(deadline, now, never()));
        assert!(futures::poll!(&mut call).is_pending());
        let bucket = bucket(&timers, Duration::from_secs(1));
        assert_eq!(lock(&bucket.wakers).len(), 1, "the waiting call registered its waker");
        drop(call);
        assert_eq!(lock(&bucket.wakers).len(), 0, "a dropped call takes its waker out");
        let weak = Arc::downgrade(&bucket);
        drop(bucket);
        drop(timers);
        assert!(weak.upgrade().is_none(), "nothing holds the bucket, so its timer task is aborted");
    }
}
