//! Everything a run starts ends with it, whatever it does: the coordinator is its descendants'
//! reaper (`PR_SET_CHILD_SUBREAPER`), so a process a worker starts and leaves behind (its own
//! child, or one a `--worker-bin` script starts with `setsid`, out of the workers' process
//! groups) becomes the coordinator's child when its parent ends, and is killed and reaped
//! before the coordinator exits. The report says so (`descendants_bound_by`).

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// How long the reaper keeps looking for descendants that are still being handed to it (a
/// worker's child is reparented only once the worker has ended).
const SETTLE: Duration = Duration::from_millis(300);

/// The coordinator as its descendants' reaper, until dropped: then every process still its
/// child is killed and reaped.
pub struct Reaper(bool);

impl Reaper {
    /// Makes this process the reaper of its descendants (a no-op where the kernel refuses).
    pub fn adopt() -> Reaper {
        Reaper(nix::sys::prctl::set_child_subreaper(true).is_ok())
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if !self.0 {
            return;
        }
        let until = Instant::now() + SETTLE;
        loop {
            let strays = children();
            for &pid in &strays {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let mut reaped = false;
            while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                if status == WaitStatus::StillAlive {
                    break;
                }
                reaped = true;
            }
            if strays.is_empty() && !reaped && Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The pids whose parent is this process, from /proc.
fn children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command's closing parenthesis: state, then the parent's pid.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1) == Some(me.as_str())
        })
        .collect()
}
