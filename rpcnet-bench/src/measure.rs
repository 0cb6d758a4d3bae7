//! The load loop of a client process: `concurrency` callers on one connection, latency per
//! call in an hdrhistogram, and the CPU time of a process read from /proc.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;

/// What one measured phase produced.
pub(crate) struct Phase {
    pub(crate) calls: u64,
    pub(crate) elapsed: Duration,
    /// Latency of each call, in nanoseconds.
    pub(crate) latency: Histogram<u64>,
}

/// Runs `concurrency` loops of `call` for `duration`, all on the current task (a
/// current-thread runtime: no cross-thread wake-ups in what we measure).
pub(crate) async fn drive<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Phase
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let end = start + duration;
    let call = &call;
    let mut workers: FuturesUnordered<_> = (0..concurrency)
        .map(|_| async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
            let mut calls = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                call().await;
                latency.saturating_record(t0.elapsed().as_nanos() as u64);
                calls += 1;
            }
            (calls, latency)
        })
        .collect();
    let mut total = Phase {
        calls: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
    };
    while let Some((calls, latency)) = workers.next().await {
        total.calls += calls;
        total.latency.add(latency).expect("same bounds");
    }
    total.elapsed = start.elapsed();
    total
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub(crate) fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in USER_HZ, which is 100 on every mainstream architecture.
    Some(Duration::from_millis(ticks * 10))
}
