//! The wire protocol between the coordinator and its workers.
//!
//! Bootstrap: the transport connects each worker and checks its [`PROTOCOL_VERSION`] (the local
//! transport's handshake is in `transport/local.rs`); then the first frame to every worker is
//! its [`Setup`]: mode, function, work, codec and what the strategy adds (shm: its regions).
//!
//! Data (plain bytes whatever the transport, so the codec is what is measured):
//! - coordinator → worker: a task frame, [`TaskHeader`] then the strategy's payload;
//! - worker → coordinator: a result frame ([`ResultHeader`] then the payload), and when the task
//!   channel closes, one [`WorkerStats`] frame before the worker exits;
//! - a kept pool (`--pool persistent`): an empty task frame ends a run; the worker sends its
//!   stats for the run and reads the next run's [`Setup`].
//!
//! Headers are fixed-size little-endian integers; every decoder here returns an error on short
//! or unknown input and never panics.

use crate::codec::CodecKind;
use crate::kernel::Function;
use serde::{Deserialize, Serialize};

/// Version of this protocol; a worker of another version is refused at the handshake.
/// 3: the setup is the first frame on the task channel, and the worker makes its result channel.
/// 4: the setup carries a strategy's own `extra` bytes instead of shm's regions.
/// 8: the local handshake is authenticated (the worker connects to a private listening socket,
/// its peer credentials are checked, and the coordinator sends it its channels).
/// 12: an empty task frame ends a run and the next run's setup follows (`--pool persistent`).
pub const PROTOCOL_VERSION: u32 = 12;

/// The setup's `mode` of the raw channel probe's echo worker (not a strategy).
pub const ECHO: &str = "echo";

/// The setup's `mode` of the bandwidth probe's worker (not a strategy): every frame is
/// answered by an 8-byte one, so the bytes flow one way, as OSU's osu_bw measures them.
pub const ACK: &str = "ack";

/// Coordinator → worker, the first frame on the task channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// The strategy whose worker half to run, by name, or [`ECHO`].
    pub mode: String,
    /// The function to apply.
    pub function: Function,
    /// Times the function is applied per element (`--work`).
    pub work: u32,
    /// How payloads are encoded.
    pub codec: CodecKind,
    /// What the strategy's worker half needs beyond this (shm: its regions' descriptors;
    /// cma: the coordinator's pid and buffer addresses), in the strategy's own encoding.
    pub extra: Vec<u8>,
    /// Read tasks ahead on a separate thread. Set when task frames are big: ipc-channel sends
    /// them in fragments that block the sender until the receiver reads, so a worker that
    /// drains its channel while computing keeps the coordinator's sends as short as the copy.
    pub prefetch: bool,
    /// Stamp every task on `CLOCK_MONOTONIC` and send the stamps with the stats (`--trace`,
    /// `--timeline`).
    pub trace: bool,
    /// Send frames bigger than this as a train of frames of at most this many bytes
    /// (`--frame-bytes`); 0: every frame whole.
    pub frame_bytes: u64,
}

impl Setup {
    /// The setup frame.
    pub fn to_frame(&self) -> Vec<u8> {
        // A struct of plain fields: postcard cannot fail on it.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads a setup frame; any bytes may arrive, so a bad frame is an error.
    pub fn from_frame(frame: &[u8]) -> Result<Setup, ProtocolError> {
        postcard::from_bytes(frame).map_err(|e| ProtocolError::Setup(e.to_string()))
    }
}

/// A frame that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The frame ended before a field did.
    #[error("frame truncated: {field} needs {needed} bytes at offset {at}, frame has {len}")]
    Truncated { field: &'static str, needed: usize, at: usize, len: usize },
    /// An unknown frame kind.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A field whose value makes no sense (a length beyond the frame, say).
    #[error("invalid {field}: {value}")]
    Invalid { field: &'static str, value: u64 },
    /// The setup frame could not be read.
    #[error("unreadable setup frame: {0}")]
    Setup(String),
}

/// Reads little-endian fields off the front of a frame, with bounds checks.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or(
            ProtocolError::Truncated { field, needed: n, at: self.at, len: self.bytes.len() },
        )?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ProtocolError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(field, N)?);
        Ok(a)
    }

    /// A byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// A little-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        self.array(field).map(u32::from_le_bytes)
    }

    /// A little-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, ProtocolError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// A little-endian u64 that must fit a `usize` and be at most `max`.
    pub fn len(&mut self, field: &'static str, max: usize) -> Result<usize, ProtocolError> {
        let value = self.u64(field)?;
        usize::try_from(value)
            .ok()
            .filter(|&v| v <= max)
            .ok_or(ProtocolError::Invalid { field, value })
    }

    /// Everything not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
}

