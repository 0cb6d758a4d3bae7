//! `rpcnet-harness`: a cluster of real processes on separate network stacks on one machine.
//! Network namespaces joined by a bridge (`net.rs`) each run one `rpcnet-node` (`nodes.rs`);
//! the run kills, isolates and splits them (`faults.rs`) and prints what the nodes saw.
//!
//! ```text
//! sudo cargo run --release -p rpcnet-node --bin rpcnet-harness                  # 5 hosts, one fault of each kind
//! sudo cargo run --release -p rpcnet-node --bin rpcnet-harness -- --hosts 7 --minutes 5 --fault-every 20
//! ```
//!
//! Needs root and `ip netns`; elsewhere it prints why it cannot run and exits with 0 (the
//! test that runs it says "skipped"). Everything it makes (namespaces, links, processes,
//! a development CA directory) is removed at the end, also when a step fails.
#![allow(clippy::print_stdout)] // a command-line tool: its output is the report

mod faults;
mod net;
mod nodes;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::json;

use faults::Row;
use net::Network;
use nodes::Nodes;

#[derive(Parser, Debug)]
#[command(about = "rpcnet nodes in network namespaces on one machine: kills, partitions and splits, measured")]
struct Args {
    /// Hosts (network namespaces), 5 to 7: one client, the others workers.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(5..=7))]
    hosts: u8,
    /// Minutes of faults one after another; 0: one fault of each kind, then stop.
    #[arg(long, default_value_t = 0)]
    minutes: u64,
    /// Seconds from one fault to the next (with --minutes).
    #[arg(long, default_value_t = 20)]
    fault_every: u64,
    /// The rpcnet-node binary (default: the one built beside this one).
    #[arg(long)]
    node_binary: Option<PathBuf>,
    /// Also write every line the nodes printed (JSON, with their timestamps) to this file,
    /// to read what happened around a fault.
    #[arg(long)]
    log: Option<PathBuf>,
}

/// Milliseconds since the Unix epoch, the clock the nodes stamp their lines with.
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn main() {
    let args = Args::parse();
    if let Some(reason) = net::unavailable() {
        println!("skipped: {reason}");
        return;
    }
    match run(&args) {
        Ok(clean) if clean => {}
        Ok(_) => std::process::exit(1),
        Err(err) => {
            println!("harness failed: {err}");
            std::process::exit(1);
        }
    }
}

/// What the client's summary said.
struct Calls {
    /// The first error of a failed call, as the caller saw it.
    first_error: Option<String>,
    answered: u64,
    failed_idempotent: u64,
    failed_append: u64,
    slowest_failure_ms: u64,
}

/// Runs the scenario; true if every target was met.
fn run(args: &Args) -> Result<bool, String> {
    let hosts = usize::from(args.hosts);
    let binary = match &args.node_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("rpcnet-node"),
    };
    let ca_dir = std::env::temp_dir().join(format!("rnh-ca-{}", std::process::id()));
    let result = {
        let net = Network::create(hosts)?;
        let prefix = net.prefix().to_owned();
        let mut nodes = Nodes::new(binary, ca_dir.clone());
        let outcome = scenario(args, &net, &mut nodes);
        let log = nodes.log.clone();
        drop(nodes);
        drop(net);
        if let Some(path) = &args.log {
            write_log(path, &log)?;
        }
        let left = Network::remaining(&prefix);
        let processes = nodes::processes_with(&ca_dir);
        println!("cleanup: {} namespaces and {processes} processes of this run left", left.len());
        outcome.map(|report| report && left.is_empty() && processes == 0)
    };
    let _ = std::fs::remove_dir_all(&ca_dir);
    result
}

