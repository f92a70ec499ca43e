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

/// Something done to a running job (given mpirun's pid) once a condition holds.
type Step<'a> = (&'a dyn Fn() -> bool, &'a dyn Fn(u32));

/// Where the ranks run.
#[derive(Clone, Copy)]
enum Site<'a> {
    /// On this host, `--oversubscribe`d.
    Here(Fabric),
    /// Across the namespace hosts of a [`Cluster`], launched from h1.
    Hosts(&'a Cluster),
}

/// [`mpirun`], sending mpirun `signal` once `ready` holds.
fn launch(
    np: usize,
    fabric: Fabric,
    args: &[&str],
    env: &[(&str, &str)],
    interrupt: Option<(&dyn Fn() -> bool, &str)>,
) -> Launched {
    let signal = |pid: u32| {
        let signal = interrupt.map_or("-TERM", |(_, s)| s);
        let _ = Command::new("kill").args([signal, &pid.to_string()]).status();
    };
    let steps: Vec<Step<'_>> = interrupt.iter().map(|(ready, _)| (*ready, &signal as _)).collect();
    launch_at(np, Site::Here(fabric), args, env, &steps)
}

/// mpirun at `site`, with `env` exported to every rank, taking `steps` in order as each one's
/// condition holds; the whole process group is killed past a limit (a hang fails).
fn launch_at(
    np: usize,
    site: Site<'_>,
    args: &[&str],
    env: &[(&str, &str)],
    steps: &[Step<'_>],
) -> Launched {
    // A hang bound, not a speed check: the slowest healthy job here (owner at 16M values in
    // the debug profile) takes about a minute on a loaded 2-core machine.
    let limit = Duration::from_secs(120) * common::SLACK;
    let np = np.to_string();
    let mut cmd = match site {
        Site::Here(fabric) => {
            let mut cmd = Command::new("mpirun");
            cmd.args(["--oversubscribe", "-np", &np]).args(fabric.mca());
            cmd
        }
        Site::Hosts(cluster) => {
            let mut cmd = cluster.on("h1");
            cmd.args(cluster.mpirun()).args(["-np", &np]);
            cmd
        }
    };
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
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
    let mut steps = steps.iter();
    let mut next = steps.next();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll mpirun") {
            break status;
        }
        if let Some((_, then)) = next.filter(|(ready, _)| ready()) {
            then(child.id());
            next = steps.next();
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
    assert_eq!(modes, ["sequential", "item", "split", "scatterv", "owner"]);
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

/// owner over MPI: each worker rank makes and keeps its own range, so rank 0 holds nothing
/// (with `--no-baseline`, no hidden sequential buffers either) and each rank's own peak memory
/// is its share of the input; the checksums verify.
#[test]
fn owner_ranks_hold_their_own_share_and_rank_0_holds_none() {
    if !have_mpirun() {
        return;
    }
    let n = 16_000_000usize;
    let reports =
        reports(3, Fabric::Vader, &["--mode", "owner", "--n", "16000000", "--no-baseline"]);
    let r = &reports[0];
    assert_eq!(r["verified"], true);
    assert!(r["verified_by"].as_str().unwrap().contains("checksum"));
    let share_mb = (n / 2 * 8) as f64 / 1e6;
    for w in r["worker_detail"].as_array().unwrap() {
        let mb = w["peak_rss_mb"].as_f64().expect("each rank says its peak memory");
        assert!(mb > 0.9 * share_mb, "rank {}: {mb} MB for a {share_mb} MB share", w["rank"]);
        assert!(mb < share_mb + 200.0, "rank {}: {mb} MB for a {share_mb} MB share", w["rank"]);
    }
    let rank0_mb = r["coordinator_peak_rss_mb"].as_f64().unwrap();
    assert!(rank0_mb < 0.5 * share_mb, "rank 0 holds no input: {rank0_mb} MB");
    assert!(r["speedup"].is_null());
}

#[test]
fn split_with_the_raw_codec_moves_8_bytes_per_element_each_way() {
    if !have_mpirun() {
        return;
    }
    let n = 10_007u64;
    let reports = reports(3, Fabric::Vader, &["--mode", "split", "--codec", "raw", "--n", "10007"]);
    let split = reports.iter().find(|r| r["mode"] == "split").expect("a split report");
    // An MPI report (its mpi_ keys filled in) matches the published schema.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/ipcmap/schema/report.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let wrong: Vec<String> = validator.iter_errors(split).map(|e| e.to_string()).collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(split["mpi_ranks"].is_number(), "{split}");
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
    // Ended by the failure, not by the launcher's hang bound.
    assert!(out.took < Duration::from_secs(120) * common::SLACK / 2, "took {:?}", out.took);
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
    let folder_made = || common::run_folders(&tmpdir) > 0;
    // Ready once rank 0's folder has existed for a second: the job is well into its runs.
    let running = held_for(folder_made, Duration::from_secs(1));
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
    let _ = std::fs::remove_dir_all(&tmpdir);
}

/// SIGKILL to mpirun (no handler sees it): every rank notices its launcher is gone and ends
/// within a second or so, rank 0 removing its run folder, so nothing of the job outlives it.
#[test]
fn sigkill_to_mpirun_ends_every_rank_and_leaves_no_run_folder() {
    if !have_mpirun() {
        return;
    }
    let tmpdir = common::scratch("mpi-kill");
    let id = format!("mpi-kill-{}", std::process::id());
    let mark = format!("IPCMAP_TEST_JOB={id}");
    let alive = || (0..3).map(|r| ranks_numbered(r, &mark).len()).sum::<usize>();
    let folders = || common::run_folders(&tmpdir);
    // Ready once every rank is up and rank 0 has its run folder, for a second: well into the
    // runs.
    let running = held_for(|| alive() == 3 && folders() > 0, Duration::from_secs(1));
    let tmp = tmpdir.to_str().unwrap().to_string();
    let out = launch(
        3,
        Fabric::Vader,
        &["--mode", "split", "--n", "200000", "--repeat", "10000", "--warmup", "0"],
        &[("TMPDIR", &tmp), ("IPCMAP_TEST_JOB", &id)],
        Some((&running, "-KILL")),
    );
    assert_eq!(out.code, None, "mpirun was killed: {}", out.stderr);
    // A bound on a hang, not a speed check: the ranks poll their parent every 100 ms.
    let limit = Instant::now() + Duration::from_secs(10) * common::SLACK;
    while alive() > 0 && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(alive(), 0, "ranks outlived mpirun");
    assert_eq!(folders(), 0, "a rank's run folder was left behind");
    let _ = std::fs::remove_dir_all(&tmpdir);
}

// ---------------------------------------------------------------------------------------
// Across hosts: three hosts in network namespaces (scripts/cluster.sh), ranks on each,
// every byte between them over a real network stack (veth pairs on a bridge). Run as root
// where `ip netns` works; elsewhere each test says why it is skipped, unless
// IPCMAP_REQUIRE_NETNS=1 makes that a failure (CI sets it).

/// One namespace cluster, made for one test and removed when dropped.
struct Cluster {
    prefix: String,
    state: String,
}

impl Cluster {
    /// A cluster of its own (names unique to this process and call), or `None` with the
    /// reason printed where this machine cannot make one.
    fn up() -> Option<Cluster> {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        if !have_mpirun() {
            return None;
        }
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let prefix = format!("ipct{}x{n}-", std::process::id());
        let cluster = Cluster { state: format!("/run/{prefix}cluster"), prefix };
        let out = cluster.script("up").output().expect("run scripts/cluster.sh");
        if out.status.success() {
            return Some(cluster);
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert!(
            std::env::var("IPCMAP_REQUIRE_NETNS").as_deref() != Ok("1"),
            "IPCMAP_REQUIRE_NETNS=1 but no namespace cluster here: {why}"
        );
        eprintln!("skipped: no namespace cluster here ({why})");
        None
    }

    fn script(&self, what: &str) -> Command {
        let mut cmd = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/cluster.sh"));
        cmd.arg(what).env("CLUSTER_PREFIX", &self.prefix).env("CLUSTER_STATE", &self.state);
        cmd
    }

    /// A command run on `host`: in its namespace, with its own hostname.
    fn on(&self, host: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &format!("{}{host}", self.prefix), "unshare", "--uts"]).args([
            "/bin/sh",
            "-c",
            "hostname \"$1\"; shift; exec \"$@\"",
            "x",
            host,
        ]);
        cmd
    }

    /// The cluster's mpirun line (hostfile, rsh agent, interfaces).
    fn mpirun(&self) -> Vec<String> {
        let out = self.script("mpirun").output().expect("cluster.sh mpirun");
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect()
    }

    /// Bytes received and sent by `host`'s network interface so far.
    fn wire_bytes(&self, host: &str) -> (u64, u64) {
        let read = |what: &str| {
            let out = self
                .on(host)
                .args(["cat", &format!("/sys/class/net/mhnet/statistics/{what}_bytes")])
                .output()
                .expect("read interface statistics");
            String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().expect("a byte count")
        };
        (read("rx"), read("tx"))
    }

    /// Takes `host`'s link down or up.
    fn link(&self, host: &str, up: bool) {
        let ns = format!("{}{host}", self.prefix);
        let state = if up { "up" } else { "down" };
        let ok = Command::new("ip").args(["-n", &ns, "link", "set", "mhnet", state]).status();
        assert!(ok.is_ok_and(|s| s.success()), "ip link set {state} in {ns}");
    }

    /// The pids of the coordinator processes (ranks) on `host`.
    fn ranks_on(&self, host: &str) -> Vec<u32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &format!("{}{host}", self.prefix)])
            .output()
            .expect("ip netns pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "coordinator")
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script("down").status();
    }
}

