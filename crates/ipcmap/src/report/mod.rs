//! The result model: what one run measured ([`Measurement`]) and what a configuration reports
//! ([`Report`]), and the [`Exporter`]s that write it (`exporter.rs`: the trait and its
//! registry), one file per format. Every exporter reads the model; nothing is printed that is
//! not in it.
//!
//! To add an output format: a new file implementing [`Exporter`], and its line in
//! [`for_each_exporter!`](crate::for_each_exporter). `--format` (its values and help) reads the
//! registry.

mod answer;
mod axis;
mod csv;
mod explain;
mod exporter;
mod html;
mod json;
mod markdown;
mod measurement;
mod meta;
mod pays;
mod perfetto;
mod plot;
mod printable;
mod probes;
pub mod schema;
mod sections;
pub mod summary;
mod table;
mod timeline;
mod verdict;

pub use exporter::{exporter, Export, Exporter, View, EXPORTERS};
pub use measurement::{trace_span_budget, CpuTime, Measurement, MAX_TRACE_SPANS, TRACE_SPANS_ENV};
pub use meta::{Meta, SCHEMA_VERSION};
pub use printable::{printable, printable_keeping_colour};
pub use probes::{
    CodecProbe, CodecRow, FunctionProbe, FunctionRow, MemcpyRow, ProbeFloor, ProbeReport,
    ProbeSize, CODEC_PROBE_SCHEMA, FUNCTION_PROBE_SCHEMA,
};
pub use verdict::Verdict;

pub use self::answer::Paint;
pub use self::axis::Axis;
pub use self::csv::write_csv;
pub use self::explain::explain;
pub use self::json::write_json;
pub use self::pays::{plot_pays, plot_pays_measured, MeasuredPoint};
pub use self::perfetto::write_trace;
pub use self::plot::{plot_phases, plot_sweep, PlotError, CELL_OPACITY};
pub use self::table::{
    fmt_ms, group_digits, render_sweep_summary, render_table, render_table_within, terminal_width,
    wrap,
};
pub use self::timeline::plot_timeline;

use crate::codec::CodecKind;
use crate::kernel::Function;
pub use crate::named::Named;
use crate::stats;
use serde::Serialize;

/// Milliseconds, as reported.
pub type Millis = f64;

/// What crossed process boundaries in one run.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Traffic {
    /// Bytes of task frames sent, headers included.
    pub bytes_sent: u64,
    /// Bytes of result frames received, headers included.
    pub bytes_received: u64,
    /// Codec output bytes in task frames.
    pub payload_bytes_sent: u64,
    /// Codec output bytes in result frames.
    pub payload_bytes_received: u64,
    /// Task frames sent.
    pub messages_sent: u64,
    /// Result frames received.
    pub messages_received: u64,
}

/// What one worker (process or thread) did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// Its MPI rank (`--transport mpi`); null otherwise.
    pub rank: Option<u32>,
    /// Time it spent decoding, computing and encoding tasks, ms.
    pub busy_ms: Millis,
    /// Time it spent waiting for its next task (for the coordinator), ms.
    pub idle_ms: Millis,
    /// The host it ran on (`--transport mpi`); null otherwise.
    pub host: Option<String>,
    /// Its CPU time in user mode, from its setup to its stats, ms; null for threads (their
    /// CPU time is the coordinator's) and for a worker that sent no stats.
    pub cpu_user_ms: Option<Millis>,
    /// Its CPU time in the kernel over the same span, ms.
    pub cpu_system_ms: Option<Millis>,
    /// Its peak resident set size from its setup to its stats, MB (`VmHWM`); null for
    /// threads and for a worker that sent no stats. Under MPI: each rank's own memory.
    pub peak_rss_mb: Option<f64>,
}

