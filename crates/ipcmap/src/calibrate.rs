//! This build's own speed, measured once per process: what generating and computing one value
//! cost here, now. Deadlines that must not write off a healthy worker (the first task's, before
//! any task has completed) scale with it, so a debug build or a busy machine, many times slower
//! than a quiet release build, is not mistaken for a hang.

use crate::kernel::{apply, Function};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
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
    static COSTS: OnceLock<Mutex<HashMap<Function, Cost>>> = OnceLock::new();
    let costs = COSTS.get_or_init(Default::default);
    if let Some(cost) = costs.lock().unwrap_or_else(|p| p.into_inner()).get(&function) {
        return *cost;
    }
    let cost = measure(function);
    *costs.lock().unwrap_or_else(|p| p.into_inner()).entry(function).or_insert(cost)
}

/// Values of the in-cache sample: input and output together fit a core's L1 data cache.
const IN_CACHE: usize = 1536;

/// What the function costs against what moving a value through memory costs, on one core.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intensity {
    /// Applying the function once to one value, input and output in L1 cache, ns.
    pub fn_ns: f64,
    /// Copying one value through main memory (reading 8 bytes, writing 8), ns.
    pub copy_ns: f64,
}

impl Intensity {
    /// The function costs no more than moving its value through memory once: no strategy that
    /// copies each value to a worker and back can pay on this machine.
    pub fn memory_bound(&self) -> bool {
        self.fn_ns <= self.copy_ns
    }
}

/// `function`'s [`Intensity`] here: the fastest of 3 timings of each, the function's
/// repeated over one in-cache block for at least a millisecond; measured once per function.
pub fn intensity(function: Function) -> Intensity {
    static COPY: OnceLock<f64> = OnceLock::new();
    static FNS: OnceLock<Mutex<HashMap<Function, f64>>> = OnceLock::new();
    let copy_ns = *COPY.get_or_init(copy_ns_per_value);
    let fns = FNS.get_or_init(Default::default);
    let known = fns.lock().unwrap_or_else(|p| p.into_inner()).get(&function).copied();
    let fn_ns = known.unwrap_or_else(|| {
        let ns = in_cache_ns(function);
        *fns.lock().unwrap_or_else(|p| p.into_inner()).entry(function).or_insert(ns)
    });
    Intensity { fn_ns, copy_ns }
}

/// The function over [`IN_CACHE`] values, repeated for about a millisecond, ns a value.
fn in_cache_ns(function: Function) -> f64 {
    let input: Vec<f64> = (0..IN_CACHE).map(|i| (i as f64 + 0.5) / IN_CACHE as f64).collect();
    let mut output = vec![0.0; IN_CACHE];
    apply(function, &input, &mut output);
    let t = Instant::now();
    apply(function, &input, &mut output);
    let rounds = (1e6 / (t.elapsed().as_nanos() as f64).max(1.0)).clamp(1.0, 10_000.0) as usize;
    let mut best = f64::INFINITY;
    for _ in 0..SAMPLES {
        let t = Instant::now();
        for _ in 0..rounds {
            apply(function, std::hint::black_box(&input), &mut output);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / (rounds * IN_CACHE) as f64);
        std::hint::black_box(&output);
    }
    best
}

/// Copying 32 MiB (beyond any cache) from one buffer to another, ns a value.
fn copy_ns_per_value() -> f64 {
    let values = 4 << 20;
    let from = vec![1.0f64; values];
    let mut to = vec![0.0f64; values];
    to.copy_from_slice(&from);
    (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            to.copy_from_slice(std::hint::black_box(&from));
            std::hint::black_box(&to);
            t.elapsed().as_nanos() as f64 / values as f64
        })
        .fold(f64::INFINITY, f64::min)
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

    #[test]
    fn a_multiply_is_memory_bound_and_a_heavy_expression_is_not() {
        let cheap = intensity(Function::parse("x*2").unwrap());
        let heavy = intensity(Function::parse("exp(sin(x))**2/(1+x*x)").unwrap());
        assert!(cheap.fn_ns > 0.0 && cheap.copy_ns > 0.0, "{cheap:?}");
        assert!(heavy.fn_ns > cheap.fn_ns, "{heavy:?} against {cheap:?}");
    }
}
