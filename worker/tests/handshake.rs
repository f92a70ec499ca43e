//! The worker executable on its own: it refuses bad command lines and other protocol versions
//! with one line, and never panics. (Building this test also builds the `worker` binary that
//! the coordinator's tests spawn.)

use std::process::Command;

fn worker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_worker")).args(args).output().expect("run worker")
}

#[test]
fn run_by_hand_it_explains_itself() {
    let out = worker(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("started by the coordinator"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1);
}

#[test]
fn another_protocol_version_is_refused_with_its_own_exit_code() {
    let out = worker(&["--connect", "/nonexistent", "--worker-id", "0", "--protocol", "999"]);
    assert_eq!(out.status.code(), Some(ipcmap::worker::EXIT_PROTOCOL));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours = format!("protocol v{}", ipcmap::protocol::PROTOCOL_VERSION);
    assert!(stderr.contains(&ours) && stderr.contains("v999"), "{stderr}");
}

#[test]
fn an_unreachable_coordinator_is_an_error_not_a_panic() {
    let version = ipcmap::protocol::PROTOCOL_VERSION.to_string();
    let out =
        worker(&["--connect", "/nonexistent/socket", "--worker-id", "0", "--protocol", &version]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connecting"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
