//! The handshake every transport that spawns its workers shares: start the worker
//! executables, let each connect back and prove who it is, and hand each to its transport.
//!
//! 1. The coordinator listens on a Unix socket in a fresh 0700 folder inside its private run
//!    folder (`HelloSocket`) and starts each worker with that path on its command line
//!    (`--connect PATH --transport NAME`), with `--protocol` [`PROTOCOL_VERSION`];
//! 2. the worker connects and sends one line, `ipcmap-hello VERSION ID REST` ([`say_hello`]),
//!    where `REST` is its transport's own (local: the name of an ipc-channel one-shot server);
//! 3. the coordinator checks the connection's peer credentials (`SO_PEERCRED`: the pid must be
//!    the one it spawned for a worker, the uid its own; anything else is refused with one line
//!    and does not count), then the version and the id, and hands the connection and `REST`
//!    to the transport's `answer`, which makes the worker's links (local: ipc-channels sent to
//!    its server; uds: the connection itself).
//!
//! The coordinator never blocks on a peer (non-blocking sockets and `poll`), so a peer that
//! connects and says nothing costs at most the handshake timeout, and a stop signal is
//! answered within milliseconds. A worker that exits early is reported with its status and
//! last words; a failure while the run folder is gone is reported as that.

use super::spawner::{Inheritable, WorkerProcess};
use super::PoolSpec;
use crate::error::{SpawnError, WorkerError};
use crate::protocol::PROTOCOL_VERSION;
use nix::sys::socket::{getsockopt, sockopt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The first word of a worker's hello line.
const HELLO: &str = "ipcmap-hello";
/// The longest hello line read; a peer that sends more is refused.
const HELLO_MAX: usize = 4096;

/// A worker whose handshake is complete: its process, its transport's links to it, and when
/// its start began and when its hello came (ns on `CLOCK_MONOTONIC`).
pub struct Ready<E> {
    /// The process, killed and reaped when dropped.
    pub process: WorkerProcess,
    /// What the transport's `answer` made of its connection.
    pub ends: E,
    /// When its start began.
    pub started_at_ns: u64,
    /// When its hello was answered.
    pub ready_at_ns: u64,
}

/// What a worker said, checked, for its transport to answer.
pub struct Hello {
    /// Its id.
    pub worker: u32,
    /// Its pid, as its peer credentials proved.
    pub pid: u32,
    /// Its connection to the hello socket, blocking again.
    pub stream: UnixStream,
    /// The rest of its hello line, after the version and the id: the transport's own words.
    pub rest: String,
}

/// Starts `spec.count` workers of transport `transport` and completes each handshake; each
/// checked hello goes to `answer`, which makes that worker's links. On any failure every
/// started worker is stopped (dropped).
pub fn start_all<E>(
    spec: &PoolSpec<'_>,
    transport: &str,
    answer: &mut dyn FnMut(Hello) -> Result<E, SpawnError>,
) -> Result<Vec<Ready<E>>, SpawnError> {
    let result = start_all_here(spec, transport, answer);
    result.map_err(|e| match crate::rundir::vanished_within(VANISHING) {
        Some(vanished) => vanished.into(),
        None => e,
    })
}

/// How long a failed start waits to see whether its run folder is going: a removal caught
/// halfway (a socket gone, the folder not yet) fails the start before the folder is gone.
const VANISHING: std::time::Duration = std::time::Duration::from_millis(500);

fn start_all_here<E>(
    spec: &PoolSpec<'_>,
    transport: &str,
    answer: &mut dyn FnMut(Hello) -> Result<E, SpawnError>,
) -> Result<Vec<Ready<E>>, SpawnError> {
    let parent = std::process::id().to_string();
    let hello = HelloSocket::bind()?;
    let mut pending: Vec<Pending<E>> = Vec::with_capacity(spec.count);
    for i in 0..spec.count {
        let worker = i as u32;
        // Its own descriptors are inheritable while it is started, and only then.
        let fds = (spec.inherit_fds)(worker);
        let inherited = Inheritable::open(&fds).map_err(|source| SpawnError::Channel {
            worker,
            what: "inheritable descriptors",
            source,
        })?;
        let started_at_ns = crate::trace::now_ns();
        let (id, protocol) = (worker.to_string(), PROTOCOL_VERSION.to_string());
        let wait = spec.handshake_timeout.as_millis().to_string();
        let args = [
            "--connect",
            &hello.path,
            "--transport",
            transport,
            "--worker-id",
            &id,
            "--protocol",
            &protocol,
            "--parent-pid",
            &parent,
            "--handshake-ms",
            &wait,
        ];
        let process = WorkerProcess::start(spec.worker_bin, worker, &args)?;
        drop(inherited);
        pending.push(Pending {
            process: Some(process),
            conn: None,
            ends: None,
            started_at_ns,
            ready_at_ns: 0,
        });
    }
    await_hellos(spec, &hello, &mut pending, answer)?;
    Ok(pending
        .into_iter()
        .filter_map(|p| {
            Some(Ready {
                process: p.process?,
                ends: p.ends?,
                started_at_ns: p.started_at_ns,
                ready_at_ns: p.ready_at_ns,
            })
        })
        .collect())
}

/// A worker started and not yet answered.
struct Pending<E> {
    process: Option<WorkerProcess>,
    /// Its connection to the hello socket, once its credentials were checked, with what it has
    /// sent so far.
    conn: Option<(UnixStream, Vec<u8>)>,
    /// Its links, once its hello was answered.
    ends: Option<E>,
    started_at_ns: u64,
    ready_at_ns: u64,
}

impl<E> Pending<E> {
    fn who(&self) -> (u32, u32) {
        self.process.as_ref().map_or((0, 0), |p| (p.id, p.pid))
    }
}

/// The listening socket workers say hello on: in a fresh 0700 folder (inside the run folder
/// where there is one), so no other user can connect; removed with its folder when dropped.
struct HelloSocket {
    listener: UnixListener,
    path: String,
    _dir: tempfile::TempDir,
}

impl HelloSocket {
    fn bind() -> Result<HelloSocket, SpawnError> {
        crate::rundir::check()?;
        let channel = |source| SpawnError::Channel { worker: 0, what: "hello socket", source };
        let base = crate::rundir::current().map_or_else(std::env::temp_dir, Path::to_path_buf);
        let dir = tempfile::Builder::new()
            .prefix(".hello")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(channel)?;
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).map_err(channel)?;
        listener.set_nonblocking(true).map_err(channel)?;
        let path = path
            .to_str()
            .ok_or_else(|| channel(std::io::Error::other("a path that is not UTF-8")))?
            .to_string();
        Ok(HelloSocket { listener, path, _dir: dir })
    }
}

