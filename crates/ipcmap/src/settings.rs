//! Settings: what every strategy and the scheduler read of a run (the workload, how it is cut
//! into tasks, and the worker pool), validated by `config` before anything runs. Beside the
//! transports (a run names one) and below the scheduler and the strategies, so both can take
//! them without reaching up.

use crate::codec::CodecKind;
use crate::kernel::Function;
pub use crate::transport::TransportKind;
use std::path::PathBuf;
use std::time::Duration;

/// The settings of a run, every field at its final value.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Workers (processes or threads).
    pub workers: usize,
    /// Elements.
    pub n: usize,
    /// Function.
    pub function: Function,
    /// Times the function is applied per element.
    pub work: u32,
    /// Parts the input is split into.
    pub splits: usize,
    /// Explicit chunksize, if given (else the strategy's default).
    pub chunksize: Option<usize>,
    /// Codec of payloads.
    pub codec: CodecKind,
    /// Data seed.
    pub seed: u64,
    /// Worker executable (resolved when a process strategy is asked for).
    pub worker_bin: Option<PathBuf>,
    /// How long a worker may take to say hello.
    pub handshake_timeout: Duration,
    /// What to do when a worker fails.
    pub on_worker_exit: OnWorkerExit,
    /// How long a worker may hold a task.
    pub task_timeout: TaskTimeout,
    /// How workers are started and reached.
    pub transport: TransportKind,
    /// Record spans for a timeline (`--trace`, `--timeline`).
    pub trace: bool,
    /// Threads that decode big results off the gather thread; `None` = automatic (one per
    /// worker on the cores left after the gather thread and one worker).
    pub decode_threads: Option<usize>,
    /// Frames bigger than this travel as trains of frames of at most this many bytes (local
    /// transport); 0 = whole.
    pub frame_bytes: usize,
}

/// How long a worker may hold a task without returning a result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaskTimeout {
    /// 20 times the slowest task so far, at least 5 s (the scheduler's rule).
    #[default]
    Auto,
    /// A fixed deadline (`--task-timeout SECONDS`).
    After(Duration),
    /// No deadline (`--task-timeout 0`).
    Off,
}

/// What to do when a worker dies or misbehaves mid-run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnWorkerExit {
    /// Hand its unfinished tasks to the surviving workers.
    #[default]
    Retry,
    /// Stop the run with an error.
    Abort,
}