/// The header of a task frame (coordinator → worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskHeader {
    /// Task index.
    pub task: u32,
    /// First element of the task.
    pub start: u64,
    /// Number of elements.
    pub len: u64,
    /// Number of parts (blocks) in the payload (split); 1 otherwise.
    pub parts: u32,
}

impl TaskHeader {
    /// Encoded size in bytes.
    pub const SIZE: usize = 24;

    /// Appends the header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.task.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.parts.to_le_bytes());
    }

    /// Splits a task frame into its header and payload.
    pub fn read(frame: &[u8]) -> Result<(TaskHeader, &[u8]), ProtocolError> {
        let mut r = Reader::new(frame);
        let header = TaskHeader {
            task: r.u32("task")?,
            start: r.u64("start")?,
            len: r.u64("len")?,
            parts: r.u32("parts")?,
        };
        Ok((header, r.rest()))
    }
}

/// Frame kinds on the result channel.
pub mod kind {
    /// A task's result.
    pub const RESULT: u8 = 1;
    /// A worker's totals, sent once when its task channel closes.
    pub const STATS: u8 = 2;
}

/// The header of a result frame (worker → coordinator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResultHeader {
    /// Worker id.
    pub worker: u32,
    /// Task index.
    pub task: u32,
    /// Worker time decoding the task payload, ns.
    pub decode_ns: u64,
    /// Worker time in the kernel, ns.
    pub compute_ns: u64,
    /// Worker time encoding the result payload, ns.
    pub encode_ns: u64,
    /// Worker time generating the task's input itself, before decoding (owner: its range
    /// from the seed), ns; 0 for a task whose input came with it.
    pub generate_ns: u64,
}

impl ResultHeader {
    /// Encoded size in bytes, kind byte included.
    pub const SIZE: usize = 1 + 4 + 4 + 8 * 4;

    /// Appends the frame kind and header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(kind::RESULT);
        out.extend_from_slice(&self.worker.to_le_bytes());
        out.extend_from_slice(&self.task.to_le_bytes());
        out.extend_from_slice(&self.decode_ns.to_le_bytes());
        out.extend_from_slice(&self.compute_ns.to_le_bytes());
        out.extend_from_slice(&self.encode_ns.to_le_bytes());
        out.extend_from_slice(&self.generate_ns.to_le_bytes());
    }

    /// Overwrites the timing fields of a header already written at the start of `frame`:
    /// decode, compute, encode and generate ns, in that order.
    pub fn patch_timing(frame: &mut [u8], timing: [u64; 4]) {
        if frame.len() >= Self::SIZE {
            for (i, ns) in timing.into_iter().enumerate() {
                frame[9 + 8 * i..17 + 8 * i].copy_from_slice(&ns.to_le_bytes());
            }
        }
    }
}

/// A worker's totals, sent when its task channel closes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Worker id.
    pub worker: u32,
    /// Tasks completed.
    pub tasks: u64,
    /// Time inside result sends, ns.
    pub send_ns: u64,
    /// Time blocked waiting for the next task, ns.
    pub idle_ns: u64,
    /// CPU time in user mode from its setup to its stats, ns (`getrusage`).
    pub user_ns: u64,
    /// CPU time in the kernel over the same span, ns: page faults, copies, system calls.
    pub system_ns: u64,
    /// Its peak resident set size since its setup, bytes (`VmHWM`, reset at the setup); 0
    /// where the kernel does not say.
    pub peak_rss_bytes: u64,
}

impl WorkerStats {
    /// Encoded size in bytes, kind byte included.
    pub const SIZE: usize = 1 + 4 + 8 * 6;

