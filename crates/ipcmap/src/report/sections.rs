//! The report's tables as data, said once for every output that draws tables: the terminal
//! (comfy-table, fitted to its width), Markdown and HTML. Each cell keeps the JSON keys of the
//! figures it shows, so an output can point from a figure to the JSON it came from (the HTML
//! report does, and its test checks every figure against the JSON export).

use super::table::{fmt_mb, fmt_ms, group_digits, ratio, row_labels};
use super::Report;

/// One table: its title, its header, and a row per report.
pub struct Section {
    /// What the table shows, with its units.
    pub title: String,
    /// Column names; the first names the row.
    pub header: Vec<String>,
    /// One row per report shown.
    pub rows: Vec<Row>,
}

/// One report's row.
pub struct Row {
    /// The report's index in the reports the sections were made from.
    pub report: usize,
    /// The row's label first, then one cell per further column.
    pub cells: Vec<Cell>,
}

/// A cell: its text, and the JSON keys (pointers into its report's object, `/wall_ms`) of the
/// figures in it, in the order the text shows them.
pub struct Cell {
    /// As shown.
    pub text: String,
    /// Where each figure of `text` is in the report's JSON; empty for words and for a cell
    /// with no figure.
    pub keys: Vec<&'static str>,
}

impl Cell {
    /// Words, or a dash: no figure.
    fn words(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), keys: Vec::new() }
    }

    /// `text` showing the figures at `keys`.
    fn figures(text: String, keys: &[&'static str]) -> Cell {
        Cell { text, keys: keys.to_vec() }
    }

    /// An optional figure at `key`, shown by `show`, or a dash.
    fn optional<T>(value: Option<T>, key: &'static str, show: impl Fn(T) -> String) -> Cell {
        match value {
            Some(v) => Cell::figures(show(v), &[key]),
            None => Cell::words("–"),
        }
    }
}

