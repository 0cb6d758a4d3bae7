//! The client role: join the cluster without serving, follow its workers through a
//! registry, and drive a closed-loop load of typed calls balanced over them, printing each
//! second what every worker answered and, at the end, a summary with every failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use rpcnet::cluster::{ClusterMembership, LoadBalancingStrategy, WorkerRegistry};
use serde_json::json;

use crate::options::NodeArgs;
use crate::output::Output;
use crate::service::WorkClient;

/// `rpcnet-node client`.
#[derive(Args, Debug)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    pub(crate) node: NodeArgs,
    /// Where the client's QUIC socket binds.
    #[arg(long, default_value = "0.0.0.0:0")]
    pub(crate) quic_bind: SocketAddr,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// How long the load runs, in seconds; 0: until SIGTERM.
    #[arg(long, default_value_t = 0)]
    pub(crate) seconds: u64,
    /// Which members are workers.
    #[arg(long, default_value = "role=worker")]
    pub(crate) filter: String,
    /// The balancing strategy.
    #[arg(long, default_value = "least_connections")]
    pub(crate) strategy: LoadBalancingStrategy,
    /// Every n-th call is the non-idempotent `append` (0: none), the rest idempotent `square`.
    #[arg(long, default_value_t = 10)]
    pub(crate) append_every: u64,
    /// Each call's deadline, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub(crate) timeout_ms: u64,
    /// Workers to wait for before the load starts.
    #[arg(long, default_value_t = 1)]
    pub(crate) workers: usize,
}

/// What the load has seen.
#[derive(Default)]
struct Tally {
    /// Answered calls per worker since the last tick, and in all.
    tick: Mutex<BTreeMap<String, u64>>,
    total: Mutex<BTreeMap<String, u64>>,
    /// Failed calls: idempotent ones (which should be 0) and `append`s.
    failed_square: AtomicU64,
    failed_append: AtomicU64,
    /// The slowest failure, in ms: non-idempotent calls must fail fast.
    slowest_failure_ms: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn answered(&self, worker: &str) {
        *self.tick.lock().expect("not poisoned").entry(worker.to_owned()).or_default() += 1;
        *self.total.lock().expect("not poisoned").entry(worker.to_owned()).or_default() += 1;
    }

    fn failed(&self, append: bool, after: Duration, err: rpcnet::RpcError) {
        let counter = if append { &self.failed_append } else { &self.failed_square };
        counter.fetch_add(1, Ordering::Relaxed);
        self.slowest_failure_ms.fetch_max(after.as_millis() as u64, Ordering::Relaxed);
        let mut errors = self.errors.lock().expect("not poisoned");
        if errors.len() < 20 {
            errors.push(format!(
                "{} failed after {} ms: {err}",
                if append { "append" } else { "square" },
                after.as_millis()
            ));
        }
    }
}

pub(crate) async fn run(args: ClientArgs) -> Result<(), String> {
    let out = Output::new(&args.node.name, args.node.json);
    let cluster =
        ClusterMembership::new(args.node.cluster_config()?).await.map_err(|e| format!("joining the cluster: {e}"))?;
    let watching = out.watch(&cluster);
    let registry = Arc::new(WorkerRegistry::new(cluster.clone(), args.strategy));
    registry.start().await;
    let client = WorkClient::builder()
        .registry(registry.clone())
        .filter(&args.filter)
        .config(
            args.node.client_config(args.quic_bind)?.with_default_timeout(Some(Duration::from_millis(args.timeout_ms))),
        )
        .strategy(args.strategy)
        .connect()
        .await
        .map_err(|e| format!("client: {e}"))?;
    let waited = Instant::now();
    while registry.worker_count().await < args.workers {
        if waited.elapsed() > Duration::from_secs(60) {
            return Err(format!("fewer than {} workers found in 60 s", args.workers));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let workers = registry.worker_count().await;
    out.print("ready", json!({ "workers": workers, "waited_ms": waited.elapsed().as_millis() as u64 }), || {
        format!("[{}] {workers} workers found in {} ms; load starts", args.node.name, waited.elapsed().as_millis())
    });

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(&client, &args, &tally, &stop);
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    let terminated = crate::signal::terminated();
    tokio::pin!(terminated);
    loop {
        tokio::select! {
            _ = ticks.tick() => tick(&out, &tally, started),
            _ = &mut terminated => break,
        }
        if args.seconds > 0 && started.elapsed() >= Duration::from_secs(args.seconds) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    summary(&out, &tally, started.elapsed());
    watching.abort();
    let _ = cluster.leave().await;
    Ok(())
}

fn spawn_load(
    client: &WorkClient,
    args: &ClientArgs,
    tally: &Arc<Tally>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(1));
    (0..args.concurrency)
        .map(|_| {
            let (client, tally, stop, next) = (client.clone(), tally.clone(), stop.clone(), next.clone());
            let append_every = args.append_every;
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let append = append_every > 0 && n % append_every == 0;
                    let began = Instant::now();
                    let answer = if append { client.append(n).await } else { client.square(n).await };
                    match answer {
                        Ok(answer) => tally.answered(&answer.worker),
                        Err(err) => tally.failed(append, began.elapsed(), err),
                    }
                }
            })
        })
        .collect()
}

fn tick(out: &Output, tally: &Tally, started: Instant) {
    let calls = std::mem::take(&mut *tally.tick.lock().expect("not poisoned"));
    let (failed_square, failed_append) =
        (tally.failed_square.load(Ordering::Relaxed), tally.failed_append.load(Ordering::Relaxed));
    let fields = json!({ "calls": calls, "failed_square": failed_square, "failed_append": failed_append });
    out.print("tick", fields, || {
        let per_worker: Vec<String> = calls.iter().map(|(w, n)| format!("{w} {n:>6}")).collect();
        format!(
            "{:>5.0}s  {}  | failed: idempotent {failed_square}, append {failed_append}",
            started.elapsed().as_secs_f64(),
            per_worker.join("  ")
        )
    });
}

fn summary(out: &Output, tally: &Tally, ran: Duration) {
    let total = tally.total.lock().expect("not poisoned").clone();
    let errors = tally.errors.lock().expect("not poisoned").clone();
    let (failed_square, failed_append) =
        (tally.failed_square.load(Ordering::Relaxed), tally.failed_append.load(Ordering::Relaxed));
    let slowest = tally.slowest_failure_ms.load(Ordering::Relaxed);
    let answered: u64 = total.values().sum();
    let fields = json!({
        "seconds": ran.as_secs_f64(),
        "answered": answered,
        "calls": total,
        "failed_square": failed_square,
        "failed_append": failed_append,
        "slowest_failure_ms": slowest,
        "errors": errors,
    });
    out.print("summary", fields, || {
        let mut text = format!("\n{answered} calls answered in {:.1} s\n", ran.as_secs_f64());
        for (worker, calls) in &total {
            text.push_str(&format!("  {worker:<12} {calls:>8}\n"));
        }
        text.push_str(&format!(
            "failed: {failed_square} idempotent (retried elsewhere, so 0 unless every worker failed), \
             {failed_append} append (not idempotent: failed rather than risk running twice), slowest failure {slowest} ms"
        ));
        for err in &errors {
            text.push_str(&format!("\n  {err}"));
        }
        text
    });
}
