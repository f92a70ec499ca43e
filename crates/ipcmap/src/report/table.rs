//! Tables for people: where the time went, and what crossed process boundaries, with units.

use super::{Millis, Report};
use crate::sweep::Axis;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

/// Renders the reports as a titled time table, a traffic table and a worker summary.
pub fn render_table(reports: &[Report]) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let workers = reports.iter().map(|r| r.workers).max().unwrap_or(1);
    let mut out = format!(
        "ipcmap: {} over {} f64 (seed {}), {} worker(s), {} measured run(s) after {} warm-up; times are medians\n",
        first.function,
        group_digits(first.n as u64),
        first.seed,
        workers,
        first.repeat,
        first.warmup
    );

    let mut time = new_table(&[
        "strategy",
        "wall ms",
        "min–max ms",
        "vs seq",
        "spawn",
        "generate",
        "encode",
        "transfer",
        "compute Σ",
        "compute max",
        "decode",
        "assemble",
        "wait",
        "verified",
    ]);
    for r in reports {
        let p = &r.phases_ms;
        time.add_row(vec![
            label(r),
            fmt_ms(r.wall_ms),
            format!("{}–{}", fmt_ms(r.wall_ms_min), fmt_ms(r.wall_ms_max)),
            r.speedup.map_or("–".into(), |s| format!("{s:.2}x")),
            fmt_ms(p.spawn),
            fmt_ms(p.generate),
            fmt_ms(p.encode),
            fmt_ms(p.transfer),
            fmt_ms(p.compute),
            fmt_ms(p.compute_max),
            fmt_ms(p.decode),
            fmt_ms(p.assemble),
            fmt_ms(p.wait),
            match r.verified {
                Some(true) => "yes".into(),
                Some(false) => "NO".into(),
                None => "skipped".into(),
            },
        ]);
    }
    out += &format!("\nTime (ms; phases are time spent and overlap across processes)\n{time}\n");

    let mut traffic = new_table(&[
        "strategy",
        "tasks",
        "msgs sent",
        "msgs recv",
        "MB sent",
        "MB recv",
        "payload MB ↑/↓",
        "GB/s",
        "µs/msg",
    ]);
    for r in reports {
        traffic.add_row(vec![
            label(r),
            group_digits(r.tasks as u64),
            group_digits(r.messages_sent),
            group_digits(r.messages_received),
            fmt_mb(r.bytes_sent),
            fmt_mb(r.bytes_received),
            format!(
                "{} / {}",
                fmt_mb(r.payload_bytes_sent),
                fmt_mb(r.payload_bytes_received)
            ),
            r.channel_gbps.map_or("–".into(), |g| format!("{g:.2}")),
            r.us_per_message.map_or("–".into(), |u| format!("{u:.2}")),
        ]);
    }
    out += &format!("\nTraffic across process boundaries\n{traffic}\n");

    for r in reports
        .iter()
        .filter(|r| r.worker_detail.iter().any(|w| w.exit.is_some()))
    {
        let workers: Vec<String> = r
            .worker_detail
            .iter()
            .map(|w| {
                format!(
                    "#{} pid {} {} tasks {} ms",
                    w.id,
                    w.pid,
                    w.tasks,
                    fmt_ms(w.compute_ms)
                )
            })
            .collect();
        out += &format!("{} workers: {}\n", r.mode, workers.join("; "));
    }
    for r in reports {
        for f in &r.worker_failures {
            out += &format!(
                "{}: worker {} (pid {}) {}; {} task(s) re-run on other workers\n",
                r.mode, f.worker, f.pid, f.reason, f.tasks_rerun
            );
        }
    }
    out
}

/// The fastest and slowest configuration of a sweep, named by the axes that vary.
pub fn render_sweep_summary(reports: &[Report], axes: &[Axis]) -> String {
    let by_wall = |a: &&Report, b: &&Report| a.wall_ms.total_cmp(&b.wall_ms);
    let (Some(fastest), Some(slowest)) = (
        reports.iter().min_by(by_wall),
        reports.iter().max_by(by_wall),
    ) else {
        return String::new();
    };
    let name = |r: &Report| {
        if axes.is_empty() {
            r.mode.clone()
        } else {
            axes.iter()
                .map(|a| format!("{}={}", a.name(), a.label(r)))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    format!(
        "\nsweep of {} configurations: fastest {} at {} ms, slowest {} at {} ms ({:.1}x)\n",
        reports.len(),
        name(fastest),
        fmt_ms(fastest.wall_ms),
        name(slowest),
        fmt_ms(slowest.wall_ms),
        slowest.wall_ms / fastest.wall_ms.max(1e-9)
    )
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    for i in 1..header.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn label(r: &Report) -> String {
    let mut parts = vec![r.mode.clone()];
    if let Some(codec) = r.codec {
        parts.push(codec.to_string());
    }
    if let Some(s) = r.splits {
        parts.push(format!("{s} splits"));
    }
    if let Some(c) = r.chunksize {
        parts.push(format!("chunk {c}"));
    }
    parts.join(", ")
}

/// Milliseconds with precision that suits their size.
pub fn fmt_ms(ms: Millis) -> String {
    match ms {
        m if m >= 100.0 => format!("{m:.0}"),
        m if m >= 10.0 => format!("{m:.1}"),
        m => format!("{m:.2}"),
    }
}

fn fmt_mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// 10000000 → "10,000,000".
pub fn group_digits(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(10_000_000), "10,000,000");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(0), "0");
    }

    #[test]
    fn table_shows_every_report_and_units() {
        let text = render_table(&[super::super::tests::sample()]);
        assert!(text.contains("wall ms"));
        assert!(text.contains("split, raw, 4 splits, chunk 1"));
        assert!(text.contains("2.00x"));
        assert!(text.contains("GB/s"));
    }
}
