//! Unary echo over loopback: rpcnet against raw quinn (one stream per call, no framework)
//! and against its peers (tonic, tarpc, TLS over TCP), as two processes (four for
//! `balanced`: three servers), each on a current-thread runtime, all pinned to one core.
//!
//! ```text
//! cargo run --release -p rpcnet-bench -- --duration 5
//! cargo run --release -p rpcnet-bench -- --impls typed,balanced --balanced-strategy peak_ewma
//! cargo run --release -p rpcnet-bench -- cluster-sim --nodes 1000 --loss 0.05
//! cargo run --release -p rpcnet-bench -- balance-scenarios --calls 10000 --concurrency 32
//! ```
//!
//! On one core, calls/s is 1 / (CPU time per call of client + server), so the ratio to raw
//! quinn is the framework's cost. The orchestrator starts `serve` and `client` children of
//! itself under `taskset`, prints a markdown table and writes it with an SVG chart.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod chart;
mod cluster_sim;
mod measure;
mod raw_quinn;
mod report;
mod rpcnet_echo;
mod scenarios;
mod table;
mod tarpc_echo;
mod tcp_tls;
mod tonic_echo;
mod typed_echo;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use rpcnet::LoadBalancingStrategy;

use crate::table::Cell;

/// Transport settings shared by every implementation in a run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tuning {
    /// Largest UDP payload (initial MTU and discovery bound); `None`: rpcnet's discovery.
    pub(crate) max_udp_payload: Option<u16>,
    /// Raw quinn with quinn's own defaults instead of rpcnet's transport tuning.
    pub(crate) stock_quinn: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Impl {
    /// quinn alone: the limit of one-stream-per-call on this machine.
    Quinn,
    /// rpcnet raw-bytes calls without a deadline: the same exchange as `quinn`.
    Rpcnet,
    /// rpcnet raw-bytes calls with the default 30 s deadline.
    RpcnetDeadline,
    /// rpcnet raw-bytes calls through `RpcClient::call` (`Vec<u8>` in, `Vec<u8>` out, no
    /// deadline): the raw-bytes counterpart of a typed `echo(Vec<u8>) -> Vec<u8>`.
    RpcnetVec,
    /// rpcnet typed calls through `#[rpc_service]`.
    Typed,
    /// The calls of `typed`, each with two metadata entries, through one tower layer that
    /// does nothing on each side: what metadata and the layer machinery cost.
    TypedLayered,
    /// The same typed calls balanced over three servers (one client endpoint), with
    /// `--balanced-strategy` (round robin by default).
    Balanced,
    /// The control for `balanced`: typed calls to three servers in turn through three plain
    /// clients, no balancer; what three servers cost without the balancing layer.
    Spread,
    /// The typed calls of `typed`, to its one server, through a balanced channel of one
    /// endpoint: the balancing layer's own cost (pick, in-flight guard, statistics,
    /// metrics), on the same network as `typed`.
    Balanced1,
    /// tonic: gRPC unary calls over HTTP/2 and TLS (rustls, ring), one HTTP/2 connection.
    Tonic,
    /// tarpc: serde (bincode) over plain TCP, calls multiplexed on one connection.
    Tarpc,
    /// Length-prefixed frames over TCP + TLS 1.3 (tokio-rustls), pipelined on one
    /// connection: the limit of a TLS byte stream on this machine.
    TcpTls,
}

impl Impl {
    /// The name `--impls` takes, e.g. `tcp-tls`.
    fn name(self) -> String {
        self.to_possible_value().expect("no variant is skipped").get_name().to_owned()
    }

    /// Servers the orchestrator starts for this implementation.
    fn servers(self) -> usize {
        if matches!(self, Impl::Balanced | Impl::Spread) { 3 } else { 1 }
    }
}

