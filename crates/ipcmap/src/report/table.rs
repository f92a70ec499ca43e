//! Tables for people: where the time went, and what crossed process boundaries, with units.

use super::sections::{sections, worker_lines};
use super::Axis;
use super::{CodecProbe, Export, Exporter, FunctionProbe, Millis, ProbeReport, Report};
use crate::named::named;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};

/// `--format table`: for people.
pub struct TableExporter;

named!(TableExporter, "table", "tables with units, for people");

impl Exporter for TableExporter {
    fn reports(&self, export: Export<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let Export { reports, axes, view, .. } = export;
        let answer = super::answer::render_answer(reports, axes, view, terminal_width());
        write!(out, "{}", super::printable_keeping_colour(&answer, view.color))
    }

    fn functions(&self, p: &FunctionProbe, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(
            out,
            "Functions on one core ({}), ns a value: median of {} interleaved samples after a \
             warm-up [fastest–slowest]",
            p.kernel_isa, p.samples
        )?;
        let range = |v: [f64; 3]| format!("{} [{}–{}]", fmt_ms(v[0]), fmt_ms(v[1]), fmt_ms(v[2]));
        let mut table = probe_table();
        table.set_header(vec![
            "function".to_string(),
            "in cache".to_string(),
            format!("over {} values", group_digits(p.values as u64)),
            "÷ copy".to_string(),
            "bound".to_string(),
        ]);
        for r in &p.rows {
            table.add_row(vec![
                r.function.to_string(),
                range(r.in_cache_ns_per_value),
                range(r.streamed_ns_per_value),
                format!("{:.2}", r.in_cache_ns_per_value[0] / p.copy_ns_per_value[0].max(1e-12)),
                r.bound.to_string(),
            ]);
        }
        writeln!(out, "{table}")?;
        writeln!(
            out,
            "copying a value through memory (8 bytes read, 8 written): {} ns.\n\
             memory-bound: the function costs no more than that copy, so no strategy that copies \
             each value to a worker and back can pay on this machine.",
            range(p.copy_ns_per_value)
        )
    }

    fn codecs(&self, p: &CodecProbe, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(
            out,
            "Codecs: block encode and decode, GB/s of values (8 bytes each), median of {} interleaved samples after a warm-up [slowest–fastest]",
            p.samples
        )?;
        let mut table = probe_table();
        table.set_header(vec![
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
        )?;
        writeln!(
            out,
            "the input generator on every core: {:.2} GB/s into memory already faulted in ({:.2}x the {:.2} GB/s of filling it), {:.2} GB/s into fresh memory",
            p.generate_gbps,
            p.generate_gbps / p.floor_fill_gbps.max(f64::MIN_POSITIVE),
            p.floor_fill_gbps,
            p.generate_fresh_gbps
        )?;
        if p.sizes.is_empty() {
            return Ok(());
        }
        writeln!(
            out,
            "\nper message size, in the shape of OSU's osu_latency and osu_bw (one way; MB = 10^6 bytes):"
        )?;
        let mut table = probe_table();
        table.set_header(vec![
            "size",
            "latency µs",
            "p50 µs",
            "messages",
            "bandwidth MB/s",
            "window",
            "messages",
        ]);
        for row in &p.sizes {
            table.add_row(vec![
                size_text(row.bytes),
                format!("{:.2}", row.latency_us),
                format!("{:.2}", row.latency_p50_us),
                row.latency_messages.to_string(),
                format!("{:.1}", row.bandwidth_mbps),
                row.window.to_string(),
                row.bandwidth_messages.to_string(),
            ]);
        }
        writeln!(out, "{table}")?;
        if let (Some(first), Some(last)) = (p.sizes.first(), p.sizes.last()) {
            writeln!(
                out,
                "to set beside a cluster's published OSU figures: {} latency {:.2} µs, {} bandwidth {:.0} MB/s; the probe took {:.1} s",
                size_text(first.bytes),
                first.latency_us,
                size_text(last.bytes),
                last.bandwidth_mbps,
                p.seconds
            )?;
        }
        Ok(())
    }
}

/// A message size as a person reads it: 8 B, 4 KiB, 4 MiB.
fn size_text(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
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
/// interval and verdict), a phase table, a traffic table, a worker summary and the CPU time,
/// fitted to the terminal's width when stdout is one. Every row names every parameter that
/// varies among the reports.
pub fn render_table(reports: &[Report]) -> String {
    super::printable(&render_table_within(reports, terminal_width())).into_owned()
}

/// [`render_table`] fitted to `width` columns (`None`: as wide as the figures need).
pub fn render_table_within(reports: &[Report], width: Option<u16>) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let workers = reports.iter().map(|r| r.config.workers).max().unwrap_or(1);
    let out = wrap(
        &format!(
            "ipcmap: {} over {} f64 (seed {}), {} worker(s)\n{}\n",
            first.config.function,
            group_digits(first.config.n as u64),
            first.config.seed,
            workers,
            describe_plan(reports),
        ),
        width,
    );
    out + &render_sections(reports, width)
}

/// Every section's table (wall time, phases, traffic, who was busy, CPU time), then a line per
/// strategy's workers: what `--details` shows.
pub(super) fn render_sections(reports: &[Report], width: Option<u16>) -> String {
    let mut out = String::new();
    for section in sections(reports) {
        let mut table = new_table(&section.header, width);
        for row in section.rows {
            table.add_row(row.cells.into_iter().map(|c| c.text).collect::<Vec<_>>());
        }
        out += &format!("\n{}{table}\n", wrap(&format!("{}\n", section.title), width));
    }
    for line in worker_lines(reports) {
        out += &wrap(&format!("{line}\n"), width);
    }
    out
}

/// The terminal's width in columns, when stdout is a terminal.
pub fn terminal_width() -> Option<u16> {
    usable_width(Table::new().width())
}

/// A width tables can be laid out in: none (written whole, as when piped) where the terminal
/// says 0 or a few columns, as a launcher's pseudo-terminal (mpirun's) does.
fn usable_width(width: Option<u16>) -> Option<u16> {
    width.filter(|&w| w >= 20)
}

/// A probe's table: condensed, laid out in the terminal's usable width ([`fit`]).
fn probe_table() -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    fit(&mut table);
    table
}

