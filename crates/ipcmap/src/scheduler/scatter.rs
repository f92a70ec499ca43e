//! The coordinator half of a process strategy, as the scheduler drives it: what each worker
//! gets beyond the common setup, how a task becomes its payload for the worker it goes to, and
//! how a result from a worker lands in its place.

use crate::error::PayloadError;
use crate::partition::Task;
use crate::transport::place::Piece;

/// What one worker gets beyond the common setup.
#[derive(Clone, Debug, Default)]
pub struct Attach {
    /// The setup's `extra` bytes, in the strategy's encoding.
    pub setup: Vec<u8>,
    /// Descriptors this worker inherits (shm's regions, a pipe's ends).
    pub inherit_fds: Vec<i32>,
}

/// The coordinator half of a process strategy. Results are decoded on
/// [decoder threads](super::decoders), several tasks at once, where the strategy's frames carry
/// its payload (`Info::frames`); otherwise on the gather thread, in the order each worker's
/// results arrive.
pub trait ScatterGather: Sync {
    /// What worker `worker` gets beyond the common setup (by default nothing; the same for
    /// every worker, or its own: a region, a pipe).
    fn attach(&self, _worker: u32) -> Attach {
        Attach::default()
    }
    /// Appends the payload of `task`, going to `worker`, to `out` (after its header); returns
    /// the payload bytes it accounts for (written to `out`, or moved another way).
    fn encode_task(&self, worker: u32, task: &Task, out: &mut Vec<u8>)
        -> Result<u64, PayloadError>;
    /// Places the result `got` into `out`, its task's span of the output (empty for a strategy
    /// whose results do not pass through the coordinator's output); returns the payload bytes
    /// it accounts for.
    fn decode_result(&self, got: Received<'_>, out: &mut [f64]) -> Result<u64, PayloadError>;
    /// How a result of `task` is laid out after its header, where its values travel as their
    /// own bytes, so a transport can read them straight into place ([`Piece`]); `None` (the
    /// default): results are decoded from their frames.
    fn result_pieces(&self, _task: &Task) -> Option<Vec<Piece>> {
        None
    }
    /// The most bytes a result of a task of `values` values can take: a frame announced
    /// longer is a broken worker, written off before anything is allocated for it. By
    /// default `MAX_RESULT_BYTES_PER_VALUE` a value (no codec spends more on an f64, even
    /// one by one) and [`FRAME_SLACK`](crate::transport::FRAME_SLACK) of framing.
    fn max_result_bytes(&self, values: usize) -> u64 {
        (values as u64)
            .saturating_mul(MAX_RESULT_BYTES_PER_VALUE)
            .saturating_add(crate::transport::FRAME_SLACK)
    }
}

/// The most bytes any codec spends on one value of a result (pickle's per-item BINFLOAT with
/// its framing is about 12; npy's per-item header is counted in the slack).
pub const MAX_RESULT_BYTES_PER_VALUE: u64 = 64;

/// A result as it reached the coordinator: from which worker, for which task, its payload
/// (any bytes may arrive).
#[derive(Clone, Copy, Debug)]
pub struct Received<'p> {
    /// The worker that sent it.
    pub worker: u32,
    /// Its task.
    pub task: &'p Task,
    /// The strategy's payload after the result header.
    pub payload: &'p [u8],
}

impl<'p> Received<'p> {
    /// The result of `task` from `worker`, its payload `payload`.
    pub fn new(worker: u32, task: &'p Task, payload: &'p [u8]) -> Received<'p> {
        Received { worker, task, payload }
    }
}
