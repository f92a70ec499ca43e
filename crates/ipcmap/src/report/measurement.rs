//! One measured run's raw counters, as the engine and the scheduler fill them in, and the
//! global budget of trace spans they record into.

use super::{Environment, Millis, StrategyExtras, Traffic, WorkerFailure, WorkerReport};
use crate::trace::{Phase, Span};
use serde::Serialize;

/// Raw counters of one measured run, in nanoseconds and bytes.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// From the start (data generation) to the assembled result.
    pub wall_ns: u64,
    /// Starting the workers (processes or threads) until all are ready.
    pub spawn_ns: u64,
    /// Generating the input.
    pub generate_ns: u64,
    /// Encoding: coordinator encoding tasks plus workers encoding results.
    pub encode_ns: u64,
    /// Inside channel sends: coordinator's task sends plus workers' result sends.
    pub transfer_ns: u64,
    /// In the kernel, summed over workers.
    pub compute_ns: u64,
    /// In the kernel, the busiest worker.
    pub compute_max_ns: u64,
    /// Decoding: workers decoding tasks plus coordinator decoding results.
    pub decode_ns: u64,
    /// Allocating and assembling the output.
    pub assemble_ns: u64,
    /// Coordinator blocked waiting for a result.
    pub wait_ns: u64,
    /// Closing channels and reaping workers, after the result was assembled (not in `wall_ns`).
    pub shutdown_ns: u64,
    /// What crossed process boundaries.
    pub traffic: Traffic,
    /// The strategy's own figures (cma's bytes copied, shm's huge pages), as its report has them.
    pub extras: StrategyExtras,
    /// How the coordinator ran its side (decoder threads, frame trains).
    pub environment: Environment,
    /// One entry per worker.
    pub workers: Vec<WorkerReport>,
    /// Workers that failed during the run.
    pub failures: Vec<WorkerFailure>,
    /// The coordinator's peak resident set size over this mode's runs, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The run used buffers kept from an earlier run (`--reuse-buffers`).
    pub buffers_reused: bool,
    /// Its input was kept from an earlier run, not generated (`--keep-input`).
    pub input_kept: bool,
    /// Its workers were kept from an earlier run (`--pool persistent`): no spawn.
    pub pool_reused: bool,
    /// Where its workers are kept ones, or will be kept: their start, ns, paid once (not in
    /// `spawn_ns` of the runs they serve after the first).
    pub pool_start_ns: u64,
    /// Record spans (`--trace`, `--timeline`).
    pub tracing: bool,
    /// When the run started, ns on `CLOCK_MONOTONIC` (set when tracing).
    pub started_at_ns: u64,
    /// The spans recorded (empty unless tracing).
    pub spans: Vec<Span>,
    /// Spans not kept: the process's budget ([`trace_span_budget`]) was spent.
    pub spans_dropped: u64,
    /// The coordinator's CPU time over the run, in user mode and in the kernel, ns (every
    /// thread of it: the threads strategy's workers too).
    pub cpu_ns: (u64, u64),
    /// The results the workers kept (owner), as checksums of their ranges; empty otherwise.
    pub checksums: Vec<crate::verify::Checksum>,
}

/// CPU time in the median run, beside its wall time: user and system seconds of the
/// coordinator and of the workers (each worker's own in `worker_detail`). System time is where
/// processes pay in the kernel: page faults, copies through sockets and pipes, system calls.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CpuTime {
    /// The coordinator's user-mode CPU time, ms (threads: its worker threads' too).
    pub coordinator_cpu_user_ms: Millis,
    /// The coordinator's kernel CPU time, ms.
    pub coordinator_cpu_system_ms: Millis,
    /// The worker processes' user-mode CPU time, summed, ms; null without worker processes
    /// that reported it.
    pub workers_cpu_user_ms: Option<Millis>,
    /// The worker processes' kernel CPU time, summed, ms.
    pub workers_cpu_system_ms: Option<Millis>,
    /// All of it (coordinator and workers, user and system) as a share of wall time x the
    /// CPU cores this process may use: 1.0 would be every core busy for the whole run.
    pub cpu_share_of_cores: Option<f64>,
    /// `channel_gbps` under a name that says its unit: GB/s (gigabytes).
    pub channel_gb_per_s: Option<f64>,
    /// `coordinator_busy` under a name that says what it is: a fraction of wall time, 0-1.
    pub coordinator_busy_fraction: Option<f64>,
    /// `workers_busy` under a name that says what it is: a fraction of wall time, 0-1.
    pub workers_busy_fraction: Option<f64>,
    /// User-mode CPU time of every process of the run (coordinator and workers), ms.
    pub cpu_user_ms: Millis,
    /// Kernel CPU time of every process of the run, ms: page faults, copies, system calls.
    pub cpu_system_ms: Millis,
}

/// The most spans one coordinator process keeps for `--trace`/`--timeline` (about 100-150 MB
/// of trace JSON); later spans are counted, not kept, and the report says so.
pub const MAX_TRACE_SPANS: usize = 1_000_000;

/// Environment variable that lowers the span budget (tests, small disks).
pub const TRACE_SPANS_ENV: &str = "IPCMAP_TRACE_SPANS";

/// The span budget of this process: [`MAX_TRACE_SPANS`], or less where `IPCMAP_TRACE_SPANS`
/// says so.
pub fn trace_span_budget() -> usize {
    static BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var(TRACE_SPANS_ENV)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(MAX_TRACE_SPANS, |v| v.min(MAX_TRACE_SPANS))
    })
}

/// Spans this process has kept.
static SPANS_KEPT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Takes one span from the budget; false once it is spent.
fn span_budget() -> bool {
    use std::sync::atomic::Ordering;
    let budget = trace_span_budget();
    SPANS_KEPT
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
            (kept < budget).then_some(kept + 1)
        })
        .is_ok()
}

impl Measurement {
    /// Records a span of the coordinator (`worker` None) or a worker, when tracing.
    pub fn record(
        &mut self,
        (pid, worker): (u32, Option<u32>),
        phase: Phase,
        task: Option<u32>,
        start_ns: u64,
        end_ns: u64,
    ) {
        if self.tracing && !span_budget() {
            self.spans_dropped += 1;
        } else if self.tracing {
            self.spans.push(Span { pid, worker, thread: None, phase, task, start_ns, end_ns });
        }
    }

    /// Records a span of the coordinator's helper thread `thread` (a decoder), when tracing.
    pub fn record_helper(
        &mut self,
        thread: u32,
        phase: Phase,
        task: Option<u32>,
        start_ns: u64,
        end_ns: u64,
    ) {
        let kept = self.spans.len();
        self.record((std::process::id(), None), phase, task, start_ns, end_ns);
        if let Some(span) = self.spans.get_mut(kept) {
            span.thread = Some(thread);
        }
    }
}
