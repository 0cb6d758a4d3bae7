//! `ClusterClient`: raw-bytes calls to the workers of a cluster, balanced, with failover,
//! as the rpcnet book shows it. Typed clients get the same through
//! `XClient::builder().registry(registry)`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::NodeId;
use super::registry::{WorkerInfo, WorkerRegistry};
use crate::channel::{Channel, ClientBuilder, DEFAULT_MIN_RETRIES_PER_SECOND, MethodPolicy, TypedClient};
use crate::client::{CallOptions, RpcClient};
use crate::config::RpcConfig;
use crate::error::RpcError;
use crate::transport::OutgoingMessage;

/// How a [`ClusterClient`] calls workers. The TLS configuration is required: set it with
/// [`with_rpc_config`](Self::with_rpc_config), or start from [`dev`](Self::dev).
#[derive(Debug, Clone)]
pub struct ClusterClientConfig {
    rpc: Option<RpcConfig>,
    timeout: Option<Duration>,
    max_attempts: u32,
    retry_budget: f64,
    max_in_flight_per_worker: Option<u32>,
    min_retries_per_second: u32,
    /// Every method is safe to repeat.
    all_idempotent: bool,
    /// These methods are safe to repeat.
    idempotent_methods: BTreeSet<String>,
}

impl Default for ClusterClientConfig {
    /// No TLS configuration yet (calls fail until one is set), a 30 s deadline, three
    /// attempts per call within a retry budget of 20% of calls plus 10 retries a second, no
    /// per-worker cap, no method idempotent.
    fn default() -> Self {
        Self {
            rpc: None,
            timeout: Some(Duration::from_secs(30)),
            max_attempts: 3,
            retry_budget: 0.2,
            max_in_flight_per_worker: None,
            min_retries_per_second: DEFAULT_MIN_RETRIES_PER_SECOND,
            all_idempotent: false,
            idempotent_methods: BTreeSet::new(),
        }
    }
}

impl ClusterClientConfig {
    /// The defaults with the development TLS configuration ([`RpcConfig::dev`]): trusts
    /// only the development CA (shared by this user's processes, see [`DevPki`](crate::transport::DevPki)). For tests and demos.
    pub fn dev() -> Self {
        Self::default().with_rpc_config(RpcConfig::dev("127.0.0.1:0"))
    }

    /// TLS, limits and timeouts of the connections to workers.
    pub fn with_rpc_config(mut self, rpc: RpcConfig) -> Self {
        self.rpc = Some(rpc);
        self
    }

    fn rpc(&self) -> Result<&RpcConfig, RpcError> {
        self.rpc.as_ref().ok_or_else(|| {
            RpcError::Config(
                "the cluster client has no TLS configuration: set one with ClusterClientConfig::with_rpc_config, \
                 or use ClusterClientConfig::dev() for the development certificate"
                    .into(),
            )
        })
    }

    /// Deadline of each call (retries included). `None`: none.
    pub fn with_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Attempts per call, the first included (at least 1; a call fails at once with a
    /// configuration error otherwise). Default 3.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Extra load retries may add, as a fraction of calls from 0 to 1 (0.2 = 20%). Default 0.2.
    pub fn with_retry_budget(mut self, ratio: f64) -> Self {
        self.retry_budget = ratio;
        self
    }

    /// Retries allowed each second whatever the ratio, so that a channel with few calls can
    /// still fail over. Default 10 (so the ratio is what binds only above about 50 calls a
    /// second); 0 leaves the ratio alone.
    pub fn with_min_retries_per_second(mut self, retries: u32) -> Self {
        self.min_retries_per_second = retries;
        self
    }

    /// Calls one worker may have in flight; more fail with `Overloaded`. Default: no cap.
    pub fn with_max_in_flight_per_worker(mut self, calls: u32) -> Self {
        self.max_in_flight_per_worker = Some(calls);
        self
    }

    /// Whether every method called is safe to repeat, so that a call whose worker died
    /// before answering goes to another worker. Default false: only calls that never reached
    /// a worker are repeated (and those of [`with_idempotent_methods`](Self::with_idempotent_methods)).
    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.all_idempotent = idempotent;
        self
    }

    /// Methods safe to repeat (added to those given before): a call to one of them whose
    /// worker died before answering goes to another worker. Calls to other methods are
    /// repeated only when they never reached a worker (it could not be connected to, or
    /// refused the call before running it).
    pub fn with_idempotent_methods<S: Into<String>>(mut self, methods: impl IntoIterator<Item = S>) -> Self {
        self.idempotent_methods.extend(methods.into_iter().map(Into::into));
        self
    }

    /// Whether a call to `method` may be repeated after its worker died mid-call.
    pub fn is_idempotent(&self, method: &str) -> bool {
        self.all_idempotent || self.idempotent_methods.contains(method)
    }
}

/// The channel of one filter.
#[derive(Debug, Clone)]
struct Lane(Channel);

impl TypedClient for Lane {
    fn from_channel(channel: Channel) -> Self {
        Self(channel)
    }
}

