//! The terminal's report, answer first: a header line (what ran, what every row shares), the
//! [summary](super::summary) in words, the grid of a two-parameter sweep as a grid, then one
//! wall-time table with short row names that fits 80 columns ("1.35x slower", not "0.74x").
//! Phases, traffic, who was busy, CPU time and the workers follow with `--details`; every
//! export holds them all. Colour (`--color`, `NO_COLOR`) marks the verdicts and dims the details.

use super::summary::{common_settings, short_names, summary, times, Said, Tone};
use super::table::{describe_plan, fmt_ms, group_digits, render_sections, row_labels, wrap};
use super::{Axis, Report, Verdict, View};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};

/// Above this many strategies compared, the summary keeps one line each and the lines of why
/// follow the table, so the verdicts stay on the first screen.
const WHY_INLINE_UP_TO: usize = 3;

/// ANSI colour by [`Tone`], or none.
#[derive(Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    /// `text` in `tone`'s colour (green faster, red slower, yellow unclear, dim details).
    pub fn tone(self, text: &str, tone: Tone) -> String {
        use anstyle::{AnsiColor, Style};
        let style = match tone {
            _ if !self.0 => return text.to_string(),
            Tone::Plain => return text.to_string(),
            Tone::Faster => Style::new().fg_color(Some(AnsiColor::Green.into())).bold(),
            Tone::Slower => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            Tone::Unclear => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
            Tone::Detail => Style::new().dimmed(),
        };
        format!("{}{text}{}", style.render(), style.render_reset())
    }

    /// A warning line, yellow.
    pub fn warning(self, text: &str) -> String {
        self.tone(text, Tone::Unclear)
    }
}

/// The report for a person at a terminal `width` columns wide (`None`: as wide as it needs).
pub fn render_answer(
    reports: &[Report],
    axes: Option<&[Axis]>,
    view: View,
    width: Option<u16>,
) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let paint = Paint(view.color);
    let workers = reports.iter().map(|r| r.config.workers).max().unwrap_or(1);
    let common = common_settings(reports);
    let varies = |a: Axis| axes.is_some_and(|axes| axes.contains(&a));
    let count = |a: Axis| {
        let mut seen: Vec<String> = reports.iter().map(|r| a.label(r)).collect();
        seen.sort();
        seen.dedup();
        seen.len()
    };
    let function = match varies(Axis::Function) {
        true => format!("{} functions", count(Axis::Function)),
        false => first.config.function.to_string(),
    };
    let n = match varies(Axis::N) {
        true => format!("{} sizes of", count(Axis::N)),
        false => group_digits(first.config.n as u64),
    };
    let workers = match varies(Axis::Workers) {
        true => "several".to_string(),
        false => workers.to_string(),
    };
    let mut out = wrap(
        &format!(
            "ipcmap: {function} over {n} f64 (seed {}), {workers} worker(s){}\n",
            first.config.seed,
            if common.is_empty() { String::new() } else { format!("; {common}") }
        ),
        width,
    );
    let mut later = Vec::new();
    match axes {
        None => {
            let said = summary(reports);
            let compared = said.iter().filter(|s| s.tone != Tone::Detail).count().saturating_sub(2);
            for s in &said {
                if s.tone == Tone::Detail && compared > WHY_INLINE_UP_TO {
                    later.push(s.clone());
                } else {
                    out += &painted(s, paint, width);
                }
            }
        }
        Some(axes) => {
            if axes.contains(&Axis::Mode) {
                for s in super::summary::sweep_answers(reports, axes) {
                    out += &painted(&s, paint, width);
                }
            }
            out += &grid(reports, axes);
            out += &wrap(super::table::render_sweep_summary(reports, axes).trim_start(), width);
        }
    }
    out += &wrap(&format!("{}\n", describe_plan(reports)), width);
    if view.details {
        // Everything, as before: the full labels and every section.
        out += &render_sections(reports, width);
    } else {
        out += &wall_table(reports, axes, width);
    }
    if !later.is_empty() {
        out += "\n";
        for s in &later {
            let name = s.about.as_deref().unwrap_or("?");
            let text = format!("{name}: {}", s.text.trim_start().trim_start_matches("why: "));
            out += &painted(&Said { text, tone: Tone::Detail, about: None }, paint, width);
        }
    }
    if !view.details {
        let hint = "(--details: phases, traffic, who was busy, CPU time; --explain: in sentences)";
        out += &painted(&Said { text: hint.into(), tone: Tone::Detail, about: None }, paint, width);
    }
    out
}

/// One summary line, wrapped (a detail's lines indented under its first word), then coloured.
fn painted(s: &Said, paint: Paint, width: Option<u16>) -> String {
    let text = match width.map(usize::from).filter(|w| *w >= 20) {
        Some(w) => {
            let indent = if s.tone == Tone::Detail { "        " } else { "  " };
            textwrap::wrap(&s.text, textwrap::Options::new(w).subsequent_indent(indent)).join("\n")
        }
        None => s.text.clone(),
    };
    text.lines().map(|l| paint.tone(l, s.tone) + "\n").collect()
}

