//! The coordinator dies or is interrupted: no worker outlives it, no partial result is printed.

mod common;

use common::{children_of, coordinator_bin, eventually, is_running, per_entry, worker_bin};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts a run long enough to be interrupted (item mode, one message per float), and waits
/// until both of its workers are up. Returns the coordinator and the worker pids.
fn start_long_run() -> (Child, Vec<u32>) {
    start_long_run_over("local")
}

/// [`start_long_run`] over `transport`.
fn start_long_run_over(transport: &str) -> (Child, Vec<u32>) {
    start_long_run_with(transport, 2)
}

/// [`start_long_run`] over `transport` with `workers` workers.
fn start_long_run_with(transport: &str, workers: usize) -> (Child, Vec<u32>) {
    let count = workers.to_string();
    let mut child = Command::new(coordinator_bin())
        .args([
            "--transport",
            transport,
            "--mode",
            "item",
            "--chunksize",
            "1",
            "--n",
            "5000000",
            "--workers",
            &count,
            "--format",
            "json",
        ])
        .env("IPCMAP_WORKER", worker_bin())
        .env_remove("IPCMAP_FAULT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coordinator");
    let pid = child.id();
    let mut found = Vec::new();
    let up = eventually(Duration::from_secs(20), || {
        found = children_of(pid).into_iter().map(|(p, _)| p).collect();
        found.len() == workers
    });
    if !up {
        let _ = child.kill();
        panic!("workers did not start: {:?}", children_of(pid));
    }
    std::thread::sleep(Duration::from_millis(200)); // let it get into the scatter/gather loop
    found.sort_unstable();
    (child, found)
}

fn signal(pid: u32, sig: &str) {
    let status =
        Command::new("kill").args(["-s", sig, &pid.to_string()]).status().expect("run kill");
    assert!(status.success());
}

fn assert_workers_gone(workers: &[u32]) {
    let gone = eventually(Duration::from_secs(2), || workers.iter().all(|&p| !is_running(p)));
    assert!(gone, "workers still running: {workers:?}");
}

per_entry!(for_each_transport, sigkill_of_the_coordinator_takes_its_workers_with_it);
fn sigkill_of_the_coordinator_takes_its_workers_with_it(transport: &str) {
    if common::spawns_here(transport) {
        let (mut child, workers) = start_long_run_over(transport);
        signal(child.id(), "KILL");
        let _ = child.wait();
        assert_workers_gone(&workers);
    }
}

#[test]
fn sigint_stops_workers_and_exits_130_without_a_result() {
    let (child, workers) = start_long_run();
    signal(child.id(), "INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "no partial result: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1);
    assert_workers_gone(&workers);
}

per_entry!(for_each_transport, sigterm_stops_workers_and_exits_143);
fn sigterm_stops_workers_and_exits_143(transport: &str) {
    if common::spawns_here(transport) {
        let (child, workers) = start_long_run_over(transport);
        signal(child.id(), "TERM");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(143),
            "{transport}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{transport}");
        assert_workers_gone(&workers);
    }
}

// Each worker holds its own descriptors and no other's: the first started holds no more than
// the last (shmq's first worker used to inherit every later worker's rings, and could scribble
// on them). Checked over every transport, from /proc.
per_entry!(for_each_transport, each_worker_holds_only_its_own_descriptors_over);
fn each_worker_holds_only_its_own_descriptors_over(transport: &str) {
    if !common::spawns_here(transport) {
        return;
    }
    let (mut child, workers) = start_long_run_with(transport, 3);
    let held = |pid: u32| -> Vec<String> {
        let mut links: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .map(|l| l.to_string_lossy().into_owned())
                    .filter(|l| !l.starts_with("socket:") && !l.starts_with("pipe:"))
                    .collect()
            })
            .unwrap_or_default();
        links.sort();
        links
    };
    let counts: Vec<usize> = workers
        .iter()
        .map(|&w| std::fs::read_dir(format!("/proc/{w}/fd")).map_or(0, |d| d.count()))
        .collect();
    let files: Vec<Vec<String>> = workers.iter().map(|&w| held(w)).collect();
    signal(child.id(), "KILL");
    let _ = child.wait();
    assert!(counts.iter().all(|&c| c > 0), "{transport}: {counts:?}");
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "{transport}: descriptors per worker differ: {counts:?}; {files:?}"
    );
}

// Many workers: the first ones started wait for their coordinator as long as it holds their
// hello connection, however long starting the rest takes (tcp's used to give up after a fixed
// 10 s, and 512 of them failed), and the run is verified.
per_entry!(for_each_transport, many_workers_start_and_verify_over);
fn many_workers_start_and_verify_over(transport: &str) {
    if !common::spawns_here(transport) {
        return;
    }
    let args = ["--transport", transport, "--mode", "split", "--workers", "96", "--n", "20000"];
    let args = [&args[..], &["--repeat", "1", "--warmup", "0", "--format", "json"]].concat();
    let r = common::run_with(&args, &[], Duration::from_secs(120));
    assert!(r.status.success(), "{transport}: {}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["verified"], true, "{transport}");
    assert_eq!(report["workers"], 96, "{transport}");
}
