//! The local transport: real worker processes on this machine, over ipc-channel.
//!
//! Bootstrap: the shared [handshake] (spawn, authenticated hello); the
//! worker's hello ends with the name of an ipc-channel one-shot server of its own (in the run
//! folder, its TMPDIR), and the coordinator answers there with [`Channels`]: the worker's ends
//! of its task and result channels. The [`Setup`](crate::protocol::Setup) frame goes out first on the task channel.
//!
//! Then plain bytes both ways (`IpcBytesSender`), driven by the [spawned](super::spawned) pool:
//! a sender and a reader thread per worker, one event queue with the watchdog's exit reports,
//! so a big result's send lasts only as long as its copy and the gather loop never blocks
//! without a timeout.
//!
//! Frame trains (`--frame-bytes F`): ipc-channel sends a message over about 207 KiB through its
//! fragmentation path (a new socketpair per message, the sender blocked until the receiver
//! reads). With F set, a frame bigger than F goes as a 16-byte announcement ([`TRAIN`], then
//! the frame's length, little-endian u64) followed by the frame in messages of at most F bytes,
//! and the receiver reassembles it into one buffer. No frame of the protocol is 16 bytes long
//! and starts with [`TRAIN`] (task frames have a 24-byte header, result frames 33 bytes, setup
//! frames start with a short string's length), so whole frames need no marker.

use super::handshake::{self, Hello};
use super::spawned::{FrameReceiver, FrameSender, Link, Place, Spawned};
use super::{Inbox, Outbox, PoolSpec, TransportInfo, WorkerEnds};
use crate::error::{LinkError, SpawnError, WorkerError};
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};
use ipc_channel::IpcError;
use serde::{Deserialize, Serialize};

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

/// Receives one frame from `receiver`, reassembling a train announced at most `max_frame`
/// bytes long.
fn recv_frame(receiver: &IpcBytesReceiver, max_frame: u64) -> Result<Vec<u8>, IpcError> {
    let first = receiver.recv()?;
    let total = match first.split_first_chunk::<8>() {
        Some((head, len)) if first.len() == 16 && *head == TRAIN => {
            u64::from_le_bytes(len.try_into().unwrap_or_default())
        }
        _ => return Ok(first),
    };
    if total > max_frame {
        return Err(IpcError::Io(std::io::Error::other(LinkError::TooLong {
            len: total,
            max: max_frame,
        })));
    }
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

/// Its `--help` line.
const ABOUT: &str = "worker processes on this machine over ipc-channel (its byte channels)";

/// Worker processes over ipc-channel.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalTransport;

impl Spawned for LocalTransport {
    const INFO: TransportInfo = TransportInfo::spawned("local", ABOUT).with_trains();
    // The task and result channels, a reader thread's wake-up and the handshake's connection.
    const FILES_PER_WORKER: u64 = 6;

    fn link(&self, hello: Hello, spec: &PoolSpec<'_>) -> Result<Link, SpawnError> {
        let (tasks, results) = answer(hello)?;
        Ok(Link {
            sender: Box::new(Tasks(tasks, spec.frame_bytes)),
            receiver: Box::new(Results(results, super::FrameLimit::new(super::stream::MAX_FRAME))),
        })
    }

    fn join(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        connect(hello, worker, protocol)
    }
}

/// Answers a checked hello (`REST`: the name of the worker's one-shot server) with the
/// worker's ends of two new channels; keeps the coordinator's ends.
fn answer(hello: Hello) -> Result<(IpcBytesSender, IpcBytesReceiver), SpawnError> {
    let (worker, pid) = (hello.worker, hello.pid);
    let bad = |message: String| SpawnError::BadHello { worker, pid, message };
    let server = hello
        .rest
        .split(' ')
        .next()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no channel to answer on".into()))?;
    let channel = |what: &'static str| {
        move |source: std::io::Error| SpawnError::Channel { worker, what, source }
    };
    let (task_tx, task_rx) = ipc::bytes_channel().map_err(channel("task channel"))?;
    let (result_tx, result_rx) = ipc::bytes_channel().map_err(channel("result channel"))?;
    IpcSender::<Channels>::connect(server.to_string())
        .map_err(channel("answer to its hello"))?
        .send(Channels { tasks: task_rx, results: result_tx })
        .map_err(|e| bad(format!("answering it: {e}")))?;
    Ok((task_tx, result_rx))
}

/// The coordinator's end of a worker's task channel, with the run's train size.
struct Tasks(IpcBytesSender, usize);

impl FrameSender for Tasks {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        send_frame(&self.0, frame, self.1)
    }
}

/// The coordinator's end of a worker's result channel. ipc-channel receives into a fresh
/// buffer of its own, never into the caller's: one allocation per frame, and the payload is
/// copied from it into place by the decode.
struct Results(IpcBytesReceiver, super::FrameLimit);

impl FrameReceiver for Results {
    fn reads_into(&self) -> bool {
        false
    }

    fn limit(&mut self, max_frame: &super::FrameLimit) {
        self.1 = max_frame.clone();
    }

    fn recv(&mut self, into: &mut Vec<u8>, _: Option<Place<'_>>) -> Result<Option<u64>, LinkError> {
        let max_frame = self.1.get();
        match recv_frame(&self.0, max_frame) {
            // ipc-channel sized its own buffer for it: refused once here.
            Ok(frame) if frame.len() as u64 > max_frame => {
                super::stream::check_len(frame.len() as u64, max_frame).map(|_| None)
            }
            Ok(frame) => {
                *into = frame;
                Ok(Some(0))
            }
            Err(IpcError::Disconnected) => Ok(None),
            Err(IpcError::Io(e)) => match e.downcast::<LinkError>() {
                Ok(too_long) => Err(too_long),
                Err(e) => Err(LinkError::Io(e)),
            },
            Err(e) => Err(LinkError::Channel(e.to_string())),
        }
    }
}

/// The worker's half: says hello on the coordinator's socket `name` as worker `worker`, with
/// `protocol_version` and the name of a one-shot server of its own, and returns its task inbox
/// and result outbox once the coordinator answered there.
pub fn connect(name: &str, worker: u32, protocol_version: u32) -> Result<WorkerEnds, WorkerError> {
    let channel = |what: &'static str| {
        move |e: std::io::Error| WorkerError::Channel { worker, what, message: e.to_string() }
    };
    // ipc-channel makes its server's socket in the temporary directory (the coordinator's
    // run folder) and cannot report a missing one: check it first.
    let tmp = std::env::temp_dir();
    if !tmp.is_dir() {
        return Err(channel("its one-shot server")(std::io::Error::other(format!(
            "the temporary directory {} is gone",
            tmp.display()
        ))));
    }
    let (server, server_name) =
        IpcOneShotServer::<Channels>::new().map_err(channel("its one-shot server"))?;
    let stream = handshake::say_hello(name, worker, protocol_version, &server_name)?;
    let (_, channels) = server.accept().map_err(|e| WorkerError::Channel {
        worker,
        what: "receiving its channels",
        message: e.to_string(),
    })?;
    drop(stream);
    Ok((Box::new(LocalInbox(channels.tasks)), Box::new(LocalOutbox(channels.results, 0))))
}

struct LocalInbox(IpcBytesReceiver);

impl Inbox for LocalInbox {
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        match recv_frame(&self.0, super::stream::MAX_FRAME) {
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
        let got = recv_frame(&rx, u64::MAX).unwrap();
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
        assert!(recv_frame(&rx, u64::MAX).is_err());
        tx.send(&announce).unwrap();
        tx.send(&[]).unwrap();
        assert!(recv_frame(&rx, u64::MAX).is_err());
    }
}