/// Lays `table` out in the terminal's usable width, or whole where there is none: comfy-table
/// would otherwise ask the terminal itself and take a width of 0 at its word.
fn fit(table: &mut Table) {
    match terminal_width() {
        Some(w) => drop(table.set_width(w)),
        None => drop(table.force_no_tty()),
    }
}

/// `text` with each line wrapped to `width` columns (`None`: as it is); a wrapped line of a
/// Markdown list item (`- `) goes on under its first word, so the list stays one.
pub fn wrap(text: &str, width: Option<u16>) -> String {
    let Some(width) = width.map(usize::from).filter(|w| *w >= 20) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len() + text.len() / 40);
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let indent = if body.starts_with("- ") { "  " } else { "" };
        let options = textwrap::Options::new(width).subsequent_indent(indent);
        out += &textwrap::wrap(body, options).join("\n");
        out += newline;
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
    let warm =
        match (reports.iter().any(|r| r.input_kept), reports.iter().any(|r| r.buffers_reused)) {
            (true, _) => {
                "; warm: the input made once and kept, buffers reused (only the work is timed)"
            }
            (false, true) => "; buffers reused from run to run",
            (false, false) => "",
        };
    let starts: Vec<f64> = reports.iter().filter_map(|r| r.pool_start_ms).collect();
    let pool =
        match (starts.iter().copied().reduce(f64::min), starts.iter().copied().reduce(f64::max)) {
            (Some(lo), Some(hi)) if hi - lo >= 0.05 => format!(
            "; workers kept from run to run (started once, {lo:.1}-{hi:.1} ms, in no wall time)"
        ),
            (Some(lo), _) => {
                format!(
                    "; workers kept from run to run (started once, {lo:.1} ms, in no wall time)"
                )
            }
            _ => String::new(),
        };
    format!(
        "plan: {warmup}, then {runs} per strategy, {order}; speedups against {baseline} interleaved sequential run(s){warm}{pool}"
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
    let parallel: Vec<&Report> = reports.iter().filter(|r| !r.is_sequential()).collect();
    let varies = |f: &dyn Fn(&Report) -> String, among: &[&Report]| {
        distinct(among.iter().map(|r| f(r))).len() > 1
    };
    let all: Vec<&Report> = reports.iter().collect();
    let workers = varies(&|r| r.config.workers.to_string(), &parallel);
    let n = varies(&|r| r.config.n.to_string(), &all);
    let function = varies(&|r| r.config.function.to_string(), &all);
    let work = varies(&|r| r.config.work.to_string(), &all);
    let transport = varies(&|r| r.job.transport.to_string(), &parallel);
    reports
        .iter()
        .map(|r| {
            let mut label = label(r);
            if transport && !r.is_sequential() {
                label += &format!(", over {}", r.job.transport);
            }
            if workers && !r.is_sequential() {
                label += &format!(", {} workers", r.config.workers);
            }
            if n {
                label += &format!(", n {}", group_digits(r.config.n as u64));
            }
            if function {
                label += &format!(", {}", r.config.function);
            }
            if work {
                label += &format!(", work {}", r.config.work);
            }
            label
        })
        .collect()
}