/// The wall-time table: short names, the median and its MAD, against sequential in words with
/// its interval, verified. Six narrow columns: 80 columns hold it.
fn wall_table(reports: &[Report], axes: Option<&[Axis]>, width: Option<u16>) -> String {
    let names: Vec<String> = match axes {
        // A sweep's rows are named by what it varies.
        Some(axes) if !axes.is_empty() => reports
            .iter()
            .map(|r| {
                axes.iter()
                    .map(|a| format!("{}={}", a.name(), a.label(r)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
        Some(_) => row_labels(reports),
        None => short_names(reports).into_iter().map(|(_, n)| n).collect(),
    };
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["strategy", "wall ms", "± MAD", "vs sequential", "95% interval", "ok"]);
    match width {
        Some(w) => drop(table.set_width(w)),
        None => drop(table.force_no_tty()),
    }
    for i in 1..6 {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    for (r, name) in reports.iter().zip(names) {
        let (versus, interval) = match (r.config.mode.as_str(), r.speedup) {
            ("sequential", _) => ("baseline".to_string(), String::new()),
            (_, None) => ("–".to_string(), String::new()),
            (_, Some(s)) => {
                let interval = r.spread.speedup_low.zip(r.spread.speedup_high);
                match s >= 1.0 {
                    true => (
                        format!("{}x faster", times(s)),
                        interval
                            .map_or("–".into(), |(l, h)| format!("{}–{}x", times(l), times(h))),
                    ),
                    false => (
                        format!("{}x slower", times(1.0 / s)),
                        interval.map_or("–".into(), |(l, h)| {
                            format!("{}–{}x slower", times(1.0 / h), times(1.0 / l))
                        }),
                    ),
                }
            }
        };
        let interval = match r.spread.verdict {
            Some(Verdict::NoClearDifference) => format!("{interval} (unclear)"),
            _ => interval,
        };
        let ok = match r.verified {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "–",
        };
        table.add_row([
            name,
            fmt_ms(r.wall_ms),
            fmt_ms(r.spread.wall_ms_mad),
            versus,
            interval,
            ok.into(),
        ]);
    }
    format!("{table}\n")
}

/// A sweep's grid: over two parameters a matrix of median wall ms (rows the first, columns the
/// second; the fastest cell marked *), as the tutorial's table of splits x chunksize; over one,
/// a row of values. Empty over three or more (the table lists them).
fn grid(reports: &[Report], axes: &[Axis]) -> String {
    let values = |a: Axis| {
        let mut v: Vec<String> = Vec::new();
        for r in reports {
            let label = a.label(r);
            if !v.contains(&label) {
                v.push(label);
            }
        }
        v
    };
    let fastest = reports.iter().min_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let cell = |r: &Report| {
        let mark = if fastest.is_some_and(|f| std::ptr::eq(f, r)) { "*" } else { "" };
        format!("{}{mark}", fmt_ms(r.wall_ms))
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).force_no_tty();
    let title = match axes {
        [a] => {
            table.set_header(std::iter::once(a.name().to_string()).chain(values(*a)));
            let mut row = vec!["wall ms".to_string()];
            row.extend(
                values(*a)
                    .iter()
                    .map(|v| reports.iter().find(|r| a.label(r) == *v).map_or("–".into(), cell)),
            );
            table.add_row(row);
            format!("Median wall ms by {} (* the fastest)", a.name())
        }
        [rows, cols] => {
            table.set_header(
                std::iter::once(format!("{} \\ {}", rows.name(), cols.name())).chain(values(*cols)),
            );
            for v in values(*rows) {
                let mut row = vec![v.clone()];
                row.extend(values(*cols).iter().map(|c| {
                    reports
                        .iter()
                        .find(|r| rows.label(r) == v && cols.label(r) == *c)
                        .map_or("–".into(), cell)
                }));
                table.add_row(row);
            }
            format!(
                "Median wall ms by {} (rows) and {} (columns); * the fastest",
                rows.name(),
                cols.name()
            )
        }
        _ => return String::new(),
    };
    for i in 1..table.column_count() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{title}\n{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_comes_first_and_fits_80_columns() {
        let mut seq = super::super::tests::sample();
        seq.config.mode = "sequential".into();
        seq.config.sequential = true;
        seq.speedup = Some(1.0);
        let mut split = super::super::tests::sample();
        split.speedup = Some(0.5);
        split.spread.speedup_low = Some(0.4);
        split.spread.speedup_high = Some(0.6);
        split.spread.verdict = Some(Verdict::Slower);
        let text = render_answer(&[seq, split], None, View::default(), Some(80));
        let lines: Vec<&str> = text.lines().collect();
        let took = lines.iter().position(|l| l.starts_with("sequential took")).expect(&text);
        assert!(took <= 2, "the answer right under the header: {text}");
        assert!(
            lines[took + 1].starts_with("sequential ran 2.00 times faster than split"),
            "{text}"
        );
        assert!(text.contains("2.00x slower"), "{text}");
        for l in &lines {
            assert!(l.chars().count() <= 80, "{} columns: {l}", l.chars().count());
        }
        assert!(!text.contains('\u{1b}'), "no colour unless asked");
        let coloured = render_answer(
            &[super::super::tests::sample()],
            None,
            View { details: false, color: true },
            Some(80),
        );
        assert!(coloured.contains('\u{1b}'), "{coloured}");
    }
}
