//! A channel over many endpoints: each call is placed by the balancer on an eligible
//! endpoint under its in-flight cap (or waits for a slot, or is shed), suspect endpoints
//! getting a small share (`health.rs`), and a call that never reached a server (or, for
//! idempotent methods, whose server died) goes to another one, within the retry budget and
//! the call's deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::Stream;
use tokio::sync::Notify;

use super::health;
use super::members::{EndpointStats, Member, Snapshot};
use super::retry::RetryBudget;
use super::source::EndpointSource;
use crate::balance::{Balancer, CallInfo, Endpoint, InFlight, Outcome, TagFilter, nanos_since_epoch};
use crate::client::ClientEndpoint;
use crate::{CallOptions, RpcClient, RpcConfig, RpcError, RpcStream};

/// How a balanced channel treats load and failures.
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
            min_retries_per_second: super::DEFAULT_MIN_RETRIES_PER_SECOND,
            filter: None,
        }
    }
}

/// The balanced channel shared by the clones of a typed client. It keeps time (ejections,
/// readmissions) in nanoseconds on the endpoints' clock ([`nanos_since_epoch`]), so that a
/// call converts a clock reading once for the channel and the endpoint.
pub(crate) struct Balanced {
    balancer: Arc<dyn Balancer>,
    snapshot: ArcSwap<Snapshot>,
    generation: AtomicU64,
    /// Serialises snapshot rebuilds.
    rebuilding: std::sync::Mutex<()>,
    endpoint: ClientEndpoint,
    config: RpcConfig,
    policy: Policy,
    budget: RetryBudget,
    /// Notified when a call slot frees, if calls queue for slots. Waiters are woken oldest
    /// first (`Notify::notify_one` is FIFO).
    slot_freed: Arc<Notify>,
    /// Calls waiting for a slot: while any wait, a new call joins the queue behind them
    /// instead of taking the slot that was freed for the oldest.
    queued: AtomicUsize,
    retries: metrics::Counter,
    shed: metrics::Counter,
    /// Where the endpoints come from, when they change at run time.
    source: Option<Arc<dyn EndpointSource>>,
    /// Calls placed so far: which of them go to suspect endpoints follows from it.
    placed: AtomicU64,
}

impl std::fmt::Debug for Balanced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balanced")
            .field("endpoints", &self.snapshot.load().members.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A call's place on an endpoint: counts it in flight until dropped.
struct Slot {
    _in_flight: InFlight,
    member: Arc<Member>,
    freed: Option<Arc<Notify>>,
    /// When the endpoint was picked, in nanoseconds since the endpoints' epoch: the call's
    /// latency counts from here (the clock is read once for both).
    picked_ns: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.member.metrics.in_flight.decrement(1.0);
        if let Some(freed) = &self.freed {
            freed.notify_one();
        }
    }
}

impl Balanced {
    pub(crate) fn new(
        balancer: Arc<dyn Balancer>,
        endpoints: Vec<Endpoint>,
        config: RpcConfig,
        policy: Policy,
        source: Option<Arc<dyn EndpointSource>>,
    ) -> Result<Self, RpcError> {
        let endpoint = ClientEndpoint::new(&config)?;
        let budget = RetryBudget::new(policy.retry_ratio, policy.min_retries_per_second);
        let members = endpoints.into_iter().map(|e| Arc::new(Member::new(e))).collect();
        Ok(Self {
            balancer,
            snapshot: ArcSwap::from_pointee(Snapshot::new(1, members, 0)),
            generation: AtomicU64::new(1),
            rebuilding: std::sync::Mutex::new(()),
            endpoint,
            config,
            policy,
            budget,
            slot_freed: Arc::new(Notify::new()),
            queued: AtomicUsize::new(0),
            retries: metrics::counter!("rpcnet_client_retries_total"),
            shed: metrics::counter!("rpcnet_client_shed_total"),
            source,
            placed: AtomicU64::new(0),
        })
    }

