//! `--transport mpi` launched the ways a cluster user launches it under Slurm: `srun
//! --mpi=pmix` (Slurm starts every rank, PMIx wires them up), `salloc ... mpirun` (Open MPI
//! inside an allocation) and `sbatch --wait` (a batch script), and a job that `scancel` ends.
//!
//! Built with the `mpi` feature. Each test needs a Slurm it can reach: `SLURM_CONF` set and
//! `sinfo` answering, as `scripts/slurm.sh run cargo test ...` gives (a one-node Slurm whose
//! files live in one folder; CI runs it so). Elsewhere each test says why it is skipped,
//! unless `IPCMAP_REQUIRE_SLURM=1` makes that a failure.
#![cfg(feature = "mpi")]

mod common;

use common::coordinator_bin;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a Slurm answers here; without one the test is skipped with a reason, unless
/// `IPCMAP_REQUIRE_SLURM=1` makes that a failure.
fn have_slurm() -> bool {
    let conf = std::env::var_os("SLURM_CONF").is_some();
    let answers = conf
        && Command::new("sinfo")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !answers {
        assert!(
            std::env::var("IPCMAP_REQUIRE_SLURM").as_deref() != Ok("1"),
            "IPCMAP_REQUIRE_SLURM=1 but no Slurm answers (SLURM_CONF set: {conf}); \
             run under scripts/slurm.sh run"
        );
        eprintln!("skipped: no Slurm here (scripts/slurm.sh run cargo test ... gives one)");
    }
    answers
}