/// A worker that failed mid-run and what was done about it.
#[derive(Clone, Debug, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Clone, Debug, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Report {
    /// The configuration: mode, workers, n, function, work, kernel_isa, codec, splits,
    /// chunksize, tasks, seed (flattened: the same keys, in this order, in JSON and CSV).
    #[serde(flatten)]
    pub config: ReportConfig,
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
    /// What crossed process boundaries in the median run: bytes_sent, bytes_received,
    /// payload_bytes_sent, payload_bytes_received, messages_sent, messages_received
    /// (flattened: the same keys in JSON and CSV).
    #[serde(flatten)]
    pub traffic: Traffic,
    /// Bytes both ways divided by transfer time, GB/s; null with no traffic, or where the
    /// payload did not travel in the frames (pipe: its own pipes; see `moved_by`).
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
    /// Every measured run computed on input kept from an earlier run, not generated
    /// (`--keep-input`, numpy's warm figure: only the strategy's work is timed).
    pub input_kept: bool,
    /// How its worker processes lived (`--pool`): "persistent" where every measured run was
    /// served by workers kept from an earlier run (no spawn in its wall time), else
    /// "per-run"; null for a strategy without processes.
    pub pool: Option<&'static str>,
    /// The kept workers' start, ms: paid once, before the measured runs, and in none of their
    /// wall times; null where the workers were started per run.
    pub pool_start_ms: Option<f64>,
    /// Every measured run equals the sequential result bit for bit; null when not checked.
    pub verified: Option<bool>,
    /// How the runs were verified ("block by block against the sequential kernel applied to
    /// the input": no reference copy kept); null when not checked.
    pub verified_by: Option<&'static str>,
    /// The coordinator's peak resident set size per value of the input, bytes: 16 is its
    /// input and output and nothing else.
    pub peak_rss_bytes_per_value: Option<f64>,
    /// The measurement plan: "exact" (`--repeat N`) or "auto" (a minimum count and time).
    pub plan: String,
    /// Configurations were run round-robin (A B C, A B C) rather than one after another.
    pub interleaved: bool,
    /// The spread of the runs and the comparison with sequential (flattened: runs_ms,
    /// runs_order, wall_ms_mad, wall_ms_stddev, outliers, speedup_low, speedup_high, verdict,
    /// baseline_runs).
    #[serde(flatten)]
    pub spread: Spread,
    /// The strategy's own figures (flattened: bytes_copied, shm_huge_pages).
    #[serde(flatten)]
    pub extras: StrategyExtras,
    /// What may make these figures misleading (outliers, a cold first run, more workers than
    /// cores, a busy machine): one line each, also printed on stderr.
    pub warnings: Vec<String>,
    /// The transport and the job it ran in (flattened: transport, mpi_library, mpi_ranks,
    /// mpi_hosts, mpi_init_ms).
    #[serde(flatten)]
    pub job: TransportJob,
    /// Who was busy (flattened: coordinator_busy, workers_busy, workers_idle_ms,
    /// coordinator_wait_ms).
    #[serde(flatten)]
    pub utilisation: Utilisation,
    /// How the coordinator ran its side (flattened: decode_threads, frame_bytes).
    #[serde(flatten)]
    pub environment: Environment,
    /// What the report is and the machine it ran on (flattened, last: schema_version,
    /// ipcmap_version, started_at_unix_s, command_line, host, cpu_model, ...).
    #[serde(flatten)]
    pub meta: Meta,
    /// CPU time beside wall time, and the clearer names of older keys (flattened after the
    /// Meta section, so every earlier key keeps its place).
    #[serde(flatten)]
    pub cpu: CpuTime,
    /// How the measured runs were decided, in words: a count (`--repeat`), or the automatic
    /// rule with its bounds (`--min-runs`, `--max-runs`), which `repeat` then reports the
    /// outcome of.
    pub plan_rule: String,
    /// The result overwrote the input (`--in-place`): one buffer, 8 bytes a value.
    pub in_place: bool,
    /// The model's prediction for this configuration, made before it ran (`--predict`;
    /// flattened: predicted_wall_ms, predicted_wall_ms_low, predicted_wall_ms_high,
    /// prediction_error).
    #[serde(flatten)]
    pub prediction: PredictionCheck,
    /// The function's own cost against moving a value through memory, on one core
    /// (flattened: fn_ns_per_value, copy_ns_per_value, fn_bound).
    #[serde(flatten)]
    pub intensity: Intensity,
    /// Its workers are processes it starts (not threads, not the coordinator itself): what
    /// "processes pay" speaks of.
    pub processes: bool,
    /// The spans of each measured run, when recorded (`--trace`, `--timeline`); not in JSON.
    #[serde(skip)]
    pub traces: Vec<crate::trace::RunTrace>,
    /// Spans of these runs not kept, the trace budget ([`trace_span_budget`]) being spent.
    #[serde(skip)]
    pub spans_dropped: u64,
}

