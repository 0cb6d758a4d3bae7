//! The report of `balance-scenarios`: a markdown table per scenario, a paragraph comparing
//! PeakEwma and P2C with RoundRobin on p99, and an SVG of each strategy's latency percentile
//! curve. Pure functions of the results, apart from writing the SVG file.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use plotters::prelude::*;

/// One strategy's run in one scenario.
#[derive(Debug)]
pub(crate) struct Row {
    /// The strategy, as `LoadBalancingStrategy`'s variant is named.
    pub(crate) strategy: String,
    /// Calls each server received, in the scenario's server order.
    pub(crate) calls: Vec<u64>,
    /// Latency of every call, in microseconds.
    pub(crate) latency: Histogram<u64>,
    /// Calls that succeeded within their deadline.
    pub(crate) ok: u64,
    /// Calls made.
    pub(crate) total: u64,
    /// Wall time of the measured calls.
    pub(crate) wall: Duration,
}

/// Every strategy's run in one scenario.
#[derive(Debug)]
pub(crate) struct ScenarioResult {
    pub(crate) title: String,
    /// What makes the scenario (markdown).
    pub(crate) note: String,
    /// Server names, the odd one last.
    pub(crate) servers: Vec<String>,
    /// Whether the last server is the odd one (else all are alike).
    pub(crate) odd_last: bool,
    pub(crate) rows: Vec<Row>,
}

/// How the runs were made.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) calls: usize,
    pub(crate) concurrency: usize,
    pub(crate) warmup: usize,
    pub(crate) deadline: Duration,
    /// Worker threads of the runtime.
    pub(crate) threads: usize,
}

/// The latency at quantile `q` (0..=1) in milliseconds, from a histogram in microseconds:
/// the middle of the histogram's bucket (within 0.1%), not its upper edge, so that a run of
/// 10 ms calls reads 10.00 ms.
pub(crate) fn percentile_ms(latency: &Histogram<u64>, q: f64) -> f64 {
    latency.median_equivalent(latency.value_at_quantile(q)) as f64 / 1000.0
}

/// Highest "nines" on the percentile curve: 3 is p99.9.
const MAX_NINES: f64 = 3.0;

/// Points `(nines, ms)` from p0 to p99.9, where `nines` is -log10(1 - q): 0 is p0, 1 is p90,
/// 2 is p99, 3 is p99.9, so that each decade of the tail gets the same width.
pub(crate) fn percentile_curve(latency: &Histogram<u64>) -> Vec<(f64, f64)> {
    const STEPS: u32 = 60;
    (0..=STEPS)
        .map(|i| {
            let nines = MAX_NINES * f64::from(i) / f64::from(STEPS);
            (nines, percentile_ms(latency, 1.0 - 10f64.powf(-nines)))
        })
        .collect()
}

/// The percentile a value on the curve's x axis stands for: `p0`, `p90`, `p99`, `p99.9`.
fn nines_label(nines: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let text = format!("{percent:.3}");
    format!("p{}", text.trim_end_matches('0').trim_end_matches('.'))
}

/// `3412 / 3401 / 3187`: calls per server, in server order.
pub(crate) fn calls_cell(calls: &[u64]) -> String {
    calls.iter().map(u64::to_string).collect::<Vec<_>>().join(" / ")
}

/// The markdown table of one scenario.
pub(crate) fn table(result: &ScenarioResult, deadline: Duration) -> String {
    let mut servers = result.servers.clone();
    if let Some(odd) = servers.last_mut().filter(|_| result.odd_last) {
        *odd = format!("**{odd}**");
    }
    let mut out = format!(
        "| strategy | calls {} | p50 ms | p99 ms | p99.9 ms | within {} s deadline | wall s |\n",
        servers.join(" / "),
        deadline.as_secs_f64()
    );
    out += "|---|---:|---:|---:|---:|---:|---:|\n";
    for row in &result.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2}% | {:.2} |",
            row.strategy,
            calls_cell(&row.calls),
            percentile_ms(&row.latency, 0.50),
            percentile_ms(&row.latency, 0.99),
            percentile_ms(&row.latency, 0.999),
            100.0 * row.ok as f64 / row.total.max(1) as f64,
            row.wall.as_secs_f64()
        );
    }
    out
}

