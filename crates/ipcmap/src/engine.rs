//! The engine: runs configurations by their measurement plan (warm-ups, then measured runs),
//! round-robin, has each strategy check every result bit for bit against the sequential kernel
//! (`Strategy::verify`: by default [`crate::verify`] on the run's own input, block by block, no
//! reference copy), and builds the reports.
//!
//! Each (configuration, strategy) pair is a *cell*. Cells that share an input (n, function,
//! seed) form a group: its cells run in rounds (A B C, A B C, ...) so that drift and
//! cold-memory stalls land on every strategy alike, one group after another. Where a group
//! has no sequential cell of its own, a hidden one is
//! run in the same rounds: every speedup is drawn from interleaved sequential runs, never from
//! one cold sample.

use crate::config::{available_cpus, RunConfig, Runs};
use crate::error::RunError;
use crate::kernel::Function;
use crate::memory::BufferPool;
use crate::report::{ms, Measurement, PlanUsed, Report, ReportConfig, TransportJob};
use crate::strategy::{self, Mode};
use std::time::Duration;

/// How much slower than the rest a first measured run must be to draw a warning.
const COLD_FIRST_RUN_FACTOR: f64 = 2.0;

/// A run this many times the median, and a second or more above it, was held up: no cold
/// cache costs that much; a link or worker stopped for a while.
const STALL_FACTOR: f64 = 10.0;

/// Whether a run of `ms` against a median of `median` ms was a stall ([`STALL_FACTOR`]).
fn stalled(ms: f64, median: f64) -> bool {
    ms > STALL_FACTOR * median && ms - median >= 1000.0
}

/// One (configuration, strategy) pair and what its runs measured.
struct Cell {
    cfg: RunConfig,
    mode: Mode,
    /// False for a sequential baseline run only to give speedups their runs.
    visible: bool,
    warmups_done: usize,
    runs: Vec<Measurement>,
    order: Vec<usize>,
    measured: Duration,
}

impl Cell {
    fn new(cfg: RunConfig, mode: Mode, visible: bool) -> Cell {
        Cell {
            cfg,
            mode,
            visible,
            warmups_done: 0,
            runs: Vec::new(),
            order: Vec::new(),
            measured: Duration::ZERO,
        }
    }

    fn wants_run(&self) -> bool {
        self.warmups_done < self.cfg.warmup
            || self.cfg.runs.wants_more(self.runs.len(), self.measured)
    }

    /// The input this cell computes on: cells with the same key share a reference.
    fn key(&self) -> (usize, Function, u64) {
        (self.cfg.settings.n, self.cfg.settings.function, self.cfg.settings.seed)
    }

    /// The cell whose runs are this one's baseline has the same key and work.
    fn same_workload(&self, other: &Cell) -> bool {
        self.key() == other.key() && self.cfg.settings.work == other.cfg.settings.work
    }
}

/// A configuration and mode whose measured runs are over, as [`Session::run_all_telling`]
/// tells it.
pub struct Finished<'a> {
    /// Its configuration.
    pub config: &'a RunConfig,
    /// Its strategy.
    pub mode: Mode,
    /// Its row label ("split, bincode, 64 splits, chunk 1").
    pub label: String,
    /// The median of its measured runs' wall times, ms.
    pub wall_ms: f64,
    /// Its measured runs.
    pub runs: usize,
}

/// Runs configurations, keeping buffers between runs when asked and numbering every run.
#[derive(Default)]
pub struct Session {
    pool: Option<BufferPool>,
    sequence: usize,
}

impl Session {
    /// A session that has run nothing yet.
    pub fn new() -> Session {
        Session::default()
    }

    /// Runs every mode of `cfg`; `progress` is told before each run.
    pub fn run(
        &mut self,
        cfg: &RunConfig,
        progress: impl FnMut(&RunConfig, Mode),
    ) -> Result<Vec<Report>, RunError> {
        self.run_all(std::slice::from_ref(cfg), progress)
    }

    /// Runs every mode of every configuration, interleaved within each input group (unless a
    /// configuration asks otherwise); reports come back in configuration, then mode, order.
    pub fn run_all(
        &mut self,
        configs: &[RunConfig],
        progress: impl FnMut(&RunConfig, Mode),
    ) -> Result<Vec<Report>, RunError> {
        self.run_all_telling(configs, progress, |_| {})
    }