#[derive(Parser, Debug)]
#[command(about = "Unary echo over loopback: rpcnet against raw quinn, tonic, tarpc and TLS over TCP")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// Implementations to measure; every one runs in every cell, in turn within each repeat.
    #[arg(long, value_delimiter = ',', default_values = ["quinn", "rpcnet", "typed", "tonic", "tarpc", "tcp-tls"])]
    impls: Vec<Impl>,
    /// Payload sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 16384, 262144, 1048576])]
    payloads: Vec<usize>,
    /// Calls in flight on the one connection (lowered for large payloads by
    /// --max-inflight-bytes).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64])]
    concurrency: Vec<usize>,
    /// Cap on the bytes of requests in flight: a cell runs min(concurrency, max(1, cap /
    /// payload)) calls at once, so 1 MiB runs 16 where 64 is asked (64 x 256 KiB is the
    /// cap exactly); 0 lifts the cap.
    #[arg(long, default_value_t = 16 << 20)]
    max_inflight_bytes: usize,
    /// Seconds measured per cell.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of warm-up per cell.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Repetitions of every cell; the table shows the median by calls/s.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Core to pin both processes to (`taskset -c`).
    #[arg(long, default_value_t = 1)]
    cpu: usize,
    /// Do not pin (cross-core wake-ups then dominate on small VMs).
    #[arg(long)]
    no_pin: bool,
    /// A fixed UDP payload size, e.g. 1452 or 65000; default: rpcnet's (and for `quinn` the
    /// same) path MTU discovery from 1200 up to 65527.
    #[arg(long)]
    max_udp_payload: Option<u16>,
    /// `quinn` with quinn's stock transport defaults (packets 1200..1452, no flow-control
    /// bound, no ACK-frequency request, GSO batches unsplit): rpcnet's settings before issue 12.
    #[arg(long)]
    stock_quinn: bool,
    /// The strategy of `balanced`, by name: round_robin, least_connections, peak_ewma, ...
    #[arg(long, default_value = "round_robin", value_parser = parse_strategy)]
    balanced_strategy: LoadBalancingStrategy,
    /// Folder for `echo.md` (the table) and `echo.svg` (calls/s by payload).
    #[arg(long, default_value = "target/bench-report")]
    out: PathBuf,
}

impl RunArgs {
    /// Calls in flight for `concurrency` asked and `payload` bytes, under
    /// `--max-inflight-bytes`.
    fn in_flight(&self, concurrency: usize, payload: usize) -> usize {
        if self.max_inflight_bytes == 0 {
            return concurrency;
        }
        concurrency.min((self.max_inflight_bytes / payload.max(1)).max(1))
    }
}

