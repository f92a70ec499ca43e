//! `sequential`: generate and compute in the coordinator, no IPC. Every speedup is measured
//! against it and every parallel result is checked against its output.

use super::{Info, Run, Strategy};
use crate::error::RunError;
use crate::kernel;

/// The baseline: `exp(rand(n))` in one process.
pub struct Sequential;

/// Its `--help` line.
const ABOUT: &str = "the baseline, no IPC: exp(rand(n)) in the coordinator";

impl Strategy for Sequential {
    fn info(&self) -> Info {
        Info::local("sequential", ABOUT).unsplit()
    }

    fn default_chunksize(&self, _n: usize, _workers: usize) -> Option<usize> {
        None
    }

    fn tasks(
        &self,
        _s: &crate::settings::Settings,
        _chunksize: usize,
    ) -> Vec<crate::partition::Task> {
        Vec::new()
    }

    /// A SIGINT or SIGTERM stops the compute between blocks.
    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        let (cfg, m) = (run.cfg, &mut *run.m);
        let t = crate::trace::Stopwatch::start();
        let stop = || crate::interrupt::requested().is_some();
        let input = run.input.as_slice();
        if !kernel::apply_work_until(
            cfg.function,
            cfg.work,
            input,
            run.output.as_mut_slice(),
            &stop,
        ) {
            return Err(crate::interrupt::interrupted());
        }
        m.compute_ns = t.elapsed_ns();
        let me = (std::process::id(), None);
        m.record(me, crate::trace::Phase::Compute, None, t.at, t.at + m.compute_ns);
        m.compute_max_ns = m.compute_ns;
        Ok(())
    }
}
