//! Tables for people: where the time went, and what crossed process boundaries, with units.

use super::Axis;
use super::{CodecProbe, Export, Exporter, Millis, ProbeReport, Report};
use crate::named::named;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

/// `--format table`: for people.
pub struct TableExporter;

named!(TableExporter, "table", "tables with units, for people");

impl Exporter for TableExporter {
    fn reports(&self, export: Export<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let Export { reports, axes } = export;
        write!(out, "{}", render_table(reports))?;
        if let Some(axes) = axes {
            write!(out, "{}", render_sweep_summary(reports, axes))?;
        }
        Ok(())
    }

    fn codecs(&self, p: &CodecProbe, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(
            out,
            "Codecs: block encode and decode, GB/s of values (8 bytes each), median of {} interleaved samples after a warm-up [slowest–fastest]",
            p.samples
        )?;
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_header(vec![
                "codec",
                "shape",
                "values",
                "bytes/value",
                "encode GB/s",
                "decode GB/s",
                "encode ns/value",
                "decode ns/value",
                "decode / memcpy",
            ]);
        for r in &p.rows {
            let memcpy = p.memcpy_at(r.values);
            table.add_row(vec![
                r.codec.to_string(),
                r.shape.to_string(),
                r.values.to_string(),
                format!("{:.2}", r.bytes_per_value),
                format!("{:.2} [{:.2}–{:.2}]", r.encode_gbps, r.encode_gbps_min, r.encode_gbps_max),
                format!("{:.2} [{:.2}–{:.2}]", r.decode_gbps, r.decode_gbps_min, r.decode_gbps_max),
                format!("{:.2}", r.encode_ns_per_value),
                format!("{:.2}", r.decode_ns_per_value),
                memcpy.map_or_else(|| "–".into(), |m| format!("{:.2}", r.decode_gbps / m)),
            ]);
        }
        writeln!(out, "{table}")?;
        writeln!(out, "{}", p.memcpy_line())
    }

    fn probe(&self, p: &ProbeReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match p.started_per_job {
            true => writeln!(
                out,
                "{} init of {} worker ranks (and every rank's hello, once per job): {:.2} ms",
                p.transport.to_uppercase(),
                p.workers,
                p.spawn_hello_ms
            )?,
            false => writeln!(
                out,
                "spawn-and-hello of {} workers ({}): {:.2} ms",
                p.workers, p.transport, p.spawn_hello_ms
            )?,
        }
        writeln!(
            out,
            "echo of {} x {} bytes (2 in flight): {:.2} GB/s both ways in send time ({:.2} GB/s of wall time)",
            p.echo_messages, p.echo_message_bytes, p.echo_gbps, p.echo_wall_gbps
        )?;
        writeln!(
            out,
            "echo of {} x 8 bytes (2 in flight): {:.2} µs per one-way message, round trip p50 {:.1} µs, p99 {:.1} µs",
            p.echo8_messages, p.echo8_us_per_message, p.echo8_rtt_p50_us, p.echo8_rtt_p99_us
        )?;
        let f = &p.floor;
        writeln!(
            out,
            "floors, the same echoes with no library (a thread of this process echoing): socketpair {:.2} GB/s, pipes {:.2} GB/s ({:.2} sending by vmsplice), memcpy of one message {:.2} GB/s; 8 bytes over the socketpair {:.2} µs per message, round trip p50 {:.1} µs, p99 {:.1} µs",
            f.floor_socketpair_gbps,
            f.floor_pipe_gbps,
            f.floor_pipe_vmsplice_gbps,
            f.floor_memcpy_gbps,
            f.floor_echo8_us_per_message,
            f.floor_echo8_rtt_p50_us,
            f.floor_echo8_rtt_p99_us
        )?;
        writeln!(
            out,
            "{} against the socketpair floor: {:.2}x its echo GB/s, {:.2}x its 8-byte µs per message",
            p.transport, f.echo_of_socketpair_floor, f.echo8_of_socketpair_floor
        )
    }
}