    /// The whole frame.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        out.push(kind::STATS);
        out.extend_from_slice(&self.worker.to_le_bytes());
        out.extend_from_slice(&self.tasks.to_le_bytes());
        out.extend_from_slice(&self.send_ns.to_le_bytes());
        out.extend_from_slice(&self.idle_ns.to_le_bytes());
        out.extend_from_slice(&self.user_ns.to_le_bytes());
        out.extend_from_slice(&self.system_ns.to_le_bytes());
        out.extend_from_slice(&self.peak_rss_bytes.to_le_bytes());
        out
    }
}

/// When one task arrived at a worker and when its result left, ns on the worker's
/// `CLOCK_MONOTONIC` (one clock for every process of a machine). Sent after the stats, one per
/// task, only when the setup asks for them (`Setup::trace`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskStamp {
    /// Task index.
    pub task: u32,
    /// When the task frame arrived; decode, compute and encode followed in that order.
    pub received_at_ns: u64,
    /// How long the worker had waited for it.
    pub idle_ns: u64,
    /// When the result's send began.
    pub sent_at_ns: u64,
    /// How long the send took.
    pub send_ns: u64,
}

impl TaskStamp {
    /// Encoded size in bytes.
    pub const SIZE: usize = 4 + 8 * 4;

    /// Appends it to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.task.to_le_bytes());
        for v in [self.received_at_ns, self.idle_ns, self.sent_at_ns, self.send_ns] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A decoded frame from the result channel.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A task's result and its payload.
    Result(ResultHeader, &'a [u8]),
    /// A worker's totals, and its task stamps when tracing.
    Stats(WorkerStats, Vec<TaskStamp>),
}

impl<'a> Inbound<'a> {
    /// Decodes one frame from the result channel.
    pub fn read(frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
        let mut r = Reader::new(frame);
        match r.u8("kind")? {
            kind::RESULT => {
                let header = ResultHeader {
                    worker: r.u32("worker")?,
                    task: r.u32("task")?,
                    decode_ns: r.u64("decode_ns")?,
                    compute_ns: r.u64("compute_ns")?,
                    encode_ns: r.u64("encode_ns")?,
                    generate_ns: r.u64("generate_ns")?,
                };
                Ok(Inbound::Result(header, r.rest()))
            }
            kind::STATS => {
                let stats = WorkerStats {
                    worker: r.u32("worker")?,
                    tasks: r.u64("tasks")?,
                    send_ns: r.u64("send_ns")?,
                    idle_ns: r.u64("idle_ns")?,
                    user_ns: r.u64("user_ns")?,
                    system_ns: r.u64("system_ns")?,
                    peak_rss_bytes: r.u64("peak_rss_bytes")?,
                };
                let mut stamps = Vec::with_capacity(r.remaining() / TaskStamp::SIZE);
                while r.remaining() > 0 {
                    stamps.push(TaskStamp {
                        task: r.u32("stamp task")?,
                        received_at_ns: r.u64("received_at_ns")?,
                        idle_ns: r.u64("stamp idle_ns")?,
                        sent_at_ns: r.u64("sent_at_ns")?,
                        send_ns: r.u64("stamp send_ns")?,
                    });
                }
                Ok(Inbound::Stats(stats, stamps))
            }
            other => Err(ProtocolError::UnknownKind(other)),
        }
    }
}

/// Per-block framing inside a split payload: element count, then the block's byte length.
/// Starts a block frame: writes the element count and a placeholder for the byte length; the
/// caller appends the block, then calls [`end_block_frame`] with the returned position.
pub fn begin_block_frame(out: &mut Vec<u8>, elements: usize) -> usize {
    out.extend_from_slice(&(elements as u64).to_le_bytes());
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    at
}

/// Finishes a block frame begun at `at`: fills in the byte length; returns it.
pub fn end_block_frame(out: &mut [u8], at: usize) -> usize {
    let bytes = out.len() - at - 8;
    out[at..at + 8].copy_from_slice(&(bytes as u64).to_le_bytes());
    bytes
}

/// The header of a block frame of `elements` values in `bytes` bytes, as
/// [`begin_block_frame`] and [`end_block_frame`] write it.
pub fn block_header(elements: usize, bytes: usize) -> [u8; 16] {
    let mut header = [0; 16];
    header[..8].copy_from_slice(&(elements as u64).to_le_bytes());
    header[8..].copy_from_slice(&(bytes as u64).to_le_bytes());
    header
}

/// Reads one block frame: the element count and the block's bytes.
pub fn read_block_frame<'a>(
    r: &mut Reader<'a>,
    max_elements: usize,
) -> Result<(usize, &'a [u8]), ProtocolError> {
    let elements = r.len("block elements", max_elements)?;
    let bytes = r.len("block bytes", r.remaining().saturating_sub(8))?;
    Ok((elements, r.take("block", bytes)?))
}