/// What the function costs on one core against what moving its value through memory costs,
/// both measured in the coordinator before the runs: whether any strategy that moves the
/// value again (every process strategy does) can pay on this machine.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Intensity {
    /// Applying the function once to one value, input and output in L1 cache, one core, this
    /// build, ns (fastest of 3 timings of about a millisecond).
    pub fn_ns_per_value: Option<f64>,
    /// Copying one value (8 bytes read, 8 written) between buffers beyond the caches, ns.
    pub copy_ns_per_value: Option<f64>,
    /// "memory" where the function costs no more than that copy (no strategy that copies each
    /// value to a worker and back can pay), else "compute".
    pub fn_bound: Option<&'static str>,
}

impl Intensity {
    /// The report's section from the measured figures.
    pub fn of(measured: crate::calibrate::Intensity) -> Intensity {
        Intensity {
            fn_ns_per_value: Some(measured.fn_ns),
            copy_ns_per_value: Some(measured.copy_ns),
            fn_bound: Some(if measured.memory_bound() { "memory" } else { "compute" }),
        }
    }
}

/// A prediction beside the measurement it predicted; null without `--predict`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PredictionCheck {
    /// The predicted median wall time, ms, from this machine's calibration (the medians of
    /// its figures).
    pub predicted_wall_ms: Option<Millis>,
    /// The same from the calibration's fastest samples.
    pub predicted_wall_ms_low: Option<Millis>,
    /// The same from its slowest samples.
    pub predicted_wall_ms_high: Option<Millis>,
    /// measured / predicted - 1: how far the model was off (0.1: the run took 10% longer).
    pub prediction_error: Option<f64>,
    /// The `--work` from which the model says this strategy beats sequential (1: it already
    /// does); null where it says never, or made no prediction.
    pub predicted_pays_from_work: Option<f64>,
    /// Why the model says it never pays, where it says so.
    pub predicted_never_pays: Option<String>,
}

/// The spread of a report's runs and its comparison with the sequential runs.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Spread {
    /// Every measured run's wall time, ms, in the order they ran.
    pub runs_ms: Vec<Millis>,
    /// Each measured run's position in the invocation's sequence of runs (warm-ups and hidden
    /// baseline runs included, 0-based): shows the interleaving.
    pub runs_order: Vec<usize>,
    /// Median absolute deviation of the runs' wall times, ms.
    pub wall_ms_mad: Millis,
    /// Standard deviation of the runs' wall times, ms; null for one run.
    pub wall_ms_stddev: Option<Millis>,
    /// Runs that are outliers by the modified z-score (above 14, as hyperfine).
    pub outliers: usize,
    /// Lower bound of the 95% bootstrap interval of `speedup`; null with fewer than 3 runs on
    /// either side.
    pub speedup_low: Option<f64>,
    /// Upper bound of that interval.
    pub speedup_high: Option<f64>,
    /// Against sequential: "faster" or "slower" when the interval excludes 1, "no clear
    /// difference" when it holds 1, "baseline" for sequential itself; null with no interval.
    pub verdict: Option<Verdict>,
    /// Sequential runs behind `speedup` (interleaved with this configuration's runs).
    pub baseline_runs: usize,
}

/// A strategy's own figures; zero or null for the strategies that have none.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StrategyExtras {
    /// Bytes copied straight between address spaces in the median run (cma:
    /// process_vm_readv/writev, as the workers counted them); 0 for the other strategies.
    pub bytes_copied: u64,
    /// shm's shared regions got huge pages in the median run (`ShmemPmdMapped` in
    /// /proc/self/smaps); null for the other strategies.
    pub shm_huge_pages: Option<bool>,
    /// Which pages shm's shared regions were in: "4 KiB", "2 MiB, transparent" (shmem THP
    /// took `MADV_HUGEPAGE`) or "2 MiB, reserved" (hugetlbfs pages, `vm.nr_hugepages`); null
    /// for the other strategies.
    pub shm_pages: Option<&'static str>,
}

