//! The local transport: real worker processes on this machine, over ipc-channel.
//!
//! Bootstrap, per worker, authenticated so that no other process can take a worker's place:
//! 1. the coordinator listens on a Unix socket in a fresh 0700 folder inside its private run
//!    folder, and starts the worker with that path on its command line (`--connect PATH`),
//!    with `--protocol` [`PROTOCOL_VERSION`];
//! 2. the worker connects, opens an ipc-channel one-shot server of its own (in the run folder,
//!    its TMPDIR) and sends one line, `ipcmap-hello VERSION ID SERVER`;
//! 3. the coordinator checks the connection's peer credentials (`SO_PEERCRED`: the pid must be
//!    the one it spawned for a worker, the uid its own; anything else is refused with one line
//!    and does not count), then the version and the id, and answers on the worker's server
//!    with [`Channels`]: the worker's ends of its task and result channels;
//! 4. the [`Setup`] frame goes out as the first frame on the task channel.
//!
//! The coordinator never blocks on a peer during the handshake (non-blocking sockets and
//! `poll`), so a peer that connects and says nothing costs at most the handshake timeout, and
//! SIGINT/SIGTERM are answered within milliseconds.
//!
//! Then plain bytes both ways (`IpcBytesSender`). A reader thread per worker drains its result
//! channel into one event queue, with the [`Watchdog`]'s exit reports, so a big result's send
//! lasts only as long as its copy and the gather loop never blocks without a timeout.
//!
//! Frame trains (`--frame-bytes F`): ipc-channel sends a message over about 207 KiB through its
//! fragmentation path (a new socketpair per message, the sender blocked until the receiver
//! reads). With F set, a frame bigger than F goes as a 16-byte announcement ([`TRAIN`], then
//! the frame's length, little-endian u64) followed by the frame in messages of at most F bytes,
//! and the receiver reassembles it into one buffer. No frame of the protocol is 16 bytes long
//! and starts with [`TRAIN`] (task frames have a 24-byte header, result frames 33 bytes, setup
//! frames start with a short string's length), so whole frames need no marker.

use super::spawner::{Inheritable, Watchdog, WorkerProcess};
use super::{Event, Inbox, Outbox, Pool, PoolSpec, Sent, Transport, WorkerEnds, WorkerInfo};
use crate::error::{LinkError, SpawnError, WorkerError};
use crate::protocol::{Setup, PROTOCOL_VERSION};
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};
use ipc_channel::IpcError;
use nix::sys::socket::{getsockopt, sockopt};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The first 8 bytes of a train's announcement.
pub const TRAIN: [u8; 8] = *b"\xffTRAIN\xfe\xfd";

/// Sends `frame` over `sender`: whole, or as a train of messages of at most `frame_bytes`.
fn send_frame(sender: &IpcBytesSender, frame: &[u8], frame_bytes: usize) -> Result<(), LinkError> {
    if frame_bytes == 0 || frame.len() <= frame_bytes {
        return Ok(sender.send(frame)?);
    }
    let mut announce = [0u8; 16];
    announce[..8].copy_from_slice(&TRAIN);
    announce[8..].copy_from_slice(&(frame.len() as u64).to_le_bytes());
    sender.send(&announce)?;
    for car in frame.chunks(frame_bytes) {
        sender.send(car)?;
    }
    Ok(())
}

/// Receives one frame from `receiver`, reassembling a train.
fn recv_frame(receiver: &IpcBytesReceiver) -> Result<Vec<u8>, IpcError> {
    let first = receiver.recv()?;
    let total = match first.split_first_chunk::<8>() {
        Some((head, len)) if first.len() == 16 && *head == TRAIN => {
            u64::from_le_bytes(len.try_into().unwrap_or_default())
        }
        _ => return Ok(first),
    };
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let mut frame: Vec<u8> = Vec::new();
    frame
        .try_reserve_exact(total)
        .map_err(|e| IpcError::Io(std::io::Error::other(format!("a {total}-byte train: {e}"))))?;
    while frame.len() < total {
        let car = receiver.recv()?;
        if car.is_empty() || frame.len() + car.len() > total {
            return Err(IpcError::Io(std::io::Error::other(format!(
                "a train of {total} bytes overran ({} + {})",
                frame.len(),
                car.len()
            ))));
        }
        frame.extend_from_slice(&car);
    }
    Ok(frame)
}

