//! The main demo: a local rpcnet cluster on loopback with development certificates.
//! Workers with tags and different speeds find each other by gossip; a typed client balances
//! calls over them under load; one worker is killed mid-run and another one added.
//!
//! ```text
//! cargo run -p example-cluster
//! cargo run -p example-cluster -- --strategy peak_ewma --seconds 30
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod node;
mod service;
mod view;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use rpcnet::RpcError;
use rpcnet::cluster::{
    ClusterConfig, ClusterEvent, ClusterMembership, LoadBalancingStrategy, NodeState, WorkerRegistry,
};

use node::{Spec, WorkerNode};
use service::ComputeClient;

#[derive(Parser, Debug)]
#[command(about = "A local rpcnet cluster: gossip discovery, balanced typed calls, a worker killed and one added")]
struct Args {
    /// How long the load runs, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// The balancing strategy (round_robin, random, least_connections, power_of_two_choices,
    /// peak_ewma, weighted_random, weighted_round_robin, consistent_hash).
    #[arg(long, default_value = "least_connections")]
    strategy: LoadBalancingStrategy,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// What happened, shared between the load, the event listener and the view.
#[derive(Default)]
struct Record {
    calls: Mutex<BTreeMap<String, u64>>,
    failures: Mutex<Vec<RpcError>>,
    events: Mutex<VecDeque<String>>,
    /// When a worker's calls were last and first answered.
    last_answer: Mutex<HashMap<String, Instant>>,
    first_answer: Mutex<HashMap<String, Instant>>,
    /// When the gateway first saw each worker suspected and failed.
    suspected: Mutex<HashMap<String, Instant>>,
    failed: Mutex<HashMap<String, Instant>>,
}

impl Record {
    fn event(&self, started: Instant, text: String) {
        let mut events = self.events.lock().unwrap();
        events.push_back(format!("{:>5.1}s {text}", started.elapsed().as_secs_f64()));
        if events.len() > 5 {
            events.pop_front();
        }
    }
}

const FAST: Duration = Duration::from_millis(2);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let failed = runtime.block_on(run(args))?;
    // Worker runtimes are shut down in the background; leave without waiting for them.
    runtime.shutdown_background();
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(args: Args) -> Result<u64, Box<dyn std::error::Error>> {
    let specs = [
        Spec { name: "w1", zone: "eu-1", service_time: FAST },
        Spec { name: "w2", zone: "eu-1", service_time: FAST * 2 },
        Spec { name: "w3", zone: "us-1", service_time: FAST },
        Spec { name: "w4", zone: "us-1", service_time: FAST * 10 },
    ];
    println!(
        "Starting 4 workers on 127.0.0.1 (w4 is 10x slower than w1 and w3, w2 2x), development certificates, gossip on UDP."
    );
    let mut workers = Vec::new();
    let mut seed: Option<SocketAddr> = None;
    for spec in specs {
        let (worker, gossip) = WorkerNode::start(spec, seed.into_iter().collect())?;
        seed.get_or_insert(gossip);
        workers.push(worker);
    }
    let seed = seed.expect("a first worker");

    let gateway = ClusterMembership::new(ClusterConfig::dev().with_name("gateway").with_seeds([seed])).await?;
    let registry = Arc::new(WorkerRegistry::new(gateway.clone(), args.strategy));
    registry.start().await;
    let client = ComputeClient::builder()
        .registry(registry.clone())
        .filter("role=worker")
        .dev()
        .strategy(args.strategy)
        .connect()
        .await?;
    let discovery = wait_until(Duration::from_secs(20), || async { registry.worker_count().await == 4 })
        .await
        .ok_or("the workers were not discovered within 20 s")?;
    println!(
        "The client found all 4 workers by gossip in {:.0} ms; {} calls in flight from now on, strategy {}.\n",
        discovery.as_secs_f64() * 1000.0,
        args.concurrency,
        args.strategy.name()
    );

    let started = Instant::now();
    let record = Arc::new(Record::default());
    listen(&gateway, record.clone(), started);
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(&client, args.concurrency, record.clone(), stop.clone());

    let total = Duration::from_secs(args.seconds.max(6));
    let (kill_at, add_at) = (total * 3 / 10, total * 11 / 20);
    let mut killed_at = None;
    let mut added: Option<(WorkerNode, Instant)> = None;
    let mut screen = Screen::new();
    let mut previous: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_frame = Instant::now();
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if killed_at.is_none() && started.elapsed() >= kill_at {
            workers[1].kill();
            killed_at = Some(Instant::now());
            record.event(started, "killed w2 (its tasks and sockets, no goodbye)".into());
        }
        if added.is_none() && started.elapsed() >= add_at {
            let spec = Spec { name: "w5", zone: "eu-1", service_time: FAST };
            let (worker, _) = WorkerNode::start(spec, vec![seed])?;
            added = Some((worker, Instant::now()));
            record.event(started, "started w5".into());
        }
        if last_frame.elapsed() >= Duration::from_secs(1) {
            let frame = frame(&args, &client, &gateway, &record, &mut previous, last_frame.elapsed(), started);
            last_frame = Instant::now();
            screen.show(&view::render(&frame));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await?;
    }

    let killed_at = killed_at.expect("the kill happened");
    let since_kill = |map: &Mutex<HashMap<String, Instant>>| {
        map.lock().unwrap().get("w2").map(|t| t.saturating_duration_since(killed_at))
    };
    let (_, added_at) = added.as_ref().expect("w5 was added");
    let summary = view::Summary {
        calls_per_worker: record.calls.lock().unwrap().iter().map(|(k, v)| (k.clone(), *v)).collect(),
        failed_calls: record.failures.lock().unwrap().len() as u64,
        discovery,
        suspected_after: since_kill(&record.suspected),
        failed_after: since_kill(&record.failed),
        last_answer_after_kill: since_kill(&record.last_answer),
        killed: "w2".into(),
        added: "w5".into(),
        added_first_call: record.first_answer.lock().unwrap().get("w5").map(|t| t.saturating_duration_since(*added_at)),
    };
    println!("{}", view::render_summary(&summary));
    for err in record.failures.lock().unwrap().iter().take(5) {
        println!("  failed call: {err}");
    }
    gateway.leave().await?;
    Ok(summary.failed_calls)
}

/// Records the gateway's view of membership changes.
fn listen(gateway: &ClusterMembership, record: Arc<Record>, started: Instant) {
    let mut events = gateway.subscribe();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let (what, node) = match &event {
                ClusterEvent::NodeJoined(n) => ("joined", n),
                ClusterEvent::NodeLeft(n) => ("left", n),
                ClusterEvent::NodeFailed(n) => ("failed", n),
                ClusterEvent::NodeSuspect(n) => ("suspected", n),
                ClusterEvent::NodeRecovered(n) => ("recovered", n),
                ClusterEvent::NodeUpdated(n) => ("changed tags", n),
                other => {
                    record.event(started, format!("{other:?}"));
                    continue;
                }
            };
            let now = Instant::now();
            let first_seen = match &event {
                ClusterEvent::NodeSuspect(_) => Some(&record.suspected),
                ClusterEvent::NodeFailed(_) => Some(&record.failed),
                _ => None,
            };
            if let Some(first_seen) = first_seen {
                first_seen.lock().unwrap().entry(node.name.clone()).or_insert(now);
            }
            record.event(started, format!("gateway: {} {what}", node.name));
        }
    });
}