/// A ratio with two decimals, or two significant digits where two decimals would show
/// nothing of it (0.0004, not 0.00).
pub(super) fn ratio(x: f64) -> String {
    match x.abs() {
        a if a == 0.0 || !a.is_finite() || a >= 0.1 => format!("{x:.2}"),
        a => {
            let decimals = (1 - a.log10().floor() as i32).clamp(2, 12) as usize;
            format!("{x:.decimals$}")
        }
    }
}

/// Renders the reports as a titled summary (runs, median and spread, speedup with its
/// interval and verdict), a phase table, a traffic table and a worker summary. Every row names
/// every parameter that varies among the reports.
pub fn render_table(reports: &[Report]) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let labels = row_labels(reports);
    let workers = reports.iter().map(|r| r.workers).max().unwrap_or(1);
    let mut out = format!(
        "ipcmap: {} over {} f64 (seed {}), {} worker(s)\n{}\n",
        first.function,
        group_digits(first.n as u64),
        first.seed,
        workers,
        describe_plan(reports),
    );

    let mut summary = new_table(&[
        "strategy",
        "runs",
        "wall ms",
        "± MAD",
        "min–max ms",
        "vs seq",
        "95% interval",
        "verdict",
        "verified",
    ]);
    for (r, label) in reports.iter().zip(&labels) {
        summary.add_row(vec![
            label.clone(),
            r.repeat.to_string(),
            fmt_ms(r.wall_ms),
            fmt_ms(r.spread.wall_ms_mad),
            format!("{}–{}", fmt_ms(r.wall_ms_min), fmt_ms(r.wall_ms_max)),
            r.speedup.map_or("–".into(), |s| format!("{}x", ratio(s))),
            match (r.spread.speedup_low, r.spread.speedup_high) {
                (Some(low), Some(high)) => format!("{}–{}x", ratio(low), ratio(high)),
                _ => "–".into(),
            },
            r.spread.verdict.clone().unwrap_or_else(|| match r.repeat {
                1 => "one run: none".into(),
                _ => "–".into(),
            }),
            match r.verified {
                Some(true) => "yes".into(),
                Some(false) => "NO".into(),
                None => "skipped".into(),
            },
        ]);
    }
    out += &format!(
        "\nWall time (ms, median of the runs; vs seq = sequential median / this median)\n{summary}\n"
    );

    let mut time = new_table(&[
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
    ]);
    for (r, label) in reports.iter().zip(&labels) {
        let p = &r.phases_ms;
        time.add_row(vec![
            label.clone(),
            fmt_ms(p.spawn),
            fmt_ms(p.generate),
            fmt_ms(p.encode),
            fmt_ms(p.transfer),
            fmt_ms(p.compute),
            fmt_ms(p.compute_max),
            fmt_ms(p.decode),
            fmt_ms(p.assemble),
            fmt_ms(p.wait),
        ]);
    }
    out += &format!(
        "\nPhases of the median run (ms; time spent, overlapping across processes)\n{time}\n"
    );

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
    for (r, label) in reports.iter().zip(&labels) {
        traffic.add_row(vec![
            label.clone(),
            group_digits(r.tasks as u64),
            group_digits(r.traffic.messages_sent),
            group_digits(r.traffic.messages_received),
            fmt_mb(r.traffic.bytes_sent),
            fmt_mb(r.traffic.bytes_received),
            format!(
                "{} / {}",
                fmt_mb(r.traffic.payload_bytes_sent),
                fmt_mb(r.traffic.payload_bytes_received)
            ),
            r.channel_gbps.map_or("–".into(), |g| format!("{g:.2}")),
            r.us_per_message.map_or("–".into(), |u| format!("{u:.2}")),
        ]);
    }
    out += &format!("\nTraffic across process boundaries\n{traffic}\n");

    let busy: Vec<(&Report, &String)> =
        reports.iter().zip(&labels).filter(|(r, _)| r.utilisation.workers_busy.is_some()).collect();
    if !busy.is_empty() {
        let mut table = new_table(&[
            "strategy",
            "coordinator busy",
            "workers busy (mean)",
            "workers idle, waiting for the coordinator",
            "coordinator waiting for workers",
        ]);
        let pct = |f: Option<f64>| f.map_or("–".into(), |f| format!("{:.0}%", f * 100.0));
        let ms = |v: Option<f64>| v.map_or("–".into(), |v| format!("{} ms", fmt_ms(v)));
        for (r, label) in busy {
            table.add_row(vec![
                label.clone(),
                pct(r.utilisation.coordinator_busy),
                pct(r.utilisation.workers_busy),
                ms(r.utilisation.workers_idle_ms),
                ms(r.utilisation.coordinator_wait_ms),
            ]);
        }
        out += &format!("\nWho was busy in the median run (share of its wall time)\n{table}\n");
    }

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut cpu = new_table(&[
        "strategy",
        "wall ms",
        "CPU user ms",
        "CPU system ms",
        "coordinator user / system",
        "workers user / system",
        &format!("share of wall x {cores} cores"),
    ]);
    for (r, label) in reports.iter().zip(&labels) {
        let c = &r.cpu;
        let (user, system) = (c.workers_cpu_user_ms, c.workers_cpu_system_ms);
        let pair = |a: f64, b: f64| format!("{} / {}", fmt_ms(a), fmt_ms(b));
        cpu.add_row(vec![
            label.clone(),
            fmt_ms(r.wall_ms),
            fmt_ms(c.coordinator_cpu_user_ms + user.unwrap_or(0.0)),
            fmt_ms(c.coordinator_cpu_system_ms + system.unwrap_or(0.0)),
            pair(c.coordinator_cpu_user_ms, c.coordinator_cpu_system_ms),
            user.zip(system).map_or("–".into(), |(u, s)| pair(u, s)),
            c.cpu_share_of_cores.map_or("–".into(), |f| format!("{:.0}%", f * 100.0)),
        ]);
    }
    out += &format!("\nCPU time in the median run (user: computing; system: the kernel, page faults and copies)\n{cpu}\n");

    for (r, label) in reports
        .iter()
        .zip(&labels)
        .filter(|(r, _)| r.worker_detail.iter().any(|w| w.exit.is_some()))
    {
        let workers: Vec<String> = r
            .worker_detail
            .iter()
            .map(|w| {
                format!("#{} pid {} {} tasks {} ms", w.id, w.pid, w.tasks, fmt_ms(w.compute_ms))
            })
            .collect();
        out += &format!("{label} workers: {}\n", workers.join("; "));
    }
    for (r, label) in reports.iter().zip(&labels) {
        for f in &r.worker_failures {
            out += &format!(
                "{label}: worker {} (pid {}) {}; {} task(s) re-run on other workers\n",
                f.worker, f.pid, f.reason, f.tasks_rerun
            );
        }
    }
    out
}

