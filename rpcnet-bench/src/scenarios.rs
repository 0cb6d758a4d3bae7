//! `balance-scenarios`: every built-in strategy (and Locality over PeakEwma), through one
//! balanced typed client, against three local servers: one 5x slower, with capacities that
//! match the speeds (scenario A); all answering 10% of their calls after 100 ms, so that 10%
//! of all calls spike whatever the strategy (B); one answering 10% of its calls after 100 ms
//! (C). `report.rs` turns the runs into markdown and an SVG.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rpcnet::balance::{CAPACITY_TAG, Endpoint, ZONE_TAG};
use rpcnet::{LoadBalancingStrategy, RpcConfig, RpcError, RpcServer, ServerHandle};

use crate::report::{self, Row, ScenarioResult, Settings};

/// Every call's deadline.
const DEADLINE: Duration = Duration::from_secs(1);

/// The client's zone, for Locality: servers 1 and 3 are in it, server 2 is not.
const CLIENT_ZONE: &str = "a";

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
    shutdown: ServerHandle,
}

fn start(name: &str, time: ServiceTime) -> Running {
    let calls = Arc::new(AtomicU64::new(0));
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(WorkServer::new(Simulated { name: name.to_owned(), time, calls: calls.clone() }));
    let (addr, shutdown) = server.spawn().expect("start a scenario server on loopback");
    Running { name: name.to_owned(), addr, calls, shutdown }
}

/// One server of a scenario.
#[derive(Debug, Clone, Copy)]
struct ServerSpec {
    name: &'static str,
    time: ServiceTime,
    /// Its `capacity` tag, for the weighted strategies.
    capacity: u32,
    /// Its `zone` tag, for Locality.
    zone: &'static str,
}

/// Three servers, the odd one (if any) last.
struct Scenario {
    title: &'static str,
    note: &'static str,
    servers: [ServerSpec; 3],
    /// Whether the last server is the odd one, whose share of calls the report gives.
    odd_last: bool,
}

fn server(name: &'static str, time: ServiceTime, capacity: u32, zone: &'static str) -> ServerSpec {
    ServerSpec { name, time, capacity, zone }
}

fn scenarios() -> [Scenario; 3] {
    let spiky = ServiceTime { spike_every: 10, spike: Duration::from_millis(100), ..ServiceTime::steady(2) };
    [
        Scenario {
            title: "A: one server 5x slower",
            note: "`fast-1` and `fast-2` take 2 ms per call and have `capacity=5`; `slow` takes 10 ms and has \
                   `capacity=1`, so the weighted strategies know what the speeds are. Zones: `fast-1` and `slow` \
                   are in the client's zone `a`, `fast-2` in `b`.",
            servers: [
                server("fast-1", ServiceTime::steady(2), 5, "a"),
                server("fast-2", ServiceTime::steady(2), 5, "b"),
                server("slow", ServiceTime::steady(10), 1, "a"),
            ],
            odd_last: true,
        },
        Scenario {
            title: "B: 10% of all calls spike",
            note: "All three take 2 ms per call, but each answers 10% of its own calls (chosen pseudo-randomly \
                   per call) after 100 ms instead: 10% of all calls spike whichever server they reach, so no \
                   strategy can avoid them; this is the floor of p99. All have `capacity=1`; zones as in A.",
            servers: [
                server("spiky-1", spiky, 1, "a"),
                server("spiky-2", spiky, 1, "b"),
                server("spiky-3", spiky, 1, "a"),
            ],
            odd_last: false,
        },
        Scenario {
            title: "C: one server spikes",
            note: "All three take 2 ms per call, but `spiky` answers 10% of its own calls after 100 ms instead: \
                   about 3% of all calls if spread evenly, fewer if a strategy avoids it. All have `capacity=1`; \
                   zones as in A.",
            servers: [
                server("steady-1", ServiceTime::steady(2), 1, "a"),
                server("steady-2", ServiceTime::steady(2), 1, "b"),
                server("spiky", spiky, 1, "a"),
            ],
            odd_last: true,
        },
    ]
}

/// A strategy, and the zone the client prefers (`ClientBuilder::prefer_zone`), if any.
#[derive(Debug, Clone, Copy)]
struct Choice {
    strategy: LoadBalancingStrategy,
    zone: Option<&'static str>,
}

