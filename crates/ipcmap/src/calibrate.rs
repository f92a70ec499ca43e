//! This build's own speed, measured once per process: what generating and computing one value
//! cost here, now. Deadlines that must not write off a healthy worker (the first task's, before
//! any task has completed) scale with it, so a debug build or a busy machine, many times slower
//! than a quiet release build, is not mistaken for a hang.

use crate::kernel::{apply, Function};
use std::sync::OnceLock;
use std::time::Instant;

/// Values per timed sample: one generator block, small enough to cost milliseconds even in a
/// debug build.
const SAMPLE: usize = crate::data::BLOCK;

/// Timed samples; the fastest is kept (the machine's speed, not its neighbours' bursts).
const SAMPLES: usize = 3;

/// What one value costs this process, ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    /// Drawing one input value ([`crate::data::generate_at`]), on one thread.
    pub generate_ns: f64,
    /// Applying the function once to one value, on one thread.
    pub compute_ns: f64,
}

/// The cost of `function` in this process: measured on first use, then remembered.
pub fn ns_per_value(function: Function) -> Cost {
    static COSTS: [OnceLock<Cost>; Function::ALL.len()] =
        [const { OnceLock::new() }; Function::ALL.len()];
    let i = Function::ALL.iter().position(|&f| f == function).unwrap_or(0);
    *COSTS[i].get_or_init(|| measure(function))
}

/// Times [`SAMPLES`] draws and applications of one block; the fastest of each.
fn measure(function: Function) -> Cost {
    let mut input = vec![0.0; SAMPLE];
    let mut output = vec![0.0; SAMPLE];
    let (mut generate, mut compute) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        crate::data::generate_at(1, 0, &mut input);
        generate = generate.min(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        apply(function, &input, &mut output);
        compute = compute.min(t.elapsed().as_nanos() as f64);
        std::hint::black_box(&output);
    }
    Cost { generate_ns: generate / SAMPLE as f64, compute_ns: compute / SAMPLE as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_a_positive_cost_and_it_is_remembered() {
        for f in Function::ALL {
            let c = ns_per_value(f);
            assert!(c.generate_ns > 0.0 && c.compute_ns > 0.0, "{f}: {c:?}");
            assert_eq!(ns_per_value(f), c, "measured once");
        }
    }
}
