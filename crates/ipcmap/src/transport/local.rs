//! The local transport: real worker processes on this machine, over ipc-channel.
//!
//! Bootstrap, per worker:
//! 1. the coordinator opens an `IpcOneShotServer<Hello>` and starts the worker with its name on
//!    the command line (`--connect NAME`), with `--protocol` [`PROTOCOL_VERSION`];
//! 2. the worker makes its task channel and its result channel, connects, and sends [`Hello`]:
//!    its protocol version, id, pid, the sending end of its task channel and the receiving end
//!    of its result channel (a channel per worker, so every frame is attributable);
//! 3. the coordinator checks the version and sends the [`Setup`] frame, the first frame on the
//!    task channel.
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
use super::{Event, Inbox, Outbox, Pool, PoolSpec, Transport, WorkerEnds, WorkerInfo};
use crate::error::{LinkError, SpawnError, WorkerError};
use crate::protocol::{Setup, PROTOCOL_VERSION};
use ipc_channel::ipc::{
    self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender,
};
use ipc_channel::IpcError;
use serde::{Deserialize, Serialize};
use std::sync::mpsc;
use std::thread::JoinHandle;
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

/// Worker → coordinator, first message, over the one-shot server.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    /// The worker's [`PROTOCOL_VERSION`]; first, so that it decodes whatever follows.
    pub protocol_version: u32,
    /// The id the coordinator gave this worker on its command line.
    pub worker: u32,
    /// The worker's process id.
    pub pid: u32,
    /// Sending end of the worker's task channel.
    pub tasks: IpcBytesSender,
    /// Receiving end of the worker's result channel.
    pub results: IpcBytesReceiver,
}

/// Worker processes over ipc-channel.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalTransport;

/// A started pool of local worker processes.
pub struct LocalPool {
    infos: Vec<WorkerInfo>,
    // Field order is drop order: channels close before the processes are killed and reaped.
    senders: Vec<Option<IpcBytesSender>>,
    events: mpsc::Receiver<Event>,
    _watchdog: Watchdog,
    processes: Vec<WorkerProcess>,
    spawn_ns: u64,
    frame_bytes: usize,
}

impl Pool for LocalPool {
    fn workers(&self) -> &[WorkerInfo] {
        &self.infos
    }

    fn spawn_ns(&self) -> u64 {
        self.spawn_ns
    }

