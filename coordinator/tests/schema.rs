//! The published JSON Schemas (`crates/ipcmap/schema/*.schema.json`, generated from the Rust
//! types by `coordinator schema KIND`) against real output, checked by an independent
//! validator (the `jsonschema` crate): the default plan (intervals and verdicts filled in),
//! `--cold`, a failed worker, a sweep, the channel probe and the codec probe. A report type
//! that changes without its schema, or a schema that rejects what a default run writes, fails
//! here. (An MPI report is checked in `tests/mpi.rs`.)

mod common;

use common::{run, run_json, run_with};
use serde_json::Value;
use std::time::Duration;

/// The published schema of `kind`.
fn published(kind: &str) -> Value {
    let path = format!("{}/../crates/ipcmap/schema/{kind}.schema.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).expect("the schema ships")).expect("it parses")
}

/// Every way each of `docs` departs from `kind`'s published schema, one line each.
fn errors(kind: &str, docs: &[Value]) -> Vec<String> {
    let validator = jsonschema::validator_for(&published(kind)).expect("a valid schema");
    let mut wrong = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let name = doc["mode"].as_str().map_or_else(|| format!("{kind} {i}"), str::to_string);
        wrong.extend(
            validator.iter_errors(doc).map(|e| format!("{name}: {e} at {}", e.instance_path)),
        );
    }
    wrong
}

fn assert_valid(kind: &str, docs: &[Value]) {
    assert!(!docs.is_empty(), "{kind}: nothing to check");
    let wrong = errors(kind, docs);
    assert!(wrong.is_empty(), "{} errors:\n{}", wrong.len(), wrong.join("\n"));
}

/// The schemas are strict: a key the types do not have is an error.
#[test]
fn the_schemas_refuse_unknown_keys() {
    let mut r = run_json(&["--mode", "sequential", "--n", "1000", "--repeat", "1"]);
    assert_valid("report", &r);
    r[0]["no_such_key"] = Value::Bool(true);
    assert_eq!(errors("report", &r).len(), 1, "an unknown key is refused");
    r[0].as_object_mut().unwrap().remove("no_such_key");
    r[0].as_object_mut().unwrap().remove("wall_ms");
    assert_eq!(errors("report", &r).len(), 1, "a missing key is refused");
}

/// The default plan (automatic repeats, so bootstrap intervals and verdicts are filled in)
/// over every strategy, and a worker that dies mid-run.
#[test]
fn default_plan_reports_of_every_strategy_match_the_schema() {
    let reports = run_json(&["--mode", "all", "-w", "2", "--n", "20000"]);
    assert!(reports.iter().any(|r| r["speedup_low"].is_number()), "an interval was filled in");
    assert_valid("report", &reports);
    let failed = run_with(
        &["--mode", "split", "-w", "2", "--n", "20000", "--repeat", "1", "--format", "json"],
        &[("IPCMAP_FAULT", "exit-after=1@0")],
        Duration::from_secs(120),
    );
    assert!(failed.status.success(), "{}", failed.stderr);
    let failed: Vec<Value> =
        failed.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(failed.iter().any(|r| !r["worker_failures"].as_array().unwrap().is_empty()));
    assert_valid("report", &failed);
}

#[test]
fn cold_and_sweep_reports_match_the_schema() {
    let cold = run_json(&["--mode", "split,threads", "-w", "2", "--n", "20000", "--cold"]);
    assert_valid("report", &cold);
    let sweep =
        run_json(&["sweep", "-w", "2", "--n", "20000", "--splits", "2,4", "--chunksize", "1,2"]);
    assert!(sweep.len() >= 4, "{sweep:?}");
    assert_valid("report", &sweep);
}

#[test]
fn probe_and_codec_probe_match_their_schemas() {
    let probe = run(&["probe", "--workers", "2", "--bytes", "100000", "--format", "json"]);
    assert!(probe.status.success(), "{}", probe.stderr);
    assert_valid("probe", &[serde_json::from_str(probe.stdout.trim()).expect("one object")]);
    let codecs = run(&["probe", "--codecs", "--values", "10,200", "--format", "json"]);
    assert!(codecs.status.success(), "{}", codecs.stderr);
    assert_valid("codecs", &[serde_json::from_str(codecs.stdout.trim()).expect("one object")]);
    let functions = run(&["probe", "--fn", "exp;x*2", "--fn", "where(x > 0.5, x, -x)"])
        .stdout
        .contains("memory-bound");
    assert!(functions, "the table says what memory-bound means");
    let functions =
        run(&["probe", "--fn", "exp;exp(sin(x))/2", "--values", "5000", "--format", "json"]);
    assert!(functions.status.success(), "{}", functions.stderr);
    let parsed: serde_json::Value = serde_json::from_str(functions.stdout.trim()).expect("one");
    assert_eq!(parsed["rows"][1]["function"], "exp(sin(x))/2");
    assert_valid("functions", &[parsed]);
}

/// What `coordinator schema` prints is the published file, for each kind.
#[test]
fn coordinator_schema_prints_the_published_files() {
    for kind in ipcmap::report::schema::KINDS {
        let out = run(&["schema", kind]);
        assert!(out.status.success(), "{}", out.stderr);
        let printed: Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(printed, published(kind), "{kind}");
    }
    assert_eq!(run(&["schema", "nothing"]).status.code(), Some(2));
}
