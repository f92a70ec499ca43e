//! The run folder: one directory per coordinator process, `$TMPDIR/ipcmap-<pid>`, that holds
//! everything a run leaves on disk: ipc-channel's one-shot handshake sockets (it makes them in
//! the temporary directory, which the coordinator points here) and each worker's captured
//! stderr. It is removed on every exit path ([`RunDir`]'s `Drop`); one left by a coordinator
//! killed with SIGKILL is removed by the next coordinator that starts, once its pid is gone.
//!
//! Created before anything is spawned, it is also where the temporary directory is checked:
//! missing, not writable, or too long for a Unix socket path (108 bytes) is refused in one line.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Longest Unix socket path, including the terminating NUL.
const SUN_PATH_MAX: usize = 108;
/// What ipc-channel adds under the temporary directory: `/.tmpXXXXXX/socket`.
const SOCKET_SUFFIX: usize = "/.tmpXXXXXX/socket".len();
/// Prefix of run folder names.
const PREFIX: &str = "ipcmap-";

static CURRENT: OnceLock<PathBuf> = OnceLock::new();

/// The temporary directory cannot hold a run folder.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// It does not exist or is not a directory.
    #[error("TMPDIR {path}: not a usable directory ({reason}); set TMPDIR to an existing, writable directory")]
    Unusable { path: PathBuf, reason: String },
    /// Its path leaves no room for a socket path.
    #[error("TMPDIR {path} is {len} bytes long: handshake sockets under it would pass the {SUN_PATH_MAX}-byte limit of a Unix socket path; use a shorter TMPDIR")]
    TooLong { path: PathBuf, len: usize },
}

/// This process's run folder; removed with everything in it when dropped.
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Checks the temporary directory, removes run folders of dead coordinators, creates this
    /// process's folder and makes it the temporary directory for the rest of the process.
    ///
    /// Call it once, at the start of `main`, before any other thread exists: it sets `TMPDIR`.
    pub fn create() -> Result<RunDir, RunDirError> {
        let base = std::env::temp_dir();
        let meta = std::fs::metadata(&base).map_err(|e| RunDirError::Unusable {
            path: base.clone(),
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(RunDirError::Unusable {
                path: base,
                reason: "not a directory".into(),
            });
        }
        sweep_stale(&base);
        let path = base.join(format!("{PREFIX}{}", std::process::id()));
        let len = path.as_os_str().len() + SOCKET_SUFFIX;
        if len >= SUN_PATH_MAX {
            return Err(RunDirError::TooLong {
                path: base,
                len: base_len(&path),
            });
        }
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // A folder of a dead process that had our pid: start clean.
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir(&path).map_err(|e| unusable(&base, e))?;
            }
            Err(e) => return Err(unusable(&base, e)),
        }
        // SAFETY (of the environment): called before any thread is started.
        std::env::set_var("TMPDIR", &path);
        let _ = CURRENT.set(path.clone());
        Ok(RunDir { path })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The current process's run folder, if [`RunDir::create`] made one.
pub fn current() -> Option<&'static Path> {
    CURRENT.get().map(PathBuf::as_path)
}

fn unusable(base: &Path, e: std::io::Error) -> RunDirError {
    RunDirError::Unusable {
        path: base.to_path_buf(),
        reason: e.to_string(),
    }
}

fn base_len(path: &Path) -> usize {
    path.parent().map_or(0, |p| p.as_os_str().len())
}

/// Removes `ipcmap-<pid>` folders whose process no longer exists (a SIGKILLed coordinator's).
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_folders_of_dead_pids_are_swept_and_live_ones_kept() {
        let base = std::env::temp_dir().join(format!("ipcmap-sweep-test-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        // pid 2^22 + 1 is above the kernel's pid_max limit: never alive.
        let dead = base.join(format!("{PREFIX}{}", (1 << 22) + 1));
        let live = base.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(dead.join(".tmpabc")).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        sweep_stale(&base);
        assert!(!dead.exists());
        assert!(live.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
