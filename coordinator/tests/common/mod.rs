//! Helpers for tests that run the real `coordinator` and `worker` executables.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every time bound in these helpers ([`run_with`], [`eventually`]) catches a hang; none
/// measures speed. A test states what a quiet machine needs at most, and the helpers allow
/// this many times that: the suite runs in the debug profile, on 2 cores, beside other work
/// (a load of 5-10 stretched runs 3-4x), and a hang is still caught, only later.
pub const SLACK: u32 = 5;

/// One `#[test]` per entry of an ipcmap registry for a behaviour of the test file, `fn
/// behaviour(entry: &str)`: `per_entry!(for_each_codec, behaviour);` makes `behaviour::bincode`,
/// `behaviour::raw` ... from the registry's own list (nothing here names an entry). So `cargo
/// test uds` runs every behaviour over uds, a failure names its entry, and one failing entry
/// hides none of the others.
#[allow(unused_macros)] // each test binary compiles its own copy of common
macro_rules! per_entry {
    ($registry:ident, $behaviour:ident) => {
        ipcmap::$registry!(crate::common::tests_per_entry!($behaviour));
    };
}
#[allow(unused_imports)]
pub(crate) use per_entry;

/// [`per_entry!`]'s callback: a module named for the behaviour, a test named for each entry.
#[allow(unused_macros)]
macro_rules! tests_per_entry {
    ([$behaviour:ident] $($name:ident => $value:expr),* $(,)?) => {
        mod $behaviour {
            $(
                #[test]
                fn $name() {
                    super::$behaviour(stringify!($name))
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use tests_per_entry;

/// Whether strategy `mode` runs over the default transport on this machine; where it does not
/// (a strategy that needs MPI), a note says its test is skipped.
pub fn runs_here(mode: &str) -> bool {
    let default = ipcmap::settings::TransportKind::default();
    let runs = ipcmap::strategy::Mode::available(default).iter().any(|m| m.name() == mode);
    if !runs {
        eprintln!("skipped: {mode} does not run over the default transport on this machine");
    }
    runs
}

/// Whether `transport` spawns its workers and this build has it; where not (mpi, launched by
/// mpirun: tests/mpi.rs), a note says its test is skipped.
pub fn spawns_here(transport: &str) -> bool {
    let spawns = spawning_transports().contains(&transport);
    if !spawns {
        eprintln!("skipped: {transport} does not spawn its workers here (see tests/mpi.rs)");
    }
    spawns
}

/// Every transport of the registry that spawns its workers and this build has, in order: what
/// the behaviour tests run over.
pub fn spawning_transports() -> Vec<&'static str> {
    ipcmap::settings::TransportKind::all()
        .filter(|t| t.spawns() && t.transport().is_ok())
        .map(|t| t.name())
        .collect()
}

/// The coordinator executable built for these tests.
pub fn coordinator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_coordinator"))
}

/// The worker executable beside it: `ipcmap-worker`, a binary of the coordinator's own
/// package, so cargo builds it fresh for these tests (`cargo test -p coordinator` too).
pub fn worker_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ipcmap-worker"))
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
    let limit = limit * SLACK;
    let mut cmd = Command::new(coordinator_bin());
    cmd.args(args).env("IPCMAP_WORKER", worker_bin()).env_remove("IPCMAP_FAULT");
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
    assert!(r.status.success(), "coordinator {all:?} failed: {}", r.stderr);
    r.stdout.lines().map(|l| serde_json::from_str(l).expect("each line is a JSON object")).collect()
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
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The run folders (`ipcmap-*`) in `dir`.
pub fn run_folders(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("ipcmap-")).count()
    })
}

/// The pids of this machine's processes running the coordinator under test whose environment
/// holds every one of `vars` (`NAME=value`): a launched job's ranks, told apart from other
/// tests' jobs by a mark of their own.
pub fn coordinators_with(vars: &[&str]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let set: Vec<&[u8]> = env.split(|&b| b == 0).collect();
            exe == coordinator_bin() && vars.iter().all(|v| set.contains(&v.as_bytes()))
        })
        .collect()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit * SLACK;
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

/// A fresh folder for this test, removed by the caller.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ipcmap-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An executable shell script at `path`.
pub fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Asserts a failed run: exit `code`, one line on stderr, starting `error: ` and holding `needle`.
pub fn assert_one_line_error(r: &Run, code: i32, needle: &str) {
    assert_eq!(r.status.code(), Some(code), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {}", r.stderr);
    assert!(lines[0].starts_with("error: "), "{}", r.stderr);
    assert!(lines[0].contains(needle), "{needle:?} not in {}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

/// Starts the coordinator with `args`, waits until `ready` holds for its pid, sends `signal`,
/// and returns the run.
pub fn signalled(
    args: &[&str],
    env: &[(&str, &str)],
    signal: &str,
    ready: impl Fn(u32) -> bool,
) -> Run {
    let mut cmd = Command::new(coordinator_bin());
    cmd.args(args).env("IPCMAP_WORKER", worker_bin()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    assert!(eventually(Duration::from_secs(30), || ready(pid)), "never ready");
    Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    // A coordinator that ignored the signal would run for minutes: the test's watchdog.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("coordinator {args:?} ignored {signal}");
        }
    };
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        pid,
    }
}

pub fn has_children(pid: u32) -> bool {
    !children_of(pid).is_empty()
}

/// A split run whose worker executable is `sleeper`, a script that never connects.
pub fn never_connecting<'a>(sleeper: &'a Path, handshake_timeout: &'a str) -> [&'a str; 8] {
    let sleeper = sleeper.to_str().expect("a UTF-8 path");
    [
        "--n",
        "1000",
        "--mode",
        "split",
        "--worker-bin",
        sleeper,
        "--handshake-timeout",
        handshake_timeout,
    ]
}
