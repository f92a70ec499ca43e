//! How long a task may take before its worker is written off: before any task has completed,
//! from this build's measured speed and the slowest healthy link; after, from the slowest
//! task so far ([`super::state::Deadline`]).

use crate::settings::Settings;
use std::time::Duration;

/// The shortest automatic task deadline.
pub const TASK_TIMEOUT_FLOOR: Duration = Duration::from_secs(5);

/// The automatic task deadline is this many times the slowest task completed so far.
pub const TASK_TIMEOUT_FACTOR: u32 = 20;

/// Before any task has completed, the deadline allows this many times what the biggest task
/// costs at this build's measured speed ([`crate::calibrate`]), times the workers per core: a
/// slow build (debug), a busy machine and workers sharing cores all stretch a task, and none
/// of them is a hang.
const FIRST_TASK_FACTOR: f64 = 40.0;

/// The slowest link a healthy run may move its tasks over, bytes a second: a gigabit link
/// shared by several workers, or TCP over a virtual bridge between hosts in namespaces.
pub const LINK_FLOOR_BYTES_PER_S: f64 = 50e6;

/// The deadline before any task has completed: `FIRST_TASK_FACTOR` times the biggest task's
/// generating and computing at the speed this process measured for this build and function,
/// stretched by the workers per core, plus the time to move every worker's first task there
/// and back (16 bytes a value) over a link of [`LINK_FLOOR_BYTES_PER_S`] (a collective sends
/// them one after another), and never under [`TASK_TIMEOUT_FLOOR`].
pub fn first_deadline(max_task: usize, s: &Settings) -> Duration {
    let cost = crate::calibrate::ns_per_value(s.function);
    let per_value = cost.generate_ns + cost.compute_ns * f64::from(s.work.max(1));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let sharing = (s.workers as f64 / cores as f64).max(1.0);
    let computing = max_task as f64 * per_value * FIRST_TASK_FACTOR * sharing / 1e9;
    let moving = max_task as f64 * 16.0 * s.workers.max(1) as f64 / LINK_FLOOR_BYTES_PER_S;
    Duration::from_secs_f64((computing + moving).min(1e7)).max(TASK_TIMEOUT_FLOOR)
}