/// Encodes a strategy's setup `extra` (postcard); a plain struct cannot fail to encode.
pub fn encode_extra<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}

/// Decodes a strategy's setup `extra`; any bytes may arrive, so a bad one is an error.
pub fn decode_extra<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    postcard::from_bytes(bytes).map_err(|e| ProtocolError::Setup(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_header_round_trips() {
        let h = TaskHeader { task: 7, start: 1 << 40, len: 99, parts: 3 };
        let mut frame = Vec::new();
        h.write(&mut frame);
        assert_eq!(frame.len(), TaskHeader::SIZE);
        frame.extend_from_slice(b"payload");
        assert_eq!(TaskHeader::read(&frame).unwrap(), (h, &b"payload"[..]));
    }

    #[test]
    fn result_and_stats_frames_round_trip() {
        let h = ResultHeader {
            worker: 2,
            task: 5,
            decode_ns: 1,
            compute_ns: 2,
            encode_ns: 3,
            generate_ns: 4,
        };
        let mut frame = Vec::new();
        ResultHeader { worker: 2, task: 5, ..ResultHeader::default() }.write(&mut frame);
        ResultHeader::patch_timing(&mut frame, [1, 2, 3, 4]);
        assert_eq!(frame.len(), ResultHeader::SIZE);
        frame.push(9);
        assert_eq!(Inbound::read(&frame).unwrap(), Inbound::Result(h, &[9][..]));

        let s = WorkerStats {
            worker: 1,
            tasks: 10,
            send_ns: 5,
            idle_ns: 6,
            user_ns: 7,
            system_ns: 8,
            peak_rss_bytes: 9,
        };
        assert_eq!(s.to_frame().len(), WorkerStats::SIZE);
        assert_eq!(Inbound::read(&s.to_frame()).unwrap(), Inbound::Stats(s, Vec::new()));
        let stamp = TaskStamp { task: 7, received_at_ns: 1, idle_ns: 2, sent_at_ns: 3, send_ns: 4 };
        let mut frame = s.to_frame();
        stamp.write(&mut frame);
        assert_eq!(Inbound::read(&frame).unwrap(), Inbound::Stats(s, vec![stamp]));
        assert!(Inbound::read(&frame[..frame.len() - 1]).is_err());
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error() {
        let mut frame = Vec::new();
        ResultHeader::default().write(&mut frame);
        for cut in 0..frame.len() {
            assert!(Inbound::read(&frame[..cut]).is_err(), "cut at {cut}");
        }
        let mut task = Vec::new();
        TaskHeader { task: 1, start: 0, len: 1, parts: 1 }.write(&mut task);
        for cut in 0..task.len() {
            assert!(TaskHeader::read(&task[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(Inbound::read(&[42]), Err(ProtocolError::UnknownKind(42)));
    }

    #[test]
    fn block_frames_reject_lengths_beyond_the_frame() {
        let mut ok = Vec::new();
        let at = begin_block_frame(&mut ok, 1);
        ok.extend_from_slice(&[0; 8]);
        assert_eq!(end_block_frame(&mut ok, at), 8);
        let (elements, block) = read_block_frame(&mut Reader::new(&ok), 10).unwrap();
        assert_eq!((elements, block.len()), (1, 8));
        let mut lying = ok.clone();
        lying[8..16].copy_from_slice(&100u64.to_le_bytes());
        assert!(read_block_frame(&mut Reader::new(&lying), 10).is_err());
        assert!(read_block_frame(&mut Reader::new(&ok), 0).is_err(), "more elements than allowed");
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            #[test]
            fn any_bytes_are_a_frame_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
                let _ = Inbound::read(&bytes);
                let _ = TaskHeader::read(&bytes);
                let mut r = Reader::new(&bytes);
                let _ = read_block_frame(&mut r, usize::MAX);
            }
        }
    }
}
