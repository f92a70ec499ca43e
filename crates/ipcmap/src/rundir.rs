//! The run folder: one private directory per coordinator process, `$TMPDIR/ipcmap-XXXXXXXXXX`
//! (an unpredictable name, mode 0700 whatever the umask), that holds everything a run leaves
//! on disk: the handshake sockets of the local transport and each worker's captured stderr.
//! Nothing of another user can be reached in it or planted in it, and everything in it is
//! created with `O_EXCL`/`O_NOFOLLOW` ([`create_private`]).
//!
//! It is removed on every exit path ([`RunDir`]'s `Drop`). A folder left by a coordinator
//! killed with SIGKILL is removed by the next coordinator of the same user, and only when it
//! provably belongs to a dead run: the folder is ours (same uid, a real directory, not a
//! link), and its `lock` file, which a live coordinator holds an `flock` on for its whole
//! life, can be locked. A pid is never taken as proof of death: it may be another user's, or
//! live in another PID namespace sharing this `/tmp`.
//!
//! Created before anything is spawned, it is also where the temporary directory is checked:
//! missing, not writable, or too long for a Unix socket path (108 bytes) is refused in one line.
//! A run whose folder disappears under it fails with one line naming the folder
//! ([`check`]).

use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Longest Unix socket path, including the terminating NUL.
const SUN_PATH_MAX: usize = 108;
/// The longest path a run places under its folder: ipc-channel's `/.tmpXXXXXX/socket`.
const SOCKET_SUFFIX: usize = "/.tmpXXXXXX/socket".len();
/// Prefix of run folder names.
const PREFIX: &str = "ipcmap-";
/// Random characters after the prefix.
const RANDOM: usize = 10;
/// The file a live coordinator holds locked.
const LOCK: &str = "lock";

static CURRENT: OnceLock<Current> = OnceLock::new();

struct Current {
    path: PathBuf,
    /// Device and inode of the folder as created, to tell it from one made in its place.
    id: (u64, u64),
}

/// The temporary directory cannot hold a run folder, or the folder went away.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// It does not exist or is not a directory.
    #[error("TMPDIR {path}: not a usable directory ({reason}); set TMPDIR to an existing, writable directory")]
    Unusable { path: PathBuf, reason: String },
    /// Its path leaves no room for a socket path.
    #[error("TMPDIR {path} is {len} bytes long: handshake sockets under it would pass the {SUN_PATH_MAX}-byte limit of a Unix socket path; use a shorter TMPDIR")]
    TooLong { path: PathBuf, len: usize },
    /// The run folder was removed (or replaced) while the run used it.
    #[error("the run folder {path} was removed while this run was using it (by hand, or by a clean-up that does not check whether a run is alive)")]
    Vanished { path: PathBuf },
}

/// This process's run folder; removed with everything in it when dropped.
pub struct RunDir {
    path: PathBuf,
    /// Holds the folder's `flock` for as long as this process lives.
    _lock: Flock<File>,
}

impl RunDir {
    /// Checks the temporary directory, removes run folders of this user's dead coordinators,
    /// creates this process's folder and makes it the temporary directory for the rest of the
    /// process.
    ///
    /// Call it once, at the start of `main`, before any other thread exists: it sets `TMPDIR`.
    pub fn create() -> Result<RunDir, RunDirError> {
        let base = std::env::temp_dir();
        let meta = std::fs::metadata(&base).map_err(|e| unusable(&base, e))?;
        if !meta.is_dir() {
            return Err(RunDirError::Unusable { path: base, reason: "not a directory".into() });
        }
        let len = base.as_os_str().len() + 1 + PREFIX.len() + RANDOM + SOCKET_SUFFIX;
        if len >= SUN_PATH_MAX {
            return Err(RunDirError::TooLong { len: base.as_os_str().len(), path: base });
        }
        sweep_stale(&base);
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .rand_bytes(RANDOM)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|e| unusable(&base, e))?;
        let path = dir.keep();
        let made = (|| {
            // The umask may have taken bits away (it cannot add any): make it exactly 0700.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
            let lock = lock_new(&path)?;
            let meta = std::fs::symlink_metadata(&path)?;
            Ok::<_, std::io::Error>((lock, (meta.dev(), meta.ino())))
        })();
        let (lock, id) = match made {
            Ok(made) => made,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                return Err(unusable(&base, e));
            }
        };
        // SAFETY (of the environment): called before any thread is started.
        std::env::set_var("TMPDIR", &path);
        let _ = CURRENT.set(Current { path: path.clone(), id });
        Ok(RunDir { path, _lock: lock })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // Only the folder we made: one put in its place is someone else's.
        if check().is_ok() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The current process's run folder, if [`RunDir::create`] made one.
