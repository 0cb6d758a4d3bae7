//! Attacks on a server running in a process of its own, by raw quinn clients from other
//! loopback addresses (127.0.0.2 and up: all of 127/8 is loopback), while a good client on
//! 127.0.0.1 keeps calling. Each attack checks that the good client is served (latency
//! printed), that the server's memory stays under a stated bound, and that the server has
//! freed everything by a stated time.
//!
//! `cargo test -p rpcnet --test hostile` runs every attack once (well under a minute). The
//! soak runs them in turn for `RPCNET_SOAK_SECS` seconds under a steady good load:
//! `RPCNET_SOAK_SECS=600 cargo test --release -p rpcnet --test hostile`.
//!
//! A test without libtest's harness: the same binary is the server when
//! `RPCNET_HOSTILE_SERVE` names a directory with its certificates.
// A report is this test's output: the server's address to its parent, figures to the reader.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::raw::{self, frame_header};
use rpcnet::transport::DevPki;
use rpcnet::wire::CallKind;
use rpcnet::{RpcClient, RpcConfig, RpcError, RpcServer};

const SERVE_ENV: &str = "RPCNET_HOSTILE_SERVE";
const SOAK_ENV: &str = "RPCNET_SOAK_SECS";

/// The server's bounds in this test, short so that the attacks are over in seconds.
const READ_TIMEOUT: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
const HANDSHAKE_IDLE: Duration = Duration::from_secs(1);
const MAX_FRAME: u32 = 4 << 20;
const BUFFERED_PER_CONNECTION: usize = 8 << 20;
const PER_ADDRESS: usize = 16;
const MAX_CONNECTIONS: usize = 64;
const MAX_IN_FLIGHT: usize = 512;

/// By this time after an attack is in place (the attacker still holding on), the server
/// has no call of it in flight, and no silent connection open. The bounds are 1 s each, but
/// stalled frames are freed in rounds: the 4 MiB connection window holds the attacker's
/// later streams back until the first ones are cut, and each round takes a read timeout
/// (a 10-minute soak saw 4 s typically and 8 s at worst).
const FREED_WITHIN: Duration = Duration::from_secs(20);
/// The server's peak resident memory over the whole run. What the attacks could make it
/// hold without the bounds is far more: 256 stalled 3 MiB frames alone are 768 MiB.
const PEAK_MEMORY_BOUND_MIB: u64 = 400;

fn main() {
    if let Some(dir) = std::env::var_os(SERVE_ENV) {
        serve(Path::new(&dir));
        return;
    }
    let soak = std::env::var(SOAK_ENV).ok().map(|s| Duration::from_secs(s.parse().expect("seconds")));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(attack(soak));
}

// ---------------------------------------------------------------------------------------
// The server process.

fn serve(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let config = RpcConfig::new(dir.join("server.pem"), "127.0.0.1:0")
            .with_key_path(dir.join("server-key.pem"))
            .with_request_read_timeout(READ_TIMEOUT)
            .with_write_timeout(WRITE_TIMEOUT)
            .with_handshake_idle_timeout(HANDSHAKE_IDLE)
            .with_max_frame_size(MAX_FRAME)
            .with_max_buffered_per_connection(BUFFERED_PER_CONNECTION)
            .with_max_connections_per_address(PER_ADDRESS)
            .with_max_connections(MAX_CONNECTIONS)
            .with_max_in_flight_calls(MAX_IN_FLIGHT);
        let mut server = RpcServer::new(config);
        let handle = server.handle();
        server.register("echo", |request| async move { Ok(request) }).await;
        server
            .register("big", |request: Vec<u8>| async move {
                let len = u32::from_le_bytes(request.try_into().map_err(|_| RpcError::Codec("want 4 bytes".into()))?);
                Ok(vec![7; len as usize])
            })
            .await;
        server
            .register_client_streaming("concat", |mut requests| async move {
                use futures::StreamExt;
                let mut all = 0usize;
                while let Some(part) = requests.next().await {
                    all += part.len();
                }
                Ok(all.to_le_bytes().to_vec())
            })
            .await;
        let stats_handle = handle.clone();
        server
            .register("stats", move |_| {
                let handle = stats_handle.clone();
                async move {
                    let (rss, peak) = memory_kib();
                    let stats = [handle.in_flight_calls() as u64, handle.open_connections() as u64, rss, peak];
                    Ok(stats.iter().flat_map(|v| v.to_le_bytes()).collect())
                }
            })
            .await;
        let endpoint = server.bind().expect("binds");
        println!("LISTENING {}", server.local_addr().unwrap());
        server.start(endpoint).await.unwrap();
    });
}

