//! The result model: what one run measured ([`Measurement`]) and what a configuration reports
//! ([`Report`]). The table, JSON and CSV writers all read [`Report`]; nothing is printed that is
//! not in it.

mod csv;
mod json;
mod plot;
mod table;

pub use self::csv::write_csv;
pub use self::json::write_json;
pub use self::plot::{plot_phases, plot_sweep, PlotError, CELL_OPACITY};
pub use self::table::{render_sweep_summary, render_table};

use crate::codec::CodecKind;
use crate::kernel::Function;
use serde::Serialize;

/// Milliseconds, as reported.
pub type Millis = f64;

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
    /// Bytes of task frames sent (headers and payload).
    pub bytes_sent: u64,
    /// Bytes of result frames received (headers and payload).
    pub bytes_received: u64,
    /// Codec output bytes in task frames.
    pub payload_bytes_sent: u64,
    /// Codec output bytes in result frames.
    pub payload_bytes_received: u64,
    /// Task frames sent.
    pub messages_sent: u64,
    /// Result frames received.
    pub messages_received: u64,
    /// One entry per worker.
    pub workers: Vec<WorkerReport>,
    /// Workers that failed during the run.
    pub failures: Vec<WorkerFailure>,
    /// The coordinator's peak resident set size over this mode's runs, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The run used buffers kept from an earlier run (`--reuse-buffers`).
    pub buffers_reused: bool,
}

/// What one worker (process or thread) did.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct WorkerReport {
    /// Worker id, 0-based.
    pub id: u32,
    /// Process id (the coordinator's own pid for threads).
    pub pid: u32,
    /// Tasks completed.
    pub tasks: u64,
    /// Time in the kernel, ms.
    pub compute_ms: Millis,
    /// How the process ended ("exited with code 0"); null for threads.
    pub exit: Option<String>,
}

/// A worker that failed mid-run and what was done about it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WorkerFailure {
    /// Worker id.
    pub worker: u32,
    /// Process id.
    pub pid: u32,
    /// What happened ("was killed by signal 9 (SIGKILL)", "sent a malformed frame: ...").
    pub reason: String,
    /// Tasks it held that were handed to other workers.
    pub tasks_rerun: u64,
}

/// Time spent in each phase, ms, of the median run. Phases of different processes overlap in
/// time, so they are time spent, not slices of `wall_ms`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Phases {
    /// Starting workers until all are ready.
    pub spawn: Millis,
    /// Generating the input.
    pub generate: Millis,
    /// Coordinator encoding tasks plus workers encoding results.
    pub encode: Millis,
    /// Inside channel sends, both directions.
    pub transfer: Millis,
    /// Kernel time summed over workers.
    pub compute: Millis,
    /// Kernel time of the busiest worker.
    pub compute_max: Millis,
    /// Workers decoding tasks plus coordinator decoding results.
    pub decode: Millis,
    /// Allocating and assembling the output.
    pub assemble: Millis,
    /// Coordinator idle, waiting for results.
    pub wait: Millis,
    /// Closing and reaping workers after the result (not part of `wall_ms`).
    pub shutdown: Millis,
}

/// Everything reported for one configuration (one mode), over its measured repeats.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// Strategy: sequential, item, split, shm or threads.
    pub mode: String,
    /// Worker processes or threads (1 for sequential).
    pub workers: usize,
    /// Elements.
    pub n: usize,
    /// The function applied.
    pub function: Function,
    /// Times the function is applied per element (`--work`).
    pub work: u32,
    /// The instruction set the kernel ran with (`avx2+fma` or `scalar`).
    pub kernel_isa: String,
    /// Codec of item and split payloads; null where nothing is encoded.
    pub codec: Option<CodecKind>,
    /// Parts the input is split into; null for sequential and item.
    pub splits: Option<usize>,
    /// Items (item) or parts (split, shm, threads) per task; null for sequential.
    pub chunksize: Option<usize>,
    /// Tasks per run.
    pub tasks: usize,
    /// Seed of the input data.
    pub seed: u64,
    /// Measured runs.
    pub repeat: usize,
    /// Unmeasured warm-up runs before them.
    pub warmup: usize,
    /// Median wall time, ms: data generation to assembled result.
    pub wall_ms: Millis,
    /// Fastest run, ms.
    pub wall_ms_min: Millis,
    /// Slowest run, ms.
    pub wall_ms_max: Millis,
    /// Sequential median wall time divided by this median; null when no sequential run was made.
    pub speedup: Option<f64>,
    /// Phases of the median run.
    pub phases_ms: Phases,
    /// Bytes of task frames sent, headers included.
    pub bytes_sent: u64,
    /// Bytes of result frames received, headers included.
    pub bytes_received: u64,
    /// Codec output bytes sent.
    pub payload_bytes_sent: u64,
    /// Codec output bytes received.
    pub payload_bytes_received: u64,
    /// Task frames sent.
    pub messages_sent: u64,
    /// Result frames received.
    pub messages_received: u64,
    /// Bytes both ways divided by transfer time, GB/s; null with no traffic.
    pub channel_gbps: Option<f64>,
    /// Wall time divided by messages both ways, µs; null with no messages.
    pub us_per_message: Option<f64>,
    /// Per worker, of the median run.
    pub worker_detail: Vec<WorkerReport>,
    /// Workers that failed in any measured run.
    pub worker_failures: Vec<WorkerFailure>,
    /// The coordinator's peak resident set size over this mode's runs, MB (the sequential
    /// reference kept for verification included; run with --no-verify to leave it out).
    pub coordinator_peak_rss_mb: Option<f64>,
    /// Some measured run used input/output buffers kept from an earlier run
    /// (`--reuse-buffers`): its times leave out allocating and faulting in fresh memory.
    pub buffers_reused: bool,
    /// Every measured run equals the sequential result bit for bit; null when not checked.
    pub verified: Option<bool>,
}

