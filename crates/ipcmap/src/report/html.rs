//! `--export-html FILE` (`--html`): the whole report as one self-contained HTML file, to keep,
//! mail or project in a class. No network and no JavaScript: the CSS is inline, the charts are
//! inline SVG, and a Content-Security-Policy forbids the page to fetch anything. It holds the
//! configuration and the machine, every table the terminal shows, the warnings, the phase
//! chart (the sweep's chart for a sweep), the timeline (when spans were recorded), and the
//! explanation. Criterion's report and Dask's `performance_report` are its models.
//!
//! Every figure cell carries `data-report` (its report's index) and `data-keys` (the JSON
//! pointers of the figures it shows, in order), so a reader, or a test, can find each figure
//! in the JSON export.

use super::sections::{sections, worker_lines};
use super::table::{describe_plan, group_digits};
use super::{Export, Exporter, ProbeReport, Report};
use crate::named::named;
use std::io::Write;

/// `--format html`, `--export-html`.
pub struct HtmlExporter;

named!(
    HtmlExporter,
    "html",
    "one self-contained HTML page: tables, charts, timeline, explanation (no network, no scripts)",
);

impl Exporter for HtmlExporter {
    fn reports(&self, export: Export<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(page(export).as_bytes())
    }

    fn probe(&self, probe: &ProbeReport, out: &mut dyn Write) -> std::io::Result<()> {
        let body = format!(
            "<h1>ipcmap probe over {}</h1>\n<pre>{}</pre>\n",
            escape(probe.transport),
            escape(&serde_json::to_string_pretty(probe).unwrap_or_default())
        );
        out.write_all(document("ipcmap probe", &body).as_bytes())
    }
}

/// The page for `export`.
fn page(export: Export<'_>) -> String {
    let reports = export.reports;
    let Some(first) = reports.first() else {
        return document("ipcmap: no reports", "<h1>ipcmap: no reports</h1>\n");
    };
    let title = format!(
        "ipcmap: {} over {} f64, {}",
        first.config.function,
        group_digits(first.config.n as u64),
        match export.axes {
            Some(_) => format!("a sweep of {} configurations", reports.len()),
            None => format!("{} strategies", reports.len()),
        }
    );
    let mut body = format!("<h1>{}</h1>\n", escape(&title));
    // The first screen: the lesson. The tutorial's claim with its published figures, then the
    // same experiment as measured here, in words.
    body += &lesson(export);
    body += &format!("<p class=\"plan\">{}</p>\n", escape(&describe_plan(reports)));
    body += &charts(export);
    for section in sections(reports) {
        body += &format!(
            "<h2>{}</h2>\n<div class=\"scroll\"><table>\n<thead><tr>",
            escape(&section.title)
        );
        for (i, name) in section.header.iter().enumerate() {
            let class = if i == 0 { "" } else { " class=\"num\"" };
            body += &format!("<th{class}>{}</th>", escape(name));
        }
        body += "</tr></thead>\n<tbody>\n";
        for row in &section.rows {
            body += "<tr>";
            for (i, cell) in row.cells.iter().enumerate() {
                match (i, cell.keys.is_empty()) {
                    (0, _) => body += &format!("<th scope=\"row\">{}</th>", escape(&cell.text)),
                    (_, true) => body += &format!("<td class=\"num\">{}</td>", escape(&cell.text)),
                    (_, false) => {
                        body += &format!(
                            "<td class=\"num\" data-report=\"{}\" data-keys=\"{}\">{}</td>",
                            row.report,
                            cell.keys.join(" "),
                            escape(&cell.text)
                        )
                    }
                }
            }
            body += "</tr>\n";
        }
        body += "</tbody>\n</table></div>\n";
    }
    let lines = worker_lines(reports);
    if !lines.is_empty() {
        body += "<h2>Workers</h2>\n<ul>\n";
        for line in lines {
            body += &format!("<li>{}</li>\n", escape(&line));
        }
        body += "</ul>\n";
    }
    body += &warnings(reports);
    if export.axes.is_none() {
        body += "<h2>What the figures say</h2>\n";
        body += &markdown_list(&super::explain(reports));
    }
    body += &setup(reports);
    document(&title, &body)
}