/// Resident memory now and at its peak, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---------------------------------------------------------------------------------------
// The attacker and the good client.

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_server() -> ServerProcess {
    let dir = TempDir(std::env::temp_dir().join(format!("rpcnet-hostile-{}", std::process::id())));
    DevPki::get().write_pem_files(&dir.0).expect("writes the certificates");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SERVE_ENV, &dir.0)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts the server process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the server says where it listens");
    let addr = line.trim().strip_prefix("LISTENING ").expect("LISTENING addr").parse().unwrap();
    ServerProcess { child, addr, _dir: dir }
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    in_flight: u64,
    connections: u64,
    rss_mib: u64,
    peak_mib: u64,
}

async fn stats(client: &RpcClient) -> Stats {
    let bytes = client.call("stats", Vec::new()).await.expect("the good client reads the stats");
    let v: Vec<u64> = bytes.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    Stats { in_flight: v[0], connections: v[1], rss_mib: v[2] / 1024, peak_mib: v[3] / 1024 }
}

/// The good client's calls: latencies of one attack's span, and errors (there must be none).
#[derive(Default)]
struct GoodLoad {
    latencies_us: std::sync::Mutex<Vec<u64>>,
    /// Calls answered so far, watched: the test's phases are paced by the good client's
    /// calls, not by the clock.
    served: tokio::sync::watch::Sender<u64>,
    errors: AtomicU64,
    stop: AtomicBool,
}

impl GoodLoad {
    /// Waits until the good client has had `calls` more answers.
    async fn serve(&self, calls: u64) {
        let target = *self.served.borrow() + calls;
        let mut served = self.served.subscribe();
        let wait = served.wait_for(|&now| now >= target);
        tokio::time::timeout(Duration::from_secs(60), wait).await.expect("the good client is served").unwrap();
    }

