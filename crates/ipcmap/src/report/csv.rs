//! CSV output: a header row, then one row per report. Nested fields are flattened with dots
//! (`phases_ms.spawn`); lists are written as JSON text in one cell.

use super::{CodecProbe, Export, Exporter, ProbeReport, Report};
use crate::named::named;
use serde_json::{Map, Value};
use std::io::Write;

/// `--format csv`.
pub struct CsvExporter;

named!(
    CsvExporter,
    "csv",
    "a header and one row per report, nested fields flattened with dots, for programs"
);

impl Exporter for CsvExporter {
    fn reports(&self, export: Export<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        write_csv(export.reports, out)
    }

    /// One row per codec and size, with memcpy's GB/s at that size beside it.
    fn codecs(&self, p: &CodecProbe, out: &mut dyn Write) -> std::io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        for r in &p.rows {
            let mut row = match serde_json::to_value(r)? {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            let memcpy = p.memcpy_at(r.values);
            row.insert("memcpy_gbps".into(), memcpy.map_or(Value::Null, Value::from));
            row.insert("schema".into(), p.schema.into());
            if std::ptr::eq(r, &p.rows[0]) {
                writer.write_record(row.keys())?;
            }
            writer.write_record(row.values().map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }))?;
        }
        writer.flush()
    }

    fn probe(&self, probe: &ProbeReport, out: &mut dyn Write) -> std::io::Result<()> {
        write_rows(std::slice::from_ref(probe), out)
    }
}

/// Writes a header and one row per report.
pub fn write_csv(reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    write_rows(reports, out)
}

/// Writes a header and one row per item, its nested fields flattened with dots.
fn write_rows<T: serde::Serialize>(items: &[T], out: &mut dyn Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header_written = false;
    for report in items {
        let mut row = Vec::new();
        flatten("", &serde_json::to_value(report)?, &mut row);
        if !header_written {
            writer.write_record(row.iter().map(|(k, _)| k))?;
            header_written = true;
        }
        writer.write_record(row.iter().map(|(_, v)| v))?;
    }
    writer.flush()
}

fn flatten(prefix: &str, value: &Value, row: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => flatten_object(prefix, map, row),
        Value::Null => row.push((prefix.to_string(), String::new())),
        Value::String(s) => row.push((prefix.to_string(), s.clone())),
        other => row.push((prefix.to_string(), other.to_string())),
    }
}

fn flatten_object(prefix: &str, map: &Map<String, Value>, row: &mut Vec<(String, String)>) {
    for (key, value) in map {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        flatten(&name, value, row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_then_one_row_per_report_with_equal_widths() {
        let mut out = Vec::new();
        let sample = super::super::tests::sample();
        write_csv(&[sample.clone(), sample], &mut out).unwrap();
        let mut reader = csv::Reader::from_reader(&out[..]);
        let header = reader.headers().unwrap().clone();
        assert!(header.iter().any(|h| h == "phases_ms.compute_max"));
        assert!(header.iter().any(|h| h == "wall_ms"));
        let rows: Vec<_> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.len() == header.len()));
    }
}