/// Completes every worker's handshake within the handshake timeout, on this thread and
/// without ever blocking on a peer: each connection is accepted, its peer credentials checked
/// against the pid spawned for a worker and our own uid, its hello line read as it comes, and
/// the worker answered. A stop signal and a worker that exits early end the wait.
fn await_hellos<E>(
    spec: &PoolSpec<'_>,
    hello: &HelloSocket,
    pending: &mut [Pending<E>],
    answer: &mut dyn FnMut(Hello) -> Result<E, SpawnError>,
) -> Result<(), SpawnError> {
    let mut remaining = spec.count;
    let deadline = Instant::now() + spec.handshake_timeout;
    while remaining > 0 {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(SpawnError::Interrupted { signal });
        }
        wait_readable(hello, pending, Duration::from_millis(20));
        accept_ours(hello, pending);
        for p in pending.iter_mut() {
            let Some(line) = read_hello(p)? else {
                continue;
            };
            let checked = check_hello(p, &line)?;
            p.ends = Some(answer(checked)?);
            p.ready_at_ns = crate::trace::now_ns();
            remaining -= 1;
        }
        for p in pending.iter_mut().filter(|p| p.ends.is_none()) {
            if let Some(err) = early_exit(p, spec) {
                return Err(err);
            }
        }
        if remaining > 0 && Instant::now() >= deadline {
            crate::rundir::check()?;
            let (worker, pid) =
                pending.iter().find(|p| p.ends.is_none()).map_or((0, 0), Pending::who);
            return Err(SpawnError::HandshakeTimeout {
                worker,
                pid,
                timeout_ms: spec.handshake_timeout.as_millis(),
                path: spec.worker_bin.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Takes every new connection: only our own workers, by pid and uid.
fn accept_ours<E>(hello: &HelloSocket, pending: &mut [Pending<E>]) {
    let me = nix::unistd::geteuid().as_raw();
    while let Ok((stream, _)) = hello.listener.accept() {
        let creds = getsockopt(&stream, sockopt::PeerCredentials);
        let (pid, uid) = match &creds {
            Ok(c) => (c.pid() as u32, c.uid()),
            Err(_) => (0, u32::MAX),
        };
        let ours = pending
            .iter()
            .position(|p| p.conn.is_none() && p.ends.is_none() && p.who().1 == pid && pid != 0);
        match ours {
            Some(w) if uid == me && stream.set_nonblocking(true).is_ok() => {
                pending[w].conn = Some((stream, Vec::new()));
            }
            _ => crate::error::say(&format!(
                "warning: refused a handshake from pid {pid} (uid {uid}): not a worker this run started (its workers run as uid {me})"
            )),
        }
    }
}

/// Waits up to `timeout` for a connection or for a connected worker's bytes.
fn wait_readable<E>(hello: &HelloSocket, pending: &[Pending<E>], timeout: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = vec![PollFd::new(hello.listener.as_fd(), PollFlags::POLLIN)];
    for p in pending.iter().filter(|p| p.ends.is_none()) {
        if let Some((stream, _)) = &p.conn {
            fds.push(PollFd::new(stream.as_fd(), PollFlags::POLLIN));
        }
    }
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut fds, ms);
}

/// Reads what worker `p` has sent without blocking; its hello line once it is complete.
fn read_hello<E>(p: &mut Pending<E>) -> Result<Option<String>, SpawnError> {
    use std::io::Read;
    let (worker, pid) = p.who();
    let (Some((stream, got)), None) = (p.conn.as_mut(), p.ends.as_ref()) else {
        return Ok(None);
    };
    let bad = |message: String| SpawnError::BadHello { worker, pid, message };
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                // It hung up: usually it is exiting, which `early_exit` reports with its
                // status; a worker still running after it was heard closing is broken.
                if got.is_empty() {
                    p.conn = None;
                    return Ok(None);
                }
                return Err(bad("it hung up in the middle of its hello".into()));
            }
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(e.to_string())),
        }
        if got.len() > HELLO_MAX {
            return Err(bad(format!("a hello of more than {HELLO_MAX} bytes")));
        }
    }
    let Some(end) = got.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if end + 1 != got.len() {
        // A worker says nothing more until it is answered.
        return Err(bad("it sent more than its hello before it was answered".into()));
    }
    let line = String::from_utf8(got[..end].to_vec())
        .map_err(|_| bad("a hello that is not UTF-8".into()))?;
    Ok(Some(line))
}