    /// Follows the source's endpoints (those the filter selects) until the channel is
    /// dropped.
    pub(crate) fn follow(self: &Arc<Self>) {
        let Some(source) = &self.source else { return };
        let mut updates = source.endpoints();
        let weak = Arc::downgrade(self);
        let apply = |balanced: &Balanced, endpoints: &[Endpoint]| {
            let selected: Vec<Endpoint> = endpoints
                .iter()
                .filter(|e| balanced.policy.filter.as_ref().is_none_or(|f| f.matches(e.tags())))
                .cloned()
                .collect();
            balanced.set_endpoints(selected);
        };
        apply(self, &updates.borrow_and_update());
        if let Some(interval) = source.ping_interval() {
            super::health::spawn_pings(Arc::downgrade(self), interval);
        }
        tokio::spawn(async move {
            while updates.changed().await.is_ok() {
                let Some(balanced) = weak.upgrade() else { return };
                let endpoints = updates.borrow_and_update().clone();
                apply(&balanced, &endpoints);
            }
        });
    }

    /// Every member of the current set.
    pub(crate) fn members(&self) -> Vec<Arc<Member>> {
        self.snapshot.load().members.clone()
    }

    pub(crate) fn source(&self) -> Option<Arc<dyn EndpointSource>> {
        self.source.clone()
    }

    /// Rebuilds the snapshot from `members` (or the current ones) with a new generation.
    fn rebuild(&self, members: Option<Vec<Arc<Member>>>) {
        let _one_at_a_time = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        let members = members.unwrap_or_else(|| self.snapshot.load().members.clone());
        self.store_snapshot(members);
    }

