//! `cluster-sim`: a large cluster in the deterministic simulator, measured against the
//! targets of the cluster issue: time to full membership, gossip bytes per node, time until
//! every survivor knows of a 1% crash, false failures under loss, and memory per tracked node.

use std::time::{Duration, Instant};

use rpcnet::cluster::sim::{SimConfig, Simulation};

/// What to simulate.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SimArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Share of datagrams lost, 0.05 = 5%.
    #[arg(long, default_value_t = 0.05)]
    loss: f64,
    /// Seed of the network and of every node: same seed, same run.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Percent of the nodes crashed after convergence.
    #[arg(long, default_value_t = 1.0)]
    crash_percent: f64,
    /// Virtual seconds of steady gossip measured for bytes per node.
    #[arg(long, default_value_t = 60)]
    steady_secs: u64,
}

pub(crate) fn run(args: &SimArgs) {
    let wall = Instant::now();
    let rss_before = resident_bytes();
    let mut sim =
        Simulation::new(SimConfig { nodes: args.nodes, loss: args.loss, seed: args.seed, ..SimConfig::default() });
    println!("{} nodes, {:.1}% loss, seed {}", args.nodes, args.loss * 100.0, args.seed);

    let converged = sim.run_until(Duration::from_secs(120), Simulation::converged);
    let rss_converged = resident_bytes();
    match converged {
        Some(at) => {
            println!("full membership:        {:.1} s after the first node started (target ≤ 30 s)", at.as_secs_f64())
        }
        None => println!("full membership:        NOT reached within 120 s"),
    }
    if let (Some(before), Some(after)) = (rss_before, rss_converged) {
        let tracked = (args.nodes * args.nodes.saturating_sub(1)).max(1);
        println!(
            "memory:                 {:.1} KiB per node, {:.0} B per tracked member (resident growth of the whole simulation / nodes / members)",
            after.saturating_sub(before) as f64 / args.nodes as f64 / 1024.0,
            after.saturating_sub(before) as f64 / tracked as f64
        );
    }

    let bytes_before = sim.total_bytes_sent();
    let steady_start = sim.elapsed();
    sim.run_for(Duration::from_secs(args.steady_secs));
    let steady = (sim.elapsed() - steady_start).as_secs_f64();
    let per_node = (sim.total_bytes_sent() - bytes_before) as f64 / args.nodes as f64 / steady;
    println!("gossip:                 {per_node:.0} B/s sent per node in steady state (target ≤ 2048)");

    let crash_count = ((args.nodes as f64 * args.crash_percent / 100.0).round() as usize).max(1);
    let crashed: Vec<usize> = (0..crash_count).map(|i| args.nodes / 2 + i).collect();
    let false_before = sim.false_failures();
    for &node in &crashed {
        sim.crash(node);
    }
    let crash_at = sim.elapsed();
    let mut line = format!("crash of {crash_count}:", crash_count = crashed.len());
    for share in [0.5, 0.9, 0.99, 1.0] {
        let reached = sim.run_until(Duration::from_secs(60), |s| s.share_knowing_down(&crashed) >= share);
        match reached {
            Some(_) => {
                line += &format!(
                    " {:.0}% of survivors know after {:.1} s;",
                    share * 100.0,
                    (sim.elapsed() - crash_at).as_secs_f64()
                )
            }
            None => line += &format!(" {:.0}% NOT reached in 60 s;", share * 100.0),
        }
    }
    println!("{line} (target: all within 15 s)");
    println!("false failures:         {} before the crash, {} in all (target 0)", false_before, sim.false_failures());
    println!("wall time:              {:.1} s", wall.elapsed().as_secs_f64());
}

/// Resident set size of this process, from `/proc` (Linux only).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