fn parse_strategy(name: &str) -> Result<LoadBalancingStrategy, String> {
    name.parse().map_err(|err: rpcnet::balance::UnknownStrategy| err.to_string())
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Simulate a large cluster in memory (no sockets) and report the cluster targets.
    ClusterSim(cluster_sim::SimArgs),
    /// Every balancing strategy against three local servers, one slow or spiky; writes a
    /// markdown report and an SVG of latencies.
    BalanceScenarios(scenarios::ScenarioArgs),
    /// Write development certificates into a folder, for running `serve` and `client` by hand.
    WriteCerts { dir: PathBuf },
    /// Serve echo calls; prints `LISTENING <addr>`.
    Serve {
        #[arg(long, value_enum)]
        implementation: Impl,
        #[arg(long)]
        cert_dir: PathBuf,
        #[arg(long)]
        max_udp_payload: Option<u16>,
        #[arg(long)]
        stock_quinn: bool,
    },
    /// Load a server; prints `MEASURE` when the measured phase starts and `RESULT ...` at the end.
    Client {
        #[arg(long, value_enum)]
        implementation: Impl,
        /// The server, or the servers (comma-separated) for `balanced` and `spread`.
        #[arg(long, value_delimiter = ',', required = true)]
        addr: Vec<SocketAddr>,
        #[arg(long)]
        cert_dir: PathBuf,
        #[arg(long)]
        payload: usize,
        #[arg(long)]
        concurrency: usize,
        #[arg(long)]
        duration: f64,
        #[arg(long)]
        warmup: f64,
        #[arg(long)]
        max_udp_payload: Option<u16>,
        #[arg(long)]
        stock_quinn: bool,
        /// The strategy of `balanced`.
        #[arg(long, default_value = "round_robin", value_parser = parse_strategy)]
        strategy: LoadBalancingStrategy,
    },
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn main() {
    // tarpc turns on tracing's `log` feature for the whole build, which makes every span of
    // quinn's (and rpcnet's) look for a `log` logger when no subscriber is set: ~200
    // instructions per call that a program with a subscriber, or without tarpc, never pays.
    // A subscriber that records nothing puts every implementation back on that footing.
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    let cli = Cli::parse();
    match cli.role {
        None => orchestrate(&cli.run),
        Some(Role::ClusterSim(args)) => cluster_sim::run(&args),
        Some(Role::BalanceScenarios(args)) => scenarios::run(&args),
        Some(Role::WriteCerts { dir }) => {
            rpcnet::transport::DevPki::get().write_pem_files(&dir).expect("write development certificates");
        }
        Some(Role::Serve { implementation, cert_dir, max_udp_payload, stock_quinn }) => {
            runtime().block_on(serve(implementation, &cert_dir, Tuning { max_udp_payload, stock_quinn }))
        }
        Some(Role::Client {
            implementation,
            addr,
            cert_dir,
            payload,
            concurrency,
            duration,
            warmup,
            max_udp_payload,
            stock_quinn,
            strategy,
        }) => {
            let tuning = Tuning { max_udp_payload, stock_quinn };
            let load = Load { payload, concurrency, duration: secs(duration), warmup: secs(warmup), strategy };
            runtime().block_on(client(implementation, &addr, &cert_dir, tuning, load))
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

async fn serve(implementation: Impl, cert_dir: &Path, tuning: Tuning) {
    match implementation {
        Impl::Quinn => {
            let endpoint = raw_quinn::server(cert_dir, &tuning);
            println!("LISTENING {}", endpoint.local_addr().unwrap());
            raw_quinn::serve(endpoint).await;
        }
        Impl::Rpcnet | Impl::RpcnetDeadline | Impl::RpcnetVec => {
            let (server, endpoint) = rpcnet_echo::server(cert_dir, &tuning).await;
            println!("LISTENING {}", server.local_addr().unwrap());
            server.start(endpoint).await.unwrap();
        }
        Impl::Typed | Impl::TypedLayered | Impl::Balanced | Impl::Spread | Impl::Balanced1 => {
            let (mut server, endpoint) = typed_echo::server(cert_dir, &tuning);
            if implementation == Impl::TypedLayered {
                server.layer(tower::layer::util::Identity::new());
            }
            println!("LISTENING {}", server.local_addr().unwrap());
            server.start(endpoint).await.unwrap();
        }
        Impl::Tonic => {
            let (addr, serving) = tonic_echo::server(cert_dir).await;
            println!("LISTENING {addr}");
            serving.await;
        }
        Impl::Tarpc => {
            let (addr, serving) = tarpc_echo::server().await;
            println!("LISTENING {addr}");
            serving.await;
        }
        Impl::TcpTls => {
            let (addr, serving) = tcp_tls::server(cert_dir).await;
            println!("LISTENING {addr}");
            serving.await;
        }
    }
}

struct Load {
    payload: usize,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    /// The strategy of `balanced`.
    strategy: LoadBalancingStrategy,
}

async fn client(implementation: Impl, addrs: &[SocketAddr], cert_dir: &Path, tuning: Tuning, load: Load) {
    let addr = addrs[0];
    let payload = Bytes::from(vec![0xa5u8; load.payload]);
    let expect = load.payload;
    let run = |duration| {
        let payload = payload.clone();
        let strategy = load.strategy;
        async move {
            match implementation {
                Impl::Quinn => {
                    let client = raw_quinn::Client::connect(addr, cert_dir, &tuning).await;
                    let client = &client;
                    let phase = measure::drive(load.concurrency, duration, || {
                        let payload = payload.clone();
                        async move { assert_eq!(client.echo(payload).await, expect) }
                    })
                    .await;
                    eprintln!("  quinn stats: calls={} {}", phase.calls, client.stats());
                    phase
                }
                Impl::Typed | Impl::TypedLayered | Impl::Balanced | Impl::Balanced1 => {
                    let client = if matches!(implementation, Impl::Balanced | Impl::Balanced1) {
                        typed_echo::connect_balanced(addrs, cert_dir, &tuning, strategy).await
                    } else {
                        typed_echo::connect(addr, cert_dir, &tuning).await
                    };
                    let client =
                        if implementation == Impl::TypedLayered { typed_echo::dressed(&client) } else { client };
                    let client = &client;
                    measure::drive(load.concurrency, duration, || {
                        let payload = payload.to_vec();
                        async move { assert_eq!(client.echo(payload).await.unwrap().len(), expect) }
                    })
                    .await
                }
                Impl::Spread => {
                    let mut clients = Vec::new();
                    for &addr in addrs {
                        clients.push(typed_echo::connect(addr, cert_dir, &tuning).await);
                    }
                    let (clients, next) = (&clients, &std::cell::Cell::new(0));
                    measure::drive(load.concurrency, duration, || {
                        let payload = payload.to_vec();
                        let client = &clients[next.get() % clients.len()];
                        next.set(next.get() + 1);
                        async move { assert_eq!(client.echo(payload).await.unwrap().len(), expect) }
                    })
                    .await
                }
                Impl::RpcnetVec => {
                    let client = rpcnet_echo::connect(addr, cert_dir, &tuning).await;
                    let client = &client;
                    measure::drive(load.concurrency, duration, || {
                        let payload = payload.to_vec();
                        async move { assert_eq!(rpcnet_echo::echo_vec(client, payload).await, expect) }
                    })
                    .await
                }
                Impl::Rpcnet | Impl::RpcnetDeadline => {
                    let client = rpcnet_echo::connect(addr, cert_dir, &tuning).await;
                    let (client, deadline) = (&client, implementation == Impl::RpcnetDeadline);
                    measure::drive(load.concurrency, duration, || {
                        let payload = payload.clone();
                        async move { assert_eq!(rpcnet_echo::echo(client, payload, deadline).await, expect) }
                    })
                    .await
                }
                Impl::Tonic => {
                    let client = tonic_echo::connect(addr, cert_dir).await;
                    let client = &client;
                    measure::drive(load.concurrency, duration, || {
                        let payload = payload.clone();
                        async move { assert_eq!(tonic_echo::echo(client, payload).await, expect) }
                    })
                    .await
                }
                Impl::Tarpc => {
                    let client = tarpc_echo::connect(addr).await;
                    let client = &client;
                    measure::drive(load.concurrency, duration, || {
                        let payload = payload.to_vec();
                        async move { assert_eq!(tarpc_echo::echo(client, payload).await, expect) }
                    })
                    .await
                }
                Impl::TcpTls => {
                    let client = tcp_tls::Client::connect(addr, cert_dir).await;
                    let client = &client;
                    measure::drive(load.concurrency, duration, || {
                        let payload = payload.clone();
                        async move { assert_eq!(client.echo(payload).await, expect) }
                    })
                    .await
                }
            }
        }
    };
    run(load.warmup).await;
    let cpu_before = measure::process_cpu(std::process::id()).unwrap_or_default();
    println!("MEASURE");
    let phase = run(load.duration).await;
    let cpu = measure::process_cpu(std::process::id()).unwrap_or_default() - cpu_before;
    println!(
        "RESULT calls={} secs={} p50_ns={} p99_ns={} cpu_ns={}",
        phase.calls,
        phase.elapsed.as_secs_f64(),
        phase.latency.value_at_quantile(0.50),
        phase.latency.value_at_quantile(0.99),
        cpu.as_nanos()
    );
}

fn spawn_pinned(args: &RunArgs, child_args: &[String]) -> Child {
    let exe = std::env::current_exe().expect("own path");
    let mut command = if args.no_pin {
        Command::new(exe)
    } else {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(args.cpu.to_string()).arg(exe);
        c
    };
    command.args(child_args).stdout(Stdio::piped()).stderr(Stdio::inherit());
    command.spawn().expect("spawn a benchmark process (is taskset installed? else pass --no-pin)")
}

fn orchestrate(args: &RunArgs) {
    let cert_dir = std::env::temp_dir().join(format!("rpcnet-bench-{}", std::process::id()));
    rpcnet::transport::DevPki::get().write_pem_files(&cert_dir).expect("write development certificates");
    let mut udp =
        args.max_udp_payload.map(|s| vec!["--max-udp-payload".to_string(), s.to_string()]).unwrap_or_default();
    if args.stock_quinn {
        udp.push("--stock-quinn".into());
    }
    // Every server runs for the whole benchmark; each cell alternates between the
    // implementations so that drift in the machine's speed hits them alike.
    let mut servers = Vec::new();
    for &implementation in &args.impls {
        let name = implementation.name();
        let mut serve_args = vec!["serve".into(), "--implementation".into(), name.clone()];
        serve_args.extend(["--cert-dir".into(), cert_dir.display().to_string()]);
        serve_args.extend(udp.clone());
        let (mut children, mut addrs) = (Vec::new(), Vec::new());
        for _ in 0..implementation.servers() {
            let mut server = spawn_pinned(args, &serve_args);
            let mut line = String::new();
            BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
            addrs.push(line.trim().strip_prefix("LISTENING ").expect("server prints its address").to_string());
            children.push(server);
        }
        servers.push((implementation, name, children, addrs.join(",")));
    }
    let mut cells = Vec::new();
    for &payload in &args.payloads {
        let mut measured = Vec::new();
        for &asked in &args.concurrency {
            let concurrency = args.in_flight(asked, payload);
            if measured.contains(&concurrency) {
                continue;
            }
            measured.push(concurrency);
            let mut runs: Vec<Vec<Cell>> = vec![Vec::new(); servers.len()];
            for _ in 0..args.repeat {
                for (i, (implementation, name, children, addr)) in servers.iter().enumerate() {
                    let mut client_args = vec!["client".into(), "--implementation".into(), name.clone()];
                    client_args.extend([
                        "--addr".into(),
                        addr.clone(),
                        "--cert-dir".into(),
                        cert_dir.display().to_string(),
                    ]);
                    client_args.extend(["--payload".into(), payload.to_string()]);
                    client_args.extend(["--concurrency".into(), concurrency.to_string()]);
                    client_args.extend(["--duration".into(), args.duration.to_string()]);
                    client_args.extend(["--warmup".into(), args.warmup.to_string()]);
                    client_args.extend(["--strategy".into(), args.balanced_strategy.name().to_owned()]);
                    client_args.extend(udp.clone());
                    let pids: Vec<u32> = children.iter().map(Child::id).collect();
                    let cell = run_client(args, &client_args, &pids, *implementation, payload, concurrency);
                    eprintln!(
                        "  run {} {payload} B x {concurrency}: {:.0} calls/s, {:.2} µs CPU/call",
                        name, cell.calls_per_sec, cell.cpu_us_per_call
                    );
                    runs[i].push(cell);
                }
            }
            for mut impl_runs in runs {
                // Calls/s of every repeat in run order, so ratios pair runs made side by side.
                let per_repeat: Vec<f64> = impl_runs.iter().map(|c| c.calls_per_sec).collect();
                impl_runs.sort_by(|a, b| a.calls_per_sec.total_cmp(&b.calls_per_sec));
                let mut cell = impl_runs[impl_runs.len() / 2].clone();
                cell.per_repeat = per_repeat;
                eprintln!("{cell:?}");
                cells.push(cell);
            }
        }
    }
    for mut server in servers.into_iter().flat_map(|(_, _, children, _)| children) {
        let _ = server.kill();
        let _ = server.wait();
    }
    let _ = std::fs::remove_dir_all(&cert_dir);
    // Grouped by cell, the implementations of a cell in `--impls` order.
    let order = |i: Impl| args.impls.iter().position(|&j| j == i).unwrap_or(usize::MAX);
    cells.sort_by_key(|c| (c.payload, c.concurrency, order(c.implementation)));
    let table = table::markdown(args, &cells);
    println!("{table}");
    std::fs::create_dir_all(&args.out).expect("create the report folder");
    let md_path = args.out.join("echo.md");
    std::fs::write(&md_path, &table).expect("write echo.md");
    let svg_path = args.out.join("echo.svg");
    chart::svg(args, &cells, &svg_path).expect("draw echo.svg");
    println!("wrote {} and {}", md_path.display(), svg_path.display());
}

fn run_client(
    args: &RunArgs,
    client_args: &[String],
    server_pids: &[u32],
    implementation: Impl,
    payload: usize,
    concurrency: usize,
) -> Cell {
    let mut client = spawn_pinned(args, client_args);
    let out = BufReader::new(client.stdout.take().unwrap());
    // CPU time of every server of the implementation.
    let server_cpu = || server_pids.iter().map(|&pid| measure::process_cpu(pid).unwrap_or_default()).sum::<Duration>();
    let mut server_cpu_start = Duration::ZERO;
    let mut result = None;
    for line in out.lines() {
        let line = line.unwrap();
        if line == "MEASURE" {
            server_cpu_start = server_cpu();
        } else if let Some(fields) = line.strip_prefix("RESULT ") {
            result = Some((fields.to_string(), server_cpu() - server_cpu_start));
        }
    }
    assert!(client.wait().unwrap().success(), "benchmark client failed");
    let (fields, server_cpu) = result.expect("client prints RESULT");
    let get = |key: &str| -> f64 {
        fields.split(' ').find_map(|kv| kv.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok()).unwrap()
    };
    let calls = get("calls");
    let cpu_ns = get("cpu_ns") + server_cpu.as_nanos() as f64;
    Cell {
        implementation,
        payload,
        concurrency,
        calls_per_sec: calls / get("secs"),
        p50_us: get("p50_ns") / 1000.0,
        p99_us: get("p99_ns") / 1000.0,
        cpu_us_per_call: cpu_ns / calls / 1000.0,
        per_repeat: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_payloads_run_fewer_calls_at_once() {
        let args = Cli::parse_from(["rpcnet-bench"]).run;
        let grid: Vec<(usize, usize)> =
            args.payloads.iter().flat_map(|&p| args.concurrency.iter().map(move |&c| (p, c))).collect();
        let in_flight: Vec<usize> = grid.iter().map(|&(p, c)| args.in_flight(c, p)).collect();
        assert_eq!(in_flight, [1, 64, 1, 64, 1, 64, 1, 16], "1 MiB runs 16 where 64 is asked: {grid:?}");
        let unlimited = Cli::parse_from(["rpcnet-bench", "--max-inflight-bytes", "0"]).run;
        assert_eq!(unlimited.in_flight(64, 1 << 20), 64);
        assert_eq!(args.in_flight(64, 64 << 20), 1, "never fewer than one call");
    }
}
