//! `--format markdown`: hyperfine's `--export-markdown` shape, for pasting into READMEs and
//! issues: one row per report, the median with its spread, and the speedup with its interval.

use super::table::{describe_plan, fmt_ms, ratio, row_labels};
use super::{CodecProbe, Export, Exporter, ProbeReport};
use crate::named::named;
use std::io::Write;

/// `--format markdown`.
pub struct MarkdownExporter;

named!(
    MarkdownExporter,
    "markdown",
    "a Markdown table (hyperfine's --export-markdown shape), for READMEs and issues",
);

impl Exporter for MarkdownExporter {
    fn reports(&self, export: Export<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        let reports = export.reports;
        if let Some(first) = reports.first() {
            writeln!(
                out,
                "{} over {} f64, {}.\n",
                first.function,
                super::table::group_digits(first.n as u64),
                describe_plan(reports)
            )?;
        }
        writeln!(
            out,
            "| Strategy | Median [ms] | ± MAD [ms] | Min [ms] | Max [ms] | Runs | vs sequential | 95% interval | Verdict |"
        )?;
        writeln!(out, "|:---|---:|---:|---:|---:|---:|---:|---:|:---|")?;
        for (r, label) in reports.iter().zip(row_labels(reports)) {
            writeln!(
                out,
                "| `{label}` | {} | {} | {} | {} | {} | {} | {} | {} |",
                fmt_ms(r.wall_ms),
                fmt_ms(r.spread.wall_ms_mad),
                fmt_ms(r.wall_ms_min),
                fmt_ms(r.wall_ms_max),
                r.repeat,
                r.speedup.map_or("–".into(), |s| format!("{}x", ratio(s))),
                match (r.spread.speedup_low, r.spread.speedup_high) {
                    (Some(low), Some(high)) => format!("{}–{}x", ratio(low), ratio(high)),
                    _ => "–".into(),
                },
                r.spread.verdict.as_deref().unwrap_or("–"),
            )?;
        }
        Ok(())
    }

    fn codecs(&self, p: &CodecProbe, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "| codec | shape | values | bytes/value | encode GB/s | decode GB/s | encode ns/value | decode ns/value | decode / memcpy |"
        )?;
        writeln!(out, "|:---|:---|---:|---:|---:|---:|---:|---:|---:|")?;
        for r in &p.rows {
            let memcpy = p.memcpy_at(r.values);
            writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                r.codec,
                r.shape,
                r.values,
                r.bytes_per_value,
                r.encode_gbps,
                r.decode_gbps,
                r.encode_ns_per_value,
                r.decode_ns_per_value,
                memcpy.map_or_else(|| "–".into(), |m| format!("{:.2}", r.decode_gbps / m))
            )?;
        }
        writeln!(out, "\n{}.", p.memcpy_line())
    }

    fn probe(&self, p: &ProbeReport, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "| Probe | Figure |")?;
        writeln!(out, "|:---|---:|")?;
        writeln!(out, "| spawn-and-hello of {} workers | {:.2} ms |", p.workers, p.spawn_hello_ms)?;
        writeln!(
            out,
            "| echo of {} x {} bytes, both ways | {:.2} GB/s |",
            p.echo_messages, p.echo_message_bytes, p.echo_gbps
        )?;
        writeln!(
            out,
            "| echo of {} x 8 bytes, one way | {:.2} µs per message |",
            p.echo8_messages, p.echo8_us_per_message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_markdown_row_per_report_under_a_header() {
        let mut out = Vec::new();
        MarkdownExporter
            .reports(Export { reports: &[super::super::tests::sample()], axes: None }, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert!(rows[0].contains("Median [ms]"));
        assert!(rows[2].starts_with("| `split, raw, 4 splits, chunk 1` | 2.00 |"), "{text}");
        assert!(rows[2].contains("faster"), "{text}");
    }
}
