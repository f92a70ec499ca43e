//! JSON output: one object per report, one per line (JSON Lines).

use super::{Export, Exporter, ProbeReport, Report};
use crate::named::named;
use std::io::Write;

/// `--format json`.
pub struct JsonExporter;

named!(JsonExporter, "json", "one JSON object per report, one per line, for programs");

impl Exporter for JsonExporter {
    fn reports(&self, export: Export<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        write_json(export.reports, out)
    }

    /// One JSON document: an array of the reports (`json.load` reads it whole).
    fn file(&self, export: Export<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, export.reports)?;
        writeln!(out)
    }

    fn probe(&self, probe: &ProbeReport, out: &mut dyn Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, probe)?;
        writeln!(out)
    }
}

/// Writes each report as one JSON object on its own line.
pub fn write_json(reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    for report in reports {
        serde_json::to_writer(&mut *out, report)?;
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parseable_object_per_line() {
        let mut out = Vec::new();
        write_json(&[super::super::tests::sample(), super::super::tests::sample()], &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["mode"], "split");
            assert_eq!(v["phases_ms"]["spawn"], 0.0);
        }
    }
}
