//! `--trace` costs memory in proportion to the spans it keeps, not to the JSON it writes: the
//! trace is streamed to its file. (Its own test binary: it reads the peak memory of this
//! process's children, which other tests' runs would share.)

mod common;

use std::time::Duration;

#[test]
fn a_big_trace_is_written_without_holding_its_events() {
    let dir = common::scratch("trace-memory");
    let trace = dir.join("trace.json");
    let args = ["--mode", "item", "--chunksize", "1", "--n", "50000", "-w", "2"];
    let trace_arg = trace.to_str().unwrap();
    let args =
        [&args[..], &["--repeat", "2", "--warmup", "0", "--format", "json", "--trace", trace_arg]]
            .concat();
    let r = common::run_with(&args, &[], Duration::from_secs(120));
    assert!(r.status.success(), "{}", r.stderr);
    // A worker's stats carry a stamp per task (25,000 here): within the run's frame bound.
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["worker_failures"], serde_json::json!([]), "{report}");
    let events = std::fs::metadata(&trace).map(|m| m.len()).unwrap_or(0);
    assert!(events > 20_000_000, "a trace of some size: {events} bytes");
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let peak_mb = usage.max_rss() as f64 / 1024.0;
    // Holding the events as JSON values took about 20 bytes of memory a byte of trace (4.3 GB
    // for 153 MB); streamed, the peak is the spans' and the run's own.
    eprintln!("peak {peak_mb:.0} MB for a {} MB trace", events / 1_000_000);
    assert!(peak_mb < 400.0, "peak {peak_mb:.0} MB for a {} MB trace", events / 1_000_000);
    let _ = std::fs::remove_dir_all(&dir);
}
