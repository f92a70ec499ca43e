//! `--trace` and `--timeline` from real runs: the trace parses, every worker process has spans,
//! spans on one track do not overlap, the workers' compute spans add up to the report's
//! compute_ms, and the timeline SVG is well formed with one row per process.

mod common;

use common::run;
use serde_json::Value;
use std::collections::HashMap;

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ipcmap-test-{}-{name}", std::process::id()))
}

#[test]
fn the_trace_has_every_process_and_adds_up_to_the_report() {
    let (trace, json) = (temp("trace.json"), temp("report.json"));
    let args = [
        "--mode",
        "split",
        "--workers",
        "2",
        "--n",
        "200000",
        "--splits",
        "16",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--format",
        "json",
        "--trace",
        trace.to_str().unwrap(),
    ];
    let r = run(&args);
    assert!(r.status.success(), "{}", r.stderr);
    let report: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    let text = std::fs::read_to_string(&trace).expect("trace written");
    let _ = std::fs::remove_file(&trace);
    let _ = std::fs::remove_file(&json);
    let doc: Value = serde_json::from_str(&text).expect("the trace parses as JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents");
    let spans: Vec<&Value> =
        events.iter().filter(|e| e["ph"] == "X" && e["cat"] == "phase").collect();

    // Every worker's pid has spans, of every worker phase.
    for w in report["worker_detail"].as_array().unwrap() {
        let pid = &w["pid"];
        let phases: Vec<&str> =
            spans.iter().filter(|s| &s["pid"] == pid).filter_map(|s| s["name"].as_str()).collect();
        for phase in ["spawn", "receive", "decode", "compute", "encode", "send"] {
            assert!(phases.contains(&phase), "worker pid {pid} lacks {phase}");
        }
        // Its compute spans add up to its compute_ms.
        let compute_ms: f64 = spans
            .iter()
            .filter(|s| &s["pid"] == pid && s["name"] == "compute")
            .map(|s| s["dur"].as_f64().unwrap() / 1e3)
            .sum();
        let reported = w["compute_ms"].as_f64().unwrap();
        assert!(
            (compute_ms - reported).abs() < 0.01 + reported * 1e-6,
            "pid {pid}: spans {compute_ms} ms, report {reported} ms"
        );
    }
    // Spans on one track never overlap.
    tracks_of(spans.iter().copied(), 0.002);
    // Every process is named.
    let named = events.iter().filter(|e| e["name"] == "process_name").count();
    assert!(named >= 3, "coordinator and two workers: {named}");
}

