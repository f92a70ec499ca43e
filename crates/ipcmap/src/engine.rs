//! The engine: runs each requested strategy (warm-ups, then measured repeats), checks every
//! result against the sequential one, and builds the reports.

use crate::config::RunConfig;
use crate::error::RunError;
use crate::report::{ms, Report, ReportConfig};
use crate::strategy::{self, sequential, Mode};
use crate::verify;

/// Runs every mode of `cfg`; `progress` is told before each run (mode, run index, total runs).
pub fn run(
    cfg: &RunConfig,
    mut progress: impl FnMut(Mode, usize, usize),
) -> Result<Vec<Report>, RunError> {
    let reference = cfg.verify.then(|| sequential::run(cfg));
    let expected = match &reference {
        Some(outcome) => Some(outcome.output.as_slice()?),
        None => None,
    };
    let mut reports = Vec::with_capacity(cfg.modes.len());
    for &mode in &cfg.modes {
        let total = cfg.warmup + cfg.repeat;
        let mut runs = Vec::with_capacity(cfg.repeat);
        for i in 0..total {
            if let Some(signal) = crate::interrupt::requested() {
                return Err(RunError::Interrupted { signal });
            }
            progress(mode, i, total);
            let outcome = strategy::run_once(cfg, mode)?;
            if let Some(expected) = expected {
                verify::check(mode.name(), expected, outcome.output.as_slice()?)?;
            }
            if i >= cfg.warmup {
                runs.push(outcome.measurement);
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
        .or_else(|| reference.as_ref().map(|r| ms(r.measurement.wall_ns)));
    Ok(reports
        .into_iter()
        .map(|r| r.with_baseline(baseline))
        .collect())
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
        codec: mode.uses_codec().then_some(cfg.codec),
        splits: cfg.splits_for(mode),
        chunksize: cfg.chunksize_for(mode),
        tasks: cfg.tasks_for(mode).len(),
        seed: cfg.seed,
        warmup: cfg.warmup,
    }
}