/// Calls the workers of a cluster by method name and raw bytes.
///
/// ```no_run
/// # async fn run(registry: std::sync::Arc<rpcnet::cluster::WorkerRegistry>) -> Result<(), rpcnet::RpcError> {
/// use rpcnet::cluster::{ClusterClient, ClusterClientConfig};
/// let client = ClusterClient::new(registry, ClusterClientConfig::dev());
/// let reply = client.call_worker("compute", b"input".to_vec(), Some("role=worker")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClusterClient {
    registry: Arc<WorkerRegistry>,
    config: ClusterClientConfig,
    lanes: Mutex<HashMap<Option<String>, Channel>>,
    /// Connections of `call_all_workers`, one per worker, kept while the worker is.
    direct: tokio::sync::Mutex<HashMap<NodeId, RpcClient>>,
}

impl ClusterClient {
    /// A client of `registry`'s workers.
    pub fn new(registry: Arc<WorkerRegistry>, config: ClusterClientConfig) -> Self {
        Self { registry, config, lanes: Mutex::new(HashMap::new()), direct: tokio::sync::Mutex::new(HashMap::new()) }
    }

    /// A connection to each worker, reusing those made before; a worker that cannot be
    /// reached gets its error instead.
    async fn connections(&self, workers: &[WorkerInfo]) -> Vec<Result<RpcClient, RpcError>> {
        let mut direct = self.direct.lock().await;
        direct.retain(|id, _| workers.iter().any(|w| w.id == *id));
        let missing: Vec<&WorkerInfo> = workers.iter().filter(|w| !direct.contains_key(&w.id)).collect();
        let rpc = match self.config.rpc() {
            Ok(rpc) => rpc,
            Err(err) => return workers.iter().map(|_| Err(err.clone())).collect(),
        };
        let connects = missing.iter().map(|w| RpcClient::connect(w.addr, rpc.clone()));
        let mut errors = HashMap::new();
        for (worker, result) in missing.iter().zip(futures::future::join_all(connects).await) {
            match result {
                Ok(client) => drop(direct.insert(worker.id, client)),
                Err(err) => drop(errors.insert(worker.id, err)),
            }
        }
        workers
            .iter()
            .map(|w| match direct.get(&w.id) {
                Some(client) => Ok(client.clone()),
                None => Err(errors.remove(&w.id).unwrap_or_else(|| RpcError::Unavailable(w.label.clone()))),
            })
            .collect()
    }

    /// The balanced channel to the workers matching `filter`, made on first use.
    async fn lane(&self, filter: Option<&str>) -> Result<Channel, RpcError> {
        let key = filter.map(str::to_owned);
        if let Some(channel) = self.lanes.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(channel.clone());
        }
        let config = &self.config;
        let mut builder = ClientBuilder::<Lane>::new()
            .registry(self.registry.clone())
            .config(config.rpc()?.clone().with_default_timeout(config.timeout))
            .strategy(*self.registry.strategy())
            .max_attempts(config.max_attempts)
            .retry_budget(config.retry_budget)
            .min_retries_per_second(config.min_retries_per_second);
        if let Some(filter) = filter {
            builder = builder.filter(filter);
        }
        if let Some(cap) = config.max_in_flight_per_worker {
            builder = builder.max_in_flight_per_endpoint(cap);
        }
        let Lane(channel) = builder.connect().await?;
        self.lanes.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_insert(channel.clone());
        Ok(channel)
    }

    /// Calls `method` on one worker matching `filter` (`None`: any worker), chosen by the
    /// registry's strategy; a call that never reached its worker goes to another, and so
    /// does one whose worker died mid-call if `method` is idempotent
    /// ([`with_idempotent_methods`](ClusterClientConfig::with_idempotent_methods)).
    pub async fn call_worker(&self, method: &str, payload: Vec<u8>, filter: Option<&str>) -> Result<Vec<u8>, RpcError> {
        let channel = self.lane(filter).await?;
        let message = OutgoingMessage::Payload(Bytes::from(payload));
        let response = channel
            .unary(method, MethodPolicy::new().with_idempotent(self.config.is_idempotent(method)), message)
            .await?;
        Ok(response.into_bytes().into())
    }

    /// Calls `method` on every worker matching `filter`, concurrently; one result each.
    pub async fn call_all_workers(
        &self,
        method: &str,
        payload: Vec<u8>,
        filter: Option<&str>,
    ) -> Result<Vec<(WorkerInfo, Result<Vec<u8>, RpcError>)>, RpcError> {
        let filter_parsed: Option<crate::balance::TagFilter> = filter
            .map(str::parse)
            .transpose()
            .map_err(|e: crate::balance::FilterError| RpcError::Config(e.to_string()))?;
        let workers: Vec<WorkerInfo> = self
            .registry
            .workers()
            .await
            .into_iter()
            .filter(|w| filter_parsed.as_ref().is_none_or(|f| f.matches(&w.tags)))
            .collect();
        let payload = Bytes::from(payload);
        let options = match self.config.timeout {
            Some(timeout) => CallOptions::new().with_timeout(timeout),
            None => CallOptions::new().without_timeout(),
        };
        let connections = self.connections(&workers).await;
        let calls = workers.into_iter().zip(connections).map(|(worker, connection)| {
            let (payload, options) = (payload.clone(), options.clone());
            let endpoint = self.registry.endpoint_of(&worker);
            async move {
                let _in_flight = endpoint.as_ref().map(|e| e.start_call());
                let result = match connection {
                    Ok(client) => client.call_with(method, payload, options).await.map(Vec::from),
                    Err(err) => Err(err),
                };
                (worker, result)
            }
        });
        Ok(futures::future::join_all(calls).await)
    }
}
