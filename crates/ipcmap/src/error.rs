//! Errors of each failure area, with the worker, pid, task and phase they concern.

use crate::codec::CodecError;
use std::path::PathBuf;

/// How to build the worker, named in every error about a missing or wrong worker binary.
pub const BUILD_HINT: &str =
    "build it with `cargo build --release --workspace` (or pass --worker-bin PATH)";

/// A task or result payload that cannot be used (any bytes may arrive from a peer), or a
/// worker half that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// A frame or block header is malformed.
    #[error(transparent)]
    Frame(#[from] crate::protocol::ProtocolError),
    /// The codec refused the bytes.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Shared memory could not be mapped.
    #[error(transparent)]
    Shared(#[from] crate::shared::SharedError),
    /// A count or size other than the task's.
    #[error("{what}: {got}, expected {expected}")]
    Mismatch { what: &'static str, got: u64, expected: u64 },
    /// A range outside the data.
    #[error("range {start}+{len} is outside the {n} elements")]
    OutOfRange { start: u64, len: u64, n: u64 },
    /// The setup names no usable worker half.
    #[error("setup: {0}")]
    Setup(String),
    /// A strategy's own channel (a pipe, a socket) failed.
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
}

/// A transport's link between the coordinator and a worker failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The other side is gone (closed its end, or exited).
    #[error("the other side hung up")]
    Closed,
    /// The operating system refused (a broken pipe, say).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The channel reported another failure, in its own words.
    #[error("{0}")]
    Channel(String),
    /// The peer announced a frame longer than any task of the run can produce: refused
    /// before anything was allocated for it.
    #[error(
        "a frame of {len} bytes announced, more than any task of this run can produce ({max})"
    )]
    TooLong {
        /// The length announced, bytes.
        len: u64,
        /// The longest the run allows, bytes.
        max: u64,
    },
}

/// What an early exit suggests: where the worker said why, its words are the reason and
/// nothing is added; where it said nothing, perhaps it is not an ipcmap worker of this build.
fn early_hint(stderr: &str, path: &std::path::Path) -> String {
    match stderr.is_empty() {
        true => format!("; is {} an ipcmap worker of this build? {BUILD_HINT}", path.display()),
        false => String::new(),
    }
}

