//! The engine: runs each requested strategy (warm-ups, then measured repeats), checks every
//! result against the sequential one, and builds the reports.
//!
//! A [`Session`] keeps the sequential reference of each (n, function, seed) it has seen, so a
//! sweep over many configurations computes each reference once.

use crate::config::RunConfig;
use crate::error::RunError;
use crate::kernel::Function;
use crate::memory::BufferPool;
use crate::report::{ms, Millis, Report, ReportConfig};
use crate::strategy::{self, sequential, Mode, Output};
use crate::verify;
use std::collections::HashMap;

/// The sequential result and wall time for one input.
struct Reference {
    output: Output,
    wall_ms: Millis,
}

/// Runs configurations one after another, sharing sequential references between them.
#[derive(Default)]
pub struct Session {
    references: HashMap<(usize, Function, u64), Reference>,
    pool: Option<BufferPool>,
}

impl Session {
    /// A session with no reference computed yet.
    pub fn new() -> Session {
        Session::default()
    }

    /// Runs every mode of `cfg`; `progress` is told before each run (mode, run index, total).
    pub fn run(
        &mut self,
        cfg: &RunConfig,
        mut progress: impl FnMut(Mode, usize, usize),
    ) -> Result<Vec<Report>, RunError> {
        let key = (cfg.n, cfg.function, cfg.seed);
        if cfg.verify && !self.references.contains_key(&key) {
            let outcome = sequential::run(cfg, &mut BufferPool::new(false));
            let reference = Reference {
                wall_ms: ms(outcome.measurement.wall_ns),
                output: outcome.output,
            };
            self.references.insert(key, reference);
        }
        let pool = self
            .pool
            .get_or_insert_with(|| BufferPool::new(cfg.reuse_buffers));
        let reference = self.references.get(&key).filter(|_| cfg.verify);
        let expected = reference.map(|r| r.output.as_slice()).transpose()?;
        let mut reports = Vec::with_capacity(cfg.modes.len());
        for &mode in &cfg.modes {
            let total = cfg.warmup + cfg.repeat;
            let mut runs = Vec::with_capacity(cfg.repeat);
            crate::memory::reset_peak_rss();
            for i in 0..total {
                if let Some(signal) = crate::interrupt::requested() {
                    return Err(RunError::Interrupted { signal });
                }
                progress(mode, i, total);
                let outcome = strategy::run_once(cfg, mode, pool)?;
                if let Some(expected) = expected {
                    verify::check(mode.name(), expected, outcome.output.as_slice()?)?;
                }
                match outcome.output {
                    Output::Owned(v) => pool.give_vec(v),
                    Output::Shared(r) => pool.give_region(r),
                }
                if i >= cfg.warmup {
                    let mut measurement = outcome.measurement;
                    measurement.peak_rss_bytes = crate::memory::peak_rss_bytes();
                    runs.push(measurement);
                }
            }
            reports.push(Report::new(
                report_config(cfg, mode),
                &runs,
                cfg.verify.then_some(true),
            ));
        }
        let baseline = reports
            .iter()
            .find(|r| r.mode == Mode::Sequential.name())
            .map(|r| r.wall_ms)
            .or(reference.map(|r| r.wall_ms));
        Ok(reports
            .into_iter()
            .map(|r| r.with_baseline(baseline))
            .collect())
    }
}

/// Runs every mode of `cfg` in a fresh [`Session`].
pub fn run(
    cfg: &RunConfig,
    progress: impl FnMut(Mode, usize, usize),
) -> Result<Vec<Report>, RunError> {
    Session::new().run(cfg, progress)
}

fn report_config(cfg: &RunConfig, mode: Mode) -> ReportConfig {
    ReportConfig {
        mode: mode.name().to_string(),
        workers: if mode == Mode::Sequential {
            1
        } else {
            cfg.workers
        },
        n: cfg.n,
        function: cfg.function,
        work: cfg.work,
        codec: mode.uses_codec().then_some(cfg.codec),
        splits: cfg.splits_for(mode),
        chunksize: cfg.chunksize_for(mode),
        tasks: cfg.tasks_for(mode).len(),
        seed: cfg.seed,
        warmup: cfg.warmup,
    }
}
