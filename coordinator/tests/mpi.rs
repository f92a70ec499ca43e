//! `--transport mpi` for real: the coordinator binary launched by `mpirun` (Open MPI), rank 0
//! coordinating and the other ranks working, over Open MPI's shared memory (vader) and over
//! TCP loopback. Built only with the `mpi` feature (`cargo test -p coordinator --features mpi
//! --test mpi`). Without `mpirun` on the PATH each test says so and passes, unless
//! `IPCMAP_REQUIRE_MPI=1` is set, when it fails.
#![cfg(feature = "mpi")]

mod common;

use common::coordinator_bin;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How the ranks talk.
#[derive(Clone, Copy, Debug)]
enum Fabric {
    /// Open MPI's shared-memory BTL, without the CMA single copy (a container may forbid it).
    Vader,
    /// TCP over the loopback interface, as between hosts.
    Tcp,
}

impl Fabric {
    fn mca(self) -> Vec<&'static str> {
        match self {
            Fabric::Vader => vec![
                "--mca",
                "btl",
                "self,vader",
                "--mca",
                "btl_vader_single_copy_mechanism",
                "none",
            ],
            Fabric::Tcp => vec![
                "--mca",
                "pml",
                "ob1",
                "--mca",
                "btl",
                "self,tcp",
                "--mca",
                "btl_tcp_if_include",
                "lo",
            ],
        }
    }
}

/// Whether `mpirun` can be used here; without it the test is skipped with a reason, unless
/// `IPCMAP_REQUIRE_MPI=1` makes that a failure.
fn have_mpirun() -> bool {
    let found = Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("IPCMAP_REQUIRE_MPI").as_deref() != Ok("1"),
            "IPCMAP_REQUIRE_MPI=1 but mpirun is not on the PATH (apt-get install openmpi-bin)"
        );
        eprintln!("skipped: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)");
    }
    found
}

