//! Nothing leaks: many runs inside one process keep its descriptors, threads and memory flat,
//! leave no zombie, and leave nothing in /dev/shm or /tmp. One test in this file, so no other
//! test of this binary creates files at the same time.

mod common;

use common::{children_of, eventually, worker_bin};
use ipcmap::config::RunRequest;
use ipcmap::settings::TransportKind;
use ipcmap::strategy::Mode;
use std::time::Duration;

fn count(dir: &str, prefix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count()
        })
        .unwrap_or(0)
}

fn open_fds() -> usize {
    count("/proc/self/fd", "")
}

fn threads() -> usize {
    count("/proc/self/task", "")
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn run(repeat: usize, fault: Option<&str>) {
    match fault {
        Some(f) => std::env::set_var("IPCMAP_FAULT", f),
        None => std::env::remove_var("IPCMAP_FAULT"),
    }
    let cfg = RunRequest {
        settings: ipcmap::settings::Settings {
            n: 2000,
            worker_bin: Some(worker_bin()),
            ..ipcmap::settings::Settings::default()
        },
        modes: Mode::available(TransportKind::default()),
        workers: Some(2),
        splits: Some(8),
        repeat: Some(repeat),
        warmup: Some(0),
        ..RunRequest::default()
    }
    .validate()
    .expect("valid request");
    let reports = ipcmap::engine::run(&cfg, |_, _| {}).expect("runs succeed");
    assert!(reports.iter().all(|r| r.verified == Some(true)));
}

#[test]
fn two_hundred_runs_leave_nothing_behind() {
    let tmp_before = count(std::env::temp_dir().to_str().unwrap(), ".tmp");
    let shm_before = count("/dev/shm", "");
    run(1, None); // first use sets up what lives for the whole process
    let (fds, tasks, rss) = (open_fds(), threads(), rss_kib());

    run(200, None);
    run(3, Some("exit-after=1@0")); // killed workers clean up too

    let me = std::process::id();
    assert!(
        eventually(Duration::from_secs(3), || open_fds() == fds && threads() == tasks),
        "fds {fds} -> {}, threads {tasks} -> {}",
        open_fds(),
        threads()
    );
    assert!(children_of(me).is_empty(), "children (zombies?) left: {:?}", children_of(me));
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB over 200 runs");
    assert_eq!(count("/dev/shm", ""), shm_before, "/dev/shm changed");
    assert_eq!(count(std::env::temp_dir().to_str().unwrap(), ".tmp"), tmp_before, "temp dirs left");
    std::env::remove_var("IPCMAP_FAULT");

    // A coordinator SIGKILLed in the middle of an shm run: its workers go, nothing stays.
    let mut child = std::process::Command::new(common::coordinator_bin())
        .args(["--mode", "shm", "--workers", "2", "--n", "1000000", "--format", "json"])
        .env("IPCMAP_WORKER", worker_bin())
        .env("IPCMAP_FAULT", "hang-after=1@0") // keeps the run going until we kill it
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start coordinator");
    let mut workers = Vec::new();
    assert!(eventually(Duration::from_secs(20), || {
        workers = children_of(child.id()).into_iter().map(|(p, _)| p).collect();
        workers.len() == 2
    }));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL the coordinator");
    let _ = child.wait();
    assert!(
        eventually(Duration::from_secs(2), || workers.iter().all(|&p| !common::is_running(p))),
        "workers outlived their coordinator: {workers:?}"
    );
    assert_eq!(count("/dev/shm", ""), shm_before, "/dev/shm changed after a killed shm run");
    assert_eq!(
        count(std::env::temp_dir().to_str().unwrap(), ".tmp"),
        tmp_before,
        "temp dirs left after a kill"
    );
}
