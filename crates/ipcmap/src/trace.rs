//! Spans: what each process was doing when, per task, for the timeline (`--trace`,
//! `--timeline`). Recorded only when asked for (`Settings::trace`): item mode at chunksize 1
//! has millions of tasks. The utilisation figures come from the same per-task timings, which
//! every result header carries, so they are in every report.
//!
//! Times are ns on `CLOCK_MONOTONIC`, which every process of one machine shares, so worker
//! spans (stamped by the workers, sent back in their result headers) and coordinator spans
//! line up without any alignment. Across hosts (MPI) each host's clock differs: a span records
//! the pid it came from, and an MPI timeline would align each host by an offset measured at
//! start; ipcmap does not draw multi-host timelines yet.

use serde::Serialize;

/// Now, ns on `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// A span being timed: its start and its length on the trace clock ([`now_ns`]) alike, so
/// spans recorded back to back touch and never overlap (an `Instant` for the length against
/// `CLOCK_MONOTONIC` for the start made neighbours overlap by tens of ns, and Perfetto drops
/// overlapping slices).
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch {
    /// When it started, ns on the trace clock.
    pub at: u64,
}

impl Stopwatch {
    /// Starts timing now.
    pub fn start() -> Stopwatch {
        Stopwatch { at: now_ns() }
    }

    /// Ns since it started.
    pub fn elapsed_ns(&self) -> u64 {
        now_ns().saturating_sub(self.at)
    }
}

/// The CPU time this process has used so far, user and system, ns (`getrusage`, every
/// thread of it; 0 where the call fails).
pub fn cpu_ns() -> (u64, u64) {
    use nix::sys::resource::{getrusage, UsageWho};
    let ns =
        |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000_000 + t.tv_usec() as u64 * 1_000;
    getrusage(UsageWho::RUSAGE_SELF).map_or((0, 0), |u| (ns(u.user_time()), ns(u.system_time())))
}

/// What a process was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Starting the workers until each is ready.
    Spawn,
    /// Generating the input.
    Generate,
    /// Encoding a task (coordinator) or a result (worker).
    Encode,
    /// Inside a send.
    Send,
    /// Waiting for a task (worker) with nothing to do.
    Receive,
    /// Decoding a task (worker) or placing a result (coordinator).
    Decode,
    /// In the kernel.
    Compute,
    /// Allocating and assembling the output.
    Assemble,
    /// The coordinator, waiting for results.
    Wait,
}

impl Phase {
    /// Every phase, in drawing order.
    pub const ALL: [Phase; 9] = [
        Phase::Spawn,
        Phase::Generate,
        Phase::Encode,
        Phase::Send,
        Phase::Receive,
        Phase::Decode,
        Phase::Compute,
        Phase::Assemble,
        Phase::Wait,
    ];

    /// Its name in traces and legends.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Spawn => "spawn",
            Phase::Generate => "generate",
            Phase::Encode => "encode",
            Phase::Send => "send",
            Phase::Receive => "receive",
            Phase::Decode => "decode",
            Phase::Compute => "compute",
            Phase::Assemble => "assemble",
            Phase::Wait => "wait",
        }
    }

    /// Whether the process is working (not waiting) in it.
    pub fn busy(self) -> bool {
        !matches!(self, Phase::Receive | Phase::Wait)
    }
}

/// One span of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    /// The process (the coordinator's pid, or a worker's).
    pub pid: u32,
    /// Worker id, or `None` for the coordinator.
    pub worker: Option<u32>,
    /// A helper thread of the coordinator (its decoder threads), `None` for its main thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<u32>,
    /// What it was doing.
    pub phase: Phase,
    /// The task, where the span belongs to one.
    pub task: Option<u32>,
    /// Start, ns on `CLOCK_MONOTONIC`.
    pub start_ns: u64,
    /// End, ns on `CLOCK_MONOTONIC`.
    pub end_ns: u64,
}

/// The spans of one measured run, with where the run began and ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunTrace {
    /// The run's place in the invocation's sequence of runs (as `runs_order`).
    pub run: usize,
    /// Start of the run, ns on `CLOCK_MONOTONIC`.
    pub start_ns: u64,
    /// End of the run (its wall time), ns.
    pub end_ns: u64,
    /// Its spans.
    pub spans: Vec<Span>,
}

/// Trace tracks of the coordinator's helper threads: decoder threads are `0..`, the local
/// transport's sender threads `SENDER_TRACKS + worker`.
pub const SENDER_TRACKS: u32 = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward() {
        let (a, b) = (now_ns(), now_ns());
        assert!(a > 0 && b >= a);
        let span = Span {
            pid: 1,
            worker: None,
            thread: None,
            phase: Phase::Encode,
            task: Some(0),
            start_ns: a,
            end_ns: b,
        };
        assert!(span.end_ns >= span.start_ns);
        assert!(!Phase::Receive.busy() && Phase::Compute.busy());
    }
}
