//! A worker that dies or misbehaves mid-run costs a retry, not the run.

mod common;

use common::{per_entry, run_json, run_with, spawns_here};
use std::time::Duration;

/// One run (`--cold`): every run of a faulty worker fails the same way, and these tests count
/// the failures of one.
fn faulty(args: &[&str], fault: &str) -> common::Run {
    let mut all = args.to_vec();
    all.extend(["--cold", "--format", "json"]);
    run_with(&all, &[("IPCMAP_FAULT", fault)], Duration::from_secs(60))
}

/// Whether strategy `mode` has worker processes and runs here; a note where not.
fn has_processes_here(mode: &str) -> bool {
    let over = ipcmap::settings::TransportKind::default();
    let has = ipcmap::strategy::Mode::available(over)
        .into_iter()
        .any(|m| m.uses_processes() && m.name() == mode);
    if !has {
        eprintln!("skipped: {mode} has no worker processes over the default transport here");
    }
    has
}

per_entry!(for_each_strategy, a_worker_that_exits_mid_run_has_its_tasks_rerun);
fn a_worker_that_exits_mid_run_has_its_tasks_rerun(mode: &str) {
    if has_processes_here(mode) {
        // owner gives each worker one range of whole 64K-value blocks (enough blocks that
        // worker 1 holds one), so its worker 1 dies on its first and only task.
        let (n, fault) = match mode {
            "owner" => ("300000", "exit-after=0@1"),
            _ => ("50000", "exit-after=1@1"),
        };
        let r = faulty(&["--mode", mode, "--workers", "3", "--n", n, "--chunksize", "2"], fault);
        assert!(r.status.success(), "{mode}: {}", r.stderr);
        let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_eq!(report["verified"], true, "{mode}");
        let failures = report["worker_failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{mode}: {failures:?}");
        assert_eq!(failures[0]["worker"], 1);
        assert!(failures[0]["reason"].as_str().unwrap().contains("code 70"), "{failures:?}");
    }
}

