//! Every output format (`--format`, the exporter registry) writes every kind of document: a
//! run's reports, a sweep's, the channel probe and the codec probe. Formats that programs read
//! back (JSON, CSV) are read back here. One `#[test]` per format and document
//! (`writes_a_run::html`), generated from the registry.

mod common;

use common::{per_entry, run, run_with};
use serde_json::Value;
use std::time::Duration;

/// `args` with `--format format`: its stdout, after asserting success and some output.
fn written(format: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--format", format]);
    let r = run_with(&all, &[], Duration::from_secs(120));
    assert!(r.status.success(), "{format} {args:?}: {}", r.stderr);
    assert!(!r.stdout.trim().is_empty(), "{format} {args:?}: nothing written");
    assert!(!r.stderr.contains("panicked"), "{format}: {}", r.stderr);
    r.stdout
}

/// What the format's output says, read back where it claims to round-trip: the `mode` of each
/// report (JSON: one object a line; CSV: a header, then one row a report).
fn read_back(format: &str, out: &str, rows: usize) {
    match format {
        "json" => {
            let docs: Vec<Value> = out
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON object a line"))
                .collect();
            assert_eq!(docs.len(), rows, "{out}");
        }
        "csv" => {
            let mut reader = csv::Reader::from_reader(out.as_bytes());
            let header = reader.headers().expect("a header").clone();
            let records: Vec<csv::StringRecord> =
                reader.records().map(|r| r.expect("a CSV row")).collect();
            assert_eq!(records.len(), rows, "{out}");
            for r in &records {
                assert_eq!(r.len(), header.len(), "every row has every column");
            }
        }
        _ => {}
    }
}

per_entry!(for_each_exporter, writes_a_run);
fn writes_a_run(format: &str) {
    let out = written(format, &["--mode", "sequential,split", "-w", "2", "--n", "2000", "-r", "2"]);
    read_back(format, &out, 2);
}

per_entry!(for_each_exporter, writes_a_sweep);
fn writes_a_sweep(format: &str) {
    let args =
        ["sweep", "-w", "2", "--n", "2000", "--splits", "2,4", "--chunksize", "1", "-r", "1"];
    read_back(format, &written(format, &args), 2);
}

per_entry!(for_each_exporter, writes_the_probe);
fn writes_the_probe(format: &str) {
    let out = written(format, &["probe", "--workers", "2", "--bytes", "10000"]);
    read_back(format, &out, 1);
}

per_entry!(for_each_exporter, writes_the_codec_probe);
fn writes_the_codec_probe(format: &str) {
    let out = written(format, &["probe", "--codecs", "--values", "10"]);
    if format == "json" {
        let p: Value = serde_json::from_str(out.trim()).expect("one JSON object");
        assert!(!p["rows"].as_array().unwrap().is_empty());
    }
}

/// A format that cannot be read is refused before anything runs.
#[test]
fn an_unknown_format_is_refused() {
    let r = run(&["--format", "nothing", "--n", "10"]);
    common::assert_one_line_error(&r, 2, "nothing");
}