/// Share of a row's calls that went to the odd server (the last), in percent.
fn odd_share(row: &Row) -> f64 {
    let total: u64 = row.calls.iter().sum();
    100.0 * row.calls.last().copied().unwrap_or(0) as f64 / total.max(1) as f64
}

/// A paragraph on where PeakEwma and PowerOfTwoChoices stand against RoundRobin on p99, with
/// the share of calls each sent to the odd server.
pub(crate) fn p99_comparison(result: &ScenarioResult) -> String {
    let row = |name: &str| result.rows.iter().find(|r| r.strategy == name);
    let odd = result.servers.last().map_or("the odd server".to_owned(), |name| format!("`{name}`"));
    let Some(baseline) = row("RoundRobin").filter(|r| percentile_ms(&r.latency, 0.99) > 0.0) else {
        return "No RoundRobin run to compare with.".to_owned();
    };
    let base_ms = percentile_ms(&baseline.latency, 0.99);
    let share = |row: &Row, lead: &str| {
        if result.odd_last { format!("{lead}{:.1}% of calls on {odd}", odd_share(row)) } else { String::new() }
    };
    let mut out = format!("p99 against RoundRobin ({base_ms:.2} ms{}):", share(baseline, ", "));
    for (name, short) in [("PeakEwma", "PeakEwma"), ("PowerOfTwoChoices", "P2C")] {
        match row(name) {
            Some(r) => {
                let ms = percentile_ms(&r.latency, 0.99);
                let ratio = ms / base_ms;
                let verdict = if ratio < 0.95 {
                    "lower"
                } else if ratio > 1.05 {
                    "higher"
                } else {
                    "about the same"
                };
                let on_odd = if result.odd_last { format!(", {:.1}% on {odd}", odd_share(r)) } else { String::new() };
                let _ = write!(out, " {short} {ms:.2} ms, {ratio:.2}x ({verdict}){on_odd};");
            }
            None => {
                let _ = write!(out, " {short} not run;");
            }
        }
    }
    out.pop();
    out += if result.odd_last {
        ". p99 drops below the odd server's slow answers only when they are under 1% of all calls."
    } else {
        ". The servers are alike: no strategy can lower a p99 set by every server's own spikes."
    };
    out
}

/// The whole report: settings, then per scenario its note, table and p99 comparison.
pub(crate) fn markdown(results: &[ScenarioResult], settings: &Settings) -> String {
    let mut out = String::from("# Load-balancing scenarios\n\n");
    let _ = writeln!(
        out,
        "Three typed rpcnet servers and one balanced client (`WorkClient::builder().endpoints(..).strategy(..)`) \
         in one process, on a {}-thread tokio runtime, over loopback QUIC. Per strategy: {} warm-up calls \
         (same client, not counted), then {} calls with {} in flight, each with a {} s deadline. Endpoints \
         carry the `capacity` and `zone` tags each scenario gives (the weighted strategies follow \
         `capacity`; `Locality(a, PeakEwma)` prefers zone `a`, the client's, and runs PeakEwma there); \
         ConsistentHash gets a random affinity key per call. Service times are \
         `tokio::time::sleep`, whose timer has 1 ms granularity, so a 2 ms call takes 2 to 3 ms. \
         Calls per server are counted by the servers, the odd one last (bold); latency is measured by \
         the client, from call to answer.\n",
        settings.threads,
        settings.warmup,
        settings.calls,
        settings.concurrency,
        settings.deadline.as_secs_f64()
    );
    for result in results {
        let _ = writeln!(out, "## {}\n\n{}\n", result.title, result.note);
        out += &table(result, settings.deadline);
        let _ = writeln!(out, "\n{}\n", p99_comparison(result));
    }
    out
}