/// What a finished launch left behind.
struct Launched {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` (a Slurm client) in a process group of its own, with the rank environment
/// Open MPI needs as root, killing the group past a hang bound.
fn launch(mut cmd: Command) -> Launched {
    let limit = Duration::from_secs(120) * common::SLACK;
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env_remove("IPCMAP_FAULT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the Slurm client");
    let (stdout, stderr) = common::drain(&mut child);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill").args(["-9", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}: {}", stderr.join().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Launched {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// The run's arguments for a quick, verified, JSON job of every strategy MPI has.
const ALL: [&str; 12] = [
    "--transport",
    "mpi",
    "--mode",
    "all",
    "--n",
    "20011",
    "--repeat",
    "2",
    "--warmup",
    "0",
    "--format",
    "json",
];

/// The reports in `out`, each strategy verified, and every worker rank used.
fn verified(out: &Launched, how: &str) -> Vec<Value> {
    assert_eq!(out.code, Some(0), "{how} failed: {}", out.stderr);
    let reports: Vec<Value> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("each report line is a JSON object"))
        .collect();
    assert!(reports.len() >= 4, "{how}: too few reports: {}", out.stdout);
    for r in &reports {
        let mode = r["mode"].as_str().unwrap_or("?");
        assert_eq!(r["transport"], "mpi", "{how} {mode}");
        if mode != "sequential" {
            assert_eq!(r["verified"], true, "{how}: {mode} not verified");
            assert_eq!(r["workers"], 2, "{how}: {mode} ran on 2 worker ranks");
        }
    }
    reports
}

#[test]
fn srun_with_pmix_runs_every_mpi_strategy_verified() {
    if !have_slurm() {
        return;
    }
    let mut cmd = Command::new("srun");
    cmd.args(["-n", "3", "--mpi=pmix", "--kill-on-bad-exit=1"]).arg(coordinator_bin()).args(ALL);
    verified(&launch(cmd), "srun --mpi=pmix");
}

#[test]
fn mpirun_inside_salloc_runs_every_mpi_strategy_verified() {
    if !have_slurm() {
        return;
    }
    let mut cmd = Command::new("salloc");
    cmd.args(["-n", "3", "mpirun", "-x", "OMPI_ALLOW_RUN_AS_ROOT"])
        .args(["--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none"])
        .arg(coordinator_bin())
        .args(ALL);
    verified(&launch(cmd), "salloc mpirun");
}

#[test]
fn sbatch_wait_runs_a_batch_script_whose_reports_verify() {
    if !have_slurm() {
        return;
    }
    let dir = common::scratch("sbatch");
    let output = dir.join("job.out");
    let line = format!("srun --mpi=pmix {} {}", coordinator_bin().display(), ALL.join(" "));
    let mut cmd = Command::new("sbatch");
    cmd.args(["--wait", "-n", "3", "--chdir"])
        .arg(&dir)
        .arg("--output")
        .arg(&output)
        // Apart from stdout: a line on stderr (a busy machine's warning) could land inside a
        // long JSON line of the same file.
        .arg("--error")
        .arg(dir.join("job.err"))
        .arg("--wrap")
        .arg(line);
    let out = launch(cmd);
    let job = std::fs::read_to_string(&output).unwrap_or_default();
    let stderr = std::fs::read_to_string(dir.join("job.err")).unwrap_or_default();
    verified(&Launched { stdout: job, stderr: out.stderr + &stderr, ..out }, "sbatch --wait");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pids of this machine's `coordinator` processes whose environment holds `mark` (other
/// tests' jobs run beside it): the job's ranks, whoever started them.
fn ranks_of(mark: &str) -> Vec<u32> {
    common::coordinators_with(&[mark]).into_iter().filter(|&pid| common::is_running(pid)).collect()
}

/// `scancel` of a running batch job: Slurm sends SIGTERM to every rank and would SIGKILL them
/// only after KillWait (30 s in scripts/slurm.sh). Every rank ends by its own hand, at once:
/// the quick bound here is what tells the two apart (the target is a second; this
/// allows a loaded debug run 10 s, a third of KillWait), and rank 0's run folder goes with it.
#[test]
fn scancel_ends_every_rank_at_once_and_leaves_no_run_folder() {
    if !have_slurm() {
        return;
    }
    let dir = common::scratch("scancel");
    let id = format!("scancel-{}", std::process::id());
    let mark = format!("IPCMAP_TEST_JOB={id}");
    let line = format!(
        "srun --mpi=pmix {} --transport mpi --mode split --n 200000 --repeat 10000 --warmup 0",
        coordinator_bin().display()
    );
    let submitted = Command::new("sbatch")
        .args(["--parsable", "-n", "3", "--chdir"])
        .arg(&dir)
        .arg("--output")
        .arg(dir.join("job.out"))
        .args(["--wrap", &line])
        .env("IPCMAP_TEST_JOB", &id)
        .env("TMPDIR", &dir)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("sbatch");
    assert!(submitted.status.success(), "{}", String::from_utf8_lossy(&submitted.stderr));
    let job = String::from_utf8_lossy(&submitted.stdout).trim().to_string();
    let cancel = || {
        let _ = Command::new("scancel").arg(&job).status();
    };
    // Well into its runs: three ranks up, and rank 0's run folder made, for a second.
    let log = || std::fs::read_to_string(dir.join("job.out")).unwrap_or_default();
    let up = || ranks_of(&mark).len() == 3 && common::run_folders(&dir) > 0;
    common::eventually(Duration::from_secs(60), || up() || log().contains("error"));
    if !up() {
        cancel();
        panic!("the job never started its 3 ranks: {}", log());
    }
    std::thread::sleep(Duration::from_secs(1));
    let sent = Instant::now();
    cancel();
    let gone = common::eventually(Duration::from_secs(25), || ranks_of(&mark).is_empty());
    let took = sent.elapsed();
    eprintln!("scancel: every rank gone {took:?} after it");
    assert!(gone && took < Duration::from_secs(10), "ranks outlived scancel by {took:?}");
    assert!(
        common::eventually(Duration::from_secs(5), || common::run_folders(&dir) == 0),
        "rank 0's run folder was left behind"
    );
    let said = log();
    assert!(said.contains("error: interrupted by signal"), "rank 0 says why it stopped: {said}");
    let _ = std::fs::remove_dir_all(&dir);
}