/// Configuration fields of a report, filled in by the engine.
#[derive(Clone, Debug)]
pub struct ReportConfig {
    /// Strategy name.
    pub mode: String,
    /// Workers.
    pub workers: usize,
    /// Elements.
    pub n: usize,
    /// Function.
    pub function: Function,
    /// Work factor.
    pub work: u32,
    /// Codec, where used.
    pub codec: Option<CodecKind>,
    /// Splits, where used.
    pub splits: Option<usize>,
    /// Chunksize, where used.
    pub chunksize: Option<usize>,
    /// Tasks per run.
    pub tasks: usize,
    /// Seed.
    pub seed: u64,
    /// Warm-up runs.
    pub warmup: usize,
}

/// ns → ms.
pub fn ms(ns: u64) -> Millis {
    ns as f64 / 1e6
}

impl Report {
    /// Builds a report from measured runs (at least one); the phases come from the median run.
    pub fn new(config: ReportConfig, runs: &[Measurement], verified: Option<bool>) -> Report {
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by_key(|&i| runs[i].wall_ns);
        let median = &runs[order[order.len() / 2]];
        let (min, max) = (&runs[order[0]], &runs[order[order.len() - 1]]);
        let bytes = median.bytes_sent + median.bytes_received;
        let messages = median.messages_sent + median.messages_received;
        Report {
            mode: config.mode,
            workers: config.workers,
            n: config.n,
            function: config.function,
            work: config.work,
            kernel_isa: crate::kernel::isa().to_string(),
            codec: config.codec,
            splits: config.splits,
            chunksize: config.chunksize,
            tasks: config.tasks,
            seed: config.seed,
            repeat: runs.len(),
            warmup: config.warmup,
            wall_ms: ms(median.wall_ns),
            wall_ms_min: ms(min.wall_ns),
            wall_ms_max: ms(max.wall_ns),
            speedup: None,
            phases_ms: Phases {
                spawn: ms(median.spawn_ns),
                generate: ms(median.generate_ns),
                encode: ms(median.encode_ns),
                transfer: ms(median.transfer_ns),
                compute: ms(median.compute_ns),
                compute_max: ms(median.compute_max_ns),
                decode: ms(median.decode_ns),
                assemble: ms(median.assemble_ns),
                wait: ms(median.wait_ns),
                shutdown: ms(median.shutdown_ns),
            },
            bytes_sent: median.bytes_sent,
            bytes_received: median.bytes_received,
            payload_bytes_sent: median.payload_bytes_sent,
            payload_bytes_received: median.payload_bytes_received,
            messages_sent: median.messages_sent,
            messages_received: median.messages_received,
            channel_gbps: (bytes > 0 && median.transfer_ns > 0)
                .then(|| bytes as f64 / median.transfer_ns as f64),
            us_per_message: (messages > 0).then(|| median.wall_ns as f64 / 1e3 / messages as f64),
            worker_detail: median.workers.clone(),
            worker_failures: runs
                .iter()
                .flat_map(|r| r.failures.iter().cloned())
                .collect(),
            coordinator_peak_rss_mb: runs
                .iter()
                .filter_map(|r| r.peak_rss_bytes)
                .max()
                .map(|b| b as f64 / 1e6),
            buffers_reused: runs.iter().any(|r| r.buffers_reused),
            verified,
        }
    }

    /// Sets `speedup` against a sequential median wall time.
    pub fn with_baseline(mut self, sequential_wall_ms: Option<Millis>) -> Report {
        self.speedup = sequential_wall_ms
            .filter(|_| self.wall_ms > 0.0)
            .map(|s| s / self.wall_ms);
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Report {
        let config = ReportConfig {
            mode: "split".into(),
            workers: 2,
            n: 100,
            function: Function::Exp,
            work: 1,
            codec: Some(CodecKind::Raw),
            splits: Some(4),
            chunksize: Some(1),
            tasks: 4,
            seed: 1,
            warmup: 0,
        };
        let run = |wall_ns| Measurement {
            wall_ns,
            transfer_ns: 1000,
            bytes_sent: 1000,
            bytes_received: 1000,
            messages_sent: 4,
            messages_received: 4,
            workers: vec![WorkerReport {
                id: 0,
                pid: 42,
                tasks: 4,
                compute_ms: 0.1,
                exit: None,
            }],
            ..Measurement::default()
        };
        Report::new(
            config,
            &[run(3_000_000), run(1_000_000), run(2_000_000)],
            Some(true),
        )
        .with_baseline(Some(4.0))
    }

    #[test]
    fn median_min_max_and_derived_figures() {
        let r = sample();
        assert_eq!((r.wall_ms, r.wall_ms_min, r.wall_ms_max), (2.0, 1.0, 3.0));
        assert_eq!(r.speedup, Some(2.0));
        assert_eq!(r.channel_gbps, Some(2.0));
        assert_eq!(r.us_per_message, Some(250.0));
        assert_eq!(r.repeat, 3);
    }
}