/// The transport a report ran over, and the job it ran in where there is one (MPI).
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransportJob {
    /// How the workers were reached: a transport's name ("local": processes over
    /// ipc-channel, "uds", "mpi").
    pub transport: &'static str,
    /// The MPI library, in its own words ("Open MPI v4.1.4"), under `--transport mpi`; null
    /// otherwise (as are the other `mpi_` fields).
    pub mpi_library: Option<String>,
    /// Ranks in `MPI_COMM_WORLD` (the coordinator and its workers).
    pub mpi_ranks: Option<usize>,
    /// Distinct hosts the ranks ran on, rank 0's first.
    pub mpi_hosts: Option<Vec<String>>,
    /// `MPI_Init_thread` and every rank's hello, ms: what spawning costs under MPI, paid once
    /// per job (each run's `spawn` is only its setup messages).
    pub mpi_init_ms: Option<Millis>,
    /// Each worker rank's clock minus rank 0's, µs, in rank order (1, 2, ...), measured at
    /// the job's start (Cristian's algorithm: the shortest of 16 round trips); every worker
    /// span in `--trace` and `--timeline` is moved onto rank 0's clock by it. Near 0 on one
    /// machine (one clock), whatever the namespaces.
    pub mpi_clock_offsets_us: Option<Vec<f64>>,
    /// How far each offset may be off: half its shortest round trip, µs.
    pub mpi_clock_uncertainty_us: Option<Vec<f64>>,
}

impl TransportJob {
    /// Over transport `name`, in `job` where there is one.
    pub fn new(name: &'static str, job: Option<MpiJob>) -> TransportJob {
        let mut out = TransportJob { transport: name, ..TransportJob::default() };
        if let Some(job) = job {
            out.mpi_library = Some(job.library);
            out.mpi_ranks = Some(job.ranks);
            out.mpi_hosts = Some(job.hosts);
            out.mpi_init_ms = Some(job.init_ms);
            out.mpi_clock_offsets_us = Some(job.clock_offsets_us);
            out.mpi_clock_uncertainty_us = Some(job.clock_uncertainty_us);
        }
        out
    }
}

/// Who was busy in the median run; null without workers.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Utilisation {
    /// The coordinator's busy fraction of the median run: its wall time less its time blocked
    /// waiting for results (null without workers).
    pub coordinator_busy: Option<f64>,
    /// The workers' mean busy fraction: decoding, computing and encoding over the wall time.
    pub workers_busy: Option<f64>,
    /// Time the workers spent waiting for their next task, summed over workers, ms: idle,
    /// waiting for the coordinator.
    pub workers_idle_ms: Option<Millis>,
    /// Time the coordinator spent waiting for results, ms: idle, waiting for the workers.
    pub coordinator_wait_ms: Option<Millis>,
}

/// How the coordinator ran its side of the median run.
#[derive(Clone, Debug, Default, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Environment {
    /// Threads of the coordinator that decoded big results off its gather thread in the median
    /// run (`--decode-threads`); 0: every result was decoded on the gather thread.
    pub decode_threads: usize,
    /// Frames bigger than this travelled as trains of frames of at most this many bytes
    /// (`--frame-bytes`, local transport); 0: every frame whole.
    pub frame_bytes: usize,
    /// How results reached the output, where they travelled in frames: "received in place"
    /// (read by the transport straight into the output), "read into a recycled buffer, then
    /// decoded" or "copied from a library buffer, then decoded" (ipc-channel); null where
    /// results do not travel in frames.
    pub payload_path: Option<&'static str>,
}

/// The MPI job a report ran in (its `mpi_` fields).
#[derive(Clone, Debug, PartialEq)]
pub struct MpiJob {
    /// The MPI library.
    pub library: String,
    /// Ranks in `MPI_COMM_WORLD`.
    pub ranks: usize,
    /// Distinct hosts, rank 0's first.
    pub hosts: Vec<String>,
    /// Init and hellos, ms.
    pub init_ms: Millis,
    /// Each worker rank's clock offset against rank 0's, µs, in rank order.
    pub clock_offsets_us: Vec<f64>,
    /// Half the shortest round trip of each offset's measurement, µs.
    pub clock_uncertainty_us: Vec<f64>,
}

