//! Admission: a call takes a slot on an endpoint under its cap of calls in flight, on the
//! one the balancer picked or else the least loaded with room; when every endpoint is full
//! it is shed (`Overloaded`), or it waits in a FIFO queue for a slot until its deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use super::members::Member;
use crate::balance::{Endpoint, InFlight};
use crate::deadline::Deadline;
use crate::error::RpcError;

/// How a channel admits calls onto endpoints.
#[derive(Debug)]
pub(crate) struct Admission {
    /// Calls one endpoint may have in flight; `None`: no cap.
    max_in_flight: Option<u32>,
    /// When every endpoint is at its cap: wait for a slot until the deadline (`true`) or
    /// fail at once with `Overloaded` (`false`).
    queue: bool,
    /// Notified when a slot frees, if calls queue for slots. Waiters are woken oldest
    /// first (`Notify::notify_one` is FIFO).
    slot_freed: Arc<Notify>,
    /// Calls waiting for a slot: while any wait, a new call joins the queue behind them
    /// instead of taking the slot that was freed for the oldest.
    queued: AtomicUsize,
    shed: metrics::Counter,
}

/// A call's place on an endpoint: counts it in flight until dropped.
#[derive(Debug)]
pub(crate) struct Slot<C> {
    _in_flight: InFlight,
    pub(crate) member: Arc<Member<C>>,
    freed: Option<Arc<Notify>>,
    /// When the endpoint was picked, in nanoseconds since the endpoints' epoch: the call's
    /// latency counts from here.
    pub(crate) picked_ns: u64,
}

impl<C> Drop for Slot<C> {
    fn drop(&mut self) {
        self.member.metrics.in_flight.decrement(1.0);
        if let Some(freed) = &self.freed {
            freed.notify_one();
        }
    }
}

impl Admission {
    pub(crate) fn new(max_in_flight: Option<u32>, queue: bool) -> Self {
        Self {
            max_in_flight,
            queue,
            slot_freed: Arc::new(Notify::new()),
            queued: AtomicUsize::new(0),
            shed: metrics::counter!("rpcnet_client_shed_total"),
        }
    }

    /// Whether a new call (not one already waiting) must queue behind calls waiting for a
    /// slot.
    pub(crate) fn behind_others(&self, waiting: bool) -> bool {
        self.queue && !waiting && self.queued.load(Ordering::Acquire) > 0
    }

    /// A slot on the picked endpoint, or else on the others under their cap, least loaded
    /// first (ties: the first after the pick): if another call takes the room of the one
    /// tried in between, the next least loaded is tried, until none has room.
    pub(crate) fn take<C>(
        &self,
        endpoints: &[Endpoint],
        members: &[Arc<Member<C>>],
        picked: usize,
        now_ns: u64,
    ) -> Option<Slot<C>> {
        let slot = |index: usize, in_flight: InFlight| {
            let member = members[index].clone();
            member.metrics.in_flight.increment(1.0);
            let freed = self.queue.then(|| self.slot_freed.clone());
            Slot { _in_flight: in_flight, member, freed, picked_ns: now_ns }
        };
        let Some(cap) = self.max_in_flight else {
            return Some(slot(picked, endpoints[picked].start_call()));
        };
        if let Some(in_flight) = endpoints[picked].try_start_call(cap) {
            return Some(slot(picked, in_flight));
        }
        // Each failed try means an endpoint filled up meanwhile: at most one try per endpoint
        // unless slots also free meanwhile, so the bound only stops a livelock.
        for _ in 0..endpoints.len().saturating_mul(2) {
            let index = least_loaded_with_room(endpoints, picked, cap)?;
            if let Some(in_flight) = endpoints[index].try_start_call(cap) {
                return Some(slot(index, in_flight));
            }
        }
        None
    }

