//! `coordinator probe`: the raw channel floors, measured with the worker in echo mode.

mod common;

use common::run;

#[test]
fn probe_reports_every_floor_as_json() {
    let r = run(&[
        "probe",
        "--workers",
        "2",
        "--bytes",
        "100000",
        "--format",
        "json",
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    let p: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
    assert_eq!(p["workers"], 2);
    assert_eq!(p["echo_message_bytes"], 100000);
    for field in [
        "spawn_hello_ms",
        "echo_gbps",
        "echo_wall_gbps",
        "echo8_us_per_message",
    ] {
        assert!(p[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {p}");
    }
}

#[test]
fn probe_refuses_bad_arguments() {
    for args in [
        &["probe", "--workers", "0"][..],
        &["probe", "--bytes", "0"],
        &["probe", "--worker-bin", "/nonexistent"],
    ] {
        let r = run(args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1);
    }
}
