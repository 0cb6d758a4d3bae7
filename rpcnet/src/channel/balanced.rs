//! `Balanced`: a channel over many endpoints. Each call is placed by the balancer on an
//! eligible endpoint (suspects get a small share), admitted under the per-endpoint cap
//! (`admission.rs`), and recorded when it ends; the four call kinds are in `calls.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::admission::{Admission, Slot, Waiting};
use super::connection::Connector;
use super::endpoints::EndpointSet;
use super::members::{EndpointStats, Member};
use super::retry::RetryPolicy;
use super::source::EndpointSource;
use crate::balance::{Balancer, CallInfo, Endpoint, Outcome, TagFilter, nanos_since_epoch, to_suspects};
use crate::client::CallOptions;
use crate::deadline::Deadline;
use crate::error::RpcError;

/// How a balanced channel treats load and failures, as its builder set it.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Calls one endpoint may have in flight; `None`: no cap.
    pub(crate) max_in_flight: Option<u32>,
    /// When every endpoint is at its cap: wait for a slot until the deadline (`true`) or
    /// fail at once with `Overloaded` (`false`).
    pub(crate) queue: bool,
    /// Attempts per call, the first included.
    pub(crate) max_attempts: u32,
    /// Extra load retries may add (0.2 = 20%).
    pub(crate) retry_ratio: f64,
    /// Retries allowed each second whatever the ratio.
    pub(crate) min_retries_per_second: u32,
    /// The tag filter that chooses the endpoints.
    pub(crate) filter: Option<TagFilter>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_in_flight: None,
            queue: false,
            max_attempts: 3,
            retry_ratio: 0.2,
            min_retries_per_second: super::retry::DEFAULT_MIN_RETRIES_PER_SECOND,
            filter: None,
        }
    }
}

/// The balanced channel shared by the clones of a typed client, over connections that
/// `K` makes.
pub(crate) struct Balanced<K: Connector> {
    balancer: Arc<dyn Balancer>,
    pub(crate) endpoints: Arc<EndpointSet<K>>,
    pub(crate) admission: Admission,
    pub(crate) retry: RetryPolicy,
    /// The deadline of calls that set none, as the configuration says.
    pub(crate) default_timeout: Option<Duration>,
    /// Calls placed so far: which of them go to suspect endpoints follows from it.
    placed: AtomicU64,
    pub(crate) retries: metrics::Counter,
}

impl<K: Connector> std::fmt::Debug for Balanced<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balanced").field("endpoints", &self.endpoints).finish_non_exhaustive()
    }
}

impl<K: Connector> Balanced<K> {
    pub(crate) fn new(
        balancer: Arc<dyn Balancer>,
        connector: K,
        endpoints: Vec<Endpoint>,
        policy: Policy,
        default_timeout: Option<Duration>,
        source: Option<Arc<dyn EndpointSource>>,
    ) -> Self {
        Self {
            balancer,
            endpoints: Arc::new(EndpointSet::new(connector, endpoints, source, policy.filter)),
            admission: Admission::new(policy.max_in_flight, policy.queue),
            retry: RetryPolicy::new(policy.max_attempts, policy.retry_ratio, policy.min_retries_per_second),
            default_timeout,
            placed: AtomicU64::new(0),
            retries: metrics::counter!("rpcnet_client_retries_total"),
        }
    }

    pub(crate) fn endpoint_stats(&self) -> Vec<EndpointStats> {
        self.endpoints.stats()
    }

    /// What makes this channel's connections.
    pub(crate) fn connector(&self) -> &K {
        self.endpoints.connector()
    }