/// "plan: 1 warm-up, then 5–10 measured runs (auto: ...), round-robin; ..." from the reports.
pub(super) fn describe_plan(reports: &[Report]) -> String {
    let warmups: Vec<usize> = distinct(reports.iter().map(|r| r.warmup));
    let warmup = match warmups.as_slice() {
        [w] => format!("{w} warm-up run(s)"),
        _ => "warm-up runs as set per configuration".into(),
    };
    let runs = if reports.iter().all(|r| r.plan == "exact") {
        let counts = distinct(reports.iter().map(|r| r.repeat));
        match counts.as_slice() {
            [1] => "1 measured run (cold: one sample, no interval)".to_string(),
            [n] => format!("{n} measured runs"),
            _ => "measured runs as set per configuration".into(),
        }
    } else {
        let rules = distinct(reports.iter().map(|r| r.plan_rule.as_str()));
        let done = distinct(reports.iter().map(|r| r.repeat));
        let done = match done.as_slice() {
            [n] => format!("{n}"),
            _ => format!(
                "{}–{}",
                done.iter().min().copied().unwrap_or(0),
                done.iter().max().copied().unwrap_or(0)
            ),
        };
        format!("{done} measured runs (chosen by time: {})", rules.join("; "))
    };
    let order = if reports.iter().all(|r| r.interleaved) {
        "round-robin (A B C, A B C)"
    } else {
        "one strategy after another"
    };
    let baseline = reports.iter().map(|r| r.spread.baseline_runs).max().unwrap_or(0);
    format!(
        "plan: {warmup}, then {runs} per strategy, {order}; speedups against {baseline} interleaved sequential run(s)"
    )
}

