//! Hostile cases, round two: a hung worker costs a deadline, not the run; counts are bounded;
//! signals are honoured in every phase; outputs are checked before the work and written
//! through; the environment is checked before spawning; workers' stderr is captured; nothing
//! is left behind. Real processes, bounded waits, and no test asserts a duration.

mod common;

use common::{
    assert_one_line_error, coordinator_bin, eventually, has_children, never_connecting, run_with,
    scratch, script, signalled, worker_bin, Run,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_with(args, env, LIMIT)
}

/// A cold split run of 20,000 values on 2 workers with `fault` injected, plus `extra` flags.
fn split_with_fault(fault: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--mode", "split", "--workers", "2", "--n", "20000", "--cold"];
    args.extend_from_slice(extra);
    run(&args, &[("IPCMAP_FAULT", fault)])
}

fn json(r: &Run) -> serde_json::Value {
    assert!(r.status.success(), "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).expect("one JSON report")
}

// 1. A hung worker

#[test]
fn a_worker_that_stops_answering_is_killed_at_the_deadline_and_its_tasks_rerun() {
    for mode in ["split", "shm", "item"] {
        let r = run(
            &[
                "--mode",
                mode,
                "--workers",
                "2",
                "--n",
                "20000",
                "--task-timeout",
                "1",
                "--cold",
                "--format",
                "json",
            ],
            &[("IPCMAP_FAULT", "hang-after=1@0")],
        );
        let report = json(&r);
        assert_eq!(report["verified"], true, "{mode}");
        let failure = &report["worker_failures"][0];
        assert_eq!(failure["worker"], 0, "{mode}: {report}");
        let reason = failure["reason"].as_str().unwrap();
        assert!(reason.contains("no result for task"), "{mode}: {reason}");
        assert!(failure["tasks_rerun"].as_u64().unwrap() >= 1);
        // Killed and reaped: the hung process is gone.
        let pid = failure["pid"].as_u64().unwrap() as u32;
        assert!(!common::is_running(pid), "{mode}: worker {pid} still runs");
    }
}

#[test]
fn the_default_deadline_ends_a_hang_too() {
    let r = split_with_fault("hang-after=1@1", &["--format", "json"]);
    let report = json(&r);
    assert_eq!(report["verified"], true);
    assert!(report["worker_failures"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("task deadline 5.0 s"));
}

#[test]
fn a_hang_under_abort_stops_the_run_with_one_line() {
    let r =
        split_with_fault("hang-after=1@0", &["--task-timeout", "1", "--on-worker-exit", "abort"]);
    assert_one_line_error(&r, 1, "no result for task");
    assert!(r.stdout.is_empty());
}

// 2. Counts the command line accepts

#[test]
fn every_count_has_an_upper_bound() {
    for (args, needle) in [
        (&["--mode", "threads", "--n", "1000", "--warmup", "18446744073709551615"][..], "--warmup"),
        (&["--repeat", "18446744073709551615"][..], "--repeat"),
        (&["--repeat", "1000000000000"][..], "--repeat"),
        (&["--work", "4000000000"][..], "--work"),
        (&["probe", "--bytes", "1000000000000"][..], "--bytes"),
        (&["--task-timeout=-1"][..], "--task-timeout"),
        (&["--decode-threads", "1000"][..], "--decode-threads"),
        (&["--decode-threads=-1"][..], "--decode-threads"),
        (&["--frame-bytes", "100"][..], "--frame-bytes"),
        (&["sweep", "--frame-bytes", "0,2000000000"][..], "--frame-bytes"),
    ] {
        let r = run(args, &[]);
        assert_one_line_error(&r, 2, needle);
    }
}

#[test]
fn a_huge_sweep_is_refused_before_it_is_expanded() {
    let hundred: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    let list = hundred.join(",");
    let r = run(&["sweep", "--workers", &list, "--splits", &list, "--chunksize", &list], &[]);
    assert_one_line_error(&r, 2, "1000000 configurations");
}

// 3. Signals

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|t| t.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

#[test]
fn sigint_during_the_handshake_stops_a_never_connecting_worker_at_once() {
    let dir = scratch("handshake-int");
    let sleeper = dir.join("sleeper.sh");
    script(&sleeper, "sleep 1000");
    let r = signalled(&never_connecting(&sleeper, "100000"), &[], "-INT", has_children);
    assert_one_line_error(&r, 130, "interrupted");
    // The script's own `sleep` child went with its process group.
    assert!(eventually(Duration::from_secs(5), || common::children_of(r.pid).is_empty()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_stops_long_sequential_and_thread_computes_without_a_report() {
    for args in [
        &["--mode", "sequential", "--n", "100000", "--work", "30000"][..],
        &["--mode", "threads", "--n", "100000", "--work", "100000", "--cold"][..],
    ] {
        // Ready once it has burnt some CPU in the compute.
        let r = signalled(args, &[], "-TERM", |pid| cpu_seconds(pid) > 0.3);
        assert_one_line_error(&r, 143, "interrupted by signal 15");
        assert!(r.stdout.is_empty(), "a report after SIGTERM: {}", r.stdout);
    }
}

#[test]
fn sigint_with_a_hung_worker_reaps_it_without_waiting_out_a_grace() {
    let r = signalled(
        &["--mode", "split", "--workers", "2", "--n", "20000", "--cold", "--task-timeout", "0"],
        &[("IPCMAP_FAULT", "hang-after=1@0")],
        "-INT",
        |pid| common::children_of(pid).len() == 2,
    );
    assert_one_line_error(&r, 130, "interrupted");
    assert!(eventually(Duration::from_secs(5), || common::children_of(r.pid).is_empty()));
}

// 4. Outputs

#[test]
fn unusable_outputs_are_refused_before_the_work() {
    let dir = scratch("outputs");
    let r = run(&["sweep", "--n", "1000", "--workers", "1,2", "--csv", dir.to_str().unwrap()], &[]);
    assert_one_line_error(&r, 2, "is a directory");
    let r = run(&["--n", "1000", "--plot", dir.to_str().unwrap()], &[]);
    assert_one_line_error(&r, 2, "is a directory");
    let r = run(&["sweep", "--n", "1000", "--workers", "1,2", "--csv", "/nonexistent/x.csv"], &[]);
    assert_one_line_error(&r, 2, "folder /nonexistent does not exist");
    // Not a regular file (a device, a FIFO): refused before the work, never opened.
    if Path::new("/dev/full").exists() {
        for flag in ["--csv", "--json", "--plot"] {
            let r = run(&["sweep", "--n", "1000", "--workers", "1,2", flag, "/dev/full"], &[]);
            assert_one_line_error(&r, 2, "not a regular file");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failed_run_leaves_no_output_file_behind() {
    let dir = scratch("no-partial");
    let csv = dir.join("out.csv");
    let r = run(
        &[
            "sweep",
            "--mode",
            "split",
            "--n",
            "20000",
            "--workers",
            "2,3",
            "--cold",
            "--on-worker-exit",
            "abort",
            "--csv",
            csv.to_str().unwrap(),
        ],
        &[("IPCMAP_FAULT", "exit-after=1@0")],
    );
    assert_eq!(r.status.code(), Some(1), "{}", r.stderr);
    assert!(!csv.exists(), "a partial {} was left", csv.display());
    let _ = std::fs::remove_dir_all(dir);
}

// 5. The environment

#[test]
fn a_missing_or_too_long_tmpdir_is_refused_in_one_line() {
    let r = run(&["--n", "1000"], &[("TMPDIR", "/nonexistent")]);
    assert_one_line_error(&r, 2, "TMPDIR /nonexistent");
    let long = scratch(&"d".repeat(90));
    let r = run(&["--n", "1000"], &[("TMPDIR", long.to_str().unwrap())]);
    assert_one_line_error(&r, 2, "108-byte limit");
    assert_eq!(std::fs::read_dir(&long).unwrap().count(), 0, "nothing left in it");
    let _ = std::fs::remove_dir_all(long);
}

#[test]
fn resource_limits_are_checked_before_spawning() {
    let bin = coordinator_bin();
    let bin = bin.to_str().unwrap();
    let worker = worker_bin();
    let worker = worker.to_str().unwrap();
    for (limit, args, needle) in [
        ("ulimit -Sn 64 && ulimit -Hn 64", "--n 1000 --workers 64 --mode split", "ulimit -n"),
        ("ulimit -v 200000", "--mode all", "available"),
    ] {
        let out = Command::new("bash")
            .args(["-c", &format!("{limit}; IPCMAP_WORKER={worker} exec {bin} {args}")])
            .output()
            .unwrap();
        let r = Run {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
            pid: 0,
        };
        assert_one_line_error(&r, 2, needle);
    }
}

#[test]
fn a_closed_stderr_or_a_full_stdout_is_no_panic() {
    let bin = coordinator_bin();
    let bin = bin.to_str().unwrap();
    let out = Command::new("bash")
        .args(["-c", &format!("{bin} --n 1000 --bogus 2>&-")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    if Path::new("/dev/full").exists() {
        let worker = worker_bin();
        let out = Command::new("bash")
            .args([
                "-c",
                &format!("IPCMAP_WORKER={} {bin} probe --workers 1 >/dev/full", worker.display()),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("No space left") && !stderr.contains("panicked"), "{stderr}");
    }
}

// 6. Worker noise and the wrong binary

#[test]
fn a_successful_probe_is_silent_and_a_panicking_worker_is_one_line_in_the_report() {
    let r = run(&["probe", "--workers", "2"], &[]);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(r.stderr, "", "a clean probe says nothing on stderr");
    let r = split_with_fault("panic-after=1@0", &["--format", "json"]);
    let report = json(&r);
    assert!(!r.stderr.contains("panicked"), "the worker's trace leaked: {}", r.stderr);
    let reason = report["worker_failures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("panicked: injected fault"), "{reason}");
    let verbose = split_with_fault("panic-after=1@0", &["--verbose"]);
    assert!(verbose.stderr.contains("injected fault"), "{}", verbose.stderr);
}

#[test]
fn a_bare_worker_name_runs_exactly_the_file_that_was_checked() {
    let dir = scratch("bare-name");
    std::fs::copy(worker_bin(), dir.join("worker")).unwrap();
    let decoy = dir.join("path");
    std::fs::create_dir_all(&decoy).unwrap();
    script(&decoy.join("worker"), "exit 7");
    let mut cmd = Command::new(coordinator_bin());
    let out = cmd
        .args([
            "--n",
            "1000",
            "--mode",
            "split",
            "--workers",
            "1",
            "--cold",
            "--worker-bin",
            "worker",
        ])
        .current_dir(&dir)
        .env("PATH", &decoy)
        .env_remove("IPCMAP_WORKER")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

// 7. Leftovers

#[test]
fn a_sigkilled_handshake_leaves_a_run_folder_that_the_next_run_removes() {
    let tmp = scratch("killed-handshake");
    let sleeper = tmp.join("sleeper.sh");
    script(&sleeper, "exec sleep 1000");
    let tmpdir = tmp.join("t");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let tmpdir_s = tmpdir.to_str().unwrap().to_string();
    signalled(&never_connecting(&sleeper, "1000"), &[("TMPDIR", &tmpdir_s)], "-KILL", has_children);
    let folders: Vec<_> = std::fs::read_dir(&tmpdir).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(folders.len(), 1, "the killed run's folder should be there");
    let folder = &folders[0];
    assert!(folder.file_name().unwrap().to_string_lossy().starts_with("ipcmap-"));
    let next = run(&["--n", "1000", "--mode", "threads", "--cold"], &[("TMPDIR", &tmpdir_s)]);
    assert!(next.status.success(), "{}", next.stderr);
    assert!(!folder.exists(), "the next run removes a dead run's folder");
    assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0);
    let _ = Command::new("pkill").args(["-f", sleeper.to_str().unwrap()]).status();
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn ctrl_c_during_probe_exits_130_and_leaves_nothing() {
    let tmpdir = scratch("probe-int");
    let tmpdir_s = tmpdir.to_str().unwrap().to_string();
    let r = signalled(&["probe", "--workers", "2"], &[("TMPDIR", &tmpdir_s)], "-INT", has_children);
    assert_one_line_error(&r, 130, "interrupted");
    assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0, "TMPDIR is left empty");
    let _ = std::fs::remove_dir_all(tmpdir);
}

/// A worker's stderr is shown, never obeyed: the escapes it writes (a window title, clear the
/// screen, write the clipboard, a bell) reach the terminal escaped, in the error line and in
/// `--verbose`'s copy of its stderr.
#[test]
fn a_workers_terminal_escapes_are_shown_escaped() {
    let dir = scratch("escapes");
    let bin = dir.join("noisy-worker");
    script(
        &bin,
        r"printf '\033]0;owned\007\033[2J\033]52;c;aGk=\007\033[31mbad worker\n' >&2; exit 3",
    );
    let bin = bin.to_str().unwrap();
    for verbose in [false, true] {
        let mut args = vec!["--worker-bin", bin, "--mode", "split", "-w", "2", "--n", "1000"];
        if verbose {
            args.push("--verbose");
        }
        let r = run(&args, &[]);
        assert_ne!(r.status.code(), Some(0), "{}", r.stderr);
        for c in ['\u{1b}', '\u{7}', '\u{9b}'] {
            assert!(
                !r.stderr.contains(c) && !r.stdout.contains(c),
                "{c:?} got through: {:?}",
                r.stderr
            );
        }
        assert!(r.stderr.contains(r"\u{1b}"), "shown escaped: {:?}", r.stderr);
        assert!(r.stderr.contains("bad worker"), "{:?}", r.stderr);
        // It said why it ended: its words are the reason, not a guess about the build.
        assert!(!r.stderr.contains("of this build"), "{:?}", r.stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An output path that names a folder (a trailing slash) is refused before the run, exit 2.
#[test]
fn an_output_that_names_a_folder_is_refused_before_the_run() {
    for flag in ["--export-json", "--export-csv", "--export-html", "--trace", "--timeline"] {
        let r = run(&["--mode", "split", "-w", "2", "--n", "1000", flag, "no-such-dir/"], &[]);
        assert_one_line_error(&r, 2, "names a folder");
    }
}

/// Whatever a worker starts ends with the run: a `--worker-bin` that starts a process of its
/// own in a new session (`setsid`, out of the worker's process group) before it becomes the
/// worker leaves nothing running once the coordinator has exited, and the report says what
/// bound it.
#[test]
fn what_a_worker_starts_ends_with_the_run() {
    let dir = scratch("descendants");
    let bin = dir.join("worker-with-a-child");
    let marker = format!("{}", 900_000 + std::process::id() % 99_999);
    script(
        &bin,
        &format!(
            "setsid sleep {marker} </dev/null >/dev/null 2>&1 &\nsleep {marker}1 &\nexec {} \"$@\"",
            worker_bin().display()
        ),
    );
    let r = run(
        &[
            "--worker-bin",
            bin.to_str().unwrap(),
            "--mode",
            "split",
            "-w",
            "2",
            "--n",
            "2000",
            "-r",
            "1",
            "--format",
            "json",
        ],
        &[],
    );
    let report = json(&r);
    assert_eq!(report["descendants_bound_by"], "child subreaper", "{report}");
    let left = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
            })
            .count()
    };
    assert!(
        eventually(Duration::from_secs(5), || left() == 0),
        "{} processes outlived the run",
        left()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