/// The tutorial's question and published figures (quoted, not measured), then the answer
/// measured here: the summary in words, each line marked by its verdict.
fn lesson(export: Export<'_>) -> String {
    let mut out = String::from(
        "<section class=\"lesson\">\n<p class=\"claim\">The tutorial <q>Parallel NumPy Vector \
         Math with Multiprocessing</q> applied <code>numpy.exp</code> to 10,000,000 floats with \
         <code>multiprocessing.Pool</code> (4 workers) and published: sequential \
         <b>0.143 s</b>; <code>pool.map</code> one float at a time <b>23.2 s</b>; with \
         <code>chunksize=1000</code> <b>16.5 s</b>; <code>numpy.split</code> into 64 sub-vectors \
         <b>0.385 s</b>. It blames pickling and copying. (Its figures, quoted; every other \
         figure on this page is measured.)</p>\n<h2>Measured here</h2>\n<ul class=\"summary\">\n",
    );
    let said = match export.axes {
        None => super::summary::summary(export.reports),
        Some(axes) => super::table::render_sweep_summary(export.reports, axes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| super::summary::Said {
                text: l.trim().to_string(),
                tone: super::summary::Tone::Plain,
                about: None,
            })
            .collect(),
    };
    for s in said {
        let class = match s.tone {
            super::summary::Tone::Plain => "plain",
            super::summary::Tone::Faster => "faster",
            super::summary::Tone::Slower => "slower",
            super::summary::Tone::Unclear => "unclear",
            super::summary::Tone::Detail => "why",
        };
        out += &format!("<li class=\"{class}\">{}</li>\n", escape(s.text.trim()));
    }
    out += "</ul>\n";
    if let Some(svg) = export.pays {
        out += "<h2>When it pays</h2>\n<p>The model's speedup over sequential (calibrated on \
                this machine, predicted before the runs) against the math a value costs: below \
                where a line crosses 1x, moving the data costs more than spreading the math \
                saves. The squares are these runs, measured, with their intervals.</p>\n";
        out += &figure(Ok(svg.to_string()));
    }
    out + "</section>\n"
}

/// The configuration and the machine, from the first report (one invocation, one machine).
fn setup(reports: &[Report]) -> String {
    let r = &reports[0];
    let m = &r.meta;
    let modes: Vec<&str> = {
        let mut modes: Vec<&str> = Vec::new();
        for r in reports {
            if !modes.contains(&r.config.mode.as_str()) {
                modes.push(&r.config.mode);
            }
        }
        modes
    };
    let started = m.started_at_unix_s;
    let rows: Vec<(&str, String)> = vec![
        ("command line", m.command_line.clone()),
        ("strategies", modes.join(", ")),
        (
            "function",
            format!(
                "{} (work {}, kernel {})",
                r.config.function, r.config.work, r.config.kernel_isa
            ),
        ),
        ("values", format!("{} f64, seed {}", group_digits(r.config.n as u64), r.config.seed)),
        ("transport", r.job.transport.to_string()),
        ("ipcmap", format!("{} (report schema {})", m.ipcmap_version, m.schema_version)),
        ("started", format!("{} UTC ({started} s after the Unix epoch)", utc(started))),
        ("host", m.host.clone()),
        ("CPU", format!("{} ({} cores usable)", m.cpu_model, m.cpu_cores)),
        ("kernel", m.kernel.clone()),
        (
            "transparent huge pages",
            format!("enabled: {}, shmem_enabled: {}", m.thp_enabled, m.thp_shmem_enabled),
        ),
        ("Yama ptrace scope", m.yama_ptrace_scope.map_or("none".into(), |s| s.to_string())),
        ("load average (1 min) at start", m.load_average_1m.map_or("–".into(), |l| l.to_string())),
    ];
    let mut out = String::from("<h2>Configuration and machine</h2>\n<table class=\"setup\">\n");
    for (name, value) in rows {
        out += &format!("<tr><th scope=\"row\">{name}</th><td>{}</td></tr>\n", escape(&value));
    }
    out + "</table>\n"
}

/// `secs` since the epoch as "2026-12-01 19:56:25".
fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn warnings(reports: &[Report]) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for w in reports.iter().flat_map(|r| &r.warnings) {
        if !seen.contains(&w) {
            seen.push(w);
        }
    }
    let mut out = String::from("<h2>Warnings</h2>\n");
    if seen.is_empty() {
        return out + "<p>None: nothing the runs saw makes these figures doubtful.</p>\n";
    }
    out += "<ul class=\"warnings\">\n";
    for w in seen {
        out += &format!("<li>{}</li>\n", escape(w));
    }
    out + "</ul>\n"
}

/// The phase chart (or the sweep's chart) and the timeline, inline.
fn charts(export: Export<'_>) -> String {
    let reports = export.reports;
    let mut out = String::new();
    let (title, chart) = match export.axes {
        Some(axes) => ("Median wall time across the sweep", super::plot_sweep(reports, axes)),
        None => ("Where the time went, phase by phase", super::plot_phases(reports)),
    };
    out += &format!("<h2>{title}</h2>\n");
    out += &figure(chart);
    if reports.iter().any(|r| !r.traces.is_empty()) {
        out += "<h2>Timeline of the median run: what every process did, task by task</h2>\n";
        out += &figure(super::plot_timeline(reports));
    } else if export.axes.is_none() {
        out += "<p class=\"note\">No timeline: spans were not recorded (they are with \
                --timeline or --trace).</p>\n";
    }
    out
}

