//! The orchestrator's table: one row per payload, concurrency and implementation, with its
//! ratios to `typed` and to raw quinn, and lines comparing typed with raw-bytes calls and
//! `balanced` with `typed` (one server) and with `spread` (the same three servers).

use std::fmt::Write as _;

use crate::{Impl, RunArgs};

/// One cell of the table.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub(crate) implementation: Impl,
    pub(crate) payload: usize,
    pub(crate) concurrency: usize,
    /// The median run by calls/s.
    pub(crate) calls_per_sec: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) cpu_us_per_call: f64,
    /// Calls/s of every repeat, in run order: repeat `r` of every implementation ran
    /// back to back, so ratios pair them and drift in the machine's speed cancels out.
    pub(crate) per_repeat: Vec<f64>,
}

/// `64 B`, `16 KiB`, `1 MiB`: a payload size, in the largest binary unit that divides it.
pub(crate) fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// The markdown table, then the ratio lines.
pub(crate) fn markdown(args: &RunArgs, cells: &[Cell]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Unary echo, loopback, {} s per cell ({} s warm-up), {} repeat(s), {}, UDP payload {}, \
         at most {} in flight:\n",
        args.duration,
        args.warmup,
        args.repeat,
        if args.no_pin { "unpinned".to_string() } else { format!("every process on core {}", args.cpu) },
        match (args.max_udp_payload, args.stock_quinn) {
            (Some(size), _) => format!("fixed at {size}"),
            (None, false) => "discovered from 1200 up to 65527 (rpcnet's default)".to_string(),
            (None, true) => "rpcnet's discovery, quinn's stock 1200..1452 for `quinn`".to_string(),
        },
        if args.max_inflight_bytes == 0 { "unlimited".to_string() } else { size_label(args.max_inflight_bytes) },
    );
    out += "| impl | payload | concurrency | calls/s | vs typed | vs quinn | p50 µs | p99 µs | CPU µs/call |\n";
    out += "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for cell in cells {
        let ratio = |to: Impl| {
            counterpart(cells, cell, to)
                .map_or("-".to_string(), |base| format!("{:.1}%", 100.0 * paired_ratio(cell, base)))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {:.1} | {:.1} | {:.2} |",
            cell.implementation.name(),
            size_label(cell.payload),
            cell.concurrency,
            cell.calls_per_sec,
            ratio(Impl::Typed),
            ratio(Impl::Quinn),
            cell.p50_us,
            cell.p99_us,
            cell.cpu_us_per_call
        );
    }
    out += "\n\"vs typed\", \"vs quinn\" and the ratios below are medians over repeats of calls/s \
            divided by that of the other implementation in the same repeat (runs made back to back); \
            the other columns are those of the median run. CPU is client + server, per call.\n";
    if cells.iter().any(|c| matches!(c.implementation, Impl::Balanced | Impl::Balanced1)) {
        let _ = writeln!(out, "balanced uses {}.", args.balanced_strategy);
    }
    let lines = [
        (
            Impl::Typed,
            Impl::RpcnetVec,
            "typed / raw-bytes Vec calls (both without deadline), calls/s",
            " (target ≥ 97%)",
        ),
        (Impl::Typed, Impl::Rpcnet, "typed / raw-bytes Bytes calls (both without deadline), calls/s", ""),
        (
            Impl::TypedLayered,
            Impl::Typed,
            "typed with 2 metadata entries and a no-op layer each side / typed, calls/s",
            "",
        ),
        (Impl::RpcnetDeadline, Impl::Rpcnet, "raw-bytes calls with / without a deadline, calls/s", ""),
        (Impl::Balanced, Impl::Typed, "balanced (3 servers) / typed (1 server), calls/s", " (target ≥ 97%)"),
        (Impl::Balanced, Impl::Spread, "balanced / spread (same 3 servers, no balancer), calls/s", ""),
        (Impl::Balanced1, Impl::Typed, "balanced1 (one endpoint) / typed (same server, no balancer), calls/s", ""),
    ];
    for (of, to, what, target) in lines {
        let found = ratios(cells, of, to);
        if !found.is_empty() {
            let _ = writeln!(out, "\n{what}: {}{target}", found.join("; "));
        }
    }
    out
}