/// Coordinator → worker, over the worker's own one-shot server, once its credentials were
/// checked: the worker's ends of its two channels (a channel per worker, so every frame is
/// attributable).
#[derive(Debug, Serialize, Deserialize)]
pub struct Channels {
    /// Receiving end of the worker's task channel.
    pub tasks: IpcBytesReceiver,
    /// Sending end of the worker's result channel.
    pub results: IpcBytesSender,
}

/// The first word of a worker's hello line.
const HELLO: &str = "ipcmap-hello";
/// The longest hello line read; a peer that sends more is refused.
const HELLO_MAX: usize = 4096;

/// Worker processes over ipc-channel.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalTransport;

/// A started pool of local worker processes.
pub struct LocalPool {
    infos: Vec<WorkerInfo>,
    // Field order is drop order: channels close before the processes are killed and reaped.
    /// Each worker's queue to its sender thread.
    senders: Vec<Option<mpsc::Sender<Vec<u8>>>>,
    /// Frames whose send ended, from every sender thread.
    sent: mpsc::Receiver<Sent>,
    events: mpsc::Receiver<Event>,
    _watchdog: Watchdog,
    processes: Vec<WorkerProcess>,
    spawn_ns: u64,
}

impl Pool for LocalPool {
    fn workers(&self) -> &[WorkerInfo] {
        &self.infos
    }

    fn spawn_ns(&self) -> u64 {
        self.spawn_ns
    }

    fn send(&mut self, worker: usize, frame: Vec<u8>) -> Result<(), LinkError> {
        let queue = self
            .senders
            .get(worker)
            .and_then(Option::as_ref)
            .ok_or(LinkError::Closed)?;
        queue.send(frame).map_err(|_| LinkError::Closed)
    }

    fn sent(&mut self) -> Option<Sent> {
        self.sent.try_recv().ok()
    }

    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    fn close(&mut self, worker: usize) {
        if let Some(sender) = self.senders.get_mut(worker) {
            *sender = None;
        }
    }

    fn kill(&mut self, worker: usize) {
        self.close(worker);
        if let Some(p) = self.processes.get(worker) {
            let _ = super::spawner::kill_pid(p.pid);
        }
    }

    fn reap(&mut self, worker: usize, grace: Duration) -> String {
        self.processes
            .get_mut(worker)
            .map_or_else(|| "unknown worker".into(), |p| p.reap(grace))
    }

    fn last_words(&self, worker: usize) -> Option<String> {
        self.processes.get(worker)?.last_words()
    }
}

/// A worker started and not yet connected.
struct Pending {
    process: Option<WorkerProcess>,
    /// Its connection to the hello socket, once its credentials were checked, with what it has
    /// sent so far.
    conn: Option<(UnixStream, Vec<u8>)>,
    /// Its ends of the channels, once its hello was answered.
    ends: Option<(IpcBytesSender, IpcBytesReceiver)>,
    /// When its start began and when its hello came, ns on `CLOCK_MONOTONIC`.
    started_at_ns: u64,
    ready_at_ns: u64,
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
        let channel = |source| SpawnError::Channel {
            worker: 0,
            what: "hello socket",
            source,
        };
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
        Ok(HelloSocket {
            listener,
            path,
            _dir: dir,
        })
    }
}

impl Transport for LocalTransport {
    /// Starts the pool; a failure while the run folder is gone is reported as that, whatever
    /// step it broke (a socket, a worker's server, its stderr file).
    fn start(
        &self,
        spec: &PoolSpec<'_>,
        setup: &dyn Fn(u32) -> Setup,
    ) -> Result<Box<dyn Pool>, SpawnError> {
        start(spec, setup).map_err(|e| match crate::rundir::check() {
            Err(vanished) => vanished.into(),
            Ok(()) => e,
        })
    }
}

