//! `--format markdown`: hyperfine's `--export-markdown` shape, for pasting into READMEs and
//! issues: one row per report, the median with its spread, and the speedup with its interval.

use super::sections::{sections, worker_lines};
use super::table::{describe_plan, fmt_ms, ratio, row_labels};
use super::{CodecProbe, Export, Exporter, ProbeReport, Verdict};
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
                first.config.function,
                super::table::group_digits(first.config.n as u64),
                describe_plan(reports)
            )?;
        }
        // The answer first: the summary in words, verdicts in bold, each why under its line.
        if export.axes.is_none() {
            for said in super::summary::summary(reports) {
                let text = escape(said.text.trim());
                match said.tone {
                    super::summary::Tone::Detail => writeln!(out, "  - {text}")?,
                    super::summary::Tone::Plain => writeln!(out, "- {text}")?,
                    _ => writeln!(out, "- **{text}**")?,
                }
            }
            writeln!(out)?;
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
                r.spread.verdict.map_or("–", Verdict::as_str),
            )?;
        }
        // The terminal's other tables, each as its own Markdown table.
        for section in sections(reports).into_iter().skip(1) {
            writeln!(out, "\n{}\n", section.title)?;
            writeln!(out, "| {} |", section.header.join(" | "))?;
            let align: Vec<&str> =
                (0..section.header.len()).map(|i| if i == 0 { ":---" } else { "---:" }).collect();
            writeln!(out, "|{}|", align.join("|"))?;
            for row in section.rows {
                let cells: Vec<String> = row.cells.iter().map(|c| escape(&c.text)).collect();
                writeln!(out, "| {} |", cells.join(" | "))?;
            }
        }
        let lines = worker_lines(reports);
        if !lines.is_empty() {
            writeln!(out)?;
            for line in lines {
                writeln!(out, "- {}", escape(&line))?;
            }
        }
        Ok(())
    }

    /// The tables, then the explanation (a Markdown list under its own paragraph).
    fn file(&self, export: Export<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        self.reports(export, out)?;
        write!(out, "{}", super::explain(export.reports))
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
        )?;
        writeln!(
            out,
            "| the input generator, every core, warm memory | {:.2} GB/s |",
            p.generate_gbps
        )?;
        writeln!(out, "| the input generator, fresh memory | {:.2} GB/s |", p.generate_fresh_gbps)?;
        writeln!(out, "| filling warm memory, every core | {:.2} GB/s |", p.floor_fill_gbps)?;
        if p.sizes.is_empty() {
            return Ok(());
        }
        writeln!(out, "\n| Size (bytes) | Latency (us) | Bandwidth (MB/s) |")?;
        writeln!(out, "|---:|---:|---:|")?;
        for row in &p.sizes {
            writeln!(out, "| {} | {:.2} | {:.1} |", row.bytes, row.latency_us, row.bandwidth_mbps)?;
        }
        Ok(())
    }
}

/// `text` safe inside a Markdown table cell.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_markdown_row_per_report_under_a_header() {
        let mut out = Vec::new();
        MarkdownExporter
            .reports(Export::new(&[super::super::tests::sample()], None), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
        let summary: Vec<&str> =
            rows.iter().copied().take_while(|l| !l.contains("spawn")).collect();
        assert_eq!(summary.len(), 3, "{text}");
        assert!(rows[0].contains("Median [ms]"));
        assert!(rows[2].starts_with("| `split, raw, 4 splits, chunk 1` | 2.00 |"), "{text}");
        assert!(rows[2].contains("faster"), "{text}");
    }
}

#[cfg(test)]
mod every_table {
    use super::*;

    #[test]
    fn the_file_holds_every_table_the_terminal_shows_and_the_explanation_as_a_list() {
        let mut out = Vec::new();
        let reports = [super::super::tests::sample()];
        MarkdownExporter.file(Export::new(&reports, None), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for section in sections(&reports) {
            assert!(section.title.starts_with("Wall") || text.contains(&section.title), "{text}");
        }
        for column in ["| strategy | spawn | generate", "| tasks | msgs sent", "CPU user ms"] {
            assert!(text.contains(column), "{column}: {text}");
        }
        // Every list follows a blank line, so python-markdown and pandoc see a list.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate().skip(1) {
            if line.starts_with("- ") && !lines[i - 1].starts_with("- ") {
                assert_eq!(lines[i - 1], "", "line {i} starts a list without a blank line: {text}");
            }
        }
        assert!(text.contains("\n\n- split"), "{text}");
    }
}
