//! The memory check covers what each strategy really allocates: under a memory cgroup set just
//! below a run's measured peak, the run is refused before it starts (exit 2, one line), never
//! OOM-killed halfway with no word and its run folder left behind. Where this machine lets the
//! test make a memory cgroup (root, the v1 memory controller or v2): one test per strategy, and
//! item with pickle, whose items take 12 bytes.

mod common;

use std::path::PathBuf;
use std::process::Command;

/// A memory cgroup of this test's own, removed when dropped.
struct Group(PathBuf, &'static str);

impl Group {
    fn make(name: &str) -> Option<Group> {
        let (root, limit) = match () {
            _ if std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() => {
                ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
            }
            _ if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() => {
                ("/sys/fs/cgroup", "memory.max")
            }
            _ => return None,
        };
        let dir = PathBuf::from(root).join(format!("ipcmap-test-{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let group = Group(dir, limit);
        group.limit(u64::MAX >> 2)?;
        Some(group)
    }

    fn limit(&self, bytes: u64) -> Option<()> {
        std::fs::write(self.0.join(self.1), bytes.to_string()).ok()
    }

    /// The peak memory charged to the group so far (v1's max_usage, v2's peak).
    fn peak(&self) -> u64 {
        ["memory.max_usage_in_bytes", "memory.peak"]
            .iter()
            .find_map(|f| std::fs::read_to_string(self.0.join(f)).ok()?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The coordinator with `args`, started inside the group: its exit code and stderr.
    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let procs = self.0.join("cgroup.procs");
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("echo $$ > {} && exec \"$0\" \"$@\"", procs.display()))
            .arg(common::coordinator_bin())
            .args(args)
            .env("IPCMAP_WORKER", common::worker_bin())
            .output()
            .expect("bash");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Runs `args` unlimited and measures its peak, then again under 90% of it: refused up front.
fn refused_below_its_peak(name: &str, args: &[&str]) {
    let Some(group) = Group::make(name) else {
        return eprintln!("skipped: no memory cgroup can be made here (not root?)");
    };
    let (code, stderr) = group.run(args);
    assert_eq!(code, Some(0), "{name}: {stderr}");
    let peak = group.peak();
    assert!(peak > 0, "{name}: no peak read");
    group.limit(peak / 10 * 9).expect("set the limit");
    let (code, stderr) = group.run(args);
    assert_eq!(
        code,
        Some(2),
        "{name} under {} MiB (its peak {} MiB): {stderr}",
        (peak * 9 / 10) >> 20,
        peak >> 20
    );
    assert!(stderr.contains("needs about"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

common::per_entry!(for_each_strategy, a_run_is_refused_below_its_real_peak);
fn a_run_is_refused_below_its_real_peak(mode: &str) {
    if common::runs_here(mode) {
        let args = [
            "--mode", mode, "-w", "2", "--n", "4000000", "-r", "1", "--warmup", "0", "--format",
            "json",
        ];
        refused_below_its_peak(mode, &args);
    }
}

#[test]
fn item_with_pickle_is_refused_below_its_real_peak() {
    let args = [
        "--mode", "item", "--codec", "pickle", "-w", "2", "--n", "4000000", "-r", "1", "--warmup",
        "0", "--format", "json",
    ];
    refused_below_its_peak("item-pickle", &args);
}