/// The cluster's jobs: 5 ranks, rank 0 alone on h1, two on each of h2 and h3.
const HOSTS_NP: usize = 5;

#[test]
fn every_strategy_verifies_across_three_hosts_with_each_worker_on_its_own_host() {
    let Some(cluster) = Cluster::up() else { return };
    let args =
        ["--mode", "all", "--n", "300007", "--format", "json", "--repeat", "2", "--warmup", "0"];
    let out = launch_at(HOSTS_NP, Site::Hosts(&cluster), &args, &[], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let reports: Vec<Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON report")).collect();
    let modes: Vec<&str> = reports.iter().filter_map(|r| r["mode"].as_str()).collect();
    assert_eq!(modes, ["sequential", "item", "split", "scatterv", "owner"]);
    for r in reports.iter().filter(|r| r["mode"] != "sequential") {
        let mode = r["mode"].as_str().unwrap_or("?");
        assert_eq!(r["verified"], true, "{mode}");
        assert_eq!(r["host"], "h1", "{mode}: rank 0 runs on h1");
        let mut hosts: Vec<&str> =
            r["mpi_hosts"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        hosts.sort_unstable();
        assert_eq!(hosts, ["h1", "h2", "h3"], "{mode}");
        for w in r["worker_detail"].as_array().expect("worker_detail") {
            // --map-by node: ranks 1 and 3 on h2, 2 and 4 on h3.
            let rank = w["rank"].as_u64().unwrap();
            let host = if rank % 2 == 1 { "h2" } else { "h3" };
            assert_eq!(w["host"], host, "{mode}: rank {rank}");
        }
    }
}

#[test]
fn the_bytes_on_the_wire_are_the_bytes_the_report_counts() {
    let Some(cluster) = Cluster::up() else { return };
    // The raw codec at 2M values: 16 MB each way, every byte of it through h1's interface
    // (rank 0 is alone there), beside MPI's start-up and the hidden baselines' nothing.
    let args = ["--mode", "split", "--codec", "raw", "--n", "2000000", "--format", "json"];
    let args = [&args[..], &["--repeat", "1", "--warmup", "0"]].concat();
    let before = cluster.wire_bytes("h1");
    let out = launch_at(HOSTS_NP, Site::Hosts(&cluster), &args, &[], &[]);
    let after = cluster.wire_bytes("h1");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r: Value = serde_json::from_str(out.stdout.trim()).expect("one report");
    let (sent, received) =
        (r["bytes_sent"].as_u64().unwrap(), r["bytes_received"].as_u64().unwrap());
    let (rx, tx) = (after.0 - before.0, after.1 - before.1);
    eprintln!(
        "h1's interface: {tx} bytes out, {rx} in; the report: {sent} sent, {received} received"
    );
    // At least what the report says crossed, and at most that plus TCP/IP's headers (about
    // 3.5% at a 1500-byte MTU) and MPI's own start-up and shutdown messages.
    for (wire, counted, way) in [(tx, sent, "out"), (rx, received, "in")] {
        assert!(wire >= counted, "{way}: {wire} bytes on the wire, {counted} counted");
        assert!(
            wire as f64 <= counted as f64 * 1.06 + 1e6,
            "{way}: {wire} on the wire, {counted} counted"
        );
    }
}

#[test]
fn a_remote_rank_killed_mid_run_ends_the_job_and_leaves_no_rank_behind() {
    let Some(cluster) = Cluster::up() else { return };
    let tmpdir = common::scratch("cluster-kill");
    let tmp = tmpdir.to_str().unwrap().to_string();
    let into_runs = into_runs(&tmpdir);
    let killed = std::cell::Cell::new(false);
    let kill = |_: u32| {
        let victim = cluster.ranks_on("h2")[0];
        let _ = Command::new("kill").args(["-KILL", &victim.to_string()]).status();
        killed.set(true);
    };
    let args = ["--mode", "split", "--n", "1000000", "--repeat", "10000", "--warmup", "0"];
    let out = launch_at(
        HOSTS_NP,
        Site::Hosts(&cluster),
        &args,
        &[("TMPDIR", &tmp)],
        &[(&into_runs, &kill)],
    );
    assert!(killed.get(), "the job ended before a rank could be killed: {}", out.stderr);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains("verified"), "no report passed off as complete");
    for host in ["h1", "h2", "h3"] {
        assert!(cluster.ranks_on(host).is_empty(), "a rank outlived the job on {host}");
    }
    let _ = std::fs::remove_dir_all(&tmpdir);
}

#[test]
fn a_link_that_dies_mid_run_ends_rank_0_within_its_deadline_with_one_line() {
    let Some(cluster) = Cluster::up() else { return };
    let tmpdir = common::scratch("cluster-link");
    let tmp = tmpdir.to_str().unwrap().to_string();
    let into_runs = into_runs(&tmpdir);
    let down_at = std::cell::Cell::new(None::<Instant>);
    let gone_after = std::cell::Cell::new(None::<Duration>);
    let cut = |_: u32| {
        cluster.link("h2", false);
        down_at.set(Some(Instant::now()));
    };
    let rank_0_gone = || cluster.ranks_on("h1").is_empty();
    // Rank 0 gone: heal the link, so mpirun can end the job and say how it ended.
    let heal = |_: u32| {
        gone_after.set(down_at.get().map(|t| t.elapsed()));
        cluster.link("h2", true);
    };
    let timeout = 2;
    let seconds = timeout.to_string();
    let args = ["--mode", "split", "--codec", "raw", "--n", "1000000", "--repeat", "10000"];
    let args = [&args[..], &["--warmup", "0", "--task-timeout", &seconds]].concat();
    let out = launch_at(
        HOSTS_NP,
        Site::Hosts(&cluster),
        &args,
        &[("TMPDIR", &tmp)],
        &[(&into_runs, &cut), (&rank_0_gone, &heal)],
    );
    let gone = gone_after.get().expect("rank 0 ended while the link was down");
    eprintln!(
        "rank 0 ended {gone:?} after the link went down; mpirun: {:?}; {}",
        out.code, out.stderr
    );
    // The deadline, then the abort's bound (3 s). What this catches is a rank 0 that waits on
    // the dead link for ever (the job's own limit, minutes); a loaded 2-core machine stretched
    // the 5 s of deadline and abort to 10.3 s, so 25 s of room cannot fail a healthy run and
    // still tells a bounded end from a hang.
    assert!(gone < Duration::from_secs(timeout + 3 + 25), "rank 0 took {gone:?}");
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    let ours = our_errors(&out.stderr);
    assert_eq!(ours.len(), 1, "{}", out.stderr);
    assert!(ours[0].contains("on h2"), "the line names the cut-off host: {}", ours[0]);
    let _ = std::fs::remove_dir_all(&tmpdir);
}

/// True once rank 0's run folder under `tmpdir` has existed for a second: the job is well
/// into its runs.
fn into_runs(tmpdir: &std::path::Path) -> impl Fn() -> bool + '_ {
    let seen = std::cell::Cell::new(None::<Instant>);
    move || {
        let made = std::fs::read_dir(tmpdir).is_ok_and(|d| {
            d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("ipcmap-"))
        });
        if !made {
            return false;
        }
        let since = seen.get().unwrap_or_else(Instant::now);
        seen.set(Some(since));
        since.elapsed() > Duration::from_secs(1)
    }
}