fn counterpart<'a>(cells: &'a [Cell], cell: &Cell, implementation: Impl) -> Option<&'a Cell> {
    cells
        .iter()
        .find(|c| c.implementation == implementation && c.payload == cell.payload && c.concurrency == cell.concurrency)
}

/// The median over repeats of `of / to` in the same repeat; the ratio of the medians when
/// the repeats do not pair up.
fn paired_ratio(of: &Cell, to: &Cell) -> f64 {
    if of.per_repeat.is_empty() || of.per_repeat.len() != to.per_repeat.len() {
        return of.calls_per_sec / to.calls_per_sec;
    }
    let mut ratios: Vec<f64> = of.per_repeat.iter().zip(&to.per_repeat).map(|(a, b)| a / b).collect();
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    if ratios.len() % 2 == 1 { ratios[mid] } else { (ratios[mid - 1] + ratios[mid]) / 2.0 }
}

/// `64 B × 1: 98.1%`: the calls/s of `of` over those of `to`, for every payload and
/// concurrency measured with both.
fn ratios(cells: &[Cell], of: Impl, to: Impl) -> Vec<String> {
    cells
        .iter()
        .filter(|c| c.implementation == of)
        .filter_map(|cell| {
            let base = counterpart(cells, cell, to)?;
            let percent = 100.0 * paired_ratio(cell, base);
            Some(format!("{} × {}: {percent:.1}%", size_label(cell.payload), cell.concurrency))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(implementation: Impl, concurrency: usize, per_repeat: &[f64]) -> Cell {
        let mut sorted = per_repeat.to_vec();
        sorted.sort_by(f64::total_cmp);
        Cell {
            implementation,
            payload: 64,
            concurrency,
            calls_per_sec: sorted[sorted.len() / 2],
            p50_us: 0.0,
            p99_us: 0.0,
            cpu_us_per_call: 0.0,
            per_repeat: per_repeat.to_vec(),
        }
    }

    #[test]
    fn sizes_read_in_the_largest_unit_that_divides_them() {
        let labels: Vec<String> = [64, 1000, 16384, 262_144, 1_048_576, 1_572_864].map(size_label).into();
        assert_eq!(labels, ["64 B", "1000 B", "16 KiB", "256 KiB", "1 MiB", "1536 KiB"]);
    }

    #[test]
    fn ratios_compare_the_same_cell_of_two_implementations() {
        let cells = [
            cell(Impl::Typed, 1, &[10_000.0]),
            cell(Impl::Typed, 64, &[40_000.0]),
            cell(Impl::Balanced, 1, &[9_800.0]),
            cell(Impl::Balanced, 64, &[39_000.0]),
            cell(Impl::Balanced, 8, &[1.0]),
        ];
        assert_eq!(
            ratios(&cells, Impl::Balanced, Impl::Typed),
            ["64 B × 1: 98.0%", "64 B × 64: 97.5%"],
            "one ratio per cell measured with both, none for a cell without typed"
        );
    }

    #[test]
    fn ratios_pair_runs_made_back_to_back() {
        // The machine slowed down in the second repeat: both implementations lost half.
        let quinn = cell(Impl::Quinn, 64, &[100.0, 50.0, 98.0]);
        let rpcnet = cell(Impl::Rpcnet, 64, &[90.0, 45.0, 88.0]);
        let paired = paired_ratio(&rpcnet, &quinn);
        assert!((paired - 0.9).abs() < 0.002, "median of 0.9, 0.9, 0.898: {paired}");
        assert!((rpcnet.calls_per_sec / quinn.calls_per_sec - 0.898).abs() < 0.001, "medians alone agree here");
        let drifted = cell(Impl::Rpcnet, 64, &[45.0, 90.0, 88.0]);
        assert!((paired_ratio(&drifted, &quinn) - 0.898).abs() < 0.002, "{}", paired_ratio(&drifted, &quinn));
    }
}