impl Report {
    /// Whether this is the sequential baseline's report.
    pub fn is_sequential(&self) -> bool {
        self.config.sequential
    }

    /// Fills in the CPU times from run `m` (the median), and the aliases of older keys.
    fn with_cpu(mut self, m: &Measurement) -> Report {
        let sum = |f: fn(&WorkerReport) -> Option<Millis>| {
            let each: Vec<Millis> = m.workers.iter().filter_map(f).collect();
            (!each.is_empty()).then(|| each.iter().sum())
        };
        let (user, system) = (sum(|w| w.cpu_user_ms), sum(|w| w.cpu_system_ms));
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let total = ms(m.cpu_ns.0 + m.cpu_ns.1) + user.unwrap_or(0.0) + system.unwrap_or(0.0);
        self.cpu = CpuTime {
            coordinator_cpu_user_ms: ms(m.cpu_ns.0),
            coordinator_cpu_system_ms: ms(m.cpu_ns.1),
            workers_cpu_user_ms: user,
            workers_cpu_system_ms: system,
            cpu_share_of_cores: (m.wall_ns > 0).then(|| total / (ms(m.wall_ns) * cores)),
            channel_gb_per_s: self.channel_gbps,
            coordinator_busy_fraction: self.utilisation.coordinator_busy,
            workers_busy_fraction: self.utilisation.workers_busy,
            cpu_user_ms: ms(m.cpu_ns.0) + user.unwrap_or(0.0),
            cpu_system_ms: ms(m.cpu_ns.1) + system.unwrap_or(0.0),
        };
        self
    }

    /// Fills in the utilisation figures from run `m` (the median).
    fn with_utilisation(mut self, m: &Measurement) -> Report {
        if m.workers.is_empty() || m.wall_ns == 0 {
            return self;
        }
        let wall = m.wall_ns as f64;
        let workers = &m.workers;
        let busy: f64 = workers.iter().map(|w| w.busy_ms).sum();
        // The coordinator is one thread: whenever it is not blocked waiting for an event, it is
        // generating, encoding, sending, decoding or assembling.
        self.utilisation = Utilisation {
            coordinator_busy: Some((1.0 - m.wait_ns as f64 / wall).clamp(0.0, 1.0)),
            workers_busy: Some(busy * 1e6 / wall / workers.len() as f64),
            workers_idle_ms: Some(workers.iter().map(|w| w.idle_ms).sum()),
            coordinator_wait_ms: Some(ms(m.wait_ns)),
        };
        self
    }
}

/// The configuration a report describes, filled in by the engine.
#[derive(Clone, Debug, Serialize, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReportConfig {
    /// Strategy: sequential, item, split, shm or threads.
    pub mode: String,
    /// It is the sequential baseline itself (set from the strategy by the engine; the mode's
    /// name is for people and programs, never compared).
    #[serde(skip)]
    pub sequential: bool,
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
    /// The row label its strategy gives it ("split, bincode, 64 splits, chunk 1").
    pub label: String,
    /// How its strategy moves its data ("frames", "shared memory (memfd)" ...).
    pub moved_by: &'static str,
}

/// How a report's runs were planned, filled in by the engine.
#[derive(Clone, Debug)]
pub struct PlanUsed {
    /// Warm-up runs.
    pub warmup: usize,
    /// "exact" or "auto".
    pub plan: &'static str,
    /// The rule, in words ("3", "7–15 (until 0.5 s of runs; 3 where a run takes 2 s or more)").
    pub rule: String,
    /// Run round-robin with the others.
    pub interleaved: bool,
}

/// ns → ms.
pub fn ms(ns: u64) -> Millis {
    ns as f64 / 1e6
}