/// `concurrency` loops of calls until `stop`, each answer checked and counted by worker.
fn spawn_load(
    client: &ComputeClient,
    concurrency: usize,
    record: Arc<Record>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(1));
    (0..concurrency)
        .map(|_| {
            let (client, record, stop, next) = (client.clone(), record.clone(), stop.clone(), next.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let x = next.fetch_add(1, Ordering::Relaxed) % 1_000_000;
                    match client.square(x).await {
                        Ok(answer) if answer.value == x * x => {
                            let now = Instant::now();
                            *record.calls.lock().unwrap().entry(answer.worker.clone()).or_default() += 1;
                            record.first_answer.lock().unwrap().entry(answer.worker.clone()).or_insert(now);
                            record.last_answer.lock().unwrap().insert(answer.worker, now);
                        }
                        Ok(answer) => record
                            .failures
                            .lock()
                            .unwrap()
                            .push(RpcError::Internal(format!("{x}² is not {} (from {})", answer.value, answer.worker))),
                        Err(err) => record.failures.lock().unwrap().push(err),
                    }
                }
            })
        })
        .collect()
}

fn frame(
    args: &Args,
    client: &ComputeClient,
    gateway: &ClusterMembership,
    record: &Record,
    previous: &mut BTreeMap<String, u64>,
    since_previous: Duration,
    started: Instant,
) -> view::Frame {
    let calls = record.calls.lock().unwrap().clone();
    let stats = client.endpoint_stats();
    let mut rows: Vec<view::Row> = gateway
        .nodes()
        .into_iter()
        .filter(|n| n.tag("role") == Some("worker"))
        .map(|node| {
            let total = calls.get(&node.name).copied().unwrap_or(0);
            let before = previous.get(&node.name).copied().unwrap_or(0);
            let endpoint = stats.iter().find(|s| s.label == node.name);
            view::Row {
                zone: node.tag("zone").unwrap_or("-").to_owned(),
                state: match node.state {
                    NodeState::Alive => "alive",
                    NodeState::Suspect => "suspect",
                    NodeState::Failed => "FAILED",
                    NodeState::Left => "left",
                }
                .to_owned(),
                total_calls: total,
                calls_per_sec: total.saturating_sub(before) as f64 / since_previous.as_secs_f64(),
                in_flight: endpoint.map_or(0, |e| e.in_flight),
                latency: endpoint.and_then(|e| e.latency),
                name: node.name,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    *previous = calls;
    view::Frame {
        elapsed: started.elapsed(),
        strategy: args.strategy.name().to_owned(),
        rows,
        failed_calls: record.failures.lock().unwrap().len() as u64,
        recent_events: record.events.lock().unwrap().iter().cloned().collect(),
    }
}

/// Redraws frames in place on a terminal; prints them one after another elsewhere.
struct Screen {
    terminal: bool,
    lines: usize,
}

impl Screen {
    fn new() -> Self {
        Self { terminal: std::io::stdout().is_terminal(), lines: 0 }
    }

    fn show(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.terminal && self.lines > 0 {
            // Up to the previous frame's first line, and clear from there down.
            let _ = write!(out, "\x1b[{}A\x1b[J", self.lines);
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        self.lines = text.lines().count() + 1;
    }
}

/// Polls `check` every 50 ms until it holds (the time it took) or `limit` passes (`None`).
async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