/// Starting the worker pool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// No worker executable where it was looked for.
    #[error("worker executable not found at {path}: {BUILD_HINT}")]
    NotFound { path: PathBuf },
    /// The path exists but cannot be run.
    #[error("worker executable {path} is not an executable file: {BUILD_HINT}")]
    NotExecutable { path: PathBuf },
    /// The coordinator's own path could not be found, to look for the worker beside it.
    #[error("cannot locate the coordinator's own executable to find the worker beside it: {0}")]
    CurrentExe(std::io::Error),
    /// The MPI job cannot host the pool.
    #[error("MPI: {0}")]
    Mpi(String),
    /// The transport asked for is not in this build.
    #[error("--transport {name}: {why}")]
    Unbuilt { name: &'static str, why: String },
    /// The OS refused to start the process.
    #[error("starting worker {worker} from {path}: {source}")]
    Start { worker: u32, path: PathBuf, source: std::io::Error },
    /// An ipc-channel resource could not be created.
    #[error("creating the {what} for worker {worker}: {source}")]
    Channel { worker: u32, what: &'static str, source: std::io::Error },
    /// The worker exited before saying hello.
    #[error(
        "worker {worker} (pid {pid}) exited before the handshake ({status}{stderr}){}",
        early_hint(stderr, path)
    )]
    ExitedEarly {
        worker: u32,
        pid: u32,
        status: String,
        /// The worker's last words on stderr, as ": ..." (empty when it said nothing).
        stderr: String,
        path: PathBuf,
    },
    /// SIGINT or SIGTERM arrived while the workers were starting.
    #[error(
        "interrupted by signal {signal} while starting workers; every started worker was stopped"
    )]
    Interrupted { signal: i32 },
    /// The worker did not say hello in time.
    #[error("worker {worker} (pid {pid}) did not complete the handshake within {timeout_ms} ms; is {path} an ipcmap worker? {BUILD_HINT}")]
    HandshakeTimeout { worker: u32, pid: u32, timeout_ms: u128, path: PathBuf },
    /// The worker's hello could not be read.
    #[error("worker {worker} (pid {pid}) sent a handshake this coordinator cannot read ({message}); a stale build? {BUILD_HINT}")]
    BadHello { worker: u32, pid: u32, message: String },
    /// The worker speaks another protocol version.
    #[error("worker {worker} (pid {pid}) speaks protocol v{theirs}, this coordinator v{ours}: rebuild both with `cargo build --release --workspace`")]
    ProtocolMismatch { worker: u32, pid: u32, theirs: u32, ours: u32 },
    /// The worker said it was someone else.
    #[error("worker {worker} (pid {pid}) introduced itself as worker {claimed}")]
    WrongId { worker: u32, pid: u32, claimed: u32 },
    /// Sending the setup message failed.
    #[error("sending setup to worker {worker} (pid {pid}): {message}")]
    Setup { worker: u32, pid: u32, message: String },
    /// The run folder is gone or unusable.
    #[error(transparent)]
    RunDir(#[from] crate::rundir::RunDirError),
    /// A thread could not be started (`ulimit -u`, `ulimit -v`, a cgroup's pids.max).
    #[error("cannot start the {what} thread: {source}; the process or memory limits (ulimit -u, ulimit -v, a cgroup) leave no room for it")]
    Thread { what: &'static str, source: std::io::Error },
}

/// A run failed after its workers were started.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Starting the pool failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A worker process ended while it still had work.
    #[error("worker {worker} (pid {pid}) {status} with {in_flight} task(s) unfinished")]
    WorkerDied { worker: u32, pid: u32, status: String, in_flight: usize },
    /// A payload could not be encoded or decoded, or its strategy's own channel failed.
    #[error("task {task} ({phase}): {source}")]
    Codec { task: usize, phase: &'static str, source: PayloadError },
    /// A channel operation failed.
    #[error("{what}: {message}")]
    Channel { what: String, message: String },
    /// Shared memory could not be set up.
    #[error(transparent)]
    Shm(#[from] crate::shared::SharedError),
    /// A parallel result differs from the sequential one.
    #[error("{mode} result differs from the sequential result at index {index}: {got:e} (bits {got_bits:#018x}) instead of {expected:e} (bits {expected_bits:#018x})")]
    Mismatch {
        mode: String,
        index: usize,
        got: f64,
        got_bits: u64,
        expected: f64,
        expected_bits: u64,
    },
    /// SIGINT or SIGTERM asked the run to stop.
    #[error("interrupted by signal {signal}; workers were stopped and no result is reported")]
    Interrupted { signal: i32 },
    /// A run of one configuration failed: which one (its label, "split, bincode, 64 splits,
    /// chunk 1"), then why, for the errors that do not name it themselves.
    #[error("{label}: {source}")]
    During {
        /// The configuration's label.
        label: String,
        /// Why it failed.
        source: Box<RunError>,
    },
    /// A compute thread of threads mode panicked.
    #[error("threads: compute thread {thread} panicked: {message}")]
    ThreadPanicked { thread: usize, message: String },
    /// The result has the wrong length.
    #[error("{mode} result has {got} values, expected {expected}")]
    WrongLength { mode: String, got: usize, expected: usize },
    /// A result kept by its worker (owner) has another checksum than the sequential kernel's
    /// over the same input, or the results do not cover the input once.
    #[error("{mode} result of values {start}..{end}: {problem}")]
    Checksum { mode: String, start: usize, end: usize, problem: String },
}

impl RunError {
    /// The signal that stopped the run, where one did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            RunError::Interrupted { signal }
            | RunError::Spawn(SpawnError::Interrupted { signal }) => Some(*signal),
            RunError::During { source, .. } => source.signal(),
            _ => None,
        }
    }

    /// This error in the run of configuration `label`, where it does not say which itself (a
    /// worker or a channel that failed; a mismatch, a thread's panic, a start or a stop name
    /// their own context).
    pub fn during(self, label: impl FnOnce() -> String) -> RunError {
        match self {
            RunError::WorkerDied { .. }
            | RunError::Codec { .. }
            | RunError::Channel { .. }
            | RunError::Shm(_) => RunError::During { label: label(), source: Box::new(self) },
            other => other,
        }
    }
}

/// The worker process failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker was started with arguments it cannot use.
    #[error("{0}")]
    Usage(String),
    /// The worker loop panicked (an MPI rank reports it and goes on to the next run).
    #[error("panicked: {message}")]
    Panicked { worker: u32, message: String },
    /// The coordinator speaks another protocol.
    #[error("this worker speaks protocol v{ours}, the coordinator v{theirs}: rebuild both with `cargo build --release --workspace`")]
    ProtocolMismatch { ours: u32, theirs: u32 },
    /// A link to the coordinator failed.
    #[error("worker {worker}: {what}: {source}")]
    Link { worker: u32, what: &'static str, source: LinkError },
    /// Connecting or talking to the coordinator failed.
    #[error("worker {worker}: {what}: {message}")]
    Channel { worker: u32, what: &'static str, message: String },
    /// An injected fault (tests) asked the worker to exit with `code`.
    #[error("worker {worker}: injected fault: exit with code {code}")]
    InjectedExit { worker: u32, code: u8 },
    /// A task frame could not be decoded or computed.
    #[error("worker {worker}, task {task}: {source}")]
    BadTask { worker: u32, task: u32, source: PayloadError },
    /// The setup names no worker half this worker can run.
    #[error("worker {worker}: {source}")]
    Setup { worker: u32, source: PayloadError },
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".into())
}

/// One line on stderr, for what a run notices and goes on after (a refused handshake); a
/// closed or full stderr is not worth a panic.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