impl Report {
    /// Builds a report from measured runs (at least one) and each run's place in the sequence
    /// of runs; the phases and traffic come from the median run.
    pub fn new(
        config: ReportConfig,
        planned: PlanUsed,
        runs: &[Measurement],
        order: &[usize],
        verified: Option<bool>,
    ) -> Report {
        let values = config.n.max(1) as f64;
        let mut sorted: Vec<usize> = (0..runs.len()).collect();
        sorted.sort_by_key(|&i| runs[i].wall_ns);
        let median = &runs[sorted[sorted.len() / 2]];
        let (min, max) = (&runs[sorted[0]], &runs[sorted[sorted.len() - 1]]);
        let runs_ms: Vec<Millis> = runs.iter().map(|r| ms(r.wall_ns)).collect();
        let t = median.traffic;
        let (bytes, messages) =
            (t.bytes_sent + t.bytes_received, t.messages_sent + t.messages_received);
        let payload = t.payload_bytes_sent + t.payload_bytes_received;
        Report {
            config,
            repeat: runs.len(),
            warmup: planned.warmup,
            plan: planned.plan.to_string(),
            plan_rule: planned.rule.clone(),
            in_place: false,
            prediction: PredictionCheck::default(),
            intensity: Intensity::default(),
            processes: false,
            interleaved: planned.interleaved,
            wall_ms: stats::median(&runs_ms).unwrap_or(0.0),
            wall_ms_min: ms(min.wall_ns),
            wall_ms_max: ms(max.wall_ns),
            spread: Spread {
                wall_ms_mad: stats::mad(&runs_ms).unwrap_or(0.0),
                wall_ms_stddev: stats::stddev(&runs_ms),
                outliers: stats::outliers(&runs_ms).len(),
                runs_order: order.to_vec(),
                runs_ms,
                ..Spread::default()
            },
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
            traffic: t,
            // Over frames only: where the payload went another way (a pipe, shared memory)
            // the frames' own rate says nothing of it.
            channel_gbps: (bytes > 0 && median.transfer_ns > 0 && payload <= bytes)
                .then(|| bytes as f64 / median.transfer_ns as f64),
            us_per_message: (messages > 0).then(|| median.wall_ns as f64 / 1e3 / messages as f64),
            worker_detail: median.workers.clone(),
            worker_failures: runs.iter().flat_map(|r| r.failures.iter().cloned()).collect(),
            coordinator_peak_rss_mb: runs
                .iter()
                .filter_map(|r| r.peak_rss_bytes)
                .max()
                .map(|b| b as f64 / 1e6),
            buffers_reused: runs.iter().any(|r| r.buffers_reused),
            input_kept: !runs.is_empty() && runs.iter().all(|r| r.input_kept),
            pool: None,
            pool_start_ms: runs
                .iter()
                .all(|r| r.pool_reused)
                .then(|| runs.iter().map(|r| r.pool_start_ns).max())
                .flatten()
                .filter(|&ns| ns > 0)
                .map(ms),
            verified,
            verified_by: verified.map(|_| crate::verify::METHOD),
            peak_rss_bytes_per_value: runs
                .iter()
                .filter_map(|r| r.peak_rss_bytes)
                .max()
                .map(|b| b as f64 / values),
            extras: median.extras.clone(),
            warnings: Vec::new(),
            job: TransportJob::default(),
            utilisation: Utilisation::default(),
            environment: median.environment.clone(),
            meta: Meta::default(),
            cpu: CpuTime::default(),
            traces: runs
                .iter()
                .zip(order)
                .filter(|(r, _)| r.tracing)
                .map(|(r, &run)| crate::trace::RunTrace {
                    run,
                    start_ns: r.started_at_ns,
                    end_ns: r.started_at_ns + r.wall_ns,
                    spans: r.spans.clone(),
                })
                .collect(),
            spans_dropped: runs.iter().map(|r| r.spans_dropped).sum(),
        }
        .with_utilisation(median)
        .with_cpu(median)
    }

