//! The echo benchmark's chart: calls/s by payload size (both axes log), one line per
//! implementation, one panel per concurrency asked (`--concurrency`), as SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::RunArgs;
use crate::table::{Cell, size_label};

/// One panel's title: the concurrency asked, and where `--max-inflight-bytes` lowered it.
fn panel_title(args: &RunArgs, asked: usize, payloads: &[usize]) -> String {
    let lowered: Vec<String> = payloads
        .iter()
        .filter(|&&p| args.in_flight(asked, p) != asked)
        .map(|&p| format!("{} at {}", args.in_flight(asked, p), size_label(p)))
        .collect();
    if lowered.is_empty() {
        format!("{asked} in flight")
    } else {
        format!("{asked} in flight ({})", lowered.join(", "))
    }
}

/// Draws the chart of `cells` into `path`.
pub(crate) fn svg(args: &RunArgs, cells: &[Cell], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut levels = args.concurrency.clone();
    levels.dedup();
    let mut payloads: Vec<usize> = cells.iter().map(|c| c.payload).collect();
    payloads.sort_unstable();
    payloads.dedup();
    let root = SVGBackend::new(path, (640 * levels.len().max(1) as u32, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, levels.len().max(1)));
    let (Some(&smallest), Some(&largest)) = (payloads.first(), payloads.last()) else {
        root.present()?;
        return Ok(());
    };
    for (panel, &asked) in panels.iter().zip(&levels) {
        // Per implementation in --impls order, its calls/s at each payload of this panel.
        let lines: Vec<(String, Vec<(f64, f64)>)> = args
            .impls
            .iter()
            .map(|&implementation| {
                let points = cells
                    .iter()
                    .filter(|c| c.implementation == implementation && c.concurrency == args.in_flight(asked, c.payload))
                    .map(|c| (c.payload as f64, c.calls_per_sec))
                    .collect();
                (implementation.name(), points)
            })
            .filter(|(_, points): &(String, Vec<(f64, f64)>)| !points.is_empty())
            .collect();
        let values = lines.iter().flat_map(|(_, points)| points.iter().map(|&(_, y)| y));
        let (low, high) = values.fold((f64::MAX, 0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
        // The axis starts at a power of ten: plotters labels a log axis from the first one.
        let (low, high) = if high > 0.0 { (10f64.powf(low.max(1.0).log10().floor()), high * 1.5) } else { (1.0, 10.0) };
        let x_range = (smallest as f64 / 1.6)..(largest as f64 * 1.6);
        let mut chart = ChartBuilder::on(panel)
            .caption(panel_title(args, asked, &payloads), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(
                x_range.log_scale().with_key_points(payloads.iter().map(|&p| p as f64).collect()),
                (low..high).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("payload (log)")
            .y_desc("calls/s (log)")
            .y_labels(12)
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|x| size_label(*x as usize))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for (i, (name, points)) in lines.into_iter().enumerate() {
            let style = Palette99::pick(i).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.clone(), style))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, style.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