fn start(spec: &PoolSpec<'_>, setup: &dyn Fn(u32) -> Setup) -> Result<Box<dyn Pool>, SpawnError> {
    let started = Instant::now();
    let parent = std::process::id().to_string();
    let hello = HelloSocket::bind()?;
    let mut pending: Vec<Pending> = Vec::with_capacity(spec.count);
    let inherited = Inheritable::open(spec.inherit_fds).map_err(|source| SpawnError::Channel {
        worker: 0,
        what: "inheritable descriptors",
        source,
    })?;
    for i in 0..spec.count {
        let worker = i as u32;
        let started_at_ns = crate::trace::now_ns();
        let id = worker.to_string();
        let protocol = PROTOCOL_VERSION.to_string();
        let args = [
            "--connect",
            &hello.path,
            "--worker-id",
            &id,
            "--protocol",
            &protocol,
            "--parent-pid",
            &parent,
        ];
        let process = WorkerProcess::start(spec.worker_bin, worker, &args)?;
        pending.push(Pending {
            process: Some(process),
            conn: None,
            ends: None,
            started_at_ns,
            ready_at_ns: 0,
        });
    }
    drop(inherited);

    await_hellos(spec, &hello, &mut pending)?;
    drop(hello);
    let (events_tx, events) = mpsc::channel::<Event>();
    let (sent_tx, sent) = mpsc::channel::<Sent>();
    let (mut infos, mut senders, mut processes) = (Vec::new(), Vec::new(), Vec::new());
    for (w, p) in pending.iter_mut().enumerate() {
        let (Some(process), Some((tasks, results))) = (p.process.take(), p.ends.take()) else {
            continue;
        };
        let (worker, pid) = (process.id, process.pid);
        tasks
            .send(&setup(worker).to_frame())
            .map_err(|e| SpawnError::Setup {
                worker,
                pid,
                message: e.to_string(),
            })?;
        spawn_reader(w, results, events_tx.clone()).map_err(|source| SpawnError::Thread {
            what: "result reader",
            source,
        })?;
        let queue =
            spawn_sender(w, tasks, spec.frame_bytes, sent_tx.clone()).map_err(|source| {
                SpawnError::Thread {
                    what: "task sender",
                    source,
                }
            })?;
        infos.push(WorkerInfo {
            id: worker,
            pid,
            started_at_ns: p.started_at_ns,
            ready_at_ns: p.ready_at_ns,
        });
        senders.push(Some(queue));
        processes.push(process);
    }
    let watched = processes
        .iter()
        .map(|p| (p.id, p.pid, p.stderr.clone()))
        .collect::<Vec<_>>();
    let pids = watched.iter().map(|&(id, pid, _)| (id, pid)).collect();
    let watchdog = Watchdog::start(pids, move |exited| {
        let gist = watched
            .iter()
            .find(|(id, _, _)| *id == exited.worker)
            .and_then(|(_, _, path)| path.as_deref())
            .and_then(super::spawner::stderr_gist)
            .map(|g| super::spawner::without_name(exited.worker, g))
            .map_or_else(String::new, |g| format!(" ({g})"));
        let _ = events_tx.send(Event::Exited {
            worker: exited.worker as usize,
            how: format!("{exited}{gist}"),
        });
    })
    .map_err(|source| SpawnError::Thread {
        what: "watchdog",
        source,
    })?;
    Ok(Box::new(LocalPool {
        infos,
        senders,
        sent,
        events,
        _watchdog: watchdog,
        processes,
        spawn_ns: started.elapsed().as_nanos() as u64,
    }))
}

