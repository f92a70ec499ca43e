//! The spawner: finds the worker executable, holds started worker processes, captures their
//! stderr, watches their pids, and makes sure no worker outlives its run. Transport-neutral:
//! the handshake over a channel is the transport's ([`super::local`]).
//!
//! Every [`WorkerProcess`] is killed and reaped when dropped, so an error anywhere never leaves
//! an orphan. A [`Watchdog`] thread watches the pids and reports each exit (code or signal)
//! within milliseconds, without reaping, so the owner still reaps its own children.

use crate::error::SpawnError;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable that overrides where the worker executable is looked for.
pub const WORKER_ENV: &str = "IPCMAP_WORKER";

/// How often the watchdog looks at the worker pids.
const POLL: Duration = Duration::from_millis(5);

/// How long a worker may take to say hello, unless told otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The worker executable's names, in the order they are looked for next to the running one:
/// `ipcmap-worker` (what `cargo install` and the wheel install, and what `cargo test -p
/// coordinator` builds fresh), then `worker` (the workspace's own crate).
pub const WORKER_NAMES: [&str; 2] = ["ipcmap-worker", "worker"];

/// Finds the worker executable: `explicit`, else `$IPCMAP_WORKER`, else the first of
/// [`WORKER_NAMES`] next to the running executable. Checks that it is an executable file.
pub fn locate_worker(explicit: Option<&Path>) -> Result<PathBuf, SpawnError> {
    let path = match (explicit, std::env::var_os(WORKER_ENV)) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let exe = std::env::current_exe().map_err(SpawnError::CurrentExe)?;
            let beside =
                |name: &str| exe.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            WORKER_NAMES
                .iter()
                .map(|n| beside(n))
                .find(|p| p.is_file())
                .unwrap_or_else(|| beside(WORKER_NAMES[0]))
        }
    };
    check_executable(&path)?;
    // Execute exactly what was checked: a bare `worker` would otherwise be looked up on PATH.
    std::fs::canonicalize(&path).map_err(|_| SpawnError::NotFound { path })
}

/// Numbers the stderr files of the workers of this process.
static STDERR_FILES: AtomicUsize = AtomicUsize::new(0);

/// Where a new worker's stderr goes: a fresh private file in the run folder when there is one
/// (the coordinator binary makes one), else the coordinator's own stderr (library use, tests).
/// The file is new (`O_EXCL`), 0600 and never reached through a link.
fn stderr_sink(worker: u32) -> Result<(Stdio, Option<PathBuf>), SpawnError> {
    let Some(dir) = crate::rundir::current() else {
        return Ok((Stdio::inherit(), None));
    };
    crate::rundir::check()?;
    let k = STDERR_FILES.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("worker-{k}.stderr"));
    match crate::rundir::create_private(&path) {
        Ok(file) => Ok((Stdio::from(file), Some(path))),
        Err(source) => {
            crate::rundir::check()?;
            Err(SpawnError::Channel { worker, what: "its stderr file", source })
        }
    }
}

/// The gist of what a worker wrote on stderr: a panic's message, else its last line that is
/// not a note or a backtrace frame; at most 300 characters.
pub fn stderr_gist(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let gist = match lines.iter().position(|l| l.contains("panicked at")) {
        Some(i) => format!("panicked: {}", lines.get(i + 1).copied().unwrap_or("")),
        None => lines
            .iter()
            .rev()
            .find(|l| {
                !l.starts_with("note:")
                    && !l.starts_with("at ")
                    && !l.starts_with(|c: char| c.is_ascii_digit())
            })?
            .to_string(),
    };
    let gist: String = gist.chars().take(300).collect();
    Some(crate::report::printable(&gist).into_owned())
}

/// `gist` without the worker's own "worker N: " at its front: the message it goes into
/// names the worker already.
pub fn without_name(worker: u32, gist: String) -> String {
    match gist.strip_prefix(&format!("worker {worker}: ")) {
        Some(rest) => rest.to_string(),
        None => gist,
    }
}

/// Every stderr file of this process's workers that is not empty, oldest first: (path, text).
pub fn captured_stderr() -> Vec<(PathBuf, String)> {
    let Some(dir) = crate::rundir::current() else {
        return Vec::new();
    };
    (0..STDERR_FILES.load(Ordering::Relaxed))
        .map(|k| dir.join(format!("worker-{k}.stderr")))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            (!text.trim().is_empty()).then_some((p, text))
        })
        .collect()
}

/// Errors unless `path` is a regular file with an execute bit.
pub fn check_executable(path: &Path) -> Result<(), SpawnError> {
    let meta =
        std::fs::metadata(path).map_err(|_| SpawnError::NotFound { path: path.to_path_buf() })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(SpawnError::NotExecutable { path: path.to_path_buf() });
    }
    Ok(())
}

/// A running worker process; killed (with its process group) and reaped when dropped.
pub struct WorkerProcess {
    /// Worker id, 0-based.
    pub id: u32,
    /// OS process id.
    pub pid: u32,
    /// The file its stderr goes to, if captured.
    pub stderr: Option<PathBuf>,
    child: Child,
    reaped: Option<String>,
}

impl WorkerProcess {
    /// Starts worker `id` from `worker_bin` with `args`: no stdin or stdout, stderr captured
    /// in the run folder, a process group of its own (Ctrl-C reaches the coordinator, which
    /// then stops its workers; killing the group stops whatever the worker started). No
    /// `pre_exec` hook, so std spawns with posix_spawn (vfork-like) instead of forking a copy
    /// of the coordinator's page tables, which costs milliseconds per worker once the
    /// coordinator holds hundreds of megabytes.
    pub fn start(worker_bin: &Path, id: u32, args: &[&str]) -> Result<WorkerProcess, SpawnError> {
        let (stderr, stderr_path) = stderr_sink(id)?;
        let child = Command::new(worker_bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|source| SpawnError::Start {
                worker: id,
                path: worker_bin.to_path_buf(),
                source,
            })?;
        Ok(WorkerProcess { id, pid: child.id(), stderr: stderr_path, child, reaped: None })
    }