struct Launched {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `mpirun --oversubscribe -np NP <fabric> coordinator ARGS --transport mpi`, with `env`
/// exported to every rank; the whole process group is killed past `limit` (a hang fails).
fn mpirun(np: usize, fabric: Fabric, args: &[&str], env: &[(&str, &str)]) -> Launched {
    launch(np, fabric, args, env, None)
}

/// A signal for mpirun once a condition holds.
type Interrupt<'a> = (&'a dyn Fn() -> bool, &'a str);

/// [`mpirun`], sending mpirun `interrupt`'s signal once its condition holds.
fn launch(
    np: usize,
    fabric: Fabric,
    args: &[&str],
    env: &[(&str, &str)],
    mut interrupt: Option<Interrupt<'_>>,
) -> Launched {
    let limit = Duration::from_secs(120);
    let np = np.to_string();
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "-np", &np])
        .args(fabric.mca())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env_remove("IPCMAP_FAULT");
    for (k, v) in env {
        cmd.env(k, v).args(["-x", k]);
    }
    cmd.arg(coordinator_bin())
        .args(args)
        .args(["--transport", "mpi"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start mpirun");
    let pgid = child.id() as i32;
    let (stdout, stderr) = common::drain(&mut child);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll mpirun") {
            break status;
        }
        if let Some((_, signal)) = interrupt.filter(|(ready, _)| ready()) {
            let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
            interrupt = None;
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill").args(["-9", &format!("-{pgid}")]).status();
            let _ = child.wait();
            panic!(
                "mpirun {args:?} still running after {limit:?}: {}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Launched {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        took: started.elapsed(),
    }
}

/// ipcmap's own error lines in what mpirun printed (Open MPI adds its own).
fn our_errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

/// Runs with `--format json` and returns the reports, asserting success.
fn reports(np: usize, fabric: Fabric, args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.extend(["--format", "json", "--repeat", "2", "--warmup", "0"]);
    let out = mpirun(np, fabric, &all, &[]);
    assert_eq!(out.code, Some(0), "mpirun -np {np} ({fabric:?}) {all:?} failed: {}", out.stderr);
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect()
}

/// Every strategy MPI has, verified bit for bit, from distinct ranks, with the job described.
fn strategies_verify_on(np: usize, fabric: Fabric) {
    let reports = reports(np, fabric, &["--mode", "all", "--n", "20011"]);
    let modes: Vec<&str> = reports.iter().filter_map(|r| r["mode"].as_str()).collect();
    assert_eq!(modes, ["sequential", "item", "split", "scatterv"]);
    for r in &reports {
        let mode = r["mode"].as_str().unwrap_or("?");
        assert_eq!(r["verified"], Value::Bool(true), "{mode}");
        assert_eq!(r["transport"], "mpi", "{mode}");
        assert_eq!(r["mpi_ranks"], np, "{mode}");
        assert!(
            r["mpi_library"].as_str().is_some_and(|l| l.contains("MPI")),
            "{mode}: {}",
            r["mpi_library"]
        );
        if mode == "sequential" {
            continue;
        }
        assert_eq!(r["workers"], np - 1, "{mode}");
        let detail = r["worker_detail"].as_array().expect("worker_detail");
        let mut ranks: Vec<u64> = detail.iter().filter_map(|w| w["rank"].as_u64()).collect();
        ranks.sort_unstable();
        let expected: Vec<u64> = (1..np as u64).collect();
        assert_eq!(ranks, expected, "{mode}: one worker per rank 1..{np}");
        assert!(detail.iter().all(|w| w["host"].is_string()), "{mode}");
        let tasks: u64 = detail.iter().filter_map(|w| w["tasks"].as_u64()).sum();
        assert_eq!(Some(tasks), r["tasks"].as_u64(), "{mode}: every task counted once");
    }
}

#[test]
fn every_mpi_strategy_verifies_over_shared_memory_at_3_and_5_ranks() {
    if !have_mpirun() {
        return;
    }
    strategies_verify_on(3, Fabric::Vader);
    strategies_verify_on(5, Fabric::Vader);
}

#[test]
fn every_mpi_strategy_verifies_over_tcp_loopback_at_3_and_5_ranks() {
    if !have_mpirun() {
        return;
    }
    strategies_verify_on(3, Fabric::Tcp);
    strategies_verify_on(5, Fabric::Tcp);
}

#[test]
fn split_with_the_raw_codec_moves_8_bytes_per_element_each_way() {
    if !have_mpirun() {
        return;
    }
    let n = 10_007u64;
    let reports = reports(3, Fabric::Vader, &["--mode", "split", "--codec", "raw", "--n", "10007"]);
    let split = reports.iter().find(|r| r["mode"] == "split").expect("a split report");
    assert_eq!(split["payload_bytes_sent"], 8 * n);
    assert_eq!(split["payload_bytes_received"], 8 * n);
    assert_eq!(split["messages_sent"], split["tasks"]);
    assert_eq!(split["messages_received"], split["tasks"]);
}

#[test]
fn strategies_that_share_memory_are_refused_with_one_line() {
    if !have_mpirun() {
        return;
    }
    for mode in ["shm", "threads", "cma"] {
        let out = mpirun(3, Fabric::Vader, &["--mode", mode, "--n", "1000"], &[]);
        assert_ne!(out.code, Some(0), "{mode}");
        let ours = our_errors(&out.stderr);
        assert_eq!(ours.len(), 1, "{mode}: {}", out.stderr);
        assert!(ours[0].contains(mode) && ours[0].contains("MPI"), "{}", ours[0]);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn a_worker_count_that_disagrees_with_the_ranks_is_refused() {
    if !have_mpirun() {
        return;
    }
    let out = mpirun(3, Fabric::Vader, &["--workers", "4", "--n", "1000"], &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--workers 4 does not match"), "{}", out.stderr);
}

#[test]
fn a_rank_that_dies_ends_the_job_without_a_hang() {
    if !have_mpirun() {
        return;
    }
    let out = mpirun(
        3,
        Fabric::Vader,
        &["--mode", "split", "--n", "100000", "--repeat", "1"],
        &[("IPCMAP_FAULT", "exit-after=1@0")],
    );
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(60), "took {:?}", out.took);
    assert!(!out.stdout.contains("verified"), "no report passed off as complete");
}

#[test]
fn a_hung_rank_is_cut_off_at_the_deadline_and_the_job_aborted() {
    if !have_mpirun() {
        return;
    }
    let out = mpirun(
        3,
        Fabric::Vader,
        &[
            "--mode",
            "split",
            "--n",
            "100000",
            "--repeat",
            "1",
            "--task-timeout",
            "1",
            "--on-worker-exit",
            "abort",
        ],
        &[("IPCMAP_FAULT", "hang-after=1@0")],
    );
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    let ours = our_errors(&out.stderr);
    assert_eq!(ours.len(), 1, "{}", out.stderr);
    assert!(ours[0].contains("task deadline"), "{}", ours[0]);
}

#[test]
fn the_probe_measures_mpi_floors() {
    if !have_mpirun() {
        return;
    }
    let out = mpirun(3, Fabric::Vader, &["probe", "--format", "json", "--bytes", "100000"], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let p: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(p["transport"], "mpi");
    assert_eq!(p["workers"], 2);
    assert!(p["echo8_us_per_message"].as_f64().is_some_and(|us| us > 0.0));
    assert!(p["echo_wall_gbps"].as_f64().is_some_and(|g| g > 0.0));
}

#[test]
fn a_stopped_rank_in_a_collective_ends_the_job_at_its_deadline() {
    if !have_mpirun() {
        return;
    }
    // Rank 1 stops itself (SIGSTOP) before it joins the first scatter: rank 0 polls its
    // non-blocking Scatterv, so the deadline still fires and the job is aborted.
    let out = mpirun(
        3,
        Fabric::Vader,
        &[
            "--mode",
            "scatterv",
            "--n",
            "4000000",
            "--repeat",
            "3",
            "--warmup",
            "0",
            "--task-timeout",
            "2",
        ],
        &[("IPCMAP_FAULT", "stop-after=0@0")],
    );
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    let ours = our_errors(&out.stderr);
    assert_eq!(ours.len(), 1, "{}", out.stderr);
    assert!(ours[0].contains("worker 0") && ours[0].contains("task deadline"), "{}", ours[0]);
}

#[test]
fn a_rank_that_panics_is_written_off_by_name_and_its_tasks_rerun() {
    if !have_mpirun() {
        return;
    }
    let out = mpirun(
        3,
        Fabric::Vader,
        &["--mode", "split", "--n", "100000", "--repeat", "1", "--warmup", "0", "--format", "json"],
        &[("IPCMAP_FAULT", "panic-after=1@0")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("one report");
    assert_eq!(report["verified"], true);
    let failure = &report["worker_failures"][0];
    assert_eq!(failure["worker"], 0, "{report}");
    let reason = failure["reason"].as_str().unwrap();
    assert!(reason.contains("failed on rank 1: panicked: injected fault"), "{reason}");
}

#[test]
fn fewer_values_than_ranks_and_oversized_collectives_are_refused_up_front() {
    if !have_mpirun() {
        return;
    }
    for (np, args, needle) in [
        (9, &["--n", "5", "--mode", "all"][..], "has fewer values than that"),
        (3, &["--n", "1", "--mode", "scatterv"][..], "has fewer values than that"),
        (3, &["--n", "300000000", "--mode", "scatterv"][..], "offsets are C ints"),
    ] {
        let out = mpirun(np, Fabric::Vader, args, &[]);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        let ours = our_errors(&out.stderr);
        assert_eq!(ours.len(), 1, "{}", out.stderr);
        assert!(ours[0].contains(needle), "{}", ours[0]);
    }
}

#[test]
fn sigterm_to_mpirun_gives_rank_0s_line_and_leaves_no_run_folder() {
    if !have_mpirun() {
        return;
    }
    let tmpdir = common::scratch("mpi-term");
    let folder_made = || {
        std::fs::read_dir(&tmpdir).is_ok_and(|d| {
            d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("ipcmap-"))
        })
    };
    // Ready once rank 0's folder has existed for a second: the job is well into its runs.
    let seen = std::cell::Cell::new(None::<Instant>);
    let running = || {
        if !folder_made() {
            return false;
        }
        let since = seen.get().unwrap_or_else(Instant::now);
        seen.set(Some(since));
        since.elapsed() > Duration::from_secs(1)
    };
    let tmp = tmpdir.to_str().unwrap().to_string();
    let out = launch(
        3,
        Fabric::Vader,
        &["--mode", "split", "--n", "200000", "--repeat", "10000", "--warmup", "0"],
        &[("TMPDIR", &tmp)],
        Some((&running, "-TERM")),
    );
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("error: interrupted by signal 15"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no report after a stop: {}", out.stdout);
    assert!(!folder_made(), "rank 0's run folder was left behind");
    let _ = std::fs::remove_dir_all(tmpdir);
}
