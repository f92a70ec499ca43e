//! Injected faults, for tests only: `IPCMAP_FAULT` makes a worker misbehave on purpose (exit,
//! panic, send garbage, stop answering, claim another protocol), so the coordinator's handling
//! of each is tested against the real thing.

/// Environment variable naming a fault to inject (tests only).
pub const FAULT_ENV: &str = "IPCMAP_FAULT";

/// A deliberate misbehaviour, for tests: `exit-after=K`, `panic-after=K`, `garbage-after=K`,
/// `corrupt-after=K`, `hang-after=K`, `stop-after=K` (after K tasks), or `protocol=V` (announce version V in
/// the hello).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Exit with code 70 after K tasks.
    ExitAfter(u64),
    /// Panic after K tasks.
    PanicAfter(u64),
    /// Send a malformed result after K tasks.
    GarbageAfter(u64),
    /// Send results with a valid header but a payload one byte short after K tasks (caught
    /// only when the payload is decoded).
    CorruptAfter(u64),
    /// Send results whose last value has one bit flipped after K tasks: a well-formed frame
    /// with a wrong value, which only verification catches.
    FlipAfter(u64),
    /// Stop responding after K tasks.
    HangAfter(u64),
    /// Send results of [`OVERSIZE_BYTES`] after K tasks: longer than any small task can
    /// produce, as a worker that announces a huge frame does.
    OversizeAfter(u64),
    /// Replace the first block of its results with a list nested [`DEEP_LEVELS`] deep (in
    /// pickle's opcodes), keeping the block's element count, after K tasks: what a decoder
    /// that recurses on a peer's bytes overflows its stack on.
    DeepAfter(u64),
    /// Compute a task after K tasks (writing its result where the strategy writes: in place,
    /// over its input), then exit with code 70 without sending it: a worker lost mid-task.
    LostAfter(u64),
    /// Stop itself with SIGSTOP after K tasks, reading nothing more, as `kill -STOP` does.
    StopAfter(u64),
    /// Claim another protocol version.
    Protocol(u32),
}

/// The length of an [`Fault::OversizeAfter`] result, bytes.
pub const OVERSIZE_BYTES: usize = 64 << 20;

/// Levels of a [`Fault::DeepAfter`] list.
pub const DEEP_LEVELS: usize = 200_000;

/// A pickle of a list nested [`DEEP_LEVELS`] deep: PROTO 3, then EMPTY_LIST and MARK at every
/// level, then STOP.
pub fn deep_pickle() -> Vec<u8> {
    let mut bytes = vec![0x80, 3];
    bytes.extend(std::iter::repeat_n([b']', b'('], DEEP_LEVELS).flatten());
    bytes.push(b'.');
    bytes
}

impl Fault {
    /// The fault named by `$IPCMAP_FAULT` for this worker (`FAULT` or `FAULT@WORKER_ID`).
    pub fn from_env(worker: u32) -> Option<Fault> {
        let spec = std::env::var(FAULT_ENV).ok()?;
        let (fault, only) = match spec.split_once('@') {
            Some((f, w)) => (f.to_string(), w.parse::<u32>().ok()),
            None => (spec.clone(), None),
        };
        if only.is_some_and(|w| w != worker) {
            return None;
        }
        let (name, k) = fault.split_once('=')?;
        let k: u64 = k.parse().ok()?;
        match name {
            "exit-after" => Some(Fault::ExitAfter(k)),
            "panic-after" => Some(Fault::PanicAfter(k)),
            "garbage-after" => Some(Fault::GarbageAfter(k)),
            "corrupt-after" => Some(Fault::CorruptAfter(k)),
            "flip-after" => Some(Fault::FlipAfter(k)),
            "hang-after" => Some(Fault::HangAfter(k)),
            "oversize-after" => Some(Fault::OversizeAfter(k)),
            "deep-after" => Some(Fault::DeepAfter(k)),
            "lost-after" => Some(Fault::LostAfter(k)),
            "stop-after" => Some(Fault::StopAfter(k)),
            "protocol" => u32::try_from(k).ok().map(Fault::Protocol),
            _ => None,
        }
    }
}
