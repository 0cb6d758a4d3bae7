//! `balance-scenarios`: every built-in strategy, through one balanced typed client, against
//! three local servers of which one is 5x slower (scenario A) or answers 10% of its calls
//! after 100 ms (scenario B). `report.rs` turns the runs into markdown and an SVG.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rpcnet::balance::{CAPACITY_TAG, Endpoint};
use rpcnet::{LoadBalancingStrategy, RpcConfig, RpcError, RpcServer, ShutdownHandle};

use crate::report::{self, Row, ScenarioResult, Settings};

/// Every call's deadline.
const DEADLINE: Duration = Duration::from_secs(1);

/// What to run.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ScenarioArgs {
    /// Measured calls per strategy and scenario.
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Calls made first with the same client, left out of the results.
    #[arg(long, default_value_t = 300)]
    warmup: usize,
    /// Folder for `report.md` and `latency.svg`.
    #[arg(long, default_value = "target/balance-report")]
    out: PathBuf,
}

/// The scenarios' service.
#[rpcnet::rpc_service]
pub(crate) trait Work {
    /// Waits for the server's service time, then answers the server's name.
    async fn work(&self) -> String;
}

/// How long a server takes per call.
#[derive(Debug, Clone, Copy)]
struct ServiceTime {
    base: Duration,
    /// One call in `spike_every` (pseudo-randomly chosen) takes `spike` instead; 0: none.
    spike_every: u64,
    spike: Duration,
}

impl ServiceTime {
    const fn steady(millis: u64) -> Self {
        Self { base: Duration::from_millis(millis), spike_every: 0, spike: Duration::ZERO }
    }

    /// The service time of the server's `n`th call.
    fn of_call(&self, n: u64) -> Duration {
        if self.spike_every > 0 && mix(n).is_multiple_of(self.spike_every) { self.spike } else { self.base }
    }
}

/// splitmix64's finaliser: a well-spread, reproducible hash of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Simulated {
    name: String,
    time: ServiceTime,
    calls: Arc<AtomicU64>,
}

impl Work for Simulated {
    async fn work(&self) -> String {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.time.of_call(n)).await;
        self.name.clone()
    }
}

/// A server running in this process.
struct Running {
    name: String,
    addr: SocketAddr,
    calls: Arc<AtomicU64>,
    shutdown: ShutdownHandle,
}

fn start(name: &str, time: ServiceTime) -> Running {
    let calls = Arc::new(AtomicU64::new(0));
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(WorkServer::new(Simulated { name: name.to_owned(), time, calls: calls.clone() }));
    let (addr, shutdown) = server.spawn().expect("start a scenario server on loopback");
    Running { name: name.to_owned(), addr, calls, shutdown }
}

/// Three servers, the odd one last.
struct Scenario {
    title: &'static str,
    note: &'static str,
    servers: [(&'static str, ServiceTime); 3],
}

fn scenarios() -> [Scenario; 2] {
    let spiky = ServiceTime { spike_every: 10, spike: Duration::from_millis(100), ..ServiceTime::steady(2) };
    [
        Scenario {
            title: "A: one server 5x slower",
            note: "`fast-1` and `fast-2` take 2 ms per call, `slow` takes 10 ms.",
            servers: [
                ("fast-1", ServiceTime::steady(2)),
                ("fast-2", ServiceTime::steady(2)),
                ("slow", ServiceTime::steady(10)),
            ],
        },
        Scenario {
            title: "B: latency spikes",
            note: "All three take 2 ms per call, but `spiky` answers 10% of its calls (chosen \
                   pseudo-randomly per call) after 100 ms instead.",
            servers: [("steady-1", ServiceTime::steady(2)), ("steady-2", ServiceTime::steady(2)), ("spiky", spiky)],
        },
    ]
}

fn strategies() -> [LoadBalancingStrategy; 8] {
    use LoadBalancingStrategy::*;
    [
        RoundRobin,
        Random,
        LeastConnections,
        PowerOfTwoChoices,
        PeakEwma,
        WeightedRandom,
        WeightedRoundRobin,
        ConsistentHash,
    ]
}

/// Runs both scenarios, prints the report and writes it with its SVG into `--out`.
pub(crate) fn run(args: &ScenarioArgs) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let threads = runtime.metrics().num_workers();
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        for scenario in scenarios() {
            results.push(run_scenario(&scenario, args).await);
        }
        results
    });
    let settings =
        Settings { calls: args.calls, concurrency: args.concurrency, warmup: args.warmup, deadline: DEADLINE, threads };
    let markdown = report::markdown(&results, &settings);
    println!("{markdown}");
    std::fs::create_dir_all(&args.out).expect("create the report folder");
    let md_path = args.out.join("report.md");
    std::fs::write(&md_path, &markdown).expect("write report.md");
    let svg_path = args.out.join("latency.svg");
    report::svg(&results, &svg_path).expect("draw latency.svg");
    println!("wrote {} and {}", md_path.display(), svg_path.display());
}

