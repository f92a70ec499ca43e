//! Helpers for tests that run the real `coordinator` and `worker` executables.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The coordinator executable built for these tests.
pub fn coordinator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_coordinator"))
}

/// The worker executable beside it (built by `cargo test --workspace`, which builds the
/// worker package's binary for its own integration tests).
pub fn worker_bin() -> PathBuf {
    let path = coordinator_bin().with_file_name("worker");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// What a finished coordinator run left behind.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub pid: u32,
}

/// Runs the coordinator with `args` (and env), killing it if it takes longer than `limit`:
/// a hang fails the test instead of blocking the suite.
pub fn run_with(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut cmd = Command::new(coordinator_bin());
    cmd.args(args)
        .env("IPCMAP_WORKER", worker_bin())
        .env_remove("IPCMAP_FAULT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start coordinator");
    let pid = child.id();
    let (stdout, stderr) = drain(&mut child);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll coordinator") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "coordinator {args:?} still running after {limit:?}; stderr: {}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        pid,
    }
}

/// Reads `child`'s stdout and stderr on threads while it runs, so that a report bigger than a
/// pipe's 64 KiB never blocks its writer; join them once it has exited.
pub fn drain(child: &mut std::process::Child) -> (JoinHandle<String>, JoinHandle<String>) {
    fn read(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }
    (read(child.stdout.take()), read(child.stderr.take()))
}

/// Runs the coordinator with a one-minute limit.
pub fn run(args: &[&str]) -> Run {
    run_with(args, &[], Duration::from_secs(60))
}

/// Runs with `--format json`, asserts success, returns one report per line.
pub fn run_json(args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let r = run(&all);
    assert!(
        r.status.success(),
        "coordinator {all:?} failed: {}",
        r.stderr
    );
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect()
}

/// Pids whose parent is `parent`, with their state letter (R, S, Z ...), from /proc.
pub fn children_of(parent: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            out.push((pid, state));
        }
    }
    out
}

/// True while `pid` exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