fn distinct<T: PartialEq>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Row labels: the strategy and its own settings, plus every parameter that varies among the
/// reports (sequential's single worker does not count as variation).
pub(super) fn row_labels(reports: &[Report]) -> Vec<String> {
    let parallel: Vec<&Report> = reports.iter().filter(|r| r.mode != "sequential").collect();
    let varies = |f: &dyn Fn(&Report) -> String, among: &[&Report]| {
        distinct(among.iter().map(|r| f(r))).len() > 1
    };
    let all: Vec<&Report> = reports.iter().collect();
    let workers = varies(&|r| r.workers.to_string(), &parallel);
    let n = varies(&|r| r.n.to_string(), &all);
    let function = varies(&|r| r.function.to_string(), &all);
    let work = varies(&|r| r.work.to_string(), &all);
    let transport = varies(&|r| r.job.transport.to_string(), &parallel);
    reports
        .iter()
        .map(|r| {
            let mut label = label(r);
            if transport && r.mode != "sequential" {
                label += &format!(", over {}", r.job.transport);
            }
            if workers && r.mode != "sequential" {
                label += &format!(", {} workers", r.workers);
            }
            if n {
                label += &format!(", n {}", group_digits(r.n as u64));
            }
            if function {
                label += &format!(", {}", r.function);
            }
            if work {
                label += &format!(", work {}", r.work);
            }
            label
        })
        .collect()
}

/// The fastest and slowest configuration of a sweep, named by the axes that vary.
pub fn render_sweep_summary(reports: &[Report], axes: &[Axis]) -> String {
    let by_wall = |a: &&Report, b: &&Report| a.wall_ms.total_cmp(&b.wall_ms);
    let (Some(fastest), Some(slowest)) =
        (reports.iter().min_by(by_wall), reports.iter().max_by(by_wall))
    else {
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
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for i in 1..header.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn label(r: &Report) -> String {
    let mut parts = vec![r.label.clone()];
    if r.environment.frame_bytes > 0 {
        parts.push(format!("trains of {} B", group_digits(r.environment.frame_bytes as u64)));
    }
    if r.environment.decode_threads > 0 {
        let s = if r.environment.decode_threads == 1 { "" } else { "s" };
        parts.push(format!("{} decoder thread{s}", r.environment.decode_threads));
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
        if i > 0 && (s.len() - i).is_multiple_of(3) {
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
        assert_eq!(ratio(0.00041), "0.00041");
        assert_eq!(ratio(0.042), "0.042");
        assert_eq!(ratio(0.5), "0.50");
        assert_eq!(ratio(12.0), "12.00");
        assert!(text.contains("GB/s"));
        assert!(text.contains("faster"));
        assert!(text.contains("plan: 0 warm-up run(s), then 3 measured runs"));
    }

    #[test]
    fn rows_that_differ_only_in_workers_say_so() {
        let one = super::super::tests::sample();
        let mut two = one.clone();
        two.workers = 4;
        let text = render_table(&[one, two]);
        assert!(text.contains("split, raw, 4 splits, chunk 1, 2 workers"), "{text}");
        assert!(text.contains("split, raw, 4 splits, chunk 1, 4 workers"), "{text}");
    }
}
