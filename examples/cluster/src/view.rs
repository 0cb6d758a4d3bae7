//! The live per-worker view and the final summary: plain functions from a snapshot of the
//! demo's state to text, redrawn in place on a terminal and printed as a log elsewhere.

use std::fmt::Write;
use std::time::Duration;

/// One worker as the demo's client sees it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) zone: String,
    pub(crate) state: String,
    pub(crate) total_calls: u64,
    pub(crate) calls_per_sec: f64,
    pub(crate) in_flight: u32,
    pub(crate) latency: Option<Duration>,
}

/// Everything one frame shows.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) elapsed: Duration,
    pub(crate) strategy: String,
    pub(crate) rows: Vec<Row>,
    pub(crate) failed_calls: u64,
    pub(crate) recent_events: Vec<String>,
}

/// The frame as text, one line per worker and the latest events under it.
pub(crate) fn render(frame: &Frame) -> String {
    let mut out = String::new();
    let total: u64 = frame.rows.iter().map(|r| r.total_calls).sum();
    let _ = writeln!(
        out,
        "t={:>5.1}s  strategy={}  calls={}  failed={}",
        frame.elapsed.as_secs_f64(),
        frame.strategy,
        total,
        frame.failed_calls
    );
    let _ = writeln!(
        out,
        "  {:<8} {:<6} {:<8} {:>8} {:>8} {:>9} {:>10}",
        "worker", "zone", "state", "calls", "calls/s", "in flight", "latency"
    );
    for row in &frame.rows {
        let latency = row.latency.map_or("-".to_string(), |l| format!("{:.1} ms", l.as_secs_f64() * 1000.0));
        let _ = writeln!(
            out,
            "  {:<8} {:<6} {:<8} {:>8} {:>8.0} {:>9} {:>10}  {}",
            row.name,
            row.zone,
            row.state,
            row.total_calls,
            row.calls_per_sec,
            row.in_flight,
            latency,
            bar(row.calls_per_sec)
        );
    }
    let _ = writeln!(out, "  recent events:");
    for event in &frame.recent_events {
        let _ = writeln!(out, "    {event}");
    }
    out
}

/// A bar of one `#` per 20 calls/s, at most 40 wide.
fn bar(calls_per_sec: f64) -> String {
    "#".repeat(((calls_per_sec / 20.0).round() as usize).min(40))
}

/// What the demo found, at the end.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) calls_per_worker: Vec<(String, u64)>,
    pub(crate) failed_calls: u64,
    pub(crate) discovery: Duration,
    pub(crate) suspected_after: Option<Duration>,
    pub(crate) failed_after: Option<Duration>,
    pub(crate) last_answer_after_kill: Option<Duration>,
    pub(crate) killed: String,
    pub(crate) added: String,
    pub(crate) added_first_call: Option<Duration>,
}

pub(crate) fn render_summary(s: &Summary) -> String {
    let mut out = String::new();
    let total: u64 = s.calls_per_worker.iter().map(|(_, n)| n).sum();
    let _ = writeln!(out, "\nSummary");
    let _ = writeln!(out, "  discovery by gossip: all workers known {:.0} ms after the client joined", ms(s.discovery));
    let _ = writeln!(out, "  calls per worker ({total} in all):");
    for (name, calls) in &s.calls_per_worker {
        let share = if total == 0 { 0.0 } else { 100.0 * *calls as f64 / total as f64 };
        let _ = writeln!(out, "    {name:<8} {calls:>7}  {share:>5.1}%");
    }
    let _ = writeln!(out, "  failed calls: {} (0 expected: every call is safe to repeat elsewhere)", s.failed_calls);
    let when = |d: Option<Duration>| d.map_or("never".to_string(), |d| format!("{:.2} s", d.as_secs_f64()));
    let _ = writeln!(
        out,
        "  {} killed: suspected after {}, declared failed after {}, last answer {} after the kill",
        s.killed,
        when(s.suspected_after),
        when(s.failed_after),
        when(s.last_answer_after_kill)
    );
    let _ = writeln!(out, "  {} added: first call answered {} after it started", s.added, when(s.added_first_call));
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_shows_every_worker_and_the_totals() {
        let row = |name: &str, calls| Row {
            name: name.into(),
            zone: "eu-1".into(),
            state: "alive".into(),
            total_calls: calls,
            calls_per_sec: 100.0,
            in_flight: 3,
            latency: Some(Duration::from_micros(2500)),
        };
        let frame = Frame {
            elapsed: Duration::from_millis(1500),
            strategy: "least_connections".into(),
            rows: vec![row("w1", 10), row("w2", 32)],
            failed_calls: 0,
            recent_events: vec!["1.0s joined w2".into()],
        };
        let text = render(&frame);
        assert!(text.starts_with("t=  1.5s  strategy=least_connections  calls=42  failed=0"), "{text}");
        assert!(text.contains("w2") && text.contains("2.5 ms") && text.contains("#####"), "{text}");
        assert!(text.contains("joined w2"));
    }
}