/// Completes every worker's handshake within the handshake timeout, on this thread and
/// without ever blocking on a peer: each connection to the hello socket is accepted, its
/// peer credentials (`SO_PEERCRED`) are checked against the pid spawned for a worker and our
/// own uid (anything else is refused with one line and does not count), its hello line is
/// read as it comes, and the worker is answered with its channels. SIGINT/SIGTERM and a
/// worker that exits early end the wait; a peer that connects and says nothing costs at
/// most the timeout.
fn await_hellos(
    spec: &PoolSpec<'_>,
    hello: &HelloSocket,
    pending: &mut [Pending],
) -> Result<(), SpawnError> {
    let mut remaining = spec.count;
    let deadline = Instant::now() + spec.handshake_timeout;
    let me = nix::unistd::geteuid().as_raw();
    while remaining > 0 {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(SpawnError::Interrupted { signal });
        }
        wait_readable(hello, pending, Duration::from_millis(20));
        // New connections: only our own workers, by pid and uid.
        while let Ok((stream, _)) = hello.listener.accept() {
            let creds = getsockopt(&stream, sockopt::PeerCredentials);
            let (pid, uid) = match &creds {
                Ok(c) => (c.pid() as u32, c.uid()),
                Err(_) => (0, u32::MAX),
            };
            let ours = pending
                .iter()
                .position(|p| p.conn.is_none() && p.process.as_ref().is_some_and(|q| q.pid == pid));
            match ours {
                Some(w) if uid == me && stream.set_nonblocking(true).is_ok() => {
                    pending[w].conn = Some((stream, Vec::new()));
                }
                _ => crate::error::say(&format!(
                    "warning: refused a handshake from pid {pid} (uid {uid}): not a worker this run started (its workers run as uid {me})"
                )),
            }
        }
        // What connected workers have said.
        for (w, p) in pending.iter_mut().enumerate() {
            let Some(line) = read_hello(p)? else {
                continue;
            };
            answer(w as u32, p, &line)?;
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
            let (worker, pid) = pending
                .iter()
                .find(|p| p.ends.is_none())
                .and_then(|p| p.process.as_ref())
                .map_or((0, 0), |p| (p.id, p.pid));
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

/// Waits up to `timeout` for a connection or for a connected worker's bytes.
fn wait_readable(hello: &HelloSocket, pending: &[Pending], timeout: Duration) {
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
fn read_hello(p: &mut Pending) -> Result<Option<String>, SpawnError> {
    use std::io::Read;
    let pid = p.process.as_ref().map_or(0, |q| q.pid);
    let worker = p.process.as_ref().map_or(0, |q| q.id);
    let (Some((stream, got)), None) = (p.conn.as_mut(), p.ends.as_ref()) else {
        return Ok(None);
    };
    let bad = |message: String| SpawnError::BadHello {
        worker,
        pid,
        message,
    };
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
    let line = String::from_utf8(got[..end].to_vec())
        .map_err(|_| bad("a hello that is not UTF-8".into()))?;
    Ok(Some(line))
}

/// Checks worker `worker`'s hello line (`ipcmap-hello VERSION ID SERVER`) and answers it: the
/// worker's ends of two new channels, sent to the one-shot server it named.
fn answer(worker: u32, p: &mut Pending, line: &str) -> Result<(), SpawnError> {
    let pid = p.process.as_ref().map_or(0, |q| q.pid);
    let bad = |message: String| SpawnError::BadHello {
        worker,
        pid,
        message,
    };
    let mut words = line.split(' ');
    if words.next() != Some(HELLO) {
        return Err(bad(format!(
            "{:?}",
            line.chars().take(80).collect::<String>()
        )));
    }
    let number = |w: Option<&str>| w.and_then(|w| w.parse::<u32>().ok());
    let theirs = number(words.next()).ok_or_else(|| bad("no protocol version".into()))?;
    if theirs != PROTOCOL_VERSION {
        return Err(SpawnError::ProtocolMismatch {
            worker,
            pid,
            theirs,
            ours: PROTOCOL_VERSION,
        });
    }
    let claimed = number(words.next()).ok_or_else(|| bad("no worker id".into()))?;
    if claimed != worker {
        return Err(SpawnError::WrongId {
            worker,
            pid,
            claimed,
        });
    }
    let server = words
        .next()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no channel to answer on".into()))?;
    let channel = |what: &'static str| {
        move |source: std::io::Error| SpawnError::Channel {
            worker,
            what,
            source,
        }
    };
    let (task_tx, task_rx) = ipc::bytes_channel().map_err(channel("task channel"))?;
    let (result_tx, result_rx) = ipc::bytes_channel().map_err(channel("result channel"))?;
    IpcSender::<Channels>::connect(server.to_string())
        .map_err(channel("answer to its hello"))?
        .send(Channels {
            tasks: task_rx,
            results: result_tx,
        })
        .map_err(|e| bad(format!("answering it: {e}")))?;
    p.ends = Some((task_tx, result_rx));
    p.conn = None;
    Ok(())
}

/// Starts worker `w`'s sender thread: it sends the frames queued to it, in order, and hands
/// each back with how its send went. A send to a worker that does not read (stopped, hung)
/// blocks this thread only; killing the worker ends it. The task channel closes when the
/// queue does (after the frames already queued) or at the first failed send.
fn spawn_sender(
    w: usize,
    tasks: IpcBytesSender,
    frame_bytes: usize,
    sent: mpsc::Sender<Sent>,
) -> std::io::Result<mpsc::Sender<Vec<u8>>> {
    let (queue, frames) = mpsc::channel::<Vec<u8>>();
    std::thread::Builder::new()
        .name(format!("scatter-{w}"))
        .spawn(move || {
            for frame in frames {
                let start_ns = crate::trace::now_ns();
                let result = send_frame(&tasks, &frame, frame_bytes);
                let failed = result.is_err();
                let done = Sent {
                    worker: w,
                    frame,
                    result,
                    start_ns,
                    end_ns: crate::trace::now_ns(),
                    threaded: true,
                };
                if sent.send(done).is_err() || failed {
                    break;
                }
            }
        })?;
    Ok(queue)
}

/// Drains worker `w`'s result channel into the event queue; ends when the channel closes.
fn spawn_reader(
    w: usize,
    receiver: IpcBytesReceiver,
    events: mpsc::Sender<Event>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("gather-{w}"))
        .spawn(move || loop {
            match recv_frame(&receiver) {
                Ok(frame) => {
                    if events.send(Event::Frame(w, frame)).is_err() {
                        break;
                    }
                }
                Err(_) => {
                    let _ = events.send(Event::Closed(w));
                    break;
                }
            }
        })
        .map(drop)
}

fn early_exit(p: &mut Pending, spec: &PoolSpec<'_>) -> Option<SpawnError> {
    let process = p.process.as_mut()?;
    let status = process.try_exited()?;
    if let Err(e) = crate::rundir::check() {
        return Some(e.into());
    }
    Some(SpawnError::ExitedEarly {
        worker: process.id,
        pid: process.pid,
        status,
        stderr: process
            .last_words()
            .map_or_else(String::new, |g| format!(": {g}")),
        path: spec.worker_bin.to_path_buf(),
    })
}

/// The worker's half: connects to the coordinator's hello socket `name` as worker `worker`,
/// says hello with `protocol_version` and the name of a one-shot server of its own, and
/// returns its task inbox and result outbox once the coordinator answered there.
pub fn connect(name: &str, worker: u32, protocol_version: u32) -> Result<WorkerEnds, WorkerError> {
    use std::io::Write;
    let channel = |what: &'static str| {
        move |e: std::io::Error| WorkerError::Channel {
            worker,
            what,
            message: e.to_string(),
        }
    };
    // ipc-channel makes its server's socket in the temporary directory (the coordinator's
    // run folder) and cannot report a missing one: check it first.
    let tmp = std::env::temp_dir();
    if !tmp.is_dir() {
        return Err(channel("its one-shot server")(std::io::Error::other(
            format!("the temporary directory {} is gone", tmp.display()),
        )));
    }
    let mut stream = UnixStream::connect(name).map_err(channel("connecting to the coordinator"))?;
    let (server, server_name) =
        IpcOneShotServer::<Channels>::new().map_err(channel("its one-shot server"))?;
    writeln!(stream, "{HELLO} {protocol_version} {worker} {server_name}")
        .map_err(channel("sending hello"))?;
    let (_, channels) = server.accept().map_err(|e| WorkerError::Channel {
        worker,
        what: "receiving its channels",
        message: e.to_string(),
    })?;
    drop(stream);
    Ok((
        Box::new(LocalInbox(channels.tasks)),
        Box::new(LocalOutbox(channels.results, 0)),
    ))
}

