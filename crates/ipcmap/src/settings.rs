//! Settings: what every strategy and the scheduler read of a run (the workload, how it is cut
//! into tasks, and the worker pool), validated by `config` before anything runs. Beside the
//! transports (a run names one) and below the scheduler and the strategies, so both can take
//! them without reaching up.

use crate::codec::CodecKind;
use crate::kernel::Function;
pub use crate::transport::TransportKind;
use std::path::PathBuf;
use std::time::Duration;

/// Default element count: the tutorial's 10,000,000.
pub const DEFAULT_N: usize = 10_000_000;
/// Default number of parts: the tutorial's best, `numpy.split(data, 64)`.
pub const DEFAULT_SPLITS: usize = 64;
/// The most values a default part holds: 64 parts of the tutorial's 10M, 1.25 MB of f64,
/// inside the channel's sweet spot (64-128 parts of 0.6-1.25 MB measured best at 10M; an
/// 80 MB message takes ipc-channel's fragmentation path and costs 0.6 s). Past 10M the
/// default split count grows with n so that a part stays this size: 6,400 parts at 10^9, not
/// 64 of 125 MB.
pub const MAX_DEFAULT_PART_VALUES: usize = 156_250;

/// The default number of parts for `n` values: [`DEFAULT_SPLITS`], or more where parts would
/// pass [`MAX_DEFAULT_PART_VALUES`]; never more than `n`.
pub fn default_splits(n: usize) -> usize {
    DEFAULT_SPLITS.max(n.div_ceil(MAX_DEFAULT_PART_VALUES)).min(n).max(1)
}

/// Default seed, fixed so that two runs see the same data.
pub const DEFAULT_SEED: u64 = 1;
/// How long a worker may take to say hello, unless told otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings of a run. One model from the command line to the strategies: a request
/// (`config::RunRequest`) carries them as asked, with `workers` and `splits` resolved by
/// validation from the request's own (`None`: automatic), and the validated configuration
/// carries them at their final values.
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
    /// The result overwrites the input (`--in-place`, as `numpy.exp(data, out=data)`): one
    /// buffer, 8 bytes a value; only strategies whose `Info` says `in_place`.
    pub in_place: bool,
    /// How long worker processes live (`--pool`): the run's, or the invocation's.
    pub pool: WorkerPool,
}

impl Default for Settings {
    /// The tutorial's workload on the default transport; one worker and 64 parts until
    /// validation resolves them.
    fn default() -> Self {
        Settings {
            workers: 1,
            n: DEFAULT_N,
            function: Function::Exp,
            work: 1,
            splits: DEFAULT_SPLITS,
            chunksize: None,
            codec: CodecKind::BINCODE,
            seed: DEFAULT_SEED,
            worker_bin: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            on_worker_exit: OnWorkerExit::Retry,
            task_timeout: TaskTimeout::Auto,
            transport: TransportKind::default(),
            trace: false,
            decode_threads: None,
            frame_bytes: 0,
            in_place: false,
            pool: WorkerPool::PerRun,
        }
    }
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

/// How long worker processes live (`--pool`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum WorkerPool {
    /// Started for each run and ended with it, as the tutorial's `Pool` inside its timer.
    #[default]
    PerRun,
    /// Started once and kept: they serve every later run whose workers match (strategy
    /// kind, transport, count, shared regions), as a `Pool` created once serves many
    /// `map` calls. Their start is reported on its own, as a one-time cost.
    Persistent,
}

impl WorkerPool {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkerPool::PerRun => "per-run",
            WorkerPool::Persistent => "persistent",
        }
    }
}

/// What to do when a worker dies or misbehaves mid-run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OnWorkerExit {
    /// Hand its unfinished tasks to the surviving workers.
    #[default]
    Retry,
    /// Stop the run with an error.
    Abort,
}