/// Draws one panel per scenario with a percentile curve per strategy, on a log latency axis.
pub(crate) fn svg(results: &[ScenarioResult], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (720 * results.len().max(1) as u32, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, results.len().max(1)));
    for (panel, result) in panels.iter().zip(results) {
        let curves: Vec<(&str, Vec<(f64, f64)>)> =
            result.rows.iter().map(|r| (r.strategy.as_str(), percentile_curve(&r.latency))).collect();
        let values = curves.iter().flat_map(|(_, c)| c.iter().map(|&(_, ms)| ms));
        let (low, high) = values.fold((f64::MAX, 0f64), |(lo, hi), ms| (lo.min(ms), hi.max(ms)));
        // The axis starts at a power of ten: plotters labels a log axis from the first one.
        let (low, high) =
            if high > 0.0 { (10f64.powf(low.max(0.01).log10().floor()), high * 1.25) } else { (0.1, 10.0) };
        let mut chart = ChartBuilder::on(panel)
            .caption(&result.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..MAX_NINES, (low..high).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency, ms (log)")
            .x_labels(4)
            .y_labels(24)
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|x| nines_label(*x))
            .y_label_formatter(&|y| format!("{y}"))
            .draw()?;
        for (i, (name, curve)) in curves.into_iter().enumerate() {
            let style = Palette99::pick(i).stroke_width(2);
            chart
                .draw_series(LineSeries::new(curve, style))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A histogram in microseconds holding each of `millis` once.
    fn latencies(millis: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for ms in millis {
            h.record(ms * 1000).unwrap();
        }
        h
    }

    fn row(strategy: &str, millis: &[u64]) -> Row {
        Row {
            strategy: strategy.to_owned(),
            calls: vec![2, 1, 1],
            latency: latencies(millis),
            ok: 3,
            total: 4,
            wall: Duration::from_millis(1500),
        }
    }

    #[test]
    fn percentiles_come_out_in_milliseconds_and_the_curve_climbs_from_p0_to_p99_9() {
        let millis: Vec<u64> = (1..=1000).collect();
        let h = latencies(&millis);
        assert!((percentile_ms(&h, 0.5) - 500.0).abs() < 1.0, "p50 of 1..=1000 ms is 500 ms");
        assert!((percentile_ms(&h, 0.99) - 990.0).abs() < 1.0, "p99 is 990 ms");
        let curve = percentile_curve(&h);
        assert_eq!(curve.first().unwrap(), &(0.0, 1.0), "the curve starts at p0, the minimum");
        let (x, ms) = *curve.last().unwrap();
        assert!((x - 3.0).abs() < 1e-9 && (ms - 999.0).abs() < 1.0, "it ends at p99.9: ({x}, {ms})");
        assert!(curve.windows(2).all(|w| w[0].1 <= w[1].1), "percentiles never fall");
        assert_eq!([0.0, 1.0, 2.0, 3.0].map(nines_label), ["p0", "p90", "p99", "p99.9"]);
    }

    #[test]
    fn the_table_names_the_odd_server_last_and_the_comparison_gives_ratios() {
        let result = ScenarioResult {
            title: "A".into(),
            note: String::new(),
            servers: vec!["fast-1".into(), "fast-2".into(), "slow".into()],
            odd_last: true,
            rows: vec![row("RoundRobin", &[2, 2, 10, 10]), row("PeakEwma", &[2, 2, 2, 5])],
        };
        let table = table(&result, Duration::from_secs(1));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| strategy | calls fast-1 / fast-2 / **slow** | p50 ms | p99 ms | p99.9 ms | within 1 s deadline | wall s |"
        );
        assert_eq!(lines[2], "| RoundRobin | 2 / 1 / 1 | 2.00 | 10.00 | 10.00 | 75.00% | 1.50 |");
        assert_eq!(lines.len(), 4, "a header, a rule and a row per strategy");
        assert_eq!(
            p99_comparison(&result),
            "p99 against RoundRobin (10.00 ms, 25.0% of calls on `slow`): PeakEwma 5.00 ms, 0.50x (lower), \
             25.0% on `slow`; P2C not run. p99 drops below the odd server's slow answers only when they are \
             under 1% of all calls."
        );
    }

    #[test]
    fn a_scenario_of_alike_servers_bolds_none_and_gives_no_shares() {
        let result = ScenarioResult {
            title: "B".into(),
            note: String::new(),
            servers: vec!["spiky-1".into(), "spiky-2".into(), "spiky-3".into()],
            odd_last: false,
            rows: vec![row("RoundRobin", &[2, 2, 100, 100]), row("PowerOfTwoChoices", &[2, 2, 2, 100])],
        };
        assert!(table(&result, Duration::from_secs(1)).starts_with("| strategy | calls spiky-1 / spiky-2 / spiky-3 |"));
        assert_eq!(
            p99_comparison(&result),
            "p99 against RoundRobin (100.00 ms): PeakEwma not run; P2C 100.00 ms, 1.00x (about the same). The \
             servers are alike: no strategy can lower a p99 set by every server's own spikes."
        );
    }
}
