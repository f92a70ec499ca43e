//! Bad input and broken workers: a clear one-line error, the right exit status, no panic.

mod common;

use common::{run, run_with, worker_bin};
use std::time::Duration;

fn assert_usage_error(args: &[&str], needle: &str) {
    let r = run(args);
    assert_eq!(r.status.code(), Some(2), "{args:?}: {}", r.stderr);
    assert_eq!(
        r.stderr.trim().lines().count(),
        1,
        "{args:?} printed more than one line:\n{}",
        r.stderr
    );
    assert!(r.stderr.contains(needle), "{args:?}: {:?} lacks {needle:?}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "no partial output: {}", r.stdout);
}

#[test]
fn mpi_only_strategies_and_builds_without_mpi_are_refused() {
    assert_usage_error(&["--mode", "scatterv", "--n", "100"], "mpirun");
    #[cfg(not(feature = "mpi"))]
    {
        assert_usage_error(&["--transport", "mpi"], "--features mpi");
        assert_usage_error(&["probe", "--transport", "mpi"], "--features mpi");
    }
    // `--mode all` on local processes leaves the MPI-only strategy out.
    let r = run(&["--mode", "all", "--n", "100", "--repeat", "1", "--warmup", "0"]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(!r.stdout.contains("scatterv"), "{}", r.stdout);
}

#[test]
fn bad_arguments_exit_2_with_one_line_each() {
    assert_usage_error(&["--workers", "0"], "--workers");
    assert_usage_error(&["--workers", "100000"], "--workers");
    assert_usage_error(&["--splits", "0"], "--splits");
    assert_usage_error(&["--n", "10", "--splits", "11"], "--splits");
    assert_usage_error(&["--chunksize", "0"], "--chunksize");
    assert_usage_error(&["--repeat", "0"], "--repeat");
    assert_usage_error(&["--work", "0"], "--work");
    assert_usage_error(&["--mode", "bogus"], "--mode");
    assert_usage_error(&["--fn", "tan"], "--fn");
    assert_usage_error(&["--codec", "protobuf"], "--codec");
    assert_usage_error(&["--n", "lots"], "--n");
    assert_usage_error(&["--n", "2000000000000"], "MiB");
    assert_usage_error(&["--handshake-timeout", "0"], "--handshake-timeout");
    assert_usage_error(&["--n", "0"], "--n must be at least 1");
    assert_usage_error(&["--min-runs", "5", "--max-runs", "3"], "--min-runs 5 and --max-runs 3");
    assert_usage_error(&["--min-runs", "0"], "--min-runs 0");
    assert_usage_error(&["--repeat", "3", "--min-runs", "2"], "--min-runs");
    assert_usage_error(&["sweep", "--n", "1000,0"], "--n must be at least 1");
}

#[test]
fn help_has_headings_examples_and_exit_codes_and_completions_and_a_man_page_print() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    for heading in
        ["What to run:", "How to measure:", "Output files:", "Output:", "Examples:", "Exit status:"]
    {
        assert!(help.stdout.contains(heading), "--help lacks {heading}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", out.stderr);
        assert!(
            out.stdout.contains("coordinator") && out.stdout.contains("--transport"),
            "{shell}"
        );
    }
    let man = run(&["man"]);
    assert_eq!(man.status.code(), Some(0), "{}", man.stderr);
    assert!(man.stdout.starts_with(".ie") && man.stdout.contains(".TH coordinator 1"), "roff");
}

#[test]
fn a_missing_worker_binary_names_the_build_command() {
    let r = run(&["--n", "100", "--worker-bin", "/nonexistent/worker"]);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("cargo build --release --workspace"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1);
}

#[test]
fn a_non_executable_worker_binary_is_refused() {
    let dir = std::env::temp_dir().join(format!("ipcmap-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "just text").unwrap();
    let r = run(&["--n", "100", "--worker-bin", plain.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("not an executable"), "{}", r.stderr);
}

#[test]
fn a_program_that_is_not_a_worker_fails_the_handshake_quickly() {
    // `true` exits at once; `sleep`-like programs never connect: both are clear errors.
    let r = run(&["--n", "100", "--workers", "2", "--worker-bin", "/bin/true"]);
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("exited before the handshake"), "{}", r.stderr);

    let r = run_with(
        &["--n", "100", "--workers", "1", "--worker-bin", "/bin/cat", "--handshake-timeout", "0.5"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("handshake"), "{}", r.stderr);
}

#[test]
fn a_worker_of_another_protocol_version_is_refused() {
    let r = run_with(
        &["--n", "100", "--workers", "2"],
        &[("IPCMAP_FAULT", "protocol=99")],
        Duration::from_secs(30),
    );
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("protocol v99"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn a_verification_mismatch_would_name_the_index() {
    // The worker binary is real; this checks the coordinator-side message via the library.
    assert!(worker_bin().exists());
    let err = ipcmap::verify::check("split", &[1.0, 2.0], &[1.0, 3.0]).unwrap_err().to_string();
    assert!(err.contains("index 1"), "{err}");
}

/// `coordinator ... | head`: the reader is gone before the report is written, which is no
/// failure of the run: a quiet exit 0, no "error: writing the report" (hyperfine's way).
#[test]
fn a_closed_stdout_ends_quietly() {
    for args in [
        &["--mode", "split", "--n", "20000", "--repeat", "1"][..],
        &["probe", "--workers", "1", "--bytes", "1000"],
    ] {
        let mut child = std::process::Command::new(common::coordinator_bin())
            .args(args)
            .env("IPCMAP_WORKER", worker_bin())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start coordinator");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

/// `mpirun -np 2 coordinator` without `--transport mpi` runs, but says once (rank 0) that
/// each rank is a benchmark of its own.
#[test]
fn a_launcher_without_transport_mpi_gets_a_warning_from_rank_0() {
    let args = ["--mode", "sequential", "--n", "1000", "--repeat", "1"];
    for (rank, warned) in [("0", true), ("1", false)] {
        let env = [("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", rank)];
        let r = run_with(&args, &env, Duration::from_secs(30));
        assert!(r.status.success(), "{}", r.stderr);
        assert_eq!(
            r.stderr.contains("without --transport mpi"),
            warned,
            "rank {rank}: {}",
            r.stderr
        );
    }
    let r = run(&args);
    assert!(!r.stderr.contains("--transport mpi"), "{}", r.stderr);
}

#[test]
fn min_and_max_runs_bound_the_automatic_plan() {
    let r = common::run_json(&[
        "--mode",
        "sequential",
        "--n",
        "1000",
        "--min-runs",
        "2",
        "--max-runs",
        "2",
    ]);
    assert_eq!(r[0]["runs_ms"].as_array().unwrap().len(), 2, "{}", r[0]);
    let r = common::run_json(&["--mode", "sequential", "--n", "1000", "--min-runs", "20"]);
    assert_eq!(r[0]["runs_ms"].as_array().unwrap().len(), 20, "a lone --min-runs raises the most");
}

/// `--reuse-buffers` keeps the private vectors of sequential and the shared regions of shm
/// side by side: a run that fits one set but not both is refused up front, not killed by the
/// kernel's OOM killer halfway (as a sweep at 10^9 was).
#[test]
fn kept_private_and_shared_buffers_both_count_against_memory() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    // 16 bytes a value fit in 70% of what is available; 32 do not.
    let n = (kib * 1024 * 7 / 10 / 16).to_string();
    assert_usage_error(
        &["--mode", "sequential,shm", "--reuse-buffers", "--n", &n, "--no-verify"],
        "needs about",
    );
}