fn strategies() -> [Choice; 9] {
    use LoadBalancingStrategy::*;
    let plain = |strategy| Choice { strategy, zone: None };
    [
        plain(RoundRobin),
        plain(Random),
        plain(LeastConnections),
        plain(PowerOfTwoChoices),
        plain(PeakEwma),
        plain(WeightedRandom),
        plain(WeightedRoundRobin),
        plain(ConsistentHash),
        Choice { strategy: PeakEwma, zone: Some(CLIENT_ZONE) },
    ]
}

/// The choice's name in the report: the strategy's variant, and with a preferred zone
/// `Locality(zone, variant)`.
fn label(choice: &Choice) -> String {
    match choice.zone {
        Some(zone) => format!("Locality({zone}, {:?})", choice.strategy),
        None => format!("{:?}", choice.strategy),
    }
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
    let servers: Vec<Running> = scenario.servers.iter().map(|spec| start(spec.name, spec.time)).collect();
    let mut rows = Vec::new();
    for choice in strategies() {
        let row = run_strategy(&servers, &scenario.servers, &choice, args).await;
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
        odd_last: scenario.odd_last,
        rows,
    }
}

async fn run_strategy(servers: &[Running], specs: &[ServerSpec], choice: &Choice, args: &ScenarioArgs) -> Row {
    let endpoints = servers.iter().zip(specs).map(|(s, spec)| {
        Endpoint::new(s.name.as_str(), s.addr)
            .with_tag(CAPACITY_TAG, spec.capacity.to_string())
            .with_tag(ZONE_TAG, spec.zone)
    });
    let mut builder =
        WorkClient::builder().endpoints(endpoints).config(RpcConfig::dev("127.0.0.1:0")).strategy(choice.strategy);
    if let Some(zone) = choice.zone {
        builder = builder.prefer_zone(zone);
    }
    let client = builder.connect().await.expect("connect to the scenario servers").with_timeout(DEADLINE);
    let keyed = choice.strategy == LoadBalancingStrategy::ConsistentHash;
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
    let name = label(choice);
    eprintln!("  {name}: latency estimates at the end {} ms", estimates.join(" / "));
    if let Some(error) = &measured.first_error {
        eprintln!("  {name}: {} of {} calls failed, first: {error}", args.calls as u64 - measured.ok, args.calls);
    }
    Row { strategy: name, calls, latency: measured.latency, ok: measured.ok, total: args.calls as u64, wall }
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

    /// Calls in 0..`calls` of `time` that spike.
    fn spikes(time: ServiceTime, calls: u64) -> usize {
        (0..calls).filter(|&n| time.of_call(n) == Duration::from_millis(100)).count()
    }

    #[test]
    fn in_scenario_b_ten_percent_of_all_calls_spike_however_they_are_spread() {
        let [_, b, c] = scenarios();
        // However a strategy spreads 30,000 calls over the three servers, about 10% spike.
        for split in [[10_000, 10_000, 10_000], [28_000, 1_000, 1_000], [0, 0, 30_000]] {
            let total: usize = b.servers.iter().zip(split).map(|(s, n)| spikes(s.time, n)).sum();
            assert!((2_800..3_200).contains(&total), "{split:?}: {total} spikes in 30000 calls, expected about 3000");
        }
        assert_eq!(spikes(c.servers[0].time, 1_000), 0, "a steady server never spikes");
        assert!((9_500..10_500).contains(&spikes(c.servers[2].time, 100_000)), "C's spiky server: 1 call in 10");
    }

    #[test]
    fn the_weighted_strategies_and_locality_have_tags_to_work_with() {
        let [a, ..] = scenarios();
        let capacities: Vec<u32> = a.servers.iter().map(|s| s.capacity).collect();
        assert_eq!(capacities, [5, 5, 1], "capacities follow the speeds in A");
        assert!(a.servers.iter().any(|s| s.zone == CLIENT_ZONE) && a.servers.iter().any(|s| s.zone != CLIENT_ZONE));
        let names: Vec<String> = strategies().iter().map(label).collect();
        assert_eq!(names.last().unwrap(), "Locality(a, PeakEwma)");
        assert!(names.contains(&"RoundRobin".to_owned()), "the report compares against RoundRobin by this name");
    }
}