    /// Stores the snapshot of `members` with a new generation; the caller holds `rebuilding`.
    fn store_snapshot(&self, members: Vec<Arc<Member>>) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let now = nanos_since_epoch(Instant::now());
        self.snapshot.store(Arc::new(Snapshot::new(generation, members, now)));
    }

    /// Replaces the endpoints; members whose id and address stay keep their connection and
    /// counters (with new tags, if those changed), and take the health the source gives them
    /// now. Idempotent calls in flight on a member that goes move to another endpoint; a
    /// member that stays, retagged or suspect, keeps its calls.
    pub(crate) fn set_endpoints(&self, endpoints: Vec<Endpoint>) {
        let current = self.snapshot.load();
        let mut kept: Vec<&Arc<Member>> = Vec::new();
        let members: Vec<Arc<Member>> = endpoints
            .into_iter()
            .map(|endpoint| {
                let known = current
                    .members
                    .iter()
                    .find(|m| m.endpoint.id() == endpoint.id() && m.endpoint.addr() == endpoint.addr());
                let member = match known {
                    Some(old) => {
                        kept.push(old);
                        let unchanged =
                            old.endpoint.tags() == endpoint.tags() && old.endpoint.label() == endpoint.label();
                        if unchanged { old.clone() } else { Arc::new(old.updated(endpoint)) }
                    }
                    None => Arc::new(Member::new(endpoint)),
                };
                member.set_suspect(self.source.as_ref().is_some_and(|s| s.is_suspect(&member.endpoint)));
                member
            })
            .collect();
        for gone in current.members.iter().filter(|m| !kept.iter().any(|kept| Arc::ptr_eq(kept, m))) {
            gone.depart();
        }
        self.rebuild(Some(members));
    }

    /// The snapshot for a new call, readmitting endpoints whose ejection ended.
    fn current(&self, now_ns: u64) -> arc_swap::Guard<Arc<Snapshot>> {
        let snapshot = self.snapshot.load();
        if snapshot.next_readmission <= now_ns {
            let seen = snapshot.generation;
            drop(snapshot);
            self.readmit(seen);
            return self.snapshot.load();
        }
        snapshot
    }

    /// Rebuilds the snapshot of generation `seen` to readmit endpoints, unless another call
    /// already did: calls that saw the same due readmission rebuild once between them, so
    /// the generation (and every balancer's cached ring) changes once.
    fn readmit(&self, seen: u64) {
        let _one_at_a_time = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot.load();
        if current.generation != seen {
            return;
        }
        let members = current.members.clone();
        drop(current);
        self.store_snapshot(members);
    }

    /// Connects to every endpoint at once; those that fail are ejected. Fails only if none
    /// can be reached, with the first error.
    pub(crate) async fn connect_all(&self) -> Result<(), RpcError> {
        let members = self.snapshot.load().members.clone();
        let attempts =
            members.iter().map(|m| async move { (m, m.client(&self.endpoint, &self.config).await.map(drop)) });
        let mut first_error = None;
        let mut connected = 0;
        for (member, result) in futures::future::join_all(attempts).await {
            match result {
                Ok(()) => connected += 1,
                Err(err) => {
                    self.eject(member, &err);
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) if connected == 0 => Err(err),
            _ => Ok(()),
        }
    }

    pub(crate) fn endpoint_stats(&self) -> Vec<EndpointStats> {
        let now = Instant::now();
        let now_ns = nanos_since_epoch(now);
        self.snapshot.load().members.iter().map(|m| EndpointStats::of(m, now, now_ns)).collect()
    }

    fn no_endpoint(&self, snapshot: &Snapshot) -> RpcError {
        RpcError::NoEndpointAvailable {
            filter: self.policy.filter.as_ref().map(ToString::to_string),
            known: snapshot.members.len(),
            healthy: snapshot.eligible.len(),
        }
    }

    /// Picks an endpoint for a call and takes a slot on it, waiting for one until `deadline`
    /// if the policy says so. `excluded` are endpoints this call already failed on.
    async fn acquire(
        &self,
        method: &str,
        options: &CallOptions,
        excluded: &[Arc<Member>],
        deadline: Option<Instant>,
    ) -> Result<Slot, RpcError> {
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            if let Some(slot) = self.try_acquire(method, options, excluded, waiting.as_mut(), Instant::now())? {
                return Ok(slot);
            }
            let freed = self.slot_freed.notified();
            let waiting = waiting.get_or_insert_with(|| Waiting::new(self));
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), freed).await.is_err() {
                        return Err(RpcError::Timeout);
                    }
                }
                None => freed.await,
            }
            waiting.woken = true;
        }
    }

    /// One try of [`acquire`](Self::acquire), without waiting: the slot, an error, or `None`
    /// when the call is to wait for one (the policy queues, and every endpoint is full or
    /// calls queued earlier go first). `waiting` is the call's place in the queue, if any.
    fn try_acquire(
        &self,
        method: &str,
        options: &CallOptions,
        excluded: &[Arc<Member>],
        waiting: Option<&mut Waiting<'_>>,
        now: Instant,
    ) -> Result<Option<Slot>, RpcError> {
        let now_ns = nanos_since_epoch(now);
        let snapshot = self.current(now_ns);
        if snapshot.members.is_empty() {
            return Err(self.no_endpoint(&snapshot));
        }
        // Most calls go to the healthy endpoints, a few to the suspect ones.
        let suspects = !snapshot.suspects.is_empty()
            && health::to_suspects(
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
        let untried = |members: &[Arc<Member>]| -> (Vec<Endpoint>, Vec<Arc<Member>>) {
            members
                .iter()
                .filter(|m| !excluded.iter().any(|x| Arc::ptr_eq(x, m)))
                .map(|m| (m.endpoint.clone(), m.clone()))
                .unzip()
        };
        let filtered: Option<(Vec<Endpoint>, Vec<Arc<Member>>)> = (!excluded.is_empty())
            .then(|| Some(untried(first.1)).filter(|(e, _)| !e.is_empty()).unwrap_or_else(|| untried(second.1)))
            .filter(|(endpoints, _)| !endpoints.is_empty());
        let (endpoints, members, generation) = match &filtered {
            // Generation 0: a one-off set that balancers must not cache.
            Some((endpoints, members)) => (endpoints.as_slice(), members.as_slice(), 0),
            None if suspects => (first.0.as_slice(), first.1.as_slice(), 0),
            None => (first.0.as_slice(), first.1.as_slice(), snapshot.generation),
        };
        // Calls already waiting for a slot go first: a new call queues behind them.
        let behind_others = self.policy.queue && waiting.is_none() && self.queued.load(Ordering::Acquire) > 0;
        if !behind_others {
            let info = CallInfo { method, key: options.affinity_key(), now, generation };
            let index = match self.balancer.pick(endpoints, &info) {
                Some(index) if index < endpoints.len() => index,
                Some(index) => return Err(RpcError::InvalidPick { index, endpoints: endpoints.len() }),
                None => return Err(self.no_endpoint(&snapshot)),
            };
            if let Some(slot) = self.take_slot(endpoints, members, index, now_ns) {
                if let Some(waiting) = waiting {
                    waiting.served = true;
                }
                return Ok(Some(slot));
            }
        }
        // Every endpoint is at its cap.
        if !self.policy.queue {
            self.shed.increment(1);
            let cap = self.policy.max_in_flight.unwrap_or(u32::MAX);
            return Err(RpcError::Overloaded(format!(
                "all {} endpoints have {cap} calls in flight (the cap set with max_in_flight_per_endpoint)",
                endpoints.len()
            )));
        }
        Ok(None)
    }

    /// A slot on the picked endpoint, or else on the others under their cap, least loaded
    /// first (ties: the first after the pick): if another call takes the room of the one
    /// tried in between, the next least loaded is tried, until none has room.
    fn take_slot(&self, endpoints: &[Endpoint], members: &[Arc<Member>], picked: usize, now_ns: u64) -> Option<Slot> {
        let slot = |index: usize, in_flight: InFlight| {
            let member = members[index].clone();
            member.metrics.in_flight.increment(1.0);
            let freed = self.policy.queue.then(|| self.slot_freed.clone());
            Slot { _in_flight: in_flight, member, freed, picked_ns: now_ns }
        };
        let Some(cap) = self.policy.max_in_flight else {
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

    /// Makes the connection of the slot's endpoint, which has none yet (see
    /// [`Member::made_client`]); a failure to connect ejects the endpoint.
    async fn connect<'s>(&self, slot: &'s Slot) -> Result<&'s RpcClient, RpcError> {
        // Boxed: connecting happens once per endpoint, and its future would bloat every call's.
        match Box::pin(slot.member.client(&self.endpoint, &self.config)).await {
            Ok(client) => Ok(client),
            Err(err) => {
                self.eject(&slot.member, &err);
                Err(err)
            }
        }
    }

    fn eject(&self, member: &Member, err: &RpcError) {
        let backoff = member.eject(nanos_since_epoch(Instant::now()));
        tracing::warn!(endpoint = member.endpoint.id(), error = %err, ?backoff, "endpoint ejected");
        self.rebuild(None);
    }

    /// Records a finished call on its endpoint, the balancer and the metrics. A service
    /// error is the server's own answer: for the endpoint it is a success (a sign of life,
    /// no error, no ejection), whatever it means to the caller.
    fn finish<T>(&self, slot: &Slot, result: &Result<T, RpcError>) {
        let now = Instant::now();
        let now_ns = nanos_since_epoch(now);
        let latency = Duration::from_nanos(now_ns.saturating_sub(slot.picked_ns));
        let success = matches!(result, Ok(_) | Err(RpcError::Service(_)));
        let member = &slot.member;
        member.endpoint.record_at(latency, success, now_ns);
        self.balancer.observe(&member.endpoint, &Outcome { latency, success, now });
        member.metrics.calls.increment(1);
        member.metrics.latency.record(latency.as_secs_f64());
        // Answers are not health signals: they come as often as the load sends calls, so a
        // worker whose load stopped would look late. Pings are (`health.rs`).
        if success {
            member.succeeded();
        } else {
            member.metrics.errors.increment(1);
        }
    }

    /// Whether a failed attempt may go to another endpoint, and whether its endpoint is to
    /// be ejected.
    fn after_failure(&self, err: &RpcError, idempotent: bool, attempt: u32, deadline: Option<Instant>) -> (bool, bool) {
        let connection_failed = matches!(
            err,
            RpcError::Connection(_) | RpcError::ConnectionLost(_) | RpcError::Unavailable(_) | RpcError::Tls(_)
        );
        let safe = err.is_retry_safe() || (idempotent && matches!(err, RpcError::ConnectionLost(_)));
        let now = Instant::now();
        let retry = safe
            && attempt < self.policy.max_attempts
            && deadline.is_none_or(|d| d > now)
            && self.budget.try_withdraw(now);
        (retry, connection_failed)
    }

    /// The options of one attempt: what is left of the call's deadline at `now`.
    fn options_for(options: CallOptions, deadline: Option<Instant>, now: Instant) -> Result<CallOptions, RpcError> {
        match deadline {
            None => Ok(options.without_timeout()),
            Some(deadline) => match deadline.checked_duration_since(now) {
                Some(left) if !left.is_zero() => Ok(options.with_timeout(left)),
                _ => Err(RpcError::Timeout),
            },
        }
    }

    pub(crate) async fn unary(
        &self,
        method: &str,
        idempotent: bool,
        payload: Bytes,
        options: CallOptions,
    ) -> Result<Bytes, RpcError> {
        // One clock reading serves the deadline, the pick and the first attempt's timeout,
        // unless the call waits for a slot or a connection in between.
        let mut now = Instant::now();
        let deadline = options.resolve(self.config.default_timeout).map(|t| now + t);
        self.budget.deposit();
        let mut failed: Vec<Arc<Member>> = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                now = Instant::now();
            }
            let slot = match self.try_acquire(method, &options, &failed, None, now)? {
                Some(slot) => slot,
                // Boxed: waiting for a slot is rare, and its state would bloat every call's.
                None => {
                    let slot = Box::pin(self.acquire(method, &options, &failed, deadline)).await?;
                    now = Instant::now();
                    slot
                }
            };
            let client = match slot.member.made_client() {
                Some(client) => Ok(client),
                None => {
                    let client = self.connect(&slot).await;
                    now = Instant::now();
                    client
                }
            };
            let result = match client {
                Ok(client) => {
                    let options = Self::options_for(options, deadline, now)?;
                    // The call future is built where it is awaited: built first and moved
                    // there, it was copied once per call (~90 instructions).
                    if idempotent {
                        // A dead worker never answers and its connection takes the idle
                        // timeout to notice; once membership drops it, repeat the call elsewhere.
                        tokio::select! {
                            biased;
                            result = client.call_with(method, payload.clone(), options) => result,
                            () = slot.member.departed() => Err(RpcError::ConnectionLost(format!(
                                "endpoint {} left while the call was in flight",
                                slot.member.endpoint.label()
                            ))),
                        }
                    } else {
                        client.call_with(method, payload.clone(), options).await
                    }
                }
                Err(err) => Err(err),
            };
            self.finish(&slot, &result);
            let err = match result {
                Ok(response) => return Ok(response),
                Err(err) => err,
            };
            let (retry, eject) = self.after_failure(&err, idempotent, attempt, deadline);
            let gone = slot.member.has_departed();
            if eject && !gone && !slot.member.is_ejected(nanos_since_epoch(Instant::now())) {
                self.eject(&slot.member, &err);
            }
            if !retry {
                return Err(err);
            }
            tracing::debug!(method, endpoint = slot.member.endpoint.id(), error = %err, attempt, "retrying on another endpoint");
            self.retries.increment(1);
            failed.push(slot.member.clone());
        }
    }

    /// Places a streaming call: an endpoint that cannot be connected to is ejected and the
    /// call goes to another (nothing was sent yet); once the streams start, it stays.
    /// `queue_deadline` bounds the wait for a slot, `deadline` the call.
    async fn place_stream(
        &self,
        method: &str,
        options: &CallOptions,
        deadline: Option<Instant>,
        queue_deadline: Option<Instant>,
    ) -> Result<(Slot, RpcClient), RpcError> {
        let mut failed: Vec<Arc<Member>> = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let slot = self.acquire(method, options, &failed, queue_deadline).await?;
            let client = match slot.member.made_client() {
                Some(client) => Ok(client),
                None => self.connect(&slot).await,
            };
            match client.cloned() {
                Ok(client) => return Ok((slot, client)),
                Err(err) => {
                    let (retry, _) = self.after_failure(&err, false, attempt, deadline);
                    if !retry {
                        return Err(err);
                    }
                    self.retries.increment(1);
                    failed.push(slot.member.clone());
                }
            }
        }
    }

    /// Keeps `slot` (the call in flight) until the response stream ends, fails or is dropped.
    fn hold(slot: Slot, stream: RpcStream<Bytes>) -> RpcStream<Bytes> {
        RpcStream::new(Held { stream, slot: Some(slot) })
    }

    /// When a streaming call with a response stream stops waiting for a slot: at its own
    /// deadline, else at the configured default one (never, if the call was made
    /// `without_timeout`). The stream itself has no default deadline.
    fn queue_deadline(&self, options: &CallOptions) -> Option<Instant> {
        options.resolve(self.config.default_timeout).map(|t| Instant::now() + t)
    }

    pub(crate) async fn server_streaming(
        &self,
        method: &str,
        payload: Bytes,
        options: CallOptions,
    ) -> Result<RpcStream<Bytes>, RpcError> {
        let deadline = options.timeout().flatten().map(|t| Instant::now() + t);
        let queue_deadline = self.queue_deadline(&options);
        let (slot, client) = self.place_stream(method, &options, deadline, queue_deadline).await?;
        let result = client.server_streaming_with(method, payload, Self::stream_options(options, deadline)?).await;
        self.finish(&slot, &result);
        Ok(Self::hold(slot, result?))
    }

    pub(crate) async fn client_streaming(
        &self,
        method: &str,
        requests: RpcStream<Bytes>,
        options: CallOptions,
    ) -> Result<Bytes, RpcError> {
        let deadline = options.resolve(self.config.default_timeout).map(|t| Instant::now() + t);
        let (slot, client) = self.place_stream(method, &options, deadline, deadline).await?;
        let result =
            client.client_streaming_with(method, requests, Self::options_for(options, deadline, Instant::now())?).await;
        self.finish(&slot, &result);
        result
    }

    pub(crate) async fn bidi_streaming(
        &self,
        method: &str,
        requests: RpcStream<Bytes>,
        options: CallOptions,
    ) -> Result<RpcStream<Bytes>, RpcError> {
        let deadline = options.timeout().flatten().map(|t| Instant::now() + t);
        let queue_deadline = self.queue_deadline(&options);
        let (slot, client) = self.place_stream(method, &options, deadline, queue_deadline).await?;
        let result = client.bidi_streaming_with(method, requests, Self::stream_options(options, deadline)?).await;
        self.finish(&slot, &result);
        Ok(Self::hold(slot, result?))
    }

    /// Streaming responses have no default deadline; an explicit one covers the whole call.
    fn stream_options(options: CallOptions, deadline: Option<Instant>) -> Result<CallOptions, RpcError> {
        match deadline {
            None => Ok(options),
            Some(_) => Self::options_for(options, deadline, Instant::now()),
        }
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

/// A call's place in the queue for a slot, counted in `Balanced::queued` while it lasts.
struct Waiting<'a> {
    balanced: &'a Balanced,
    /// A slot freed and this call was woken for it.
    woken: bool,
    /// This call took a slot.
    served: bool,
}