    /// What a call that found every one of `endpoints` full gets: `Ok` if it is to wait for
    /// a slot, else `Overloaded` (the call is shed).
    pub(crate) fn full(&self, endpoints: usize) -> Result<(), RpcError> {
        if self.queue {
            return Ok(());
        }
        self.shed.increment(1);
        let cap = self.max_in_flight.unwrap_or(u32::MAX);
        Err(RpcError::Overloaded(format!(
            "all {endpoints} endpoints have {cap} calls in flight (the cap set with max_in_flight_per_endpoint)"
        )))
    }

    /// Waits in the queue until a slot frees (then the call tries again) or `deadline`
    /// passes. `waiting` is the call's place in the queue, taken on its first wait.
    pub(crate) async fn wait<'a>(
        &'a self,
        waiting: &mut Option<Waiting<'a>>,
        deadline: Deadline,
    ) -> Result<(), RpcError> {
        let freed = self.slot_freed.notified();
        let waiting = waiting.get_or_insert_with(|| Waiting::new(self));
        match deadline.instant() {
            Some(deadline) => {
                if tokio::time::timeout_at(deadline, freed).await.is_err() {
                    return Err(RpcError::Timeout);
                }
            }
            None => freed.await,
        }
        waiting.woken = true;
        Ok(())
    }
}

/// The least loaded endpoint under `cap`, looking from the one after `picked` round to
/// `picked` itself, so that ties go to the next endpoints in turn rather than to the first.
fn least_loaded_with_room(endpoints: &[Endpoint], picked: usize, cap: u32) -> Option<usize> {
    let n = endpoints.len();
    let mut best: Option<(usize, u32)> = None;
    let mut index = picked;
    for _ in 0..n {
        index = if index + 1 == n { 0 } else { index + 1 };
        let load = endpoints[index].in_flight();
        if load < cap && best.is_none_or(|(_, least)| load < least) {
            best = Some((index, load));
        }
    }
    best.map(|(index, _)| index)
}

/// A call's place in the queue for a slot, counted in `Admission::queued` while it lasts.
#[derive(Debug)]
pub(crate) struct Waiting<'a> {
    admission: &'a Admission,
    /// A slot freed and this call was woken for it.
    woken: bool,
    /// This call took a slot.
    pub(crate) served: bool,
}

impl<'a> Waiting<'a> {
    fn new(admission: &'a Admission) -> Self {
        admission.queued.fetch_add(1, Ordering::AcqRel);
        Self { admission, woken: false, served: false }
    }
}

impl Drop for Waiting<'_> {
    /// A call that leaves the queue without a slot (its deadline passed, it was dropped)
    /// after being woken passes the wake-up on, so that the slot freed for it goes to the
    /// next waiter instead of staying free while others wait.
    fn drop(&mut self) {
        self.admission.queued.fetch_sub(1, Ordering::AcqRel);
        if self.woken && !self.served {
            self.admission.slot_freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(n: usize) -> Vec<Endpoint> {
        (0..n).map(|i| Endpoint::new(format!("e{i}"), format!("127.0.0.1:{}", 1000 + i).parse().unwrap())).collect()
    }

    #[test]
    fn a_full_pick_falls_back_to_the_least_loaded_with_room_next_in_turn() {
        let set = endpoints(4);
        let _busy = [set[0].start_call(), set[1].start_call(), set[1].start_call(), set[3].start_call()];
        assert_eq!(least_loaded_with_room(&set, 0, 2), Some(2), "endpoint 2 is idle");
        let _more = set[2].start_call();
        // Loads 1, 2, 1, 1 under a cap of 2: the first with load 1 after the pick.
        assert_eq!(least_loaded_with_room(&set, 0, 2), Some(2));
        assert_eq!(least_loaded_with_room(&set, 2, 2), Some(3));
        assert_eq!(least_loaded_with_room(&set, 3, 2), Some(0), "past the end: round to the start");
        assert_eq!(least_loaded_with_room(&set, 0, 1), None, "every endpoint at a cap of 1");
    }
}