    /// p50 and p99 of the calls since the last take, in µs, and how many there were.
    fn take(&self) -> (u64, u64, usize) {
        let mut all = std::mem::take(&mut *self.latencies_us.lock().unwrap());
        all.sort_unstable();
        let at = |q: f64| all.get(((all.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
        (at(0.5), at(0.99), all.len())
    }
}

/// A good client calling without pause (one call at a time, 1 KiB each) until stopped.
async fn good_load(client: RpcClient, load: Arc<GoodLoad>) {
    while !load.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match client.call("echo", vec![1; 1024]).await {
            Ok(reply) if reply.len() == 1024 => {
                load.latencies_us.lock().unwrap().push(started.elapsed().as_micros() as u64);
                load.served.send_modify(|served| *served += 1);
            }
            other => {
                eprintln!("good client failed: {other:?}");
                load.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A raw QUIC connection from `local` (another loopback address), or `None` if refused;
/// the refusal must come at once.
async fn raw_connect(local: &str, server: SocketAddr) -> Option<quinn::Connection> {
    let connecting = raw::connect_from(local, server);
    let connected = tokio::time::timeout(Duration::from_secs(5), connecting).await.expect("an answer at once");
    // The endpoint lives on in the connection's driver; only the connection is kept.
    connected.ok().map(|raw| raw.connection)
}

fn head(kind: CallKind, method: &str) -> Vec<u8> {
    raw::head(kind, method, None)
}

/// What an attack leaves open until it is over: connections, streams it never uses, and
/// tasks that keep writing.
type Held = Vec<Box<dyn std::any::Any + Send>>;

/// An attacker's task, stopped when the attack is over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// 4 connections × 16 calls for 1 MiB replies that are never read.
async fn never_reading(server: SocketAddr, held: &mut Held) {
    for _ in 0..4 {
        let Some(conn) = raw_connect("127.0.0.2", server).await else { continue };
        for _ in 0..16 {
            let (mut send, recv) = conn.open_bi().await.unwrap();
            let mut request = head(CallKind::Unary, "big");
            request.extend(frame_header(4));
            request.extend((1u32 << 20).to_le_bytes());
            let _ = send.write_all(&request).await;
            let _ = send.finish();
            held.push(Box::new((send, recv)));
        }
        held.push(Box::new(conn));
    }
}

/// 4 connections × 64 client streams without deadline, each sending 3 MiB of a 4 MiB
/// frame and then nothing: 768 MiB if a server buffered them all.
async fn stalled_large_frames(server: SocketAddr, held: &mut Held) {
    let part = bytes::Bytes::from(vec![0u8; 3 << 20]);
    for _ in 0..4 {
        let Some(conn) = raw_connect("127.0.0.3", server).await else { continue };
        for _ in 0..64 {
            let Ok((mut send, recv)) = conn.open_bi().await else { break };
            let mut request = head(CallKind::ClientStreaming, "concat");
            request.extend(frame_header(MAX_FRAME as usize));
            // Flow control holds these writes back once the server has taken what it
            // allows; the task keeps trying until the attack is over.
            let part = part.clone();
            let writer = tokio::spawn(async move {
                let _ = send.write_all(&request).await;
                let _ = send.write_chunk(part).await;
                std::future::pending::<()>().await;
            });
            held.push(Box::new(AbortOnDrop(writer)));
            held.push(Box::new(recv));
        }
        held.push(Box::new(conn));
    }
}

/// Connections beyond every limit, each opening as many streams as it may and sending
/// nothing on them.
async fn stream_and_connection_flood(server: SocketAddr, held: &mut Held) {
    let mut refused = 0;
    for _ in 0..(MAX_CONNECTIONS + 8) {
        match raw_connect("127.0.0.4", server).await {
            Some(conn) => {
                for _ in 0..256 {
                    let Ok(Ok((mut send, recv))) = tokio::time::timeout(Duration::from_millis(5), conn.open_bi()).await
                    else {
                        break;
                    };
                    // A stream exists for the server once a byte arrives: half a head.
                    let _ = send.write_all(&head(CallKind::Unary, "echo")[..3]).await;
                    held.push(Box::new((send, recv)));
                }
                held.push(Box::new(conn));
            }
            None => refused += 1,
        }
    }
    assert!(refused >= MAX_CONNECTIONS + 8 - PER_ADDRESS, "connections beyond the per-address limit are refused");
}

/// Connections that never open a stream, from several addresses.
async fn silent_connections(server: SocketAddr, held: &mut Held) {
    for i in 0..48 {
        let local = format!("127.0.0.{}", 10 + i % 3);
        if let Some(conn) = raw_connect(&local, server).await {
            held.push(Box::new(conn));
        }
    }
}

async fn attack(soak: Option<Duration>) {
    let server = start_server();
    let good = RpcClient::connect(server.addr, RpcConfig::dev("127.0.0.1:0")).await.expect("the good client connects");
    let load = Arc::new(GoodLoad::default());
    let calling = tokio::spawn(good_load(good.clone(), load.clone()));
    let started = Instant::now();
    let mut round = 0;
    loop {
        round += 1;
        // Which attack, and whether its connections must be gone when it is over (the other
        // attackers opened calls, so their connections may stay, within the limits).
        for (name, run, connections_closed) in [
            ("never-reading clients, 64 replies of 1 MiB", 0, false),
            ("stalled large frames, 256 streams 3 MiB into 4 MiB", 1, false),
            ("stream and connection flood", 2, false),
            ("silent connections, 48", 3, true),
        ] {
            let mut held = Held::new();
            let _ = load.take();
            match run {
                0 => never_reading(server.addr, &mut held).await,
                1 => stalled_large_frames(server.addr, &mut held).await,
                2 => stream_and_connection_flood(server.addr, &mut held).await,
                _ => silent_connections(server.addr, &mut held).await,
            }
            // The attack is in place; it holds on while the server's bounds run out. The
            // figures printed are those of the good client's next 200 calls.
            let attack_started = Instant::now();
            load.serve(200).await;
            let (p50, p99, calls) = load.take();
            let during = stats(&good).await;
            assert!(calls > 0, "{name}: the good client was served during the attack");
            // The bounds free everything while the attacker still holds its connections.
            let freed_by = Instant::now() + FREED_WITHIN;
            let mut after = stats(&good).await;
            let freed = |s: &Stats| s.in_flight <= 1 && (!connections_closed || s.connections <= 1);
            // The server is another process: its counts are read by calling it, once every
            // 20 answers to the good client.
            while !freed(&after) && Instant::now() < freed_by {
                load.serve(20).await;
                after = stats(&good).await;
            }
            println!(
                "round {round} {name}: good client p50 {p50} µs, p99 {p99} µs over {calls} calls; server in flight {} \
                 with {} connections, rss {} MiB (peak {} MiB); freed {:?} after the attack was in place",
                during.in_flight,
                during.connections,
                during.rss_mib,
                during.peak_mib,
                attack_started.elapsed()
            );
            // The stats call itself is in flight.
            assert!(after.in_flight <= 1, "{name}: calls still in flight after {FREED_WITHIN:?}: {after:?}");
            assert!(freed(&after), "{name}: attack connections still open after {FREED_WITHIN:?}: {after:?}");
            assert!(after.peak_mib < PEAK_MEMORY_BOUND_MIB, "{name}: server memory over the bound: {after:?}");
            drop(held);
        }
        if soak.is_none_or(|soak| started.elapsed() >= soak) {
            break;
        }
    }
    load.stop.store(true, Ordering::Relaxed);
    calling.await.unwrap();
    // The good client after the attacks.
    let after_load = Arc::new(GoodLoad::default());
    let calling = tokio::spawn(good_load(good.clone(), after_load.clone()));
    after_load.serve(1_000).await;
    after_load.stop.store(true, Ordering::Relaxed);
    calling.await.unwrap();
    let (p50, p99, calls) = after_load.take();
    let last = stats(&good).await;
    println!(
        "after {round} rounds in {:?}: good client p50 {p50} µs, p99 {p99} µs over {calls} calls; \
         good-client errors {}; server peak memory {} MiB",
        started.elapsed(),
        load.errors.load(Ordering::Relaxed) + after_load.errors.load(Ordering::Relaxed),
        last.peak_mib
    );
    assert_eq!(load.errors.load(Ordering::Relaxed) + after_load.errors.load(Ordering::Relaxed), 0);
}