/// A sweep over `--n`: each strategy's ns per value (median wall / n) at each n, and the
/// largest n's against the one before it: near 1 where cost is linear in n.
fn scaling_table(reports: &[Report]) -> String {
    let mut ns: Vec<usize> = distinct(reports.iter().map(|r| r.config.n));
    ns.sort_unstable();
    let modes = distinct(reports.iter().map(|r| r.config.mode.as_str()));
    let mut header = vec!["strategy".to_string()];
    header.extend(ns.iter().map(|&n| format!("n {}", group_digits(n as u64))));
    if ns.len() >= 2 {
        header.push(format!("{} / {}", short_n(ns[ns.len() - 1]), short_n(ns[ns.len() - 2])));
    }
    let mut table = new_table(&header, terminal_width());
    for mode in modes {
        let at = |n: usize| {
            reports
                .iter()
                .find(|r| r.config.mode == mode && r.config.n == n)
                .map(|r| r.wall_ms * 1e6 / n as f64)
        };
        let mut row = vec![mode.to_string()];
        row.extend(ns.iter().map(|&n| at(n).map_or("–".into(), |v| format!("{v:.2}"))));
        if ns.len() >= 2 {
            let ratio = at(ns[ns.len() - 1]).zip(at(ns[ns.len() - 2])).map(|(a, b)| a / b);
            row.push(ratio.map_or("–".into(), |r| format!("{r:.2}x")));
        }
        table.add_row(row);
    }
    format!("\nns per value (median wall time / n; a cost linear in n keeps it flat)\n{table}\n")
}

/// 1000000000 → "10^9"; other counts grouped.
fn short_n(n: usize) -> String {
    let power = (n as f64).log10().round() as u32;
    match 10usize.checked_pow(power) == Some(n) {
        true => format!("10^{power}"),
        false => group_digits(n as u64),
    }
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
            r.config.mode.clone()
        } else {
            axes.iter()
                .map(|a| format!("{}={}", a.name(), a.label(r)))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let scaling = match axes.contains(&Axis::N) {
        true => scaling_table(reports),
        false => String::new(),
    };
    scaling
        + &format!(
            "\nsweep of {} configurations: fastest {} at {} ms, slowest {} at {} ms ({:.1}x)\n",
            reports.len(),
            name(fastest),
            fmt_ms(fastest.wall_ms),
            name(slowest),
            fmt_ms(slowest.wall_ms),
            slowest.wall_ms / fastest.wall_ms.max(1e-9)
        )
}

fn new_table(header: &[String], width: Option<u16>) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    match width {
        // The row's name keeps room for a strategy's name whole ("sequential").
        Some(width) => table
            .set_width(width)
            .set_constraints([ColumnConstraint::LowerBoundary(Width::Fixed(14))]),
        None => table.force_no_tty(),
    };
    for i in 1..header.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn label(r: &Report) -> String {
    let mut parts = vec![r.config.label.clone()];
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

pub(super) fn fmt_mb(bytes: u64) -> String {
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
    fn a_terminal_of_no_width_gets_the_tables_whole() {
        assert_eq!(usable_width(Some(0)), None, "mpirun's pseudo-terminal");
        assert_eq!(usable_width(Some(5)), None);
        assert_eq!(usable_width(None), None);
        assert_eq!(usable_width(Some(80)), Some(80));
    }

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
    fn a_100_column_terminal_gets_tables_and_sentences_no_wider() {
        let mut long = super::super::tests::sample();
        long.config.label =
            "split, bincode, 64 splits, chunk 1, trains of 65,536 B, over uds".into();
        let wide = render_table_within(&[long.clone(), long.clone()], None);
        assert!(wide.lines().any(|l| l.chars().count() > 120), "the sample is wide: {wide}");
        let text = render_table_within(&[long.clone(), long.clone()], Some(100));
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
        }
        assert!(text.contains("CPU"), "{text}");
        let explained = super::super::explain(&[long]);
        let wrapped = wrap(&explained, Some(100));
        for line in wrapped.lines() {
            assert!(line.chars().count() <= 100, "{line}");
        }
        // A bullet's wrapped lines stay in its list item: indented under it.
        let items = wrapped.lines().filter(|l| l.starts_with("- ")).count();
        assert_eq!(items, explained.lines().filter(|l| l.starts_with("- ")).count());
        assert!(wrapped.lines().any(|l| l.starts_with("  ")), "{wrapped}");
        assert_eq!(wrap(&explained, None), explained);
    }

    #[test]
    fn rows_that_differ_only_in_workers_say_so() {
        let one = super::super::tests::sample();
        let mut two = one.clone();
        two.config.workers = 4;
        let text = render_table(&[one, two]);
        assert!(text.contains("split, raw, 4 splits, chunk 1, 2 workers"), "{text}");
        assert!(text.contains("split, raw, 4 splits, chunk 1, 4 workers"), "{text}");
    }
}
