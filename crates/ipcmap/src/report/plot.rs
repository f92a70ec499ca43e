//! Plots, as SVG files a browser opens: a heatmap of a two-parameter sweep, a line chart of a
//! one-parameter sweep, and a bar chart of where each strategy's time went, phase by phase.
//! Every mark is a figure from the reports.

use super::Axis;
use super::{Millis, Report};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Opacity of heatmap cells; the SVG carries it on every cell, one `<rect>` per grid point.
pub const CELL_OPACITY: f64 = 0.92;

/// A plot that could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to plot.
    #[error("nothing to plot")]
    Empty,
    /// The grid varies more parameters than one plot shows.
    #[error("--plot draws a sweep of one or two varying parameters; this one varies {0}")]
    TooManyAxes(String),
    /// plotters failed.
    #[error("drawing the plot: {message}")]
    Draw { message: String },
}

/// A chart's frame on `root`: its title, margin and label areas, alike on every plot.
pub(super) fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: impl AsRef<str>,
) -> ChartBuilder<'a, 'b, DB> {
    let mut chart = ChartBuilder::on(root);
    chart.caption(title, ("sans-serif", 24)).margin(12).x_label_area_size(60).y_label_area_size(84);
    chart
}

/// An axis tick: no more digits than it needs ("64", "2.5", "0.25"; never "64.0").
pub(super) fn tick(v: f64) -> String {
    let text = match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 0.01 || a == 0.0 => format!("{v:.2}"),
        _ => format!("{v:.1e}"),
    };
    match text.contains('.') && !text.contains('e') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

pub(super) fn draw_err() -> impl Fn(String) -> PlotError {
    move |message| PlotError::Draw { message }
}

/// Draws the sweep's median wall times as SVG text: a heatmap over two varying axes, a line
/// over one. The caller writes it where it belongs (and checks that write).
pub fn plot_sweep(reports: &[Report], axes: &[Axis]) -> Result<String, PlotError> {
    let mut svg = String::new();
    match axes {
        [] => line_chart(reports, None, &mut svg),
        // Over n: the scaling view, the cost of a value against how many there are.
        [Axis::N] | [Axis::Mode, Axis::N] | [Axis::N, Axis::Mode] => {
            scaling_chart(reports, &mut svg)
        }
        [x] => line_chart(reports, Some(*x), &mut svg),
        [Axis::Mode, x] | [x, Axis::Mode] => series_chart(reports, *x, Axis::Mode, &mut svg),
        [y, x] => heatmap(reports, *x, *y, &mut svg),
        more => Err(PlotError::TooManyAxes(
            more.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
        )),
    }?;
    Ok(svg)
}

/// Distinct labels of `axis` in report order.
fn levels(reports: &[Report], axis: Axis) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in reports {
        let label = axis.label(r);
        if !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// " (--work K)" in a title when the work factor is above 1.
fn work_suffix(work: u32) -> String {
    if work > 1 {
        format!(" (--work {work})")
    } else {
        String::new()
    }
}

/// The label of a segment of a categorical axis.
fn segment_label(levels: &[String], v: &SegmentValue<usize>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            levels.get(*i).cloned().unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    }
}