#[test]
fn across_hosts_every_span_is_on_rank_0s_clock_and_a_tasks_spans_are_in_order() {
    let Some(cluster) = Cluster::up() else { return };
    let dir = common::scratch("cluster-clock");
    let trace = dir.join("trace.json");
    let trace_arg = trace.to_str().unwrap();
    let args = ["--mode", "split", "--n", "200000", "--repeat", "1", "--warmup", "0"];
    let args = [&args[..], &["--format", "json", "--trace", trace_arg]].concat();
    let out = launch_at(HOSTS_NP, Site::Hosts(&cluster), &args, &[], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r: Value = serde_json::from_str(out.stdout.trim()).expect("one report");
    // Namespaces share one real clock: every offset is within its uncertainty of zero (and
    // a little more for a busy machine).
    let offsets = r["mpi_clock_offsets_us"].as_array().expect("offsets").clone();
    let uncertainty = r["mpi_clock_uncertainty_us"].as_array().expect("uncertainty").clone();
    assert_eq!(offsets.len(), HOSTS_NP - 1, "one per worker rank");
    for (o, u) in offsets.iter().zip(&uncertainty) {
        let (o, u) = (o.as_f64().unwrap(), u.as_f64().unwrap());
        assert!(u > 0.0 && o.abs() <= u + 200.0, "offset {o} µs, uncertainty {u} µs");
    }
    // A task is received after it is sent, and its result after the worker sent it, on rank
    // 0's clock: worker spans were moved onto it by offsets known only to within their
    // uncertainty, so an order is checked to within the largest of them.
    let slack = uncertainty.iter().filter_map(Value::as_f64).fold(0.0, f64::max);
    let events: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let events = events["traceEvents"].as_array().expect("traceEvents");
    let coordinator = events
        .iter()
        .find(|e| {
            e["name"] == "process_name"
                && e["args"]["name"].as_str().unwrap().starts_with("coordinator")
        })
        .map(|e| e["pid"].clone())
        .expect("the coordinator's track");
    let spans = |ours: bool, phase: &str| -> std::collections::HashMap<u64, (f64, f64)> {
        events
            .iter()
            .filter(|e| e["ph"] == "X" && e["name"] == phase && (e["pid"] == coordinator) == ours)
            .filter_map(|e| {
                let (ts, dur) = (e["ts"].as_f64()?, e["dur"].as_f64()?);
                Some((e["args"]["task"].as_u64()?, (ts, ts + dur)))
            })
            .collect()
    };
    let (sent, received) = (spans(true, "send"), spans(false, "receive"));
    let (returned, decoded) = (spans(false, "send"), spans(true, "decode"));
    assert_eq!(sent.len() as u64, r["tasks"].as_u64().unwrap());
    for (task, &(send_start, _)) in &sent {
        let (_, received_end) = received[task];
        assert!(
            received_end + slack >= send_start,
            "task {task}: received before it was sent (clock uncertainty {slack} µs)"
        );
        let (return_start, _) = returned[task];
        let (_, decode_end) = decoded[task];
        assert!(
            decode_end + slack >= return_start,
            "task {task}: its result decoded before it was sent (clock uncertainty {slack} µs)"
        );
    }
    let workers = events.iter().filter(|e| e["name"] == "process_name" && e["pid"] != coordinator);
    for w in workers {
        let name = w["args"]["name"].as_str().unwrap();
        assert!(name.contains(" on h2") || name.contains(" on h3"), "{name}: its host named");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A condition that holds once `cond` has held for `hold` since it first did: a job well into
/// its runs.
fn held_for(cond: impl Fn() -> bool, hold: Duration) -> impl Fn() -> bool {
    let seen = std::cell::Cell::new(None::<Instant>);
    move || {
        if !cond() {
            return false;
        }
        let since = seen.get().unwrap_or_else(Instant::now);
        seen.set(Some(since));
        since.elapsed() > hold
    }
}

/// The pids of the ranks numbered `rank` of the job whose environment holds `mark` (other
/// tests' jobs run beside it), from their environment (Open MPI's).
fn ranks_numbered(rank: u32, mark: &str) -> Vec<u32> {
    common::coordinators_with(&[&format!("OMPI_COMM_WORLD_RANK={rank}"), mark])
}

/// A signal to one worker rank alone (not to mpirun or rank 0) ends the whole job within
/// seconds: the rank waits a moment for rank 0 to end it, then leaves, which ends the job. The
/// run would otherwise go on for minutes (2,000 runs); 30 s of room is for a loaded machine.
#[test]
fn a_signal_to_one_worker_rank_ends_the_job() {
    if !have_mpirun() {
        return;
    }
    let sent = std::cell::Cell::new(None::<Instant>);
    let id = format!("one-rank-{}", std::process::id());
    let mark = format!("IPCMAP_TEST_JOB={id}");
    let running = || !ranks_numbered(1, &mark).is_empty() && !ranks_numbered(0, &mark).is_empty();
    let term = |_: u32| {
        std::thread::sleep(Duration::from_secs(1));
        for pid in ranks_numbered(1, &mark) {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        sent.set(Some(Instant::now()));
    };
    let args = ["--mode", "split", "--n", "200000", "--repeat", "2000", "--warmup", "0"];
    let env = [("IPCMAP_TEST_JOB", id.as_str())];
    let out = launch_at(3, Site::Here(Fabric::Vader), &args, &env, &[(&running, &term)]);
    let after = sent.get().map(|t| t.elapsed()).expect("the signal was sent");
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(after < Duration::from_secs(30), "the job went on {after:?} after the signal");
    let left = || ranks_numbered(0, &mark).len() + ranks_numbered(1, &mark).len();
    assert!(common::eventually(Duration::from_secs(5), || left() == 0), "a rank outlived it");
}