/// Checks worker `p`'s hello line (`ipcmap-hello VERSION ID REST`): the rest and its
/// connection, blocking again, for its transport.
fn check_hello<E>(p: &mut Pending<E>, line: &str) -> Result<Hello, SpawnError> {
    let (worker, pid) = p.who();
    let bad = |message: String| SpawnError::BadHello { worker, pid, message };
    let mut words = line.splitn(4, ' ');
    if words.next() != Some(HELLO) {
        return Err(bad(format!("{:?}", line.chars().take(80).collect::<String>())));
    }
    let number = |w: Option<&str>| w.and_then(|w| w.parse::<u32>().ok());
    let theirs = number(words.next()).ok_or_else(|| bad("no protocol version".into()))?;
    if theirs != PROTOCOL_VERSION {
        return Err(SpawnError::ProtocolMismatch { worker, pid, theirs, ours: PROTOCOL_VERSION });
    }
    let claimed = number(words.next()).ok_or_else(|| bad("no worker id".into()))?;
    if claimed != worker {
        return Err(SpawnError::WrongId { worker, pid, claimed });
    }
    let rest = words.next().unwrap_or("").to_string();
    let (stream, _) = p.conn.take().ok_or_else(|| bad("no connection".into()))?;
    stream.set_nonblocking(false).map_err(|e| bad(e.to_string()))?;
    Ok(Hello { worker, pid, stream, rest })
}

fn early_exit<E>(p: &mut Pending<E>, spec: &PoolSpec<'_>) -> Option<SpawnError> {
    let process = p.process.as_mut()?;
    let status = process.try_exited()?;
    if let Err(e) = crate::rundir::check() {
        return Some(e.into());
    }
    Some(SpawnError::ExitedEarly {
        worker: process.id,
        pid: process.pid,
        status,
        stderr: process.last_words().map_or_else(String::new, |g| format!(": {g}")),
        path: spec.worker_bin.to_path_buf(),
    })
}