/// Every table of `reports`: the summary, the phases, the traffic, who was busy (where any
/// report has workers) and the CPU time.
pub fn sections(reports: &[Report]) -> Vec<Section> {
    let labels = row_labels(reports);
    let rows = |cells: &dyn Fn(&Report) -> Option<Vec<Cell>>| -> Vec<Row> {
        reports
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let mut row = vec![Cell::words(labels[i].clone())];
                row.extend(cells(r)?);
                Some(Row { report: i, cells: row })
            })
            .collect()
    };
    let mut out = vec![
        Section {
            title: "Wall time (ms, median of the runs; vs seq = sequential median / this median)"
                .into(),
            header: header(&[
                "strategy",
                "runs",
                "wall ms",
                "± MAD",
                "min–max ms",
                "vs seq",
                "95% interval",
                "verdict",
                "verified",
            ]),
            rows: rows(&|r| Some(summary(r))),
        },
        Section {
            title: "Phases of the median run (ms; time spent, overlapping across processes)".into(),
            header: header(&[
                "strategy",
                "spawn",
                "generate",
                "encode",
                "transfer",
                "compute Σ",
                "compute max",
                "decode",
                "assemble",
                "wait",
            ]),
            rows: rows(&|r| Some(phases(r))),
        },
        Section {
            title: "Traffic across process boundaries".into(),
            header: header(&[
                "strategy",
                "tasks",
                "msgs sent",
                "msgs recv",
                "MB sent",
                "MB recv",
                "payload MB ↑/↓",
                "GB/s",
                "µs/msg",
            ]),
            rows: rows(&|r| Some(traffic(r))),
        },
    ];
    let busy = rows(&|r| r.utilisation.workers_busy.map(|_| busy(r)));
    if !busy.is_empty() {
        out.push(Section {
            title: "Who was busy in the median run (share of its wall time)".into(),
            header: header(&[
                "strategy",
                "coordinator busy",
                "workers busy (mean)",
                "workers idle, waiting for the coordinator",
                "coordinator waiting for workers",
            ]),
            rows: busy,
        });
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    out.push(Section {
        title: "CPU time in the median run (user: computing; system: the kernel, page faults \
                and copies)"
            .into(),
        header: vec![
            "strategy".into(),
            "wall ms".into(),
            "CPU user ms".into(),
            "CPU system ms".into(),
            "coordinator user / system".into(),
            "workers user / system".into(),
            format!("share of wall x {cores} cores"),
        ],
        rows: rows(&|r| Some(cpu(r))),
    });
    out
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn summary(r: &Report) -> Vec<Cell> {
    vec![
        Cell::figures(r.repeat.to_string(), &["/repeat"]),
        Cell::figures(fmt_ms(r.wall_ms), &["/wall_ms"]),
        Cell::figures(fmt_ms(r.spread.wall_ms_mad), &["/wall_ms_mad"]),
        Cell::figures(
            format!("{}–{}", fmt_ms(r.wall_ms_min), fmt_ms(r.wall_ms_max)),
            &["/wall_ms_min", "/wall_ms_max"],
        ),
        Cell::optional(r.speedup, "/speedup", |s| format!("{}x", ratio(s))),
        match (r.spread.speedup_low, r.spread.speedup_high) {
            (Some(low), Some(high)) => Cell::figures(
                format!("{}–{}x", ratio(low), ratio(high)),
                &["/speedup_low", "/speedup_high"],
            ),
            _ => Cell::words("–"),
        },
        Cell::words(r.spread.verdict.map(|v| v.as_str().to_string()).unwrap_or_else(|| {
            match r.repeat {
                1 => "one run: none".into(),
                _ => "–".into(),
            }
        })),
        Cell::words(match r.verified {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "skipped",
        }),
    ]
}

fn phases(r: &Report) -> Vec<Cell> {
    let p = &r.phases_ms;
    let ms = |v: f64, key: &'static str| Cell::figures(fmt_ms(v), &[key]);
    vec![
        ms(p.spawn, "/phases_ms/spawn"),
        ms(p.generate, "/phases_ms/generate"),
        ms(p.encode, "/phases_ms/encode"),
        ms(p.transfer, "/phases_ms/transfer"),
        ms(p.compute, "/phases_ms/compute"),
        ms(p.compute_max, "/phases_ms/compute_max"),
        ms(p.decode, "/phases_ms/decode"),
        ms(p.assemble, "/phases_ms/assemble"),
        ms(p.wait, "/phases_ms/wait"),
    ]
}

fn traffic(r: &Report) -> Vec<Cell> {
    let t = &r.traffic;
    let count = |v: u64, key: &'static str| Cell::figures(group_digits(v), &[key]);
    vec![
        Cell::figures(group_digits(r.config.tasks as u64), &["/tasks"]),
        count(t.messages_sent, "/messages_sent"),
        count(t.messages_received, "/messages_received"),
        Cell::figures(fmt_mb(t.bytes_sent), &["/bytes_sent"]),
        Cell::figures(fmt_mb(t.bytes_received), &["/bytes_received"]),
        Cell::figures(
            format!("{} / {}", fmt_mb(t.payload_bytes_sent), fmt_mb(t.payload_bytes_received)),
            &["/payload_bytes_sent", "/payload_bytes_received"],
        ),
        Cell::optional(r.channel_gbps, "/channel_gbps", |g| format!("{g:.2}")),
        Cell::optional(r.us_per_message, "/us_per_message", |u| format!("{u:.2}")),
    ]
}

fn busy(r: &Report) -> Vec<Cell> {
    let u = &r.utilisation;
    let pct = |f: f64| format!("{:.0}%", f * 100.0);
    let ms = |v: f64| format!("{} ms", fmt_ms(v));
    vec![
        Cell::optional(u.coordinator_busy, "/coordinator_busy", pct),
        Cell::optional(u.workers_busy, "/workers_busy", pct),
        Cell::optional(u.workers_idle_ms, "/workers_idle_ms", ms),
        Cell::optional(u.coordinator_wait_ms, "/coordinator_wait_ms", ms),
    ]
}

fn cpu(r: &Report) -> Vec<Cell> {
    let c = &r.cpu;
    let pair = |a: f64, b: f64| format!("{} / {}", fmt_ms(a), fmt_ms(b));
    vec![
        Cell::figures(fmt_ms(r.wall_ms), &["/wall_ms"]),
        Cell::figures(fmt_ms(c.cpu_user_ms), &["/cpu_user_ms"]),
        Cell::figures(fmt_ms(c.cpu_system_ms), &["/cpu_system_ms"]),
        Cell::figures(
            pair(c.coordinator_cpu_user_ms, c.coordinator_cpu_system_ms),
            &["/coordinator_cpu_user_ms", "/coordinator_cpu_system_ms"],
        ),
        match c.workers_cpu_user_ms.zip(c.workers_cpu_system_ms) {
            Some((u, s)) => {
                Cell::figures(pair(u, s), &["/workers_cpu_user_ms", "/workers_cpu_system_ms"])
            }
            None => Cell::words("–"),
        },
        Cell::optional(c.cpu_share_of_cores, "/cpu_share_of_cores", |f| {
            format!("{:.0}%", f * 100.0)
        }),
    ]
}

/// The lines under the tables: each worker process of a report, and each failed worker.
pub fn worker_lines(reports: &[Report]) -> Vec<String> {
    let labels = row_labels(reports);
    let mut out = Vec::new();
    for (r, label) in reports.iter().zip(&labels) {
        if r.worker_detail.iter().any(|w| w.exit.is_some()) {
            let workers: Vec<String> = r
                .worker_detail
                .iter()
                .map(|w| {
                    let rss =
                        w.peak_rss_mb.map_or_else(String::new, |mb| format!(", {mb:.0} MB peak"));
                    format!(
                        "#{} pid {} {} tasks {} ms{rss}",
                        w.id,
                        w.pid,
                        w.tasks,
                        fmt_ms(w.compute_ms)
                    )
                })
                .collect();
            out.push(format!("{label} workers: {}", workers.join("; ")));
        }
    }
    for (r, label) in reports.iter().zip(&labels) {
        for f in &r.worker_failures {
            out.push(format!(
                "{label}: worker {} (pid {}) {}; {} task(s) re-run on other workers",
                f.worker, f.pid, f.reason, f.tasks_rerun
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_names_a_key_its_report_has() {
        let reports = [super::super::tests::sample()];
        let json = serde_json::to_value(&reports[0]).unwrap();
        let mut figures = 0;
        for section in sections(&reports) {
            for row in &section.rows {
                assert_eq!(row.cells.len(), section.header.len(), "{}", section.title);
                for key in row.cells.iter().flat_map(|c| &c.keys) {
                    assert!(json.pointer(key).is_some_and(|v| v.is_number()), "{key}");
                    figures += 1;
                }
            }
        }
        assert!(figures > 25, "{figures}");
    }
}