impl<'a> Waiting<'a> {
    fn new(balanced: &'a Balanced) -> Self {
        balanced.queued.fetch_add(1, Ordering::AcqRel);
        Self { balanced, woken: false, served: false }
    }
}

impl Drop for Waiting<'_> {
    /// A call that leaves the queue without a slot (its deadline passed, it was dropped)
    /// after being woken passes the wake-up on, so that the slot freed for it goes to the
    /// next waiter instead of staying free while others wait.
    fn drop(&mut self) {
        self.balanced.queued.fetch_sub(1, Ordering::AcqRel);
        if self.woken && !self.served {
            self.balanced.slot_freed.notify_one();
        }
    }
}

/// A response stream that holds its call's slot until it ends or fails, so that a finished
/// stream the caller still holds no longer counts in flight.
struct Held {
    stream: RpcStream<Bytes>,
    slot: Option<Slot>,
}

impl Stream for Held {
    type Item = Result<Bytes, RpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = Pin::new(&mut this.stream).poll_next(cx);
        if matches!(item, Poll::Ready(None | Some(Err(_)))) {
            this.slot = None;
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::balance::RoundRobin;

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

    #[tokio::test]
    async fn callers_that_see_one_due_readmission_rebuild_the_snapshot_once() {
        let balancer = Arc::new(RoundRobin::new());
        let config = RpcConfig::dev("127.0.0.1:0");
        let balanced = Balanced::new(balancer, endpoints(2), config, Policy::default(), None).unwrap();
        let member = balanced.snapshot.load().members[0].clone();
        balanced.eject(&member, &RpcError::Connection("test".into()));
        let ejected = balanced.snapshot.load().generation;
        assert_eq!(balanced.snapshot.load().eligible.len(), 1, "the ejected endpoint is left out");
        // Two calls saw the ejection's snapshot once its back-off had passed.
        let later = Instant::now() + Duration::from_secs(1);
        let first = balanced.current(nanos_since_epoch(later)).generation;
        balanced.readmit(ejected);
        assert_eq!(first, ejected + 1, "the first call rebuilds");
        assert_eq!(balanced.snapshot.load().generation, first, "the second finds it rebuilt and leaves it");
    }
}