#[test]
fn a_worker_that_sends_garbage_is_written_off() {
    let r = faulty(&["--mode", "split", "--workers", "2", "--n", "10000"], "garbage-after=1@0");
    assert!(r.status.success(), "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["verified"], true);
    assert!(report["worker_failures"][0]["reason"].as_str().unwrap().contains("malformed"));
}

/// Results of 400 KB are decoded on the coordinator's decoder threads: a payload refused
/// there writes its worker off and the task is rerun, as on the gather thread.
#[test]
fn a_worker_whose_big_results_do_not_decode_is_written_off() {
    let r = faulty(
        &[
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
        ],
        "corrupt-after=1@1",
    );
    assert!(r.status.success(), "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["verified"], true);
    let failures = report["worker_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["worker"], 1);
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(reason.contains("malformed") && reason.contains("task"), "{reason}");
    assert!(failures[0]["tasks_rerun"].as_u64() >= Some(1), "{failures:?}");
    assert_eq!(report["decode_threads"], 2);
}

#[test]
fn abort_policy_stops_with_one_line() {
    let r = run_with(
        &["--mode", "split", "--workers", "2", "--n", "10000", "--on-worker-exit", "abort"],
        &[("IPCMAP_FAULT", "exit-after=1@0")],
        Duration::from_secs(60),
    );
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("worker 0"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn when_every_worker_dies_the_run_fails_cleanly() {
    let r = run_with(
        &["--mode", "split", "--workers", "2", "--n", "10000"],
        &[("IPCMAP_FAULT", "exit-after=0")],
        Duration::from_secs(60),
    );
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn healthy_runs_report_no_failures() {
    let reports = run_json(&["--mode", "split", "--workers", "2", "--n", "1000"]);
    assert_eq!(reports[0]["worker_failures"].as_array().unwrap().len(), 0);
}

#[test]
fn a_worker_that_panics_has_its_tasks_rerun() {
    let r = faulty(&["--mode", "split", "--workers", "2", "--n", "10000"], "panic-after=1@1");
    assert!(r.status.success(), "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["verified"], true);
    assert!(report["worker_failures"][0]["reason"].as_str().unwrap().contains("code 101"));
}

#[test]
fn a_worker_killed_by_a_signal_is_reported_with_the_signal() {
    // The fault makes worker 0 hang; the test kills it by the pid it finds, as a user would.
    let mut cmd = std::process::Command::new(common::coordinator_bin());
    cmd.args(["--mode", "split", "--workers", "2", "--n", "10000", "--cold", "--format", "json"])
        .env("IPCMAP_WORKER", common::worker_bin())
        .env("IPCMAP_FAULT", "hang-after=1@0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut hung = None;
    let found = common::eventually(Duration::from_secs(20), || {
        // Worker 0 is the one told to hang; find it by its command line.
        hung = common::children_of(pid).into_iter().map(|(p, _)| p).find(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains("--worker-id\x000\x00")
        });
        hung.is_some()
    });
    assert!(found);
    std::thread::sleep(Duration::from_millis(300));
    let _ = std::process::Command::new("kill").args(["-KILL", &hung.unwrap().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(report["verified"], true);
    let reasons: Vec<&str> = report["worker_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("SIGKILL")), "{reasons:?}");
}

/// split with `--codec raw` (results read into place where the transport can) over
/// `transport`, 2 workers, `n` values in `splits` parts.
fn split_raw_over<'a>(transport: &'a str, n: &'a str, splits: &'a str) -> Vec<&'a str> {
    let mut args = vec!["--mode", "split", "--codec", "raw", "--workers", "2"];
    args.extend(["--transport", transport, "--n", n, "--splits", splits]);
    args
}

// The same faults cost the same retry over every transport: a worker that exits, one whose
// result is cut short (refused where it would be read into place), one that stops itself
// (SIGSTOP, its link full) and one that hangs, each killed or written off and its tasks
// rerun, the result verified.
per_entry!(for_each_transport, every_fault_is_handled_alike_over);
fn every_fault_is_handled_alike_over(transport: &str) {
    let cases = [
        ("exit-after=1@1", "code 70"),
        ("corrupt-after=1@1", "malformed"),
        ("stop-after=1@1", "no result for task"),
        ("hang-after=1@1", "no result for task"),
    ];
    if spawns_here(transport) {
        for (fault, reason) in cases {
            let mut args = split_raw_over(transport, "400000", "8");
            // A healthy worker's 50,000-value task takes milliseconds, and under a load of 10
            // in the debug profile well under a second: 3 s writes off only the faulty one.
            args.extend(["--task-timeout", "3"]);
            let r = faulty(&args, fault);
            assert!(r.status.success(), "{transport} {fault}: {}", r.stderr);
            let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
            assert_eq!(report["verified"], true, "{transport} {fault}");
            let failures = report["worker_failures"].as_array().unwrap();
            assert_eq!(failures.len(), 1, "{transport} {fault}: {failures:?}");
            assert_eq!(failures[0]["worker"], 1, "{transport} {fault}");
            let why = failures[0]["reason"].as_str().unwrap();
            assert!(why.contains(reason), "{transport} {fault}: {why}");
            let pid = failures[0]["pid"].as_u64().unwrap() as u32;
            assert!(!common::is_running(pid), "{transport} {fault}: worker {pid} still runs");
        }
    }
}

// A worker whose results are well formed but wrong (one bit of one value) fails the run with
// one line naming the first wrong index: verification checks every value, over every
// transport, whether the values were decoded or read straight into place.
per_entry!(for_each_transport, a_wrong_value_fails_verification_with_its_index);
fn a_wrong_value_fails_verification_with_its_index(transport: &str) {
    if spawns_here(transport) {
        let r = faulty(&split_raw_over(transport, "40000", "4"), "flip-after=0@1");
        assert_eq!(r.status.code(), Some(1), "{transport}: {}", r.stderr);
        let line = r.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{transport}: {line}");
        assert!(
            line.contains("differs from the sequential result at index"),
            "{transport}: {line}"
        );
        assert!(r.stdout.trim().is_empty(), "{transport}: no report for a wrong result");
    }
}

/// Asserts run `r` (of `what`) succeeded verified with exactly one worker written off, whose
/// reason holds `reason`.
fn verified_with_one_written_off(r: &common::Run, what: &str, reason: &str) {
    assert!(r.status.success(), "{what}: {}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["verified"], true, "{what}");
    let failures = report["worker_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{what}: {failures:?}");
    let why = failures[0]["reason"].as_str().unwrap();
    assert!(why.contains(reason), "{what}: {why}");
}

// A worker whose result is longer than any task of the run can produce (64 MiB for a
// 10,000-value task) is written off before the coordinator allocates for it, and its tasks are
// rerun: a peer's announced length is bounded by the run, not taken at its word.
per_entry!(for_each_transport, an_oversized_result_writes_off_its_worker_over);
fn an_oversized_result_writes_off_its_worker_over(transport: &str) {
    if spawns_here(transport) {
        let r = faulty(&split_raw_over(transport, "40000", "4"), "oversize-after=0@1");
        verified_with_one_written_off(&r, transport, "more than any task of this run can produce");
    }
}

// A result whose block is a list nested 200,000 deep (what overflowed serde-pickle's
// recursive tree) is refused by every codec's decoder with no recursion: the worker is written
// off as malformed, its tasks rerun, and the run verified.
per_entry!(for_each_codec, a_deeply_nested_result_is_refused_by);
fn a_deeply_nested_result_is_refused_by(codec: &str) {
    let args = ["--mode", "split", "--workers", "2", "--n", "40000", "--splits", "4"];
    let r = faulty(&[&args[..], &["--codec", codec]].concat(), "deep-after=0@1");
    verified_with_one_written_off(&r, codec, "malformed");
}

// In place, a worker lost mid-task (it computed its task over its input, then died without a
// result) costs a retry over the input as it was, not a wrong result: every strategy that works
// in place with worker processes reruns the task verified.
per_entry!(for_each_strategy, a_worker_lost_mid_task_in_place_is_rerun_over_its_input);
fn a_worker_lost_mid_task_in_place_is_rerun_over_its_input(mode: &str) {
    let over = ipcmap::settings::TransportKind::default();
    let Some(m) = ipcmap::strategy::Mode::available(over).into_iter().find(|m| m.name() == mode)
    else {
        return eprintln!("skipped: {mode} does not run here");
    };
    if !m.uses_processes() || !m.strategy().info().in_place {
        return eprintln!("skipped: {mode} does not work in place with worker processes");
    }
    let args = ["--mode", mode, "-w", "2", "--n", "200003", "--work", "2", "--in-place"];
    let r = faulty(&args, "lost-after=1@1");
    verified_with_one_written_off(&r, mode, "code 70");
}

/// A run that cannot go on (every worker lost) fails with one line that names the
/// configuration it was running, once: in `--mode all` or a sweep, which one failed.
#[test]
fn a_failed_run_names_its_configuration_once() {
    let args = ["--mode", "sequential,split", "-w", "2", "--n", "10000", "--codec", "raw"];
    let r = faulty(&args, "exit-after=0");
    common::assert_one_line_error(&r, 1, "split, raw, 64 splits, chunk 1: worker ");
    assert_eq!(r.stderr.matches("split,").count(), 1, "{}", r.stderr);
}