pub fn current() -> Option<&'static Path> {
    CURRENT.get().map(|c| c.path.as_path())
}

/// Errors when this process has a run folder and it is no longer there (or is another one).
pub fn check() -> Result<(), RunDirError> {
    let Some(current) = CURRENT.get() else {
        return Ok(());
    };
    match std::fs::symlink_metadata(&current.path) {
        Ok(meta) if meta.is_dir() && (meta.dev(), meta.ino()) == current.id => Ok(()),
        _ => Err(RunDirError::Vanished { path: current.path.clone() }),
    }
}

/// Whether this process's run folder is gone, or goes within `wait` (checked every 5 ms): for
/// an error that a removal caught halfway may have caused, so that it names the removal.
pub fn vanished_within(wait: std::time::Duration) -> Option<RunDirError> {
    let until = std::time::Instant::now() + wait;
    loop {
        if let Err(vanished) = check() {
            return Some(vanished);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Creates `path` as a new file only this user can read and write: never an existing file,
/// never through a symbolic link, whatever the umask.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Makes the folder's lock file, already locked: it is created under a temporary name, locked,
/// then renamed into place, so a sweeper never sees an unlocked `lock` of a live run.
fn lock_new(dir: &Path) -> std::io::Result<Flock<File>> {
    let staging = dir.join(".lock-new");
    let file = flock_nb(create_private(&staging)?)?;
    std::fs::rename(&staging, dir.join(LOCK))?;
    Ok(file)
}

fn flock_nb(file: File) -> std::io::Result<Flock<File>> {
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e.into())
}

fn unusable(base: &Path, e: std::io::Error) -> RunDirError {
    RunDirError::Unusable { path: base.to_path_buf(), reason: e.to_string() }
}

/// Removes run folders of this user's coordinators that are provably dead: a real directory
/// of ours whose lock file exists and can be locked. Anything else is left alone: another
/// user's folder, a link, a folder without a lock (being made, or of an older ipcmap), one
/// whose lock is held.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(PREFIX)) {
            continue;
        }
        let path = entry.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if !ours {
            continue;
        }
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path.join(LOCK));
        let Ok(lock) = lock else {
            continue;
        };
        let owned = lock.metadata().is_ok_and(|m| m.is_file() && m.uid() == me);
        if owned && flock_nb(lock).is_ok() {
            // Dead: its coordinator no longer holds the lock. Removed while we hold it, so a
            // second sweeper cannot be halfway through it too.
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let base = std::env::temp_dir().join(format!("ipcmap-{name}-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        base
    }

    #[test]
    fn only_folders_whose_lock_is_free_are_swept() {
        let base = scratch("sweep");
        // Dead: a lock nobody holds.
        let dead = base.join(format!("{PREFIX}dead"));
        std::fs::create_dir_all(dead.join(".tmpabc")).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        // Alive: its lock is held (by this test, as a live coordinator would).
        let live = base.join(format!("{PREFIX}live"));
        std::fs::create_dir_all(&live).unwrap();
        let held = lock_new(&live).unwrap();
        // No lock: being made, or not ours to judge. Named like a pid that does not exist:
        // a pid is no proof of anything.
        let unlocked = base.join(format!("{PREFIX}{}", (1 << 22) + 1));
        std::fs::create_dir_all(&unlocked).unwrap();
        // A link that looks like a dead run's folder is not followed.
        let target = base.join("target");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join(LOCK), b"").unwrap();
        std::os::unix::fs::symlink(&target, base.join(format!("{PREFIX}link"))).unwrap();

        sweep_stale(&base);
        assert!(!dead.exists());
        assert!(live.join(LOCK).exists());
        assert!(unlocked.exists());
        assert!(target.join(LOCK).exists());
        drop(held);
        sweep_stale(&base);
        assert!(!live.exists(), "its lock was let go: a dead run");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn private_files_are_new_0600_and_never_follow_a_link() {
        let base = scratch("private");
        let path = base.join("f");
        let file = create_private(&path).unwrap();
        let mode = file.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(create_private(&path).is_err(), "an existing file is refused");
        let victim = base.join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(create_private(&link).is_err(), "a planted link is refused");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