struct LocalInbox(IpcBytesReceiver);

impl Inbox for LocalInbox {
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        match recv_frame(&self.0) {
            Ok(frame) => Ok(Some(frame)),
            Err(IpcError::Disconnected) => Ok(None),
            Err(IpcError::Io(e)) => Err(LinkError::Io(e)),
            Err(e) => Err(LinkError::Channel(e.to_string())),
        }
    }
}

struct LocalOutbox(IpcBytesSender, usize);

impl Outbox for LocalOutbox {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        send_frame(&self.0, frame, self.1)
    }

    fn set_frame_bytes(&mut self, bytes: usize) {
        self.1 = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame over a real ipc-channel: sent with `frame_bytes`, received whole.
    fn round_trip(frame: Vec<u8>, frame_bytes: usize) -> Vec<u8> {
        let (tx, rx) = ipc::bytes_channel().unwrap();
        let sender = std::thread::spawn(move || send_frame(&tx, &frame, frame_bytes).unwrap());
        let got = recv_frame(&rx).unwrap();
        sender.join().unwrap();
        got
    }

    #[test]
    fn trains_arrive_whole_and_small_frames_untouched() {
        let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        for frame_bytes in [0, 4096, 65536, 1 << 20, 1 << 30] {
            assert!(round_trip(big.clone(), frame_bytes) == big, "{frame_bytes}");
        }
        // A 16-byte frame that is not an announcement passes as it is.
        let small = vec![7u8; 16];
        assert_eq!(round_trip(small.clone(), 4096), small);
    }

    #[test]
    fn a_train_that_overruns_its_announcement_is_refused() {
        let (tx, rx) = ipc::bytes_channel().unwrap();
        let mut announce = TRAIN.to_vec();
        announce.extend_from_slice(&10u64.to_le_bytes());
        tx.send(&announce).unwrap();
        tx.send(&[1u8; 11]).unwrap();
        assert!(recv_frame(&rx).is_err());
        tx.send(&announce).unwrap();
        tx.send(&[]).unwrap();
        assert!(recv_frame(&rx).is_err());
    }
}