fn figure(svg: Result<String, super::PlotError>) -> String {
    match svg {
        Ok(svg) => {
            let start = svg.find("<svg").unwrap_or(0);
            format!("<figure>{}</figure>\n", &svg[start..])
        }
        Err(e) => format!("<p class=\"note\">No chart: {}.</p>\n", escape(&e.to_string())),
    }
}

/// The explanation's Markdown (paragraphs and `- ` lists) as HTML.
fn markdown_list(text: &str) -> String {
    let mut out = String::new();
    let mut in_list = false;
    for line in text.lines().map(str::trim_end) {
        match line.strip_prefix("- ") {
            Some(item) => {
                if !in_list {
                    out += "<ul>\n";
                    in_list = true;
                }
                out += &format!("<li>{}</li>\n", escape(item));
            }
            None => {
                if in_list {
                    out += "</ul>\n";
                    in_list = false;
                }
                if !line.is_empty() {
                    out += &format!("<p>{}</p>\n", escape(line));
                }
            }
        }
    }
    if in_list {
        out += "</ul>\n";
    }
    out
}

/// `text` safe as HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body`: inline CSS, and a policy that lets it load nothing.
fn document(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ipcmap {version}">
<title>{title}</title>
<style>
body {{ font: 16px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1a1a1a; background: #fff; max-width: 1200px; margin: 1.5em auto; padding: 0 1em; }}
h1 {{ font-size: 1.6em; margin-bottom: 0.2em; }}
h2 {{ font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }}
.plan, .note {{ color: #444; }}
table {{ border-collapse: collapse; margin: 0.5em 0; font-variant-numeric: tabular-nums; }}
th, td {{ border: 1px solid #d0d0d0; padding: 0.25em 0.6em; vertical-align: top; }}
thead th {{ background: #f0f0f0; }}
tbody th, .setup th {{ text-align: left; font-weight: normal; background: #fafafa; }}
.num {{ text-align: right; }}
.setup td {{ font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.9em; }}
.warnings li {{ color: #8a4b00; }}
.lesson {{ font-size: 1.1em; }}
.claim {{ background: #f6f6f6; border-left: 4px solid #888; padding: 0.5em 0.8em; }}
.summary {{ list-style: none; padding-left: 0; }}
.summary li {{ margin: 0.2em 0; }}
.summary .faster {{ color: #0a6b2a; font-weight: 600; }}
.summary .slower {{ color: #a0161b; font-weight: 600; }}
.summary .unclear {{ color: #8a5a00; font-weight: 600; }}
.summary .why {{ color: #555; margin-left: 1.5em; font-size: 0.92em; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
.setup td, li, p {{ overflow-wrap: anywhere; }}
figure {{ margin: 0.5em 0; overflow-x: auto; }}
figure svg {{ max-width: 100%; height: auto; }}
footer {{ margin-top: 2em; color: #666; font-size: 0.85em; }}
@media print {{ body {{ max-width: none; }} h2 {{ break-after: avoid; }} }}
</style>
</head>
<body>
{body}<footer>Written by ipcmap {version}. Every figure is measured; each table cell's data-keys attribute names the keys of its figures in the JSON report.</footer>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        title = escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(reports: &[Report]) -> String {
        let mut out = Vec::new();
        HtmlExporter.reports(Export::new(reports, None), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_page_loads_nothing_and_runs_nothing() {
        let mut report = super::super::tests::sample();
        report.warnings.push("a <b>busy</b> machine".into());
        let page = render(&[report]);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("default-src 'none'"));
        assert!(!page.contains("<script"), "no scripts");
        for fetch in ["src=\"http", "href=\"http", "url(", "@import", "<link"] {
            assert!(!page.contains(fetch), "{fetch}");
        }
        assert!(page.contains("a &lt;b&gt;busy&lt;/b&gt; machine"), "warnings are escaped");
        assert!(page.contains("<figure><svg"), "the phase chart is inline");
        assert!(page.contains("data-keys=\"/wall_ms\""), "{page}");
        assert!(page.contains("<h2>What the figures say</h2>"));
        assert!(page.contains("<li>split"), "the explanation is a list: {page}");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_796_154_985), "2026-12-01 19:56:25");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
    }
}