async fn run_scenario(scenario: &Scenario, args: &ScenarioArgs) -> ScenarioResult {
    let servers: Vec<Running> = scenario.servers.iter().map(|(name, time)| start(name, *time)).collect();
    let mut rows = Vec::new();
    for strategy in strategies() {
        let row = run_strategy(&servers, &strategy, args).await;
        eprintln!("  {}: {} done in {:.2} s", scenario.title, row.strategy, row.wall.as_secs_f64());
        rows.push(row);
    }
    for server in &servers {
        server.shutdown.shutdown().await;
    }
    ScenarioResult {
        title: scenario.title.to_owned(),
        note: scenario.note.to_owned(),
        servers: servers.iter().map(|s| s.name.clone()).collect(),
        rows,
    }
}

async fn run_strategy(servers: &[Running], strategy: &LoadBalancingStrategy, args: &ScenarioArgs) -> Row {
    let endpoints = servers.iter().map(|s| Endpoint::new(s.name.as_str(), s.addr).with_tag(CAPACITY_TAG, "1"));
    let client = WorkClient::builder()
        .endpoints(endpoints)
        .config(RpcConfig::dev("127.0.0.1:0"))
        .strategy(strategy.clone())
        .connect()
        .await
        .expect("connect to the scenario servers")
        .with_timeout(DEADLINE);
    let keyed = *strategy == LoadBalancingStrategy::ConsistentHash;
    load(&client, args.warmup, args.concurrency, keyed).await;
    let before: Vec<u64> = servers.iter().map(|s| s.calls.load(Ordering::Relaxed)).collect();
    let started = Instant::now();
    let measured = load(&client, args.calls, args.concurrency, keyed).await;
    let wall = started.elapsed();
    let calls = servers.iter().zip(before).map(|(s, b)| s.calls.load(Ordering::Relaxed) - b).collect();
    // What the client's endpoints learned (the latency estimate PeakEwma uses), for stderr.
    let estimates: Vec<String> = client
        .endpoint_stats()
        .iter()
        .map(|e| e.latency.map_or("-".to_owned(), |l| format!("{:.1}", l.as_secs_f64() * 1000.0)))
        .collect();
    eprintln!("  {strategy:?}: latency estimates at the end {} ms", estimates.join(" / "));
    if let Some(error) = &measured.first_error {
        eprintln!("  {strategy:?}: {} of {} calls failed, first: {error}", args.calls as u64 - measured.ok, args.calls);
    }
    Row {
        strategy: format!("{strategy:?}"),
        calls,
        latency: measured.latency,
        ok: measured.ok,
        total: args.calls as u64,
        wall,
    }
}

/// What a batch of calls gave.
struct Measured {
    /// Latency of every call, failed ones included, in microseconds.
    latency: Histogram<u64>,
    /// Calls that succeeded (within their deadline).
    ok: u64,
    first_error: Option<RpcError>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// `calls` calls, `concurrency` at a time, each with its own random affinity key if `keyed`.
async fn load(client: &WorkClient, calls: usize, concurrency: usize, keyed: bool) -> Measured {
    let remaining = Arc::new(AtomicUsize::new(calls));
    let workers: Vec<_> = (0..concurrency as u64)
        .map(|worker| {
            let (client, remaining) = (client.clone(), remaining.clone());
            tokio::spawn(async move {
                let mut measured = Measured { latency: histogram(), ok: 0, first_error: None };
                let mut key = mix(worker ^ (u64::from(std::process::id()) << 32));
                while remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                    key = mix(key);
                    let keyed_client;
                    let call = if keyed {
                        keyed_client = client.with_affinity_key(key.to_le_bytes());
                        &keyed_client
                    } else {
                        &client
                    };
                    let t0 = Instant::now();
                    let result = call.work().await;
                    measured.latency.saturating_record(t0.elapsed().as_micros() as u64);
                    match result {
                        Ok(_) => measured.ok += 1,
                        Err(error) => {
                            measured.first_error.get_or_insert(error);
                        }
                    }
                }
                measured
            })
        })
        .collect();
    let mut total = Measured { latency: histogram(), ok: 0, first_error: None };
    for worker in workers {
        let measured = worker.await.expect("a load task panicked");
        total.latency.add(measured.latency).expect("same bounds");
        total.ok += measured.ok;
        if total.first_error.is_none() {
            total.first_error = measured.first_error;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spiky_server_spikes_on_about_one_call_in_ten() {
        let spiky = scenarios()[1].servers[2].1;
        let spikes = (0..100_000).filter(|&n| spiky.of_call(n) == Duration::from_millis(100)).count();
        assert!((9_500..10_500).contains(&spikes), "{spikes} spikes in 100000 calls, expected about 10000");
        let steady = ServiceTime::steady(2);
        assert!((0..1000).all(|n| steady.of_call(n) == Duration::from_millis(2)), "a steady server never spikes");
    }
}
