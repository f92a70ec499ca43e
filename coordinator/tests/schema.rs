//! The published JSON Schema of a report (`crates/ipcmap/schema/report.schema.json`, written
//! by `scripts/schema.py`) against real output: every key a report has is in the schema, with
//! its type, every key the schema requires is in the report, nested objects and arrays alike.
//! A key added to the report without regenerating the schema fails here.

mod common;

use common::{run_json, run_with};
use serde_json::Value;
use std::time::Duration;

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/ipcmap/schema/report.schema.json");
    serde_json::from_slice(&std::fs::read(path).expect("the schema ships")).expect("it parses")
}

/// Whether `value` is of the schema's `type` (a name or a list of names).
fn is_of(value: &Value, types: &Value) -> bool {
    let one = |t: &str| match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    };
    match types {
        Value::String(t) => one(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(one),
        _ => false,
    }
}

/// Every way `value` (at `path`) departs from `schema`.
fn check(value: &Value, schema: &Value, path: &str, wrong: &mut Vec<String>) {
    if let Some(types) = schema.get("type") {
        if !is_of(value, types) {
            wrong.push(format!("{path}: {value} is not {types}"));
            return;
        }
    }
    if let (Some(object), Some(props)) = (value.as_object(), schema.get("properties")) {
        for (key, v) in object {
            match props.get(key) {
                Some(p) => check(v, p, &format!("{path}.{key}"), wrong),
                None => wrong.push(format!("{path}.{key}: not in the schema")),
            }
        }
        for key in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(key) {
                wrong.push(format!("{path}.{key}: required, missing"));
            }
        }
    }
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(item, item_schema, &format!("{path}[{i}]"), wrong);
        }
    }
}

#[test]
fn every_report_matches_the_published_schema() {
    let schema = schema();
    assert_eq!(schema["additionalProperties"], false);
    let mut reports = run_json(&["--mode", "all", "-w", "2", "--n", "20000", "--repeat", "2"]);
    // A worker that dies mid-run, so a failure record is checked too.
    let failed = run_with(
        &["--mode", "split", "-w", "2", "--n", "20000", "--repeat", "1", "--format", "json"],
        &[("IPCMAP_FAULT", "exit-after=1@0")],
        Duration::from_secs(60),
    );
    assert!(failed.status.success(), "{}", failed.stderr);
    reports.extend(failed.stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    assert!(reports.iter().any(|r| !r["worker_failures"].as_array().unwrap().is_empty()));
    let mut wrong = Vec::new();
    for r in &reports {
        check(r, &schema, r["mode"].as_str().unwrap_or("?"), &mut wrong);
    }
    assert!(wrong.is_empty(), "regenerate with scripts/schema.py:\n{}", wrong.join("\n"));
    // Every key is described.
    let props = schema["properties"].as_object().unwrap();
    let bare: Vec<&String> =
        props.keys().filter(|k| props[*k].get("description").is_none()).collect();
    assert!(bare.is_empty(), "keys without a description: {bare:?}");
}