/// Where `value` lies between the fastest and slowest cell, 0-1, on a log scale.
fn heat_position(value: Millis, min: Millis, max: Millis) -> f64 {
    if max > min {
        ((value.max(1e-9) / min.max(1e-9)).ln() / (max / min.max(1e-9)).ln()).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Viridis at `t` (0: fast, dark blue-violet; 1: slow, yellow): perceptually even and
/// readable with any colour vision, unlike green to red.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let lerp = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// A cell's colour for `value` between the fastest and slowest cell.
fn heat(value: Millis, min: Millis, max: Millis) -> RGBColor {
    viridis(heat_position(value, min, max))
}

/// Width of the heatmap's colour bar and its labels, px.
const COLOUR_BAR: u32 = 110;

/// The colour bar beside a heatmap: the scale from `max` (top) to `min` (bottom), log.
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    min: Millis,
    max: Millis,
) -> Result<(), PlotError> {
    let err = draw_err();
    let (_, h) = area.dim_in_pixel();
    let (top, bottom) = (50i32, h as i32 - 60);
    let steps = 48;
    for k in 0..steps {
        let y0 = top + (bottom - top) * k / steps;
        let y1 = top + (bottom - top) * (k + 1) / steps;
        let t = 1.0 - (k as f64 + 0.5) / steps as f64;
        area.draw(&Rectangle::new([(10, y0), (30, y1)], viridis(t).filled()))
            .map_err(|e| err(e.to_string()))?;
    }
    let label = |text: String, y: i32| Text::new(text, (36, y - 6), ("sans-serif", 18));
    area.draw(&Text::new("wall ms", (4, top - 24), ("sans-serif", 18)))
        .map_err(|e| err(e.to_string()))?;
    let middle = (min.max(1e-9) * max.max(1e-9)).sqrt();
    for (value, y) in [(max, top), (middle, (top + bottom) / 2), (min, bottom)] {
        area.draw(&label(super::table::fmt_ms(value), y)).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

fn heatmap(reports: &[Report], x: Axis, y: Axis, svg: &mut String) -> Result<(), PlotError> {
    let (xs, ys) = (levels(reports, x), levels(reports, y));
    let (min, max) = min_max(reports.iter().map(|r| r.wall_ms)).ok_or(PlotError::Empty)?;
    let err = draw_err();
    let width = 560.max(140 + 90 * xs.len() as u32) + COLOUR_BAR;
    let whole = SVGBackend::with_string(svg, (width, 200.max(120 + 48 * ys.len() as u32)))
        .into_drawing_area();
    whole.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let (root, bar) = whole.split_horizontally(width - COLOUR_BAR);
    colour_bar(&bar, min, max)?;
    let first = &reports[0];
    let title = format!(
        "{} wall ms (median), {}{} over {} f64, {} workers",
        first.config.mode,
        first.config.function,
        work_suffix(first.config.work),
        super::table::group_digits(first.config.n as u64),
        first.config.workers
    );
    let mut chart = frame(&root, title)
        .build_cartesian_2d(segments(xs.len()), segments(ys.len()))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .disable_mesh()
        .x_desc(x.name())
        .y_desc(y.name())
        .x_labels(xs.len())
        .y_labels(ys.len())
        .x_label_formatter(&|v| segment_label(&xs, v))
        .y_label_formatter(&|v| segment_label(&ys, v))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let cell = |r: &Report| {
        let i = xs.iter().position(|l| *l == x.label(r)).unwrap_or(0);
        let j = ys.iter().position(|l| *l == y.label(r)).unwrap_or(0);
        (i, j)
    };
    chart
        .draw_series(reports.iter().map(|r| {
            let (i, j) = cell(r);
            let corners = [
                (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
            ];
            Rectangle::new(corners, heat(r.wall_ms, min, max).mix(CELL_OPACITY).filled())
        }))
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(reports.iter().map(|r| {
            let (i, j) = cell(r);
            // Light text on the dark end of the scale, dark text on the light end.
            let ink: &'static RGBColor =
                if heat_position(r.wall_ms, min, max) < 0.55 { &WHITE } else { &BLACK };
            let style = ("sans-serif", 18)
                .into_text_style(&root)
                .pos(Pos::new(HPos::Center, VPos::Center))
                .color(ink);
            Text::new(
                super::table::fmt_ms(r.wall_ms),
                (SegmentValue::CenterOf(i), SegmentValue::CenterOf(j)),
                style,
            )
        }))
        .map_err(|e| err(e.to_string()))?;
    whole.present().map_err(|e| err(e.to_string()))
}

fn line_chart(reports: &[Report], x: Option<Axis>, svg: &mut String) -> Result<(), PlotError> {
    let (_, max) =
        min_max(reports.iter().map(|r| r.wall_ms.max(r.wall_ms_max))).ok_or(PlotError::Empty)?;
    let xs = x.map_or_else(|| vec![reports[0].config.mode.clone()], |x| levels(reports, x));
    let err = draw_err();
    let root = SVGBackend::with_string(svg, (200 + 70 * xs.len() as u32, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = frame(&root, "wall ms (median; bars: fastest to slowest run)")
        .build_cartesian_2d(segments(xs.len()), 0.0..max * 1.15)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .x_desc(x.map_or("", Axis::name))
        .y_desc("wall ms")
        .x_labels(xs.len())
        .x_label_formatter(&|v| segment_label(&xs, v))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let points: Vec<_> = reports
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let i = x
                .and_then(|x| xs.iter().position(|l| *l == x.label(r)))
                .unwrap_or(k.min(xs.len() - 1));
            (SegmentValue::CenterOf(i), r.wall_ms)
        })
        .collect();
    chart
        .draw_series(reports.iter().zip(&points).map(|(r, p)| spread_bar(p.0.clone(), r, BLUE)))
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(points.into_iter().map(|p| Circle::new(p, 4, BLUE.filled())))
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// A vertical bar from a report's fastest to its slowest run at `x`.
fn spread_bar<X: Clone>(x: X, r: &Report, colour: RGBColor) -> PathElement<(X, f64)> {
    let (low, high) = (r.wall_ms_min.max(1e-3), r.wall_ms_max.max(r.wall_ms_min).max(1e-3));
    PathElement::new(vec![(x.clone(), low), (x, high)], colour.mix(0.6).stroke_width(6))
}

/// Pixels between the spread bars of two series at one x, so that each stays visible.
const DODGE: i32 = 8;

/// Spread bars (x, fastest, slowest) of series `k` of `count`, each shifted sideways by its
/// place among the series (dodged), so that bars of several strategies at one x do not hide
/// each other. Drawn in pixels on `root`, from the chart's own mapping.
pub(super) fn dodged_bars<'a, DB, X, Y>(
    chart: &ChartContext<'a, DB, Cartesian2d<X, Y>>,
    root: &DrawingArea<DB, plotters::coord::Shift>,
    bars: impl Iterator<Item = (X::ValueType, f64, f64)>,
    (k, count): (usize, usize),
    colour: RGBColor,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged<ValueType = f64>,
    X::ValueType: Clone,
{
    let err = draw_err();
    let offset = (2 * k as i32 - (count as i32 - 1)) * DODGE / 2;
    // Kept inside the plotting area, as the chart clips what it draws itself.
    let (_, rows) = chart.plotting_area().get_pixel_range();
    let inside = |y: i32| y.clamp(rows.start, rows.end);
    for (x, low, high) in bars {
        let (px, y0) = chart.backend_coord(&(x.clone(), low));
        let (_, y1) = chart.backend_coord(&(x, high.max(low)));
        let (y0, y1) = (inside(y0), inside(y1));
        let bar = PathElement::new(
            vec![(px + offset, y0), (px + offset, y1)],
            colour.mix(0.6).stroke_width(6),
        );
        root.draw(&bar).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Colours of the series of a multi-line chart, in order.
pub(super) const SERIES_COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One line per level of `series` (a strategy, most often) over `x`, wall ms on a log scale:
/// the scaling view, where strategies differ by orders of magnitude.
fn series_chart(
    reports: &[Report],
    x: Axis,
    series: Axis,
    svg: &mut String,
) -> Result<(), PlotError> {
    // The range holds every run, so that each spread bar is whole.
    let walls = reports.iter().flat_map(|r| [r.wall_ms, r.wall_ms_min, r.wall_ms_max]);
    let (min, max) = min_max(walls.filter(|v| *v > 0.0)).ok_or(PlotError::Empty)?;
    let (xs, names) = (levels(reports, x), levels(reports, series));
    let err = draw_err();
    let first = &reports[0];
    let title = format!(
        "wall ms (median, log scale; bars: fastest to slowest run), {}{} over {} f64",
        first.config.function,
        work_suffix(first.config.work),
        super::table::group_digits(first.config.n as u64)
    );
    // Wide enough for its points and for its title (about 11 px a character at the caption size).
    let width = (360 + 70 * xs.len() as u32).max(11 * title.chars().count() as u32 + 40);
    let root = SVGBackend::with_string(svg, (width, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = frame(&root, title)
        .build_cartesian_2d(
            segments(xs.len()),
            // headroom above the data for the legend
            (min.max(1e-3) / 1.3..max * 3.0).log_scale().base(2.0),
        )
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .x_desc(x.name())
        .y_desc("wall ms")
        .y_labels(8)
        .y_label_formatter(&|v| tick(*v))
        .x_labels(xs.len())
        .x_label_formatter(&|v| segment_label(&xs, v))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (k, name) in names.iter().enumerate() {
        let colour = SERIES_COLOURS[k % SERIES_COLOURS.len()];
        let mine: Vec<(usize, &Report)> = reports
            .iter()
            .filter(|r| series.label(r) == *name)
            .filter_map(|r| Some((xs.iter().position(|l| *l == x.label(r))?, r)))
            .collect();
        let mut points: Vec<(usize, f64)> =
            mine.iter().map(|(i, r)| (*i, r.wall_ms.max(1e-3))).collect();
        // A strategy the parameter does not change (sequential over workers) is a reference:
        // a flat line across the chart at the median of its runs.
        if xs.len() > 1 && !points.is_empty() && points.iter().all(|p| p.0 == points[0].0) {
            let mut walls: Vec<f64> = points.iter().map(|p| p.1).collect();
            walls.sort_by(f64::total_cmp);
            let median = walls[walls.len() / 2];
            points = (0..xs.len()).map(|i| (i, median)).collect();
        }
        let points: Vec<_> =
            points.into_iter().map(|(i, wall)| (SegmentValue::CenterOf(i), wall)).collect();
        // Each point's spread, fastest to slowest run: what tells a difference from noise.
        if points.len() == mine.len() {
            let bars = mine.iter().map(|(i, r)| {
                let low = r.wall_ms_min.max(1e-3);
                (SegmentValue::CenterOf(*i), low, r.wall_ms_max.max(low))
            });
            dodged_bars(&chart, &root, bars, (k, names.len()), colour)?;
        }
        series_line(&mut chart, points, colour, name)?;
    }
    legend_and_present(&mut chart, &root)
}

/// One series of a line chart: its line, its legend entry and a dot at each point.
pub(super) fn series_line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: Vec<(X::ValueType, Y::ValueType)>,
    colour: RGBColor,
    name: &str,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    let err = draw_err();
    chart
        .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
        .map_err(|e| err(e.to_string()))?
        .label(name)
        .legend(move |(lx, ly)| {
            PathElement::new(vec![(lx, ly), (lx + 18, ly)], colour.stroke_width(2))
        });
    chart
        .draw_series(points.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
        .map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// The legend box of a line chart, top right, and the drawing finished.
pub(super) fn legend_and_present<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    root: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    let err = draw_err();
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 18))
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// Nanoseconds per value (median wall time / n) against n, both on log scales, one line per
/// strategy with each point's fastest-to-slowest bar: a flat line is a cost linear in n, a
/// line that bends up is memory, page faults or frames that stopped fitting.
fn scaling_chart(reports: &[Report], svg: &mut String) -> Result<(), PlotError> {
    let ns = |ms: f64, r: &Report| ms * 1e6 / r.config.n.max(1) as f64;
    let (lo, hi) = min_max(
        reports.iter().flat_map(|r| [ns(r.wall_ms_min.max(1e-6), r), ns(r.wall_ms_max, r)]),
    )
    .ok_or(PlotError::Empty)?;
    let (nlo, nhi) = min_max(reports.iter().map(|r| r.config.n as f64)).ok_or(PlotError::Empty)?;
    let names = levels(reports, Axis::Mode);
    let err = draw_err();
    let root = SVGBackend::with_string(svg, (760, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let first = &reports[0];
    let title = format!(
        "ns per value (median wall / n; bars: fastest to slowest run), {}{}",
        first.config.function,
        work_suffix(first.config.work)
    );
    let mut chart = frame(&root, title)
        .build_cartesian_2d(
            (nlo / 2.0..nhi * 2.0).log_scale(),
            (lo.max(1e-3) / 1.5..hi * 4.0).log_scale().base(2.0),
        )
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .x_desc("n, values (log scale)")
        .y_desc("ns per value (log scale)")
        .x_label_formatter(&|v| {
            let power = v.log10().round();
            match (v / 10f64.powf(power) - 1.0).abs() < 1e-6 {
                true => format!("10^{power}"),
                false => super::table::group_digits(v.round() as u64),
            }
        })
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (k, name) in names.iter().enumerate() {
        let colour = SERIES_COLOURS[k % SERIES_COLOURS.len()];
        let mut mine: Vec<&Report> = reports.iter().filter(|r| r.config.mode == *name).collect();
        mine.sort_by_key(|r| r.config.n);
        let bars = mine
            .iter()
            .map(|r| (r.config.n as f64, ns(r.wall_ms_min.max(1e-6), r), ns(r.wall_ms_max, r)));
        dodged_bars(&chart, &root, bars, (k, names.len()), colour)?;
        let points: Vec<(f64, f64)> =
            mine.iter().map(|r| (r.config.n as f64, ns(r.wall_ms, r))).collect();
        series_line(&mut chart, points, colour, name)?;
    }
    legend_and_present(&mut chart, &root)
}

/// The phases stacked per strategy (time spent, summed over processes), with a black mark at
/// each strategy's wall time, as SVG text.
pub fn plot_phases(reports: &[Report]) -> Result<String, PlotError> {
    if reports.is_empty() {
        return Err(PlotError::Empty);
    }
    let mut svg = String::new();
    draw_phases(reports, &mut svg)?;
    Ok(svg)
}

fn draw_phases(reports: &[Report], svg: &mut String) -> Result<(), PlotError> {
    use crate::trace::Phase;
    // The timeline's phases, names and colours. Each is time spent summed over the processes
    // (the coordinator and its workers) divided by their number: the mean process's time, so
    // a bar never passes the wall time the way a sum over processes does.
    let phases: [(Phase, &str, PhaseOf); 8] = [
        (Phase::Spawn, "spawn", |r| r.phases_ms.spawn),
        (Phase::Generate, "generate", |r| r.phases_ms.generate),
        (Phase::Encode, "encode", |r| r.phases_ms.encode),
        (Phase::Send, "send", |r| r.phases_ms.transfer),
        (Phase::Compute, "compute", |r| r.phases_ms.compute),
        (Phase::Decode, "decode", |r| r.phases_ms.decode),
        (Phase::Assemble, "assemble", |r| r.phases_ms.assemble),
        (Phase::Wait, "wait", |r| r.phases_ms.wait),
    ];
    let processes = |r: &Report| {
        if r.is_sequential() {
            1.0
        } else {
            r.config.workers as f64 + 1.0
        }
    };
    let share = move |r: &Report, f: PhaseOf| f(r) / processes(r);
    let total =
        |r: &Report| phases.iter().map(|(_, _, f)| share(r, *f)).sum::<f64>().max(r.wall_ms);
    let max = reports.iter().map(total).fold(0.0, f64::max);
    let labels: Vec<String> = reports.iter().map(|r| r.config.mode.clone()).collect();
    let err = draw_err();
    let root = SVGBackend::with_string(svg, (900, 260.max(120 + 60 * reports.len() as u32)))
        .into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let first = &reports[0];
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "where the time goes: {} over {} f64, {} workers (each phase: ms spent by the \
                 processes / their number; | = wall)",
                first.config.function,
                super::table::group_digits(first.config.n as u64),
                reports.iter().map(|r| r.config.workers).max().unwrap_or(1)
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..max * 1.4, segments(reports.len()))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .y_labels(reports.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .x_desc("ms (mean per process: coordinator and workers)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (k, (phase, name, value)) in phases.iter().enumerate() {
        let color = super::timeline::color(*phase);
        let bars = reports.iter().enumerate().map(move |(i, r)| {
            let start: f64 = phases[..k].iter().map(|(_, _, f)| share(r, *f)).sum();
            let end = start + share(r, *value);
            let corners = [(start, SegmentValue::Exact(i)), (end, SegmentValue::Exact(i + 1))];
            let mut bar = Rectangle::new(corners, color.filled());
            bar.set_margin(8, 8, 0, 0);
            bar
        });
        chart
            .draw_series(bars)
            .map_err(|e| err(e.to_string()))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .draw_series(reports.iter().enumerate().map(|(i, r)| {
            let mut mark = Rectangle::new(
                [
                    (r.wall_ms, SegmentValue::Exact(i)),
                    (r.wall_ms + max * 0.003, SegmentValue::Exact(i + 1)),
                ],
                BLACK.filled(),
            );
            mark.set_margin(2, 2, 0, 0);
            mark
        }))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// `count` categories on an axis (a segmented range over `0..=count-1`, without the empty
/// trailing segment that `(0..count)` would add).
fn segments(
    count: usize,
) -> plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordusize> {
    (0..count.saturating_sub(1)).into_segmented()
}

/// Reads one phase of a report.
type PhaseOf = fn(&Report) -> Millis;

pub(super) fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_carry_no_needless_zeros() {
        assert_eq!(tick(64.0), "64");
        assert_eq!(tick(8.0), "8");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(500.0), "500");
        assert_eq!(tick(0.0), "0");
    }

    use super::*;
    use crate::report::plot_pays_measured;

    fn grid_reports() -> Vec<Report> {
        let mut out = Vec::new();
        for (i, s) in [1usize, 2, 4].into_iter().enumerate() {
            for (j, c) in [1usize, 8].into_iter().enumerate() {
                let mut r = super::super::tests::sample();
                r.config.splits = Some(s);
                r.config.chunksize = Some(c);
                r.wall_ms = 10.0 + (i * 2 + j) as f64;
                out.push(r);
            }
        }
        out
    }

    #[test]
    fn heatmap_has_one_cell_per_grid_point() {
        let svg = plot_sweep(&grid_reports(), &[Axis::Splits, Axis::Chunksize]).unwrap();
        let cells = svg.matches(&format!("opacity=\"{CELL_OPACITY}\"")).count();
        assert_eq!(cells, 6, "{svg}");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let text: String = svg.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains("> splits <") && text.contains("> chunksize <"), "axis titles");
        assert!(text.contains("> 15.0 <"), "each cell is labelled with its wall time");
    }

    #[test]
    fn a_sweep_over_strategies_draws_one_line_per_strategy() {
        let mut reports = Vec::new();
        for mode in ["split", "shm", "threads"] {
            for w in [1usize, 2, 4] {
                let mut r = super::super::tests::sample();
                r.config.mode = mode.to_string();
                r.config.workers = w;
                r.wall_ms = 100.0 / w as f64;
                r.config.work = 64;
                reports.push(r);
            }
        }
        let mut sequential = super::super::tests::sample();
        sequential.config.mode = "sequential".to_string();
        sequential.config.sequential = true;
        sequential.config.workers = 1;
        sequential.wall_ms = 50.0;
        reports.push(sequential);
        let svg = plot_sweep(&reports, &[Axis::Mode, Axis::Workers]).unwrap();
        let text: String = svg.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains("(--work 64)"), "the title says the work factor: {svg}");
        assert!(svg.contains("stroke-width=\"6\""), "each point has its spread bar: {svg}");
        for name in ["> split <", "> shm <", "> threads <", "> sequential <", "> workers <"] {
            assert!(text.contains(name), "legend and axis title {name}: {svg}");
        }
        for colour in &SERIES_COLOURS[..4] {
            let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", colour.0, colour.1, colour.2);
            let line = svg
                .lines()
                // The line, not a point's spread bar (wide, translucent).
                .find(|l| {
                    l.contains("<polyline")
                        && l.contains(&stroke)
                        && !l.contains("stroke-width=\"6\"")
                })
                .unwrap_or_else(|| panic!("a line in {stroke}: {svg}"));
            let points = line
                .split("points=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            assert_eq!(
                points.split_whitespace().count(),
                3,
                "one point per worker count, the sequential reference drawn flat across: {line}"
            );
        }
        // Each strategy's spread bars sit beside the others' at the same worker count.
        let bar_x = |colour: &RGBColor| -> Vec<String> {
            let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", colour.0, colour.1, colour.2);
            svg.lines()
                .filter(|l| l.contains(&stroke) && l.contains("stroke-width=\"6\""))
                .filter_map(|l| l.split("points=\"").nth(1)?.split(',').next().map(String::from))
                .collect()
        };
        let (split, shm) = (bar_x(&SERIES_COLOURS[0]), bar_x(&SERIES_COLOURS[1]));
        assert_eq!((split.len(), shm.len()), (3, 3), "{svg}");
        assert!(split.iter().zip(&shm).all(|(a, b)| a != b), "dodged: {split:?} {shm:?}");
    }

    /// Every chart's text is at least 14 px (readable projected, and at 1280 px wide where the
    /// report shows charts at their own size).
    #[test]
    fn every_charts_text_is_at_least_14_px() {
        let mut reports = grid_reports();
        let sweep = plot_sweep(&reports, &[Axis::Splits, Axis::Chunksize]).unwrap();
        reports.truncate(3);
        let phases = plot_phases(&reports).unwrap();
        let pays = plot_pays_measured(
            &[("split".into(), vec![(1.0, 0.5), (10.0, 1.5)])],
            &[("split".into(), 1.0, 0.6, 0.5, 0.7)],
            "when it pays",
        )
        .unwrap();
        for svg in [sweep, phases, pays] {
            let sizes: Vec<f64> = svg
                .split("font-size=\"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next()?.parse().ok())
                .collect();
            assert!(!sizes.is_empty());
            assert!(sizes.iter().all(|&px| px >= 14.0), "{sizes:?}");
        }
    }

    #[test]
    fn three_varying_axes_are_refused() {
        let err = plot_sweep(&grid_reports(), &[Axis::Workers, Axis::Splits, Axis::Chunksize])
            .unwrap_err();
        assert!(err.to_string().contains("workers, splits, chunksize"));
    }

    #[test]
    fn line_and_phase_charts_are_svg() {
        for (name, result) in [
            ("line", plot_sweep(&grid_reports()[..2], &[Axis::Chunksize])),
            ("phases", plot_phases(&grid_reports())),
        ] {
            let svg = result.unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{name}");
        }
    }
}