/// How long a worker waits for its coordinator after its hello (tcp's connection, the line
/// naming inherited descriptors), at most. A worker waits while its coordinator holds its hello
/// connection open, and stops when the coordinator closes it or dies (`PR_SET_PDEATHSIG`); a
/// coordinator starting hundreds of workers may reach the first only after many seconds. This
/// is the backstop for a coordinator that is stuck (stopped): 30 times its
/// `--handshake-timeout` (passed on the worker's command line), and at least a minute.
pub fn worker_wait() -> Duration {
    let timeout = WORKER_WAIT.get().copied().unwrap_or(Duration::from_secs(10));
    (timeout * 30).max(Duration::from_secs(60))
}

/// Whether the coordinator has closed the hello connection `stream` (given up, or gone).
pub fn hung_up(stream: &UnixStream) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    let ready = match poll(&mut fds, PollTimeout::ZERO) {
        Ok(n) => n > 0,
        Err(_) => false,
    };
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
        return true;
    }
    // Readable: at its end (the peer closed it) a peek reads nothing.
    let peeked = nix::sys::socket::recv(
        std::os::fd::AsRawFd::as_raw_fd(stream),
        &mut [0u8; 1],
        nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
    );
    ready && matches!(peeked, Ok(0))
}

/// Sets [`worker_wait`] for this worker process (once; later calls change nothing).
pub fn set_worker_wait(wait: Duration) {
    let _ = WORKER_WAIT.set(wait);
}

static WORKER_WAIT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// The worker's half: connects to the coordinator's hello socket `path` as worker `worker`
/// and says hello with `protocol_version` and `rest` (its transport's words); returns the
/// connection.
pub fn say_hello(
    path: &str,
    worker: u32,
    protocol_version: u32,
    rest: &str,
) -> Result<UnixStream, WorkerError> {
    use std::io::Write;
    let channel = |what: &'static str| {
        move |e: std::io::Error| WorkerError::Channel { worker, what, message: e.to_string() }
    };
    let mut stream = UnixStream::connect(path).map_err(channel("connecting to the coordinator"))?;
    writeln!(stream, "{HELLO} {protocol_version} {worker} {rest}")
        .map_err(channel("sending hello"))?;
    Ok(stream)
}

/// Tells the worker whose hello came on `stream` which inherited descriptors are its own
/// (one line of numbers), for a transport whose links it inherits.
pub fn name_descriptors(
    stream: &mut UnixStream,
    worker: u32,
    fds: &[i32],
) -> Result<(), SpawnError> {
    use std::io::Write;
    let line: Vec<String> = fds.iter().map(i32::to_string).collect();
    writeln!(stream, "{}", line.join(" ")).map_err(|source| SpawnError::Channel {
        worker,
        what: "the line naming its descriptors",
        source,
    })
}

/// The worker's half of [`name_descriptors`]: the `N` descriptors its coordinator named on
/// `stream`, the hello connection.
pub fn named_array<const N: usize>(
    stream: UnixStream,
    worker: u32,
) -> Result<[i32; N], WorkerError> {
    let fds = named_descriptors(stream, worker, N)?;
    <[i32; N]>::try_from(fds).map_err(|fds| {
        WorkerError::Usage(format!("worker {worker}: {} descriptors named, not {N}", fds.len()))
    })
}

/// The worker's half of [`name_descriptors`], as a list of `count`.
fn named_descriptors(
    stream: UnixStream,
    worker: u32,
    count: usize,
) -> Result<Vec<i32>, WorkerError> {
    use std::io::BufRead;
    let channel = |e: std::io::Error| WorkerError::Channel {
        worker,
        what: "the line naming its descriptors",
        message: e.to_string(),
    };
    stream.set_read_timeout(Some(worker_wait())).map_err(channel)?;
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line).map_err(channel)?;
    let fds: Vec<i32> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match fds.len() == count && fds.iter().all(|&fd| fd >= 0) {
        true => Ok(fds),
        false => Err(WorkerError::Usage(format!(
            "worker {worker}: the coordinator named {:?}, not {count} descriptors",
            line.trim()
        ))),
    }
}