    /// Sets `speedup` (ratio of medians), its bootstrap interval and the verdict against the
    /// wall times of the sequential runs, ms. `is_baseline` marks the sequential report those
    /// runs came from.
    pub fn with_baseline(
        mut self,
        sequential_runs_ms: Option<&[Millis]>,
        is_baseline: bool,
    ) -> Report {
        (self.speedup, self.spread.speedup_low, self.spread.speedup_high) = (None, None, None);
        (self.spread.verdict, self.spread.baseline_runs) = (None, 0);
        let Some(base) = sequential_runs_ms.filter(|b| !b.is_empty()) else {
            return self;
        };
        self.spread.baseline_runs = base.len();
        self.speedup = stats::median(base).filter(|_| self.wall_ms > 0.0).map(|s| s / self.wall_ms);
        if is_baseline {
            self.spread.verdict = Some(Verdict::Baseline);
            return self;
        }
        if let Some(interval) = stats::ratio_of_medians_interval(base, &self.spread.runs_ms) {
            self.spread.speedup_low = Some(interval.low);
            self.spread.speedup_high = Some(interval.high);
            self.spread.verdict = Some(Verdict::of(interval.compare(1.0)));
        }
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped_and_plain_text_is_untouched() {
        let hostile = "a\u{1b}]0;title\u{7}b\u{9b}2J\u{7f}c\td\ne";
        let shown = printable(hostile);
        assert_eq!(shown, "a\\u{1b}]0;title\\u{7}b\\u{9b}2J\\u{7f}c\td\ne");
        assert!(matches!(printable("µs/msg, 1 2\n"), std::borrow::Cow::Borrowed(_)));
    }

    pub(crate) fn sample() -> Report {
        let config = ReportConfig {
            mode: "split".into(),
            sequential: false,
            workers: 2,
            n: 100,
            function: Function::Exp,
            work: 1,
            kernel_isa: "scalar".into(),
            codec: Some(CodecKind::RAW),
            splits: Some(4),
            chunksize: Some(1),
            tasks: 4,
            seed: 1,
            label: "split, raw, 4 splits, chunk 1".into(),
            moved_by: "frames",
        };
        let planned = PlanUsed { warmup: 0, plan: "exact", rule: "3".into(), interleaved: true };
        let run = |wall_ns| Measurement {
            wall_ns,
            transfer_ns: 1000,
            traffic: Traffic {
                bytes_sent: 1000,
                bytes_received: 1000,
                messages_sent: 4,
                messages_received: 4,
                ..Traffic::default()
            },
            workers: vec![WorkerReport {
                id: 0,
                pid: 42,
                tasks: 4,
                compute_ms: 0.1,
                exit: None,
                rank: None,
                busy_ms: 0.1,
                idle_ms: 0.0,
                cpu_user_ms: None,
                cpu_system_ms: None,
                peak_rss_mb: None,
                host: None,
            }],
            ..Measurement::default()
        };
        Report::new(
            config,
            planned,
            &[run(3_000_000), run(1_000_000), run(2_000_000)],
            &[1, 4, 7],
            Some(true),
        )
        .with_baseline(Some(&[4.0, 4.1, 3.9]), false)
    }

    #[test]
    fn median_min_max_and_derived_figures() {
        let r = sample();
        assert_eq!((r.wall_ms, r.wall_ms_min, r.wall_ms_max), (2.0, 1.0, 3.0));
        assert_eq!(r.speedup, Some(2.0));
        assert_eq!(r.channel_gbps, Some(2.0));
        assert_eq!(r.us_per_message, Some(250.0));
        assert_eq!(r.repeat, 3);
        assert_eq!(r.spread.runs_ms, vec![3.0, 1.0, 2.0]);
        assert_eq!(r.spread.runs_order, vec![1, 4, 7]);
        assert_eq!(r.spread.wall_ms_mad, 1.0);
        assert_eq!(r.spread.wall_ms_stddev, Some(1.0));
        let (low, high) = (r.spread.speedup_low.unwrap(), r.spread.speedup_high.unwrap());
        assert!(low <= 2.0 && 2.0 <= high && low > 1.0, "{low} {high}");
        assert_eq!(r.spread.verdict, Some(Verdict::Faster));
        assert_eq!(r.spread.baseline_runs, 3);
    }

    #[test]
    fn one_run_gives_a_ratio_but_no_interval_and_no_verdict() {
        let mut r = sample();
        r.spread.runs_ms = vec![2.0];
        let r = r.with_baseline(Some(&[4.0]), false);
        assert_eq!(r.speedup, Some(2.0));
        assert_eq!((r.spread.speedup_low, r.spread.verdict), (None, None));
    }
}