/// Every node line of the run, one JSON object a line, in the order they arrived.
fn write_log(path: &std::path::Path, log: &nodes::Log) -> Result<(), String> {
    let mut text = String::new();
    for line in log.snapshot() {
        text.push_str(&line.fields.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("node lines written to {}", path.display());
    Ok(())
}

fn scenario(args: &Args, net: &Network, nodes: &mut Nodes) -> Result<bool, String> {
    let hosts = usize::from(args.hosts);
    let (workers, client) = (hosts - 1, hosts);
    // The first worker makes the development CA that all of them then read.
    nodes.start_worker(net, 1, 1)?;
    nodes.log.wait_for(Duration::from_secs(30), |lines| lines.iter().any(|l| l.kind == "started").then_some(()));
    for host in 2..=workers {
        nodes.start_worker(net, host, 1)?;
    }
    // The deadline outlasts failure detection: a call caught on a dead worker is retried
    // elsewhere once the worker is declared down, instead of timing out first.
    nodes.start_client(net, client, 1, workers, 10_000)?;
    nodes
        .log
        .wait_for(Duration::from_secs(60), |lines| lines.iter().any(|l| l.kind == "ready").then_some(()))
        .ok_or("the client did not find every worker within 60 s")?;
    // The client being ready says only that it sees every worker: before the first fault,
    // every node must know every other one by name, or a fault's lines would name an
    // address the run does not wait for.
    let everyone = nodes.names_except(&[]);
    nodes
        .log
        .wait_for(Duration::from_secs(60), |lines| {
            everyone
                .iter()
                .all(|observer| {
                    everyone.iter().filter(|&other| other != observer).all(|other| {
                        lines.iter().any(|line| {
                            &line.node == observer
                                && line.member().is_some_and(|(event, about)| {
                                    about == other && (event == "joined" || event == "recovered")
                                })
                        })
                    })
                })
                .then_some(())
        })
        .ok_or("the nodes did not all know each other within 60 s")?;
    println!("{hosts} hosts up: workers w1..w{workers}, client c{client}; addresses 10.77.0.1..{hosts}/24");

    let began = Instant::now();
    let mut rows = Vec::new();
    let mut quiet: Vec<(u64, u64)> = Vec::new();
    let mut round = 0usize;
    loop {
        let target = 2 + round % (workers - 1); // never w1, the seed of every restart
        let row = match round % 3 {
            0 => faults::kill(net, nodes, target, 1)?,
            1 => faults::isolate(net, nodes, target)?,
            _ => faults::split(net, nodes, &(1..=workers / 2).collect::<Vec<_>>())?,
        };
        println!("{}", describe(&row));
        rows.push(row);
        round += 1;
        let one_of_each = args.minutes == 0 && round == 3;
        let done = args.minutes > 0 && began.elapsed() >= Duration::from_secs(args.minutes * 60);
        if one_of_each || done {
            break;
        }
        // A quiet window until the next fault: no node may be declared failed in it.
        let from = wall_ms();
        std::thread::sleep(Duration::from_secs(args.fault_every.max(5)));
        quiet.push((from, wall_ms()));
    }
    let false_failures = false_failures(nodes, &quiet);
    let calls = stop_client(nodes, client)?;
    Ok(report(&rows, &calls, false_failures, began.elapsed()))
}

/// Member failures reported inside a quiet window, when no fault was active (each printed).
fn false_failures(nodes: &Nodes, quiet: &[(u64, u64)]) -> usize {
    let mut count = 0;
    for line in nodes.log.snapshot() {
        let Some(("failed", about)) = line.member() else { continue };
        if let Some(&(from, _)) = quiet.iter().find(|&&(from, to)| line.t_ms >= from + 1_000 && line.t_ms <= to) {
            println!(
                "  false failure: {} declared {about} failed {} ms into a quiet window",
                line.node,
                line.t_ms - from
            );
            count += 1;
        }
    }
    count
}

fn stop_client(nodes: &mut Nodes, client: usize) -> Result<Calls, String> {
    let name = nodes.name(client).ok_or("the client is gone")?;
    nodes.terminate(client, Duration::from_secs(30));
    let summary = nodes
        .log
        .wait_for(Duration::from_secs(5), |lines| {
            lines.iter().find(|l| l.node == name && l.kind == "summary").map(|l| l.fields.clone())
        })
        .ok_or("the client printed no summary")?;
    Ok(Calls {
        first_error: summary["errors"].get(0).and_then(|e| e.as_str()).map(str::to_owned),
        answered: summary["answered"].as_u64().unwrap_or(0),
        failed_idempotent: summary["failed_square"].as_u64().unwrap_or(u64::MAX),
        failed_append: summary["failed_append"].as_u64().unwrap_or(0),
        slowest_failure_ms: summary["slowest_failure_ms"].as_u64().unwrap_or(0),
    })
}

fn ms(value: Option<u64>) -> String {
    value.map_or("missed".to_owned(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
}

fn describe(row: &Row) -> String {
    format!(
        "{:<44} {:<8} detected by all in {:>8}   whole again in {:>8}   {}",
        row.fault,
        row.target,
        ms(row.detected_ms),
        ms(row.recovered_ms),
        row.notes
    )
}

/// Prints the table and the targets; true if every target was met.
fn report(rows: &[Row], calls: &Calls, false_failures: usize, ran: Duration) -> bool {
    println!("\n| fault | target | detected by every survivor | whole again after the fault ended | notes |");
    println!("|---|---|---:|---:|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            row.fault,
            row.target,
            ms(row.detected_ms),
            ms(row.recovered_ms),
            row.notes
        );
    }
    let kills = rows.iter().filter(|r| r.fault.starts_with("kill"));
    let worst_kill = kills.filter_map(|r| r.detected_ms).max();
    let heals = rows.iter().filter(|r| !r.fault.starts_with("kill"));
    let worst_heal = heals.filter_map(|r| r.recovered_ms).max();
    let all_measured = rows.iter().all(|r| r.detected_ms.is_some() && r.recovered_ms.is_some());
    let targets = [
        ("every fault detected and recovered from within 60 s", all_measured),
        ("a killed node known to all survivors within 5 s", worst_kill.is_some_and(|ms| ms <= 5_000)),
        ("a healed partition merged within 10 s", worst_heal.is_none_or(|ms| ms <= 10_000)),
        ("0 lost idempotent calls", calls.failed_idempotent == 0),
        ("0 false failures while no fault was active", false_failures == 0),
    ];
    println!(
        "\n{:.0} s, {} faults; calls: {} answered, {} idempotent failed, {} non-idempotent failed (slowest failure {} ms); \
         {} false failures",
        ran.as_secs_f64(),
        rows.len(),
        calls.answered,
        calls.failed_idempotent,
        calls.failed_append,
        calls.slowest_failure_ms,
        false_failures
    );
    if let Some(error) = &calls.first_error {
        println!("  first failed call: {error}");
    }
    for (target, met) in targets {
        println!("  [{}] {target}", if met { "met" } else { "MISSED" });
    }
    let summary = json!({
        "all_measured": all_measured,
        "faults": rows.len(),
        "worst_kill_detection_ms": worst_kill,
        "worst_heal_ms": worst_heal,
        "answered": calls.answered,
        "failed_idempotent": calls.failed_idempotent,
        "failed_non_idempotent": calls.failed_append,
        "false_failures": false_failures,
    });
    println!("HARNESS {summary}");
    targets.iter().all(|(_, met)| *met)
}