    /// Picks an endpoint for a call and takes a slot on it, waiting for one until `deadline`
    /// if the policy queues. `excluded` are endpoints this call already failed on.
    pub(crate) async fn place(
        &self,
        method: &str,
        options: &CallOptions,
        excluded: &[Arc<Member<K::Connection>>],
        deadline: Deadline,
    ) -> Result<Slot<K::Connection>, RpcError> {
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            if let Some(slot) = self.try_place(method, options, excluded, waiting.as_mut(), Instant::now())? {
                return Ok(slot);
            }
            self.admission.wait(&mut waiting, deadline).await?;
        }
    }

    /// One try of [`place`](Self::place), without waiting: the slot, an error, or `None`
    /// when the call is to wait for one (the policy queues, and every endpoint is full or
    /// calls queued earlier go first). `waiting` is the call's place in the queue, if any.
    pub(crate) fn try_place(
        &self,
        method: &str,
        options: &CallOptions,
        excluded: &[Arc<Member<K::Connection>>],
        waiting: Option<&mut Waiting<'_>>,
        now: Instant,
    ) -> Result<Option<Slot<K::Connection>>, RpcError> {
        let now = now.into_std();
        let now_ns = nanos_since_epoch(now);
        let snapshot = self.endpoints.current(now_ns);
        if snapshot.members.is_empty() {
            return Err(self.endpoints.no_endpoint(&snapshot));
        }
        // Most calls go to the healthy endpoints, a few to the suspect ones.
        let suspects = !snapshot.suspects.is_empty()
            && to_suspects(
                self.placed.fetch_add(1, Ordering::Relaxed),
                snapshot.eligible.len(),
                snapshot.suspects.len(),
            );
        let (first, second) = if suspects {
            ((&snapshot.suspects, &snapshot.suspect_members), (&snapshot.eligible, &snapshot.eligible_members))
        } else {
            ((&snapshot.eligible, &snapshot.eligible_members), (&snapshot.suspects, &snapshot.suspect_members))
        };
        // A retry avoids the endpoints that failed it, unless nothing else is left.
        type Untried<C> = (Vec<Endpoint>, Vec<Arc<Member<C>>>);
        let untried = |members: &[Arc<Member<K::Connection>>]| -> Untried<K::Connection> {
            members
                .iter()
                .filter(|m| !excluded.iter().any(|x| Arc::ptr_eq(x, m)))
                .map(|m| (m.endpoint.clone(), m.clone()))
                .unzip()
        };
        let filtered: Option<Untried<K::Connection>> = (!excluded.is_empty())
            .then(|| Some(untried(first.1)).filter(|(e, _)| !e.is_empty()).unwrap_or_else(|| untried(second.1)))
            .filter(|(endpoints, _)| !endpoints.is_empty());
        let (endpoints, members, generation) = match &filtered {
            // Generation 0: a one-off set that balancers must not cache.
            Some((endpoints, members)) => (endpoints.as_slice(), members.as_slice(), 0),
            None if suspects => (first.0.as_slice(), first.1.as_slice(), 0),
            None => (first.0.as_slice(), first.1.as_slice(), snapshot.generation),
        };
        // Calls already waiting for a slot go first: a new call queues behind them.
        if !self.admission.behind_others(waiting.is_some()) {
            let info = CallInfo { method, key: options.affinity_key(), now, generation };
            let index = match self.balancer.pick(endpoints, &info) {
                Some(index) if index < endpoints.len() => index,
                Some(index) => return Err(RpcError::InvalidPick { index, endpoints: endpoints.len() }),
                None => return Err(self.endpoints.no_endpoint(&snapshot)),
            };
            if let Some(slot) = self.admission.take(endpoints, members, index, now_ns) {
                if let Some(waiting) = waiting {
                    waiting.served = true;
                }
                return Ok(Some(slot));
            }
        }
        // Every endpoint is at its cap: shed, or wait.
        self.admission.full(endpoints.len())?;
        Ok(None)
    }

    /// Records a call that ended at `now` on its endpoint, the balancer and the metrics. A
    /// service error is the server's own answer: for the endpoint it is a success (a sign
    /// of life, no error, no ejection), whatever it means to the caller.
    pub(crate) fn finish<T>(&self, slot: &Slot<K::Connection>, result: &Result<T, RpcError>, now: Instant) {
        let now = now.into_std();
        let now_ns = nanos_since_epoch(now);
        let latency = Duration::from_nanos(now_ns.saturating_sub(slot.picked_ns));
        // A refusal by policy is the answer of a healthy server, as a service error is.
        let success = matches!(result, Ok(_) | Err(RpcError::Service(_) | RpcError::PermissionDenied(_)));
        let member = &slot.member;
        member.endpoint.record_at(latency, success, now_ns);
        self.balancer.observe(&member.endpoint, &Outcome { latency, success, now });
        member.metrics.calls.increment(1);
        member.metrics.latency.record(latency.as_secs_f64());
        // Answers are not health signals: they come as often as the load sends calls, so a
        // worker whose load stopped would look late. Pings are (`endpoints.rs`).
        if success {
            member.succeeded();
        } else {
            member.metrics.errors.increment(1);
        }
    }

    /// After a failed attempt on `slot`: ejects its endpoint if the verdict says so (once:
    /// not if it left the set or is ejected already).
    pub(crate) fn eject_if(&self, eject: bool, slot: &Slot<K::Connection>, err: &RpcError, now: Instant) {
        let member = &slot.member;
        if eject && !member.has_departed() && !member.is_ejected(nanos_since_epoch(now.into_std())) {
            self.endpoints.eject(member, err);
        }
    }
}
