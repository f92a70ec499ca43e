//! `scripts/cluster.sh`, the three-host namespace cluster: every variable is checked before it
//! names anything (a prefix with a space or a `$(...)`, a net or slots that are not numbers),
//! and a signal to `cluster.sh run` ends the command and removes the cluster at once.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn script() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/cluster.sh").to_string()
}

#[test]
fn bad_variables_are_refused_before_anything_is_made() {
    for (var, value) in [
        ("CLUSTER_PREFIX", "a b"),
        ("CLUSTER_PREFIX", "x$(touch /tmp/ipcmap-pwned)"),
        ("CLUSTER_NET", "10.77.0; true"),
        ("CLUSTER_NET", "10.300.0"),
        ("CLUSTER_SLOTS", "1 2"),
        ("CLUSTER_SLOTS", "1 x 2"),
        ("CLUSTER_SLOTS", "0 1 1"),
    ] {
        let out =
            Command::new("bash").args([&script(), "status"]).env(var, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{var}={value:?}: {stderr}");
        assert!(
            stderr.starts_with("cluster.sh: ") && stderr.contains(var),
            "{var}={value:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert!(!std::path::Path::new("/tmp/ipcmap-pwned").exists(), "a prefix ran as a command");
}

/// Where namespaces can be made (root): `run` ends within seconds of a signal, its command
/// killed and every namespace removed (it used to wait for the command, 30 s and more).
#[test]
fn a_signal_to_run_ends_the_command_and_removes_the_cluster() {
    let can = Command::new("ip")
        .args(["netns", "add", "ipcmap-ci-probe2"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("ip")
            .args(["netns", "del", "ipcmap-ci-probe2"])
            .status()
            .is_ok_and(|s| s.success());
    if !can {
        assert!(std::env::var_os("IPCMAP_REQUIRE_NETNS").is_none(), "namespaces are required here");
        return eprintln!("skipped: no network namespaces here");
    }
    let prefix = format!("ipcsig{}-", std::process::id() % 10_000);
    let marker = format!("{}", 3_000_000 + std::process::id() % 99_999);
    let mut child = Command::new("bash")
        .args([&script(), "run", "sleep", &marker])
        .env("CLUSTER_PREFIX", &prefix)
        .spawn()
        .unwrap();
    let status = |ns: &str| {
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with(ns))
    };
    // Up, and its command started (the cluster is made before the command).
    let running = || {
        Command::new("pgrep")
            .args(["-f", &format!("^sleep {marker}$")])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    };
    assert!(common::eventually(Duration::from_secs(20), running), "up and running");
    let sent = Instant::now();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let ended =
        common::eventually(Duration::from_secs(20), || child.try_wait().ok().flatten().is_some());
    let took = sent.elapsed();
    let _ = child.kill();
    assert!(ended, "cluster.sh run still running {took:?} after SIGTERM");
    assert!(!status(&prefix), "namespaces left behind");
    let left = Command::new("pgrep").args(["-f", &format!("^sleep {marker}$")]).output().unwrap();
    assert!(left.stdout.is_empty(), "its command outlived it");
}