    fn send(&mut self, worker: usize, frame: &[u8]) -> Result<(), LinkError> {
        let sender = self
            .senders
            .get(worker)
            .and_then(Option::as_ref)
            .ok_or(LinkError::Closed)?;
        send_frame(sender, frame, self.frame_bytes)
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

/// A worker started and waiting for its hello.
struct Pending {
    process: Option<WorkerProcess>,
    name: String,
    accept: Option<JoinHandle<()>>,
    /// When its start began and when its hello came, ns on `CLOCK_MONOTONIC`.
    started_at_ns: u64,
    ready_at_ns: u64,
}

impl Drop for Pending {
    /// Stops the process (with its group), then unblocks the accepting thread (connecting and
    /// hanging up ends its wait) and joins it.
    fn drop(&mut self) {
        drop(self.process.take());
        if let Some(handle) = self.accept.take() {
            if !handle.is_finished() {
                drop(IpcSender::<Hello>::connect(self.name.clone()));
            }
            let _ = handle.join();
        }
    }
}

type Accepted = (u32, Result<(IpcReceiver<Hello>, Hello), String>);

impl Transport for LocalTransport {
    fn start(
        &self,
        spec: &PoolSpec<'_>,
        setup: &dyn Fn(u32) -> Setup,
    ) -> Result<Box<dyn Pool>, SpawnError> {
        let started = Instant::now();
        let (accepted_tx, accepted_rx) = mpsc::channel::<Accepted>();
        let parent = std::process::id().to_string();
        let mut pending: Vec<Pending> = Vec::with_capacity(spec.count);
        let inherited =
            Inheritable::open(spec.inherit_fds).map_err(|source| SpawnError::Channel {
                worker: 0,
                what: "inheritable descriptors",
                source,
            })?;
        for i in 0..spec.count {
            let worker = i as u32;
            let started_at_ns = crate::trace::now_ns();
            let (server, name) =
                IpcOneShotServer::<Hello>::new().map_err(|source| SpawnError::Channel {
                    worker,
                    what: "one-shot server",
                    source,
                })?;
            let id = worker.to_string();
            let protocol = PROTOCOL_VERSION.to_string();
            let args = [
                "--connect",
                &name,
                "--worker-id",
                &id,
                "--protocol",
                &protocol,
                "--parent-pid",
                &parent,
            ];
            let process = WorkerProcess::start(spec.worker_bin, worker, &args)?;
            let tx = accepted_tx.clone();
            let accept = std::thread::Builder::new()
                .name(format!("accept-{worker}"))
                .spawn(move || {
                    let _ = tx.send((worker, server.accept().map_err(|e| e.to_string())));
                })
                .map_err(|source| SpawnError::Channel {
                    worker,
                    what: "accept thread",
                    source,
                })?;
            pending.push(Pending {
                process: Some(process),
                name,
                accept: Some(accept),
                started_at_ns,
                ready_at_ns: 0,
            });
        }
        drop(accepted_tx);
        drop(inherited);

        let mut hellos = await_hellos(spec, &mut pending, &accepted_rx)?;
        let (events_tx, events) = mpsc::channel::<Event>();
        let (mut infos, mut senders, mut processes) = (Vec::new(), Vec::new(), Vec::new());
        for (w, p) in pending.iter_mut().enumerate() {
            if let Some(handle) = p.accept.take() {
                let _ = handle.join();
            }
            let (Some(process), Some(hello)) = (p.process.take(), hellos[w].take()) else {
                continue;
            };
            let (worker, pid) = (process.id, process.pid);
            hello
                .tasks
                .send(&setup(worker).to_frame())
                .map_err(|e| SpawnError::Setup {
                    worker,
                    pid,
                    message: e.to_string(),
                })?;
            spawn_reader(w, hello.results, events_tx.clone()).map_err(|source| {
                SpawnError::Channel {
                    worker,
                    what: "reader thread",
                    source,
                }
            })?;
            infos.push(WorkerInfo {
                id: worker,
                pid,
                started_at_ns: p.started_at_ns,
                ready_at_ns: p.ready_at_ns,
            });
            senders.push(Some(hello.tasks));
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
                .map_or_else(String::new, |g| format!(" ({g})"));
            let _ = events_tx.send(Event::Exited {
                worker: exited.worker as usize,
                how: format!("{exited}{gist}"),
            });
        })
        .map_err(|source| SpawnError::Channel {
            worker: 0,
            what: "watchdog thread",
            source,
        })?;
        Ok(Box::new(LocalPool {
            infos,
            senders,
            events,
            _watchdog: watchdog,
            processes,
            spawn_ns: started.elapsed().as_nanos() as u64,
            frame_bytes: spec.frame_bytes,
        }))
    }
}

/// Waits for every worker's hello, within the handshake timeout, answering SIGINT/SIGTERM
/// and noticing a worker that exits before it says hello.
fn await_hellos(
    spec: &PoolSpec<'_>,
    pending: &mut [Pending],
    accepted: &mpsc::Receiver<Accepted>,
) -> Result<Vec<Option<Hello>>, SpawnError> {
    let mut hellos: Vec<Option<Hello>> = (0..spec.count).map(|_| None).collect();
    let mut remaining = spec.count;
    let deadline = Instant::now() + spec.handshake_timeout;
    while remaining > 0 {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(SpawnError::Interrupted { signal });
        }
        match accepted.recv_timeout(Duration::from_millis(20)) {
            Ok((worker, result)) => {
                let p = &mut pending[worker as usize];
                let hello = match result {
                    Ok((_receiver, hello)) => hello,
                    Err(message) => {
                        // Usually the worker hung up by exiting: give it a moment to be seen.
                        let until = Instant::now() + Duration::from_millis(500);
                        while Instant::now() < until {
                            if let Some(err) = early_exit(p, spec) {
                                return Err(err);
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        let pid = p.process.as_ref().map_or(0, |p| p.pid);
                        return Err(SpawnError::BadHello {
                            worker,
                            pid,
                            message,
                        });
                    }
                };
                check_hello(worker, p, &hello)?;
                hellos[worker as usize] = Some(hello);
                p.ready_at_ns = crate::trace::now_ns();
                remaining -= 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                for (w, p) in pending.iter_mut().enumerate() {
                    if hellos[w].is_none() {
                        if let Some(err) = early_exit(p, spec) {
                            return Err(err);
                        }
                    }
                }
                if Instant::now() >= deadline {
                    let (worker, pid) = pending
                        .iter()
                        .enumerate()
                        .find(|(w, _)| hellos[*w].is_none())
                        .and_then(|(w, p)| Some((w as u32, p.process.as_ref()?.pid)))
                        .unwrap_or((0, 0));
                    return Err(SpawnError::HandshakeTimeout {
                        worker,
                        pid,
                        timeout_ms: spec.handshake_timeout.as_millis(),
                        path: spec.worker_bin.to_path_buf(),
                    });
                }
            }
        }
    }
    Ok(hellos)
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

fn check_hello(worker: u32, p: &Pending, hello: &Hello) -> Result<(), SpawnError> {
    let pid = p.process.as_ref().map_or(0, |p| p.pid);
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(SpawnError::ProtocolMismatch {
            worker,
            pid,
            theirs: hello.protocol_version,
            ours: PROTOCOL_VERSION,
        });
    }
    if hello.worker != worker {
        return Err(SpawnError::WrongId {
            worker,
            pid,
            claimed: hello.worker,
        });
    }
    Ok(())
}

/// The worker's half: connects to the coordinator's one-shot server `name` as worker `worker`,
/// announcing `protocol_version`, and returns its task inbox and result outbox.
pub fn connect(name: &str, worker: u32, protocol_version: u32) -> Result<WorkerEnds, WorkerError> {
    let channel = |what: &'static str| {
        move |e: std::io::Error| WorkerError::Channel {
            worker,
            what,
            message: e.to_string(),
        }
    };
    let (task_tx, task_rx) = ipc::bytes_channel().map_err(channel("task channel"))?;
    let (result_tx, result_rx) = ipc::bytes_channel().map_err(channel("result channel"))?;
    let hello = Hello {
        protocol_version,
        worker,
        pid: std::process::id(),
        tasks: task_tx,
        results: result_rx,
    };
    IpcSender::<Hello>::connect(name.to_string())
        .map_err(channel("connecting to the coordinator"))?
        .send(hello)
        .map_err(|e| WorkerError::Channel {
            worker,
            what: "sending hello",
            message: e.to_string(),
        })?;
    Ok((
        Box::new(LocalInbox(task_rx)),
        Box::new(LocalOutbox(result_tx, 0)),
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
