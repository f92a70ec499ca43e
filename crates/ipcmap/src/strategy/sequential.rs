//! `sequential`: generate and compute in the coordinator, no IPC. Every speedup is measured
//! against it and every parallel result is checked against its output.

use super::{ns_since, Outcome, Output};
use crate::config::RunConfig;
use crate::error::RunError;
use crate::memory::BufferPool;
use crate::report::Measurement;
use crate::{data, kernel};
use std::time::Instant;

/// Runs the sequential baseline once; a SIGINT or SIGTERM stops the compute between blocks.
pub fn run(cfg: &RunConfig, pool: &mut BufferPool) -> Result<Outcome, RunError> {
    let mut m = Measurement::default();
    let start = Instant::now();
    let t = Instant::now();
    let mut input = pool.vec(cfg.n);
    data::generate_into(cfg.seed, &mut input);
    m.generate_ns = ns_since(t);
    let t = Instant::now();
    let mut output = pool.vec(cfg.n);
    m.assemble_ns = ns_since(t);
    let t = Instant::now();
    let stop = || crate::interrupt::requested().is_some();
    if !kernel::apply_work_until(cfg.function, cfg.work, &input, &mut output, &stop) {
        pool.give_vec(input);
        pool.give_vec(output);
        return Err(crate::interrupt::interrupted());
    }
    m.compute_ns = ns_since(t);
    m.compute_max_ns = m.compute_ns;
    m.wall_ns = ns_since(start);
    pool.give_vec(input);
    m.buffers_reused = pool.take_reused();
    Ok(Outcome {
        output: Output::Owned(output),
        measurement: m,
    })
}