    /// [`Session::run_all`], telling `done` of each configuration and mode as its measured
    /// runs end (in the order they end: interleaved configurations end at different rounds).
    pub fn run_all_telling(
        &mut self,
        configs: &[RunConfig],
        mut progress: impl FnMut(&RunConfig, Mode),
        mut done: impl FnMut(Finished<'_>),
    ) -> Result<Vec<Report>, RunError> {
        let busy = busy_machine();
        let meta = crate::report::Meta::now();
        // Workers kept from run to run (`--pool persistent`) end with the runs, whatever
        // ends them.
        let _kept = EndKeptPools;
        let mut cells: Vec<Cell> = configs
            .iter()
            .flat_map(|cfg| cfg.modes.iter().map(|&m| Cell::new(cfg.clone(), m, true)))
            .collect();
        let mut keys = Vec::new();
        for cell in &cells {
            if !keys.contains(&cell.key()) {
                keys.push(cell.key());
            }
        }
        for key in keys {
            let mut members: Vec<usize> =
                (0..cells.len()).filter(|&i| cells[i].key() == key).collect();
            // A hidden sequential baseline for each workload that has none of its own.
            let mut baselines = Vec::new();
            for &i in &members {
                let has_own = members.iter().any(|&j| {
                    cells[j].mode == Mode::SEQUENTIAL && cells[j].same_workload(&cells[i])
                });
                let planned = baselines.iter().any(|b: &Cell| b.same_workload(&cells[i]));
                if !has_own && !planned && cells[i].cfg.baseline {
                    baselines.push(Cell::new(cells[i].cfg.clone(), Mode::SEQUENTIAL, false));
                }
            }
            let first_hidden = cells.len();
            cells.extend(baselines);
            members.splice(0..0, first_hidden..cells.len());
            self.run_group(&mut cells, &members, &mut progress, &mut done)?;
        }

        let cpus = available_cpus();
        let reports = cells
            .iter()
            .filter(|c| c.visible)
            .map(|cell| {
                let baseline = cells
                    .iter()
                    .find(|b| b.mode == Mode::SEQUENTIAL && b.same_workload(cell))
                    .map(|b| b.runs.iter().map(|r| ms(r.wall_ns)).collect::<Vec<_>>());
                let mut report = Report::new(
                    report_config(cell),
                    PlanUsed {
                        warmup: cell.cfg.warmup,
                        plan: match cell.cfg.runs {
                            Runs::Exact(_) => "exact",
                            Runs::Auto(_) => "auto",
                        },
                        rule: cell.cfg.runs.describe(),
                        interleaved: cell.cfg.interleave,
                    },
                    &cell.runs,
                    &cell.order,
                    cell.cfg.verify.then_some(true),
                )
                .with_baseline(baseline.as_deref(), cell.mode == Mode::SEQUENTIAL);
                report.intensity = crate::report::Intensity::of(crate::calibrate::intensity(
                    cell.cfg.settings.function,
                ));
                report.processes = cell.mode.uses_processes();
                let kept = !cell.runs.is_empty() && cell.runs.iter().all(|r| r.pool_reused);
                report.pool = report.processes.then_some(match kept {
                    true => crate::settings::WorkerPool::Persistent.name(),
                    false => crate::settings::WorkerPool::PerRun.name(),
                });
                let verified_by = match report.input_kept {
                    true => crate::verify::METHOD_IN_PLACE,
                    false => cell.mode.strategy().verified_by(&cell.cfg.settings),
                };
                report.verified_by = report.verified.map(|_| verified_by);
                report.in_place = cell.cfg.settings.in_place;
                report.warnings = warnings(&report, cell, cpus, busy);
                let transport = cell.cfg.settings.transport;
                let job = transport.transport().ok().and_then(|t| t.job());
                report.job = TransportJob::new(transport.name(), job);
                report.meta = meta.clone();
                report
            })
            .collect();
        Ok(reports)
    }

    /// Runs the cells of one input group to the end of their plans: round-robin when every
    /// cell allows it, else each in turn.
    fn run_group(
        &mut self,
        cells: &mut [Cell],
        members: &[usize],
        progress: &mut impl FnMut(&RunConfig, Mode),
        done: &mut impl FnMut(Finished<'_>),
    ) -> Result<(), RunError> {
        let interleave = members.iter().all(|&i| cells[i].cfg.interleave);
        loop {
            let mut ran = false;
            for &i in members {
                while cells[i].wants_run() {
                    self.run_cell(&mut cells[i], progress)?;
                    ran = true;
                    let cell = &cells[i];
                    if !cell.wants_run() && cell.visible && !cell.runs.is_empty() {
                        let walls: Vec<f64> = cell.runs.iter().map(|r| ms(r.wall_ns)).collect();
                        done(Finished {
                            config: &cell.cfg,
                            mode: cell.mode,
                            label: report_config(cell).label,
                            wall_ms: crate::stats::median(&walls).unwrap_or(0.0),
                            runs: walls.len(),
                        });
                    }
                    if interleave {
                        break;
                    }
                }
            }
            if !ran || !interleave {
                return Ok(());
            }
        }
    }

    /// One run of one cell: a warm-up or a measured run, verified either way.
    fn run_cell(
        &mut self,
        cell: &mut Cell,
        progress: &mut impl FnMut(&RunConfig, Mode),
    ) -> Result<(), RunError> {
        check_interrupt()?;
        progress(&cell.cfg, cell.mode);
        let pool = self
            .pool
            .get_or_insert_with(|| BufferPool::new(cell.cfg.reuse_buffers, cell.cfg.keep_input));
        crate::memory::reset_peak_rss();
        let outcome = strategy::run_once(&cell.cfg.settings, cell.mode, pool)
            .map_err(|e| e.during(|| report_config(cell).label))?;
        if cell.cfg.verify {
            cell.mode.strategy().verify(&cell.cfg.settings, &outcome)?;
        }
        let intact = (!cell.cfg.settings.in_place).then_some(cell.cfg.settings.seed);
        strategy::give_back(pool, outcome.input, intact);
        if let Some(output) = outcome.output {
            strategy::give_back(pool, output, None);
        }
        let sequence = self.sequence;
        self.sequence += 1;
        if cell.warmups_done < cell.cfg.warmup {
            cell.warmups_done += 1;
            return Ok(());
        }
        let mut measurement = outcome.measurement;
        measurement.peak_rss_bytes = crate::memory::peak_rss_bytes();
        cell.measured += Duration::from_nanos(measurement.wall_ns);
        cell.runs.push(measurement);
        cell.order.push(sequence);
        Ok(())
    }
}

/// Ends every kept pool when dropped.
struct EndKeptPools;

impl Drop for EndKeptPools {
    fn drop(&mut self) {
        crate::scheduler::kept::end_all();
    }
}

/// Runs every mode of `cfg` in a fresh [`Session`].
pub fn run(
    cfg: &RunConfig,
    progress: impl FnMut(&RunConfig, Mode),
) -> Result<Vec<Report>, RunError> {
    Session::new().run(cfg, progress)
}

fn check_interrupt() -> Result<(), RunError> {
    match crate::interrupt::requested() {
        Some(signal) => Err(RunError::Interrupted { signal }),
        None => Ok(()),
    }
}

fn report_config(cell: &Cell) -> ReportConfig {
    let (cfg, mode) = (&cell.cfg, cell.mode);
    ReportConfig {
        mode: mode.name().to_string(),
        sequential: mode == Mode::SEQUENTIAL,
        workers: if mode == Mode::SEQUENTIAL { 1 } else { cfg.settings.workers },
        n: cfg.settings.n,
        function: cfg.settings.function,
        work: cfg.settings.work,
        kernel_isa: crate::kernel::isa().to_string(),
        codec: mode.uses_codec().then_some(cfg.settings.codec),
        splits: cfg.splits_for(mode),
        chunksize: cfg.chunksize_for(mode),
        tasks: cfg.tasks_for(mode).len(),
        seed: cfg.settings.seed,
        label: match cfg.settings.in_place {
            true => format!("{}, in place", mode.strategy().label(&cfg.settings)),
            false => mode.strategy().label(&cfg.settings),
        },
        moved_by: mode.strategy().info().moves,
    }
}

/// The 1-minute load average when it is above the CPUs this process may use: (load, cpus).
fn busy_machine() -> Option<(f64, usize)> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    let load: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    let cpus = available_cpus();
    (load > cpus as f64).then_some((load, cpus))
}

/// What may make a report's figures misleading, one line each.
fn warnings(r: &Report, cell: &Cell, cpus: usize, busy: Option<(f64, usize)>) -> Vec<String> {
    let mut out = Vec::new();
    let name = if r.is_sequential() {
        "sequential".to_string()
    } else {
        format!("{} ({} workers)", r.config.mode, r.config.workers)
    };
    if r.spans_dropped > 0 {
        out.push(format!(
            "{name}: a trace keeps at most {} spans in all, so {} spans of these runs were left out; trace fewer tasks (a bigger --chunksize, fewer --repeat) to see them all",
            crate::report::trace_span_budget(),
            r.spans_dropped
        ));
    }
    let outliers = crate::stats::outliers(&r.spread.runs_ms);
    if !outliers.is_empty() {
        let distance = |&i: &usize| (r.spread.runs_ms[i] - r.wall_ms).abs();
        let worst = outliers
            .iter()
            .max_by(|a, b| distance(a).total_cmp(&distance(b)))
            .map_or(r.wall_ms, |&i| r.spread.runs_ms[i]);
        // Where a stall can come from depends on what the run had: hosts and links, worker
        // processes on this machine, or only this process's own threads.
        let across_hosts = r.job.mpi_hosts.as_ref().is_some_and(|h| h.len() > 1);
        let processes =
            !r.worker_detail.is_empty() && r.worker_detail.iter().any(|w| w.exit.is_some());
        let advice = match (stalled(worst, r.wall_ms), across_hosts, processes) {
            (true, true, _) => "that run was held up, not noisy: a stall (a link or a worker stopped for a while); look at the network and the workers' hosts",
            (true, false, true) => "that run was held up, not noisy: a stall (a worker process paused or descheduled, or other work took the cores for a while)",
            (true, false, false) => "that run was held up, not noisy: a stall (this process paused, or other work took the cores for a while)",
            (false, ..) => "rerun on a quieter machine or with more --repeat",
        };
        out.push(format!(
            "{name}: {} of {} runs are statistical outliers, the farthest {:.1} ms against a median of {:.1} ms ({:.1}x); {advice}",
            outliers.len(),
            r.spread.runs_ms.len(),
            worst,
            r.wall_ms,
            worst / r.wall_ms.max(1e-9)
        ));
    }
    if let Some((&first, rest)) = r.spread.runs_ms.split_first().filter(|(_, rest)| rest.len() >= 2)
    {
        let rest_median = crate::stats::median(rest).unwrap_or(first);
        if stalled(first, rest_median) {
            out.push(format!(
                "{name}: the first measured run took {first:.1} ms, {:.1}x the median of the others: far more than cold memory costs, a stall (a link or worker stopped for a while, a paused process)",
                first / rest_median.max(1e-9)
            ));
        } else if first > COLD_FIRST_RUN_FACTOR * rest_median {
            out.push(format!(
                "{name}: the first measured run took {first:.1} ms, {:.1}x the median of the others: cold memory or caches; use --warmup {}",
                first / rest_median.max(1e-9),
                cell.cfg.warmup + 1
            ));
        }
    }
    if r.extras.shm_huge_pages == Some(false) {
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
            .ok()
            .and_then(|s| Some(s.split('[').nth(1)?.split(']').next()?.to_string()))
            .unwrap_or_else(|| "unknown".into());
        out.push(format!(
            "shm: its shared memory got 4 KiB pages (transparent_hugepage/shmem_enabled is '{setting}'); as root, 'echo advise > /sys/kernel/mm/transparent_hugepage/shmem_enabled' lets shm's MADV_HUGEPAGE take effect (system-wide, for every program that advises shared memory), or reserved huge pages ('echo 200 > /proc/sys/vm/nr_hugepages': 400 MiB, used first where enough are free)"
        ));
    }
    let persistent = cell.cfg.settings.pool == crate::settings::WorkerPool::Persistent;
    if persistent && r.pool == Some(crate::settings::WorkerPool::PerRun.name()) {
        let why = match cell.mode.strategy().keeps_workers() {
            false => "its workers are given new descriptors for each run (its own pipes)",
            true => "a pool could not be kept (a worker was written off, or ended between runs)",
        };
        out.push(format!(
            "{name}: its workers were started for each run despite --pool persistent: {why}; its wall times include their start"
        ));
    }
    if cell.mode != Mode::SEQUENTIAL && cell.cfg.settings.workers > cpus {
        out.push(format!(
            "{} workers on {cpus} CPU cores: oversubscribed, so the figures show contention, not scaling",
            cell.cfg.settings.workers
        ));
    }
    if let Some((load, cpus)) = busy {
        out.push(format!(
            "the machine was busy: load average {load:.2} on {cpus} CPU cores when the run started; other work shares these figures"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::stalled;

    #[test]
    fn a_run_held_up_for_seconds_is_a_stall_and_a_slow_first_run_is_not() {
        assert!(stalled(10_150.0, 150.0), "a 10 s outage in a 150 ms run");
        assert!(!stalled(450.0, 150.0), "3x: cold memory, not a stall");
        assert!(!stalled(90.0, 3.0), "30x but 87 ms: a cold start of a tiny run");
    }
}
