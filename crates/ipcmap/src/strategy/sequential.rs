//! `sequential`: generate and compute in the coordinator, no IPC. Every speedup is measured
//! against it and every parallel result is checked against its output.

use super::{Info, Run, Strategy};
use crate::costs::{Load, Prediction};
use crate::error::RunError;
use crate::kernel;

/// The baseline: `exp(rand(n))` in one process.
pub struct Sequential;

/// Its `--help` line.
const ABOUT: &str = "the baseline, no IPC: exp(rand(n)) in the coordinator";

impl Strategy for Sequential {
    /// Generating the input on every core, then one core computing every value into a fresh
    /// output.
    fn predict(&self, l: &Load<'_>) -> Option<Prediction> {
        let generate = l.generate_ns(false);
        let compute = l.compute_ns() + l.n * l.touch_ns(false);
        Some(Prediction {
            wall_ms: Load::ms(generate + compute),
            phases_ms: vec![("generate", Load::ms(generate)), ("compute", Load::ms(compute))],
        })
    }

    fn info(&self) -> Info {
        Info::local("sequential", ABOUT).unsplit().in_place()
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
        let Run { cfg, input, output, m, .. } = run;
        let t = crate::trace::Stopwatch::start();
        let stop = || crate::interrupt::requested().is_some();
        let values = super::values(input, output);
        if !kernel::apply_values_until(cfg.function, cfg.work, values, &stop) {
            return Err(crate::interrupt::interrupted());
        }
        m.compute_ns = t.elapsed_ns();
        let me = (std::process::id(), None);
        m.record(me, crate::trace::Phase::Compute, None, t.at, t.at + m.compute_ns);
        m.compute_max_ns = m.compute_ns;
        Ok(())
    }
}
