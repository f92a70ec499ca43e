//! The when-it-pays chart: speedup over sequential against the math a value costs, one
//! model line per strategy, the measured points over them, the crossovers marked.

use super::plot::*;
use plotters::prelude::*;

/// When it pays, as a teacher draws it: each strategy's predicted speedup over sequential
/// against the math a value costs (ns, log scale), one line per strategy, the break-even (1x)
/// drawn across, and where each line crosses it marked. `series`: a strategy's name and its
/// (ns of math a value, speedup) points, in order of the math. Labelled as predicted.
pub fn plot_pays(series: &[(String, Vec<(f64, f64)>)], title: &str) -> Result<String, PlotError> {
    plot_pays_measured(series, &[], title)
}

/// A strategy measured at one point of the when-it-pays chart: its name, the ns of math a value
/// it ran at, and its speedup over sequential with the interval (low, high).
pub type MeasuredPoint = (String, f64, f64, f64, f64);

/// [`plot_pays`] with measured points drawn over the predicted lines, each a square in its
/// strategy's colour with a bar over its speedup interval: where the model and the
/// measurement part, the picture shows it.
pub fn plot_pays_measured(
    series: &[(String, Vec<(f64, f64)>)],
    measured: &[MeasuredPoint],
    title: &str,
) -> Result<String, PlotError> {
    let mut svg = String::new();
    draw_pays(series, measured, title, &mut svg)?;
    Ok(svg)
}

fn draw_pays(
    series: &[(String, Vec<(f64, f64)>)],
    measured: &[MeasuredPoint],
    title: &str,
    svg: &mut String,
) -> Result<(), PlotError> {
    let points = || {
        series.iter().flat_map(|(_, p)| p.iter().copied()).chain(
            measured
                .iter()
                .flat_map(|m| [(m.1, m.2), (m.1, m.3), (m.1, m.4)])
                .filter(|p| p.1 > 0.0),
        )
    };
    let (xlo, xhi) = min_max(points().map(|p| p.0)).ok_or(PlotError::Empty)?;
    let (ylo, yhi) = min_max(points().map(|p| p.1)).ok_or(PlotError::Empty)?;
    let err = draw_err();
    let width = 820u32.max(11 * title.chars().count() as u32 + 40);
    let root = SVGBackend::with_string(svg, (width, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = frame(&root, title)
        .build_cartesian_2d(
            (xlo / 1.5..xhi * 1.5).log_scale(),
            (ylo.min(0.5) / 1.5..yhi.max(2.0) * 3.0).log_scale().base(2.0),
        )
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .x_desc("ns of math a value (log scale): the function's cost x --work")
        .y_desc(match measured.is_empty() {
            true => "speedup over sequential (predicted)",
            false => "speedup over sequential (lines: predicted; squares: measured)",
        })
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| format!("{}x", tick(*v)))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(
            vec![(xlo / 1.5, 1.0), (xhi * 1.5, 1.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| err(e.to_string()))?;
    for (k, (name, p)) in series.iter().enumerate() {
        let colour = SERIES_COLOURS[k % SERIES_COLOURS.len()];
        series_line(&mut chart, p.clone(), colour, name)?;
        // Where it crosses 1x, between two points: marked with a ring.
        let crossing =
            p.windows(2).find(|w| (w[0].1 - 1.0) * (w[1].1 - 1.0) <= 0.0 && w[0].1 != w[1].1);
        if let Some(w) = crossing {
            let t = (1.0 - w[0].1) / (w[1].1 - w[0].1);
            let x = (w[0].0.ln() + t * (w[1].0.ln() - w[0].0.ln())).exp();
            chart
                .draw_series(std::iter::once(Circle::new((x, 1.0), 8, colour.stroke_width(3))))
                .map_err(|e| err(e.to_string()))?;
        }
        let mine: Vec<&MeasuredPoint> = measured.iter().filter(|m| m.0 == *name).collect();
        let bars = mine.iter().filter(|m| m.3 > 0.0).map(|m| (m.1, m.3, m.4.max(m.3)));
        dodged_bars(&chart, &root, bars, (k, series.len()), colour)?;
        chart
            .draw_series(mine.iter().filter(|m| m.2 > 0.0).map(|m| {
                EmptyElement::at((m.1, m.2))
                    + Rectangle::new([(-5, -5), (5, 5)], colour.filled())
                    + Rectangle::new([(-5, -5), (5, 5)], BLACK.stroke_width(1))
            }))
            .map_err(|e| err(e.to_string()))?;
    }
    legend_and_present(&mut chart, &root)
}
