//! The orchestrator's table: one row per implementation, payload and concurrency, with its
//! ratio to raw quinn, and lines comparing `balanced` with `typed` (one server) and with
//! `spread` (the same three servers without the balancer).

use crate::{Impl, RunArgs};

/// One cell of the table.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub(crate) implementation: Impl,
    pub(crate) payload: usize,
    pub(crate) concurrency: usize,
    pub(crate) calls_per_sec: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) cpu_us_per_call: f64,
}

/// Prints the markdown table, then the ratio lines of `balanced`.
pub(crate) fn print_table(args: &RunArgs, cells: &[Cell]) {
    println!(
        "\nUnary echo, loopback, {} s per cell, {}, UDP payload {}:\n",
        args.duration,
        if args.no_pin { "unpinned".to_string() } else { format!("every process on core {}", args.cpu) },
        args.max_udp_payload.map_or("QUIC default".to_string(), |s| s.to_string())
    );
    println!("| impl | payload | concurrency | calls/s | vs quinn | p50 µs | p99 µs | CPU µs/call |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for cell in cells {
        let baseline = cells.iter().find(|c| {
            c.implementation == Impl::Quinn && c.payload == cell.payload && c.concurrency == cell.concurrency
        });
        let ratio =
            baseline.map_or("-".to_string(), |b| format!("{:.1}%", 100.0 * cell.calls_per_sec / b.calls_per_sec));
        println!(
            "| {:?} | {} | {} | {:.0} | {} | {:.1} | {:.1} | {:.2} |",
            cell.implementation,
            cell.payload,
            cell.concurrency,
            cell.calls_per_sec,
            ratio,
            cell.p50_us,
            cell.p99_us,
            cell.cpu_us_per_call
        );
    }
    if cells.iter().any(|c| c.implementation == Impl::Balanced) {
        println!("\nbalanced uses {}.", args.balanced_strategy);
    }
    let vs_typed = ratios(cells, Impl::Balanced, Impl::Typed);
    if !vs_typed.is_empty() {
        println!("\nbalanced (3 servers) / typed (1 server), calls/s: {} (target ≥ 97%)", vs_typed.join("; "));
    }
    let vs_spread = ratios(cells, Impl::Balanced, Impl::Spread);
    if !vs_spread.is_empty() {
        println!("balanced / spread (same 3 servers, no balancer), calls/s: {}", vs_spread.join("; "));
    }
}

/// `64 B × 1: 98.1%`: the calls/s of `of` over those of `to`, for every payload and
/// concurrency measured with both.
fn ratios(cells: &[Cell], of: Impl, to: Impl) -> Vec<String> {
    cells
        .iter()
        .filter(|c| c.implementation == of)
        .filter_map(|cell| {
            let base = cells
                .iter()
                .find(|c| c.implementation == to && c.payload == cell.payload && c.concurrency == cell.concurrency)?;
            let percent = 100.0 * cell.calls_per_sec / base.calls_per_sec;
            Some(format!("{} B × {}: {percent:.1}%", cell.payload, cell.concurrency))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(implementation: Impl, concurrency: usize, calls_per_sec: f64) -> Cell {
        Cell { implementation, payload: 64, concurrency, calls_per_sec, p50_us: 0.0, p99_us: 0.0, cpu_us_per_call: 0.0 }
    }

    #[test]
    fn ratios_compare_the_same_cell_of_two_implementations() {
        let cells = [
            cell(Impl::Typed, 1, 10_000.0),
            cell(Impl::Typed, 64, 40_000.0),
            cell(Impl::Balanced, 1, 9_800.0),
            cell(Impl::Balanced, 64, 39_000.0),
            cell(Impl::Balanced, 8, 1.0),
        ];
        assert_eq!(
            ratios(&cells, Impl::Balanced, Impl::Typed),
            ["64 B × 1: 98.0%", "64 B × 64: 97.5%"],
            "one ratio per cell measured with both, none for a cell without typed"
        );
    }
}
