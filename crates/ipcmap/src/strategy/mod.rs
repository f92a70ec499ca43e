//! Strategies: the ways of applying the kernel to the data, one file each, each holding its
//! coordinator half and (for process strategies) its worker half.
//!
//! | strategy     | where it computes   | what crosses a process boundary        |
//! |--------------|---------------------|----------------------------------------|
//! | `sequential` | the coordinator     | nothing                                |
//! | `item`       | worker processes    | every float, encoded on its own        |
//! | `split`      | worker processes    | sub-vectors, each encoded as one block |
//! | `shm`        | worker processes    | (offset, length) only; data is shared  |
//! | `threads`    | coordinator threads | nothing (one address space)            |

pub mod item;
pub mod sequential;
pub mod shm;
pub mod split;
pub mod threads;

use crate::config::RunConfig;
use crate::error::RunError;
use crate::memory::BufferPool;
use crate::protocol::TaskHeader;
use crate::report::Measurement;
use serde::{Deserialize, Serialize};

/// A strategy (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In the coordinator, no IPC: the baseline.
    Sequential,
    /// `pool.map(f, data, chunksize=C)`: items encoded one by one.
    Item,
    /// `pool.map(f, split(data, S), chunksize=C)`: sub-vectors encoded as blocks.
    Split,
    /// Shared memory in and out; only ranges travel.
    Shm,
    /// The split scheduling on OS threads.
    Threads,
}

impl Mode {
    /// Every strategy, in the order `--mode all` runs them.
    pub const ALL: [Mode; 5] = [
        Mode::Sequential,
        Mode::Item,
        Mode::Split,
        Mode::Shm,
        Mode::Threads,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Item => "item",
            Mode::Split => "split",
            Mode::Shm => "shm",
            Mode::Threads => "threads",
        }
    }

    /// True for the strategies that spawn worker processes.
    pub fn uses_processes(self) -> bool {
        matches!(self, Mode::Item | Mode::Split | Mode::Shm)
    }

    /// True for the strategies that encode payloads with a codec.
    pub fn uses_codec(self) -> bool {
        matches!(self, Mode::Item | Mode::Split)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The assembled result of a run.
pub enum Output {
    /// A vector in the coordinator's memory.
    Owned(Vec<f64>),
    /// The shared output region of shm mode.
    Shared(shm::SharedRegion),
}

impl Output {
    /// The values.
    pub fn as_slice(&self) -> Result<&[f64], RunError> {
        match self {
            Output::Owned(v) => Ok(v),
            Output::Shared(region) => Ok(region.as_f64s()),
        }
    }
}

/// One run's result and what it measured.
pub struct Outcome {
    /// The assembled result.
    pub output: Output,
    /// What was measured.
    pub measurement: Measurement,
}

/// Runs `mode` once on `cfg`.
/// Buffers come from `pool` and go back to it (kept for the next run with `--reuse-buffers`).
pub fn run_once(cfg: &RunConfig, mode: Mode, pool: &mut BufferPool) -> Result<Outcome, RunError> {
    match mode {
        Mode::Sequential => sequential::run(cfg, pool),
        Mode::Item => item::run(cfg, pool),
        Mode::Split => split::run(cfg, pool),
        Mode::Shm => shm::run(cfg, pool),
        Mode::Threads => threads::run(cfg, pool),
    }
}

/// Worker-side time of one task, ns.
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskTiming {
    /// Decoding the task payload.
    pub decode_ns: u64,
    /// In the kernel.
    pub compute_ns: u64,
    /// Encoding the result payload.
    pub encode_ns: u64,
}

/// The worker half of a process strategy: what a worker does with one task.
pub trait Compute {
    /// Computes the task whose header and payload are given, appending the result payload to
    /// `out`. Any bytes may arrive here: malformed input is an error, never a panic.
    fn compute(
        &mut self,
        header: &TaskHeader,
        payload: &[u8],
        out: &mut Vec<u8>,
        timing: &mut TaskTiming,
    ) -> Result<(), String>;
}

/// Nanoseconds since `t`.
pub(crate) fn ns_since(t: std::time::Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}
