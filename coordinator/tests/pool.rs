//! `--pool persistent`: workers started once serve every later run of their kind, and faults,
//! deadlines, retries and signals behave as they do with a pool per run.

mod common;

use common::{children_of, eventually, per_entry, run_with, runs_here, spawns_here};
use std::time::Duration;

/// `args` with `--pool persistent`, a warm-up and three measured runs, as JSON; each report.
fn persistent(args: &[&str], env: &[(&str, &str)]) -> (common::Run, Vec<serde_json::Value>) {
    let mut all = args.to_vec();
    all.extend(["--pool", "persistent", "--warmup", "1", "--repeat", "3", "--format", "json"]);
    let r = run_with(&all, env, Duration::from_secs(90));
    let reports = match r.status.success() {
        true => r.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect(),
        false => Vec::new(),
    };
    (r, reports)
}

// Every strategy with processes is served by workers started once: no spawn in any measured
// run, the one-time start reported on its own, every run verified; a strategy whose workers
// cannot be kept (pipe's pipes are new each run) says so; nothing is left running after.
per_entry!(for_each_strategy, kept_workers_serve_every_run_verified_under);
fn kept_workers_serve_every_run_verified_under(mode: &str) {
    if !runs_here(mode) {
        return;
    }
    let args = ["--mode", mode, "--workers", "2", "--n", "100000", "--splits", "8"];
    let (r, reports) = persistent(&args, &[]);
    assert!(r.status.success(), "{mode}: {}", r.stderr);
    let report = &reports[0];
    assert_eq!(report["verified"], true, "{mode}");
    match (report["processes"].as_bool(), mode) {
        (Some(false), _) => assert!(report["pool"].is_null(), "{mode}: {report}"),
        (_, "pipe") => {
            assert_eq!(report["pool"], "per-run", "{mode}");
            assert!(r.stderr.contains("despite --pool persistent"), "{}", r.stderr);
        }
        _ => {
            assert_eq!(report["pool"], "persistent", "{mode}: {report}");
            assert_eq!(report["phases_ms"]["spawn"], 0.0, "{mode}");
            assert!(report["pool_start_ms"].as_f64().unwrap() > 0.0, "{mode}");
            assert_eq!(report["buffers_reused"], true, "{mode}: persistent keeps its buffers");
            let exits: Vec<&str> = report["worker_detail"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["exit"].as_str().unwrap())
                .collect();
            assert!(exits.iter().all(|e| e.contains("kept")), "{mode}: {exits:?}");
        }
    }
    assert!(children_of(r.pid).is_empty(), "{mode}: workers left: {:?}", children_of(r.pid));
    for w in report["worker_detail"].as_array().unwrap() {
        let pid = w["pid"].as_u64().unwrap() as u32;
        assert!(!common::is_running(pid) || pid == r.pid, "{mode}: worker {pid} still runs");
    }
}

// Strategies of one kind share the kept workers: split and cma (no descriptors of their own)
// are served by the same pool, so by the same start.
#[test]
fn strategies_of_one_kind_share_their_kept_workers() {
    if !runs_here("cma") {
        return;
    }
    let args = ["--mode", "split,cma", "--workers", "2", "--n", "100000", "--splits", "8"];
    let (r, reports) = persistent(&args, &[]);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(reports[0]["pool_start_ms"], reports[1]["pool_start_ms"], "{reports:?}");
    assert!(r.stderr.is_empty() || !r.stderr.contains("error"), "{}", r.stderr);
}

// A worker that fails in a later run of a kept pool (its fault counts the worker's life, so
// it exits after the tasks of more than one run) costs a retry, as it does per run: the run is
// verified, the failure named, the pool replaced, and no worker is left behind. Over every
// transport that spawns its workers: the exit, a result cut short, and a hang (the deadline).
per_entry!(for_each_transport, a_kept_worker_that_fails_later_costs_a_retry_over);
fn a_kept_worker_that_fails_later_costs_a_retry_over(transport: &str) {
    if !spawns_here(transport) {
        return;
    }
    let cases = [
        ("exit-after=6@1", "code 70"),
        ("corrupt-after=6@1", "malformed"),
        ("hang-after=6@1", "no result for task"),
    ];
    for (fault, reason) in cases {
        let mut args = vec!["--mode", "split", "--codec", "raw", "--workers", "2"];
        args.extend(["--transport", transport, "--n", "400000", "--splits", "8"]);
        args.extend(["--task-timeout", "3"]);
        let (r, reports) = persistent(&args, &[("IPCMAP_FAULT", fault)]);
        assert!(r.status.success(), "{transport} {fault}: {}", r.stderr);
        let report = &reports[0];
        assert_eq!(report["verified"], true, "{transport} {fault}");
        let failures = report["worker_failures"].as_array().unwrap();
        assert!(!failures.is_empty(), "{transport} {fault}: no failure in {report}");
        for f in failures {
            assert_eq!(f["worker"], 1, "{transport} {fault}: {failures:?}");
            let why = f["reason"].as_str().unwrap();
            assert!(why.contains(reason), "{transport} {fault}: {why}");
            let pid = f["pid"].as_u64().unwrap() as u32;
            assert!(!common::is_running(pid), "{transport} {fault}: worker {pid} still runs");
        }
        assert!(children_of(r.pid).is_empty(), "{transport} {fault}: workers left");
    }
}

// A kept worker killed from outside, between runs or during one, is replaced: the invocation
// goes on and every run is verified.
#[test]
fn a_kept_worker_killed_from_outside_is_replaced() {
    let args = ["--mode", "split", "--workers", "2", "--n", "2000000", "--pool", "persistent"];
    let args = [&args[..], &["--warmup", "1", "--repeat", "8", "--format", "json"]].concat();
    let mut cmd = std::process::Command::new(common::coordinator_bin());
    cmd.args(&args).env("IPCMAP_WORKER", common::worker_bin()).env_remove("IPCMAP_FAULT");
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start coordinator");
    let pid = child.id();
    let (stdout, stderr) = common::drain(&mut child);
    let mut first = Vec::new();
    let up = eventually(Duration::from_secs(30), || {
        first = children_of(pid).into_iter().map(|(p, _)| p).collect();
        first.len() == 2
    });
    if up {
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::process::Command::new("kill").args(["-KILL", &first[1].to_string()]).status();
    }
    let done = eventually(Duration::from_secs(120), || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    assert!(up, "workers never started");
    assert!(done, "the coordinator did not end: {err}");
    assert!(status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON report");
    assert_eq!(report["verified"], true, "{report}");
    assert!(!common::is_running(first[1]), "the killed worker is reaped");
}

// A stop asked for while kept workers wait between runs, or serve one, ends the invocation
// with one line and leaves no worker behind.
#[test]
fn a_signal_ends_the_invocation_and_its_kept_workers() {
    let args = ["--mode", "split,shm", "--workers", "2", "--n", "1000000", "--pool", "persistent"];
    let args = [&args[..], &["--repeat", "1000", "--format", "json"]].concat();
    let workers = std::sync::Mutex::new(Vec::new());
    let r = common::signalled(&args, &[], "-TERM", |pid| {
        let now: Vec<u32> = children_of(pid).into_iter().map(|(p, _)| p).collect();
        let ready = now.len() >= 4;
        *workers.lock().unwrap() = now;
        ready
    });
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("interrupted"), "{}", r.stderr);
    assert!(!r.status.success());
    for &w in workers.lock().unwrap().iter() {
        assert!(
            eventually(Duration::from_secs(5), || !common::is_running(w)),
            "worker {w} outlived its coordinator"
        );
    }
}
