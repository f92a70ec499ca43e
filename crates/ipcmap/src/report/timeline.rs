//! `--timeline FILE.svg`: a Gantt chart of one measured run per strategy (the run with the
//! median wall time), one row per process (the coordinator, then each worker; each thread for
//! the threads strategy), colored by phase, on a common time axis, the wall time marked. Gaps
//! are waiting: a worker row with gaps is a worker waiting for the coordinator.

use super::plot::PlotError;
use super::Report;
use super::WorkerReport;
use crate::trace::{Phase, RunTrace};
use plotters::prelude::*;

/// The run of `r` to draw: its median by wall time.
fn median_run(r: &Report) -> Option<&RunTrace> {
    let mut runs: Vec<&RunTrace> = r.traces.iter().collect();
    runs.sort_by_key(|t| t.end_ns - t.start_ns);
    runs.get(runs.len() / 2).copied()
}

/// The rows of a run: the coordinator (`None`), then each worker id seen, in order.
fn rows(run: &RunTrace) -> Vec<Option<u32>> {
    let mut workers: Vec<u32> = run.spans.iter().filter_map(|s| s.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    std::iter::once(None).chain(workers.into_iter().map(Some)).collect()
}

pub(super) fn color(phase: Phase) -> RGBColor {
    match phase {
        Phase::Spawn => RGBColor(127, 127, 127),
        Phase::Generate => RGBColor(188, 189, 34),
        Phase::Encode => RGBColor(31, 119, 180),
        Phase::Send => RGBColor(148, 103, 189),
        // A worker waiting for its next task, light blue; the coordinator waiting, light gray.
        Phase::Receive => RGBColor(174, 199, 232),
        Phase::Wait => RGBColor(221, 221, 221),
        Phase::Decode => RGBColor(255, 127, 14),
        Phase::Compute => RGBColor(44, 160, 44),
        Phase::Assemble => RGBColor(140, 86, 75),
    }
}

/// Draws the timeline of every report with recorded spans, as SVG text.
pub fn plot_timeline(reports: &[Report]) -> Result<String, PlotError> {
    let drawn: Vec<(&Report, &RunTrace)> =
        reports.iter().filter_map(|r| Some((r, median_run(r)?))).collect();
    if drawn.is_empty() {
        return Err(PlotError::Empty);
    }
    let err = |e: String| PlotError::Draw { message: e };
    let max_ms =
        drawn.iter().map(|(_, t)| (t.end_ns - t.start_ns) as f64 / 1e6).fold(0.0, f64::max) * 1.05;
    let heights: Vec<u32> =
        drawn.iter().map(|(_, t)| 70 + 26 * rows(t).len().max(2) as u32).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 60 + heights.iter().sum::<u32>() + 40))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let (title, body) = root.split_vertically(60);
        let first = drawn[0].0;
        let workers = reports.iter().map(|r| r.config.workers).max().unwrap_or(1);
        title
            .draw(&Text::new(
                format!(
                    "timeline: {} over {} f64, {workers} workers — the median run of each strategy \
                     (ms since it started; | = wall time; gaps = waiting)",
                    first.config.function,
                    super::table::group_digits(first.config.n as u64)
                ),
                (10, 8),
                ("sans-serif", 18),
            ))
            .map_err(|e| err(e.to_string()))?;
        for (k, phase) in Phase::ALL.iter().enumerate() {
            let x = 10 + 115 * k as i32;
            title
                .draw(&Rectangle::new([(x, 36), (x + 14, 48)], color(*phase).filled()))
                .map_err(|e| err(e.to_string()))?;
            title
                .draw(&Text::new(phase.name(), (x + 18, 35), ("sans-serif", 18)))
                .map_err(|e| err(e.to_string()))?;
        }
        let mut y = 0;
        let mut area = body;
        for ((report, run), height) in drawn.iter().zip(&heights) {
            let (panel, rest) = area.split_vertically(*height);
            area = rest;
            y += height;
            let lanes = rows(run);
            let labels: Vec<String> = lanes
                .iter()
                .map(|l| match l {
                    None => "coordinator".to_string(),
                    Some(w) if report.config.mode == "threads" => format!("thread {w}"),
                    // Where it ran, where the transport knows (an MPI rank's host).
                    Some(w) => match report.worker_detail.iter().find(|d| d.id == *w) {
                        Some(WorkerReport { host: Some(host), .. }) => {
                            format!("worker {w} on {host}")
                        }
                        _ => format!("worker {w}"),
                    },
                })
                .collect();
            let mut chart = ChartBuilder::on(&panel)
                .caption(
                    format!("{} (wall {:.1} ms)", report.config.mode, report_wall(run)),
                    ("sans-serif", 18),
                )
                .margin(6)
                .x_label_area_size(36)
                .y_label_area_size(100)
                .build_cartesian_2d(0.0..max_ms, 0.0..lanes.len() as f64)
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .disable_x_mesh()
                .y_labels(lanes.len() * 2 + 1)
                .x_desc("ms since the run started")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .label_style(("sans-serif", 18))
                .y_label_formatter(&|v| {
                    let k = (*v - 0.5).round();
                    if (*v - 0.5 - k).abs() < 1e-6 && k >= 0.0 {
                        labels.get(lanes.len() - 1 - k as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .draw()
                .map_err(|e| err(e.to_string()))?;
            let row_of = |w: Option<u32>| lanes.iter().position(|l| *l == w).unwrap_or(0);
            let n = lanes.len() as f64;
            // Waits first: a decoder thread's span lies over its gather thread's wait.
            let mut ordered: Vec<&crate::trace::Span> = run.spans.iter().collect();
            ordered.sort_by_key(|s| s.phase != crate::trace::Phase::Wait);
            let spans = ordered.into_iter().map(|s| {
                let row = n - 1.0 - row_of(s.worker) as f64;
                let x0 = s.start_ns.saturating_sub(run.start_ns) as f64 / 1e6;
                let x1 = s.end_ns.saturating_sub(run.start_ns) as f64 / 1e6;
                Rectangle::new(
                    [(x0, row + 0.15), (x1.max(x0 + max_ms * 0.0005), row + 0.85)],
                    color(s.phase).filled(),
                )
            });
            chart.draw_series(spans).map_err(|e| err(e.to_string()))?;
            let wall = report_wall(run);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(wall, 0.0), (wall + max_ms * 0.002, n)],
                    BLACK.filled(),
                )))
                .map_err(|e| err(e.to_string()))?;
        }
        let _ = y;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

fn report_wall(run: &RunTrace) -> f64 {
    (run.end_ns - run.start_ns) as f64 / 1e6
}