    /// How it ended, if it has (without blocking).
    pub fn try_exited(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok()??;
        Some(describe_status(status))
    }

    /// The gist of what it wrote on stderr.
    pub fn last_words(&self) -> Option<String> {
        self.stderr.as_deref().and_then(stderr_gist).map(|g| without_name(self.id, g))
    }

    /// Waits up to `timeout` for the process to exit, then kills it; returns how it ended.
    pub fn reap(&mut self, timeout: Duration) -> String {
        if let Some(status) = &self.reaped {
            return status.clone();
        }
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break describe_status(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Ok(None) => {
                    let _ = kill_pid(self.pid);
                    break self
                        .child
                        .wait()
                        .map_or_else(|e| format!("unknown ({e})"), describe_status);
                }
                Err(e) => break format!("unknown ({e})"),
            }
        };
        self.reaped = Some(status.clone());
        status
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = kill_pid(self.pid);
            let _ = self.child.wait();
        }
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        _ => "ended".to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    Signal::try_from(sig).map_or("unknown", Signal::as_str)
}

/// How a worker process ended, as the [`Watchdog`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exited {
    /// Worker id.
    pub worker: u32,
    /// Exit code, or -1 when killed by a signal.
    pub code: i32,
    /// The signal that killed it, or 0.
    pub signal: i32,
}

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.signal != 0 {
            write!(f, "was killed by signal {} ({})", self.signal, signal_name(self.signal))
        } else {
            write!(f, "exited with code {}", self.code)
        }
    }
}

/// Descriptors made inheritable (close-on-exec cleared) while the workers are spawned, and
/// close-on-exec again when dropped, on every path: only the workers get them.
pub struct Inheritable<'a>(&'a [i32]);

impl<'a> Inheritable<'a> {
    /// Clears close-on-exec on `fds` until dropped.
    pub fn open(fds: &'a [i32]) -> std::io::Result<Self> {
        for (k, &fd) in fds.iter().enumerate() {
            if let Err(e) = set_cloexec(fd, false) {
                drop(Inheritable(&fds[..k]));
                return Err(e);
            }
        }
        Ok(Inheritable(fds))
    }
}

impl Drop for Inheritable<'_> {
    fn drop(&mut self) {
        for &fd in self.0 {
            let _ = set_cloexec(fd, true);
        }
    }
}

/// Takes inherited descriptor `fd` as this process's own, after checking that it is what its
/// transport said (a `kind` of file, open for `access`: a pipe's read end, not the hello
/// socket), and closes it on exec again.
pub fn adopt(
    fd: i32,
    kind: nix::sys::stat::SFlag,
    access: nix::fcntl::OFlag,
) -> std::io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use nix::sys::stat::SFlag;
    if fd < 0 {
        return Err(std::io::Error::other(format!("descriptor {fd}")));
    }
    // SAFETY: borrowed only for the checks below; fstat fails on a descriptor not open.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let stat = nix::sys::stat::fstat(borrowed)?;
    let mode = OFlag::from_bits_truncate(fcntl(borrowed, FcntlArg::F_GETFL)?);
    let is = stat.st_mode & SFlag::S_IFMT.bits() == kind.bits();
    if !is || mode & OFlag::O_ACCMODE != access {
        return Err(std::io::Error::other(format!(
            "descriptor {fd} is not a {kind:?} open for {access:?}"
        )));
    }
    set_cloexec(fd, true)?;
    // SAFETY: the coordinator made this descriptor inheritable for this worker alone, it is
    // open (fstat succeeded), and nothing else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_cloexec(fd: i32, on: bool) -> std::io::Result<()> {
    let flags = if on { nix::fcntl::FdFlag::FD_CLOEXEC } else { nix::fcntl::FdFlag::empty() };
    // SAFETY: the caller's descriptors stay open for the guard's lifetime.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(flags))
        .map(drop)
        .map_err(std::io::Error::from)
}

/// Watches worker pids without reaping them and reports each exit once, within a few ms.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching `workers` (id, pid); each exit is passed to `report`.
    pub fn start(
        workers: Vec<(u32, u32)>,
        report: impl Fn(Exited) + Send + 'static,
    ) -> std::io::Result<Watchdog> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
            let mut alive = workers;
            while !flag.load(Ordering::Relaxed) && !alive.is_empty() {
                alive.retain(|&(worker, pid)| match peek_exit(pid) {
                    Some((code, signal)) => {
                        report(Exited { worker, code, signal });
                        false
                    }
                    None => true,
                });
                std::thread::sleep(POLL);
            }
        })?;
        Ok(Watchdog { stop, handle: Some(handle) })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// `Some((code, signal))` once `pid` has exited; the zombie is left for its owner to reap.
fn peek_exit(pid: u32) -> Option<(i32, i32)> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(Pid::from_raw(pid as i32)), flags) {
        Ok(WaitStatus::Exited(_, code)) => Some((code, 0)),
        Ok(WaitStatus::Signaled(_, signal, _)) => Some((-1, signal as i32)),
        Ok(_) => None,
        // Already reaped (or never ours): it is gone either way.
        Err(_) => Some((-1, 0)),
    }
}

/// Sends SIGKILL to worker `pid` and to its process group (each worker leads one), so that
/// whatever it started goes too.
pub fn kill_pid(pid: u32) -> nix::Result<()> {
    if pid <= 1 || pid > i32::MAX as u32 {
        return Err(nix::errno::Errno::ESRCH);
    }
    let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL)
}
