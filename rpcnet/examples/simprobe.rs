use std::time::Duration;
use rpcnet::cluster::sim::{SimConfig, Simulation};
fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let loss: f64 = std::env::args().nth(2).unwrap_or("0".into()).parse().unwrap();
    let t = std::time::Instant::now();
    let mut sim = Simulation::new(SimConfig { nodes: n, loss, seed: 7, ..SimConfig::default() });
    let conv = sim.run_until(Duration::from_secs(120), Simulation::converged);
    println!("n={n} loss={loss} converged after {:?} (virtual), wall {:?}", conv, t.elapsed());
    let bytes0 = sim.total_bytes_sent(); let t0 = sim.elapsed();
    sim.run_for(Duration::from_secs(60));
    println!("steady: {:.0} B/s per node", (sim.total_bytes_sent() - bytes0) as f64 / n as f64 / (sim.elapsed()-t0).as_secs_f64());
    let crashed: Vec<usize> = (0..n/100.max(1)).map(|i| n/2 + i).collect();
    let crashed = if crashed.is_empty() { vec![n/2] } else { crashed };
    for &c in &crashed { sim.crash(c); }
    let t_crash = sim.elapsed();
    let mut marks = vec![];
    for q in [0.5, 0.9, 0.99, 1.0] { let d = sim.run_until(Duration::from_secs(60), |s| s.share_knowing_down(&crashed) >= q); marks.push((q, d.map(|_| sim.elapsed() - t_crash))); }
    println!("{marks:?}");
    let det = marks.last().unwrap().1;
    println!("crash of {} detected by all after {:?}; false failures {}; wall {:?}", crashed.len(), det, sim.false_failures(), t.elapsed());
}