#[test]
fn the_timeline_is_an_svg_with_a_row_per_process() {
    let svg = temp("timeline.svg");
    let r = run(&[
        "--mode",
        "split",
        "--workers",
        "3",
        "--n",
        "100000",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--timeline",
        svg.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    let text = std::fs::read_to_string(&svg).expect("timeline written");
    let _ = std::fs::remove_file(&svg);
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let labels: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for row in ["coordinator", "worker 0", "worker 1", "worker 2"] {
        assert!(labels.contains(&row), "no row {row}: {labels:?}");
    }
    assert!(!labels.contains(&"worker 3"));
}

/// Results decoded on decoder threads are drawn on their own tracks, one decode per task.
#[test]
fn decoder_threads_have_their_own_tracks() {
    let trace = temp("decoders.json");
    let r = run(&[
        "--mode",
        "split",
        "--workers",
        "2",
        "--n",
        "400000",
        "--splits",
        "8",
        "--codec",
        "raw",
        "--decode-threads",
        "2",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    let text = std::fs::read_to_string(&trace).expect("trace written");
    let _ = std::fs::remove_file(&trace);
    let events: Value = serde_json::from_str(&text).unwrap();
    let events = events["traceEvents"].as_array().unwrap();
    let named = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter(|e| e["args"]["name"].as_str().unwrap_or("").starts_with("decoder"))
        .count();
    assert!((1..=2).contains(&named), "{named} decoder tracks");
    let decodes = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == "decode" && e["tid"].as_u64() >= Some(2000))
        .count();
    assert_eq!(decodes, 8);
}

/// What Perfetto needs to load a trace whole and show it well: no two slices of one track
/// overlapping (it drops them: `slice_drop_overlapping_complete_event`), every process named
/// and sorted, every track named, and a flow from each task's send to its receive and from
/// its result's send to its decode.
#[test]
fn every_strategys_trace_loads_whole_with_named_sorted_tracks_and_flows() {
    let trace = temp("all-trace.json");
    let args = ["--mode", "all", "-w", "2", "--n", "200000", "--splits", "16", "--repeat", "2"];
    let args =
        [&args[..], &["--warmup", "0", "--format", "json", "--trace", trace.to_str().unwrap()]]
            .concat();
    let r = run(&args);
    assert!(r.status.success(), "{}", r.stderr);
    let reports: Vec<Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let doc: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let _ = std::fs::remove_file(&trace);
    let events = doc["traceEvents"].as_array().unwrap();
    let key = |e: &Value| (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
    // Half a nanosecond of room for µs in f64; spans from two clocks overlapped by 7-31.
    let tracks = tracks_of(events.iter().filter(|e| e["ph"] == "X"), 0.0005);
    let meta = |name: &str| -> Vec<(u64, u64)> {
        events.iter().filter(|e| e["ph"] == "M" && e["name"] == name).map(key).collect()
    };
    let (named, sorted, threads) =
        (meta("process_name"), meta("process_sort_index"), meta("thread_name"));
    for track in tracks.keys() {
        assert!(named.iter().any(|p| p.0 == track.0), "process {} unnamed", track.0);
        assert!(sorted.iter().any(|p| p.0 == track.0), "process {} unsorted", track.0);
        assert!(threads.contains(track), "track {track:?} unnamed");
    }
    // One arrow per leg of every task of every recorded run, each start with its finish.
    let starts: Vec<&Value> = events.iter().filter(|e| e["ph"] == "s").collect();
    let finishes: Vec<&Value> = events.iter().filter(|e| e["ph"] == "f").collect();
    assert_eq!(starts.len(), finishes.len());
    // A reader takes events in time order, so a finish before its start is a finish with no
    // start (Perfetto's `flow_end_without_start`): every finish comes at or after its start,
    // inside a slice of its own track (`flow_no_enclosing_slice` otherwise).
    let ts = |e: &Value| e["ts"].as_f64().unwrap();
    let slices: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    let enclosed = |e: &Value| {
        slices.iter().any(|x| {
            key(x) == key(e) && ts(x) <= ts(e) && ts(e) <= ts(x) + x["dur"].as_f64().unwrap()
        })
    };
    for s in &starts {
        let f = finishes.iter().find(|f| f["id"] == s["id"] && f["bp"] == "e");
        let f = f.unwrap_or_else(|| panic!("no finish for {s}"));
        assert!(
            ts(f) >= ts(s),
            "{} finishes at {} before it starts at {}",
            s["name"],
            ts(f),
            ts(s)
        );
        assert!(enclosed(s) && enclosed(f), "{s} or {f} is in no slice of its track");
    }
    let split = reports.iter().find(|r| r["mode"] == "split").unwrap();
    let tasks = split["tasks"].as_u64().unwrap() as usize;
    let split_flows =
        |leg: &str| starts.iter().filter(|s| s["name"].as_str().unwrap().starts_with(leg)).count();
    // Every process strategy with frames has its arrows; split's alone are at least its
    // tasks, both ways, over its two measured runs.
    assert!(split_flows("task ") >= 2 * tasks && split_flows("result ") >= 2 * tasks);
}

/// The (pid, tid) tracks of complete events `slices`, asserting that no two slices of one
/// track overlap by more than `room` µs.
fn tracks_of<'a>(
    slices: impl IntoIterator<Item = &'a Value>,
    room: f64,
) -> HashMap<(u64, u64), Vec<(f64, f64)>> {
    let mut tracks: HashMap<(u64, u64), Vec<(f64, f64)>> = HashMap::new();
    for e in slices {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        let ts = e["ts"].as_f64().unwrap();
        tracks.entry(key).or_default().push((ts, ts + e["dur"].as_f64().unwrap()));
    }
    for (track, list) in tracks.iter_mut() {
        list.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in list.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1 - room,
                "track {track:?}: {:?} overlaps {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    tracks
}
