//! `coordinator probe`: the raw channel floors, measured with the worker in echo mode.

mod common;

use common::{per_entry, run, spawns_here};

#[test]
fn probe_reports_every_floor_as_json() {
    let r = run(&["probe", "--workers", "2", "--bytes", "100000", "--format", "json"]);
    assert!(r.status.success(), "{}", r.stderr);
    let p: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
    assert_eq!(p["workers"], 2);
    assert_eq!(p["echo_message_bytes"], 100000);
    for field in [
        "spawn_hello_ms",
        "echo_gbps",
        "echo_wall_gbps",
        "echo8_us_per_message",
        "echo8_rtt_p50_us",
        "floor_socketpair_gbps",
        "floor_pipe_gbps",
        "floor_memcpy_gbps",
        "floor_echo8_us_per_message",
        "echo_of_socketpair_floor",
        "echo8_of_socketpair_floor",
        "generate_gbps",
        "generate_fresh_gbps",
        "floor_fill_gbps",
    ] {
        assert!(p[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {p}");
    }
    let (p50, p99) = (&p["echo8_rtt_p50_us"], &p["echo8_rtt_p99_us"]);
    assert!(p50.as_f64() <= p99.as_f64(), "{p50} {p99}");
    // The per-size table in OSU's shape: every default size, each with both figures.
    let sizes = p["sizes"].as_array().expect("sizes");
    let bytes: Vec<u64> = sizes.iter().filter_map(|s| s["bytes"].as_u64()).collect();
    assert_eq!(bytes, [8, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]);
    for s in sizes {
        for field in ["latency_us", "latency_p50_us", "bandwidth_mbps"] {
            assert!(s[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {s}");
        }
        assert!(s["latency_messages"].as_u64() >= Some(5), "{s}");
        assert!(s["bandwidth_messages"].as_u64() >= s["window"].as_u64(), "{s}");
    }
    assert!(p["seconds"].as_f64().is_some_and(|v| v > 0.0));
}

#[test]
fn the_probe_table_has_a_row_per_size_asked_for_and_an_osu_line() {
    let r = run(&["probe", "--workers", "1", "--bytes", "1000", "--sizes", "8,65536"]);
    assert!(r.status.success(), "{}", r.stderr);
    let rows: Vec<&str> =
        r.stdout.lines().filter(|l| l.starts_with('│') && !l.contains("size")).collect();
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    assert!(r.stdout.contains("8 B latency"), "{}", r.stdout);
    assert!(r.stdout.contains("64 KiB bandwidth"), "{}", r.stdout);
}

// Every transport that spawns its workers is probed, and names itself.
per_entry!(for_each_transport, the_probe_runs_over);
fn the_probe_runs_over(transport: &str) {
    if spawns_here(transport) {
        let args = ["--bytes", "100000", "--sizes", "8,65536", "--format", "json"];
        let r = run(&[&["probe", "--transport", transport][..], &args].concat());
        assert!(r.status.success(), "{transport}: {}", r.stderr);
        let p: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
        assert_eq!(p["transport"], transport);
        assert_eq!(p["sizes"].as_array().map(Vec::len), Some(2), "{transport}: {p}");
    }
}

#[test]
fn probe_refuses_bad_arguments() {
    for args in [
        &["probe", "--workers", "0"][..],
        &["probe", "--bytes", "0"],
        &["probe", "--worker-bin", "/nonexistent"],
        &["probe", "--sizes", "8,0"],
        &["probe", "--sizes", "99999999999"],
    ] {
        let r = run(args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1);
    }
}

/// The codec probe's JSON, once for every codec's test.
fn codec_probe() -> &'static serde_json::Value {
    static PROBE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| {
        let r = run(&["probe", "--codecs", "--values", "10,200", "--format", "json"]);
        assert!(r.status.success(), "{}", r.stderr);
        serde_json::from_str(r.stdout.trim()).expect("one JSON object")
    })
}

per_entry!(for_each_codec, the_codec_probe_has_a_row_for);
fn the_codec_probe_has_a_row_for(codec: &str) {
    let p = codec_probe();
    let rows = p["rows"].as_array().unwrap();
    {
        for values in [10, 200] {
            assert!(
                rows.iter()
                    .any(|r| r["codec"] == codec && r["values"] == values && r["shape"] == "block"),
                "{codec} at {values}: {p}"
            );
        }
        assert!(rows.iter().any(|r| r["codec"] == codec && r["shape"] == "items"));
    }
}

#[test]
fn the_codec_probe_reports_memcpy_beside_the_codecs_and_refuses_bad_sizes() {
    let p = codec_probe();
    assert_eq!(p["schema"], "ipcmap.codecs/1");
    assert_eq!(p["memcpy"].as_array().unwrap().len(), 2);
    let r = run(&["probe", "--codecs", "--values", "0"]);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    let r = run(&["probe", "--values", "10"]);
    assert_eq!(r.status.code(), Some(2), "--values needs --codecs: {}", r.stderr);
}
