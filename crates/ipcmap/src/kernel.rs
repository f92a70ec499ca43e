//! The kernel: the element-wise math function every strategy applies (`--fn`).
//!
//! Sequential, thread and process strategies all call [`apply`] (or [`apply_one`], which is the
//! same computation for one element), so their results are identical bit for bit.

use serde::{Deserialize, Serialize};

/// The element-wise function applied to every input value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    /// `e^x`, the tutorial's `numpy.exp`.
    Exp,
    /// Natural logarithm.
    Ln,
    /// Sine.
    Sin,
    /// Square root.
    Sqrt,
}

impl Function {
    /// Every function, in the order `--help` lists them.
    pub const ALL: [Function; 4] = [Function::Exp, Function::Ln, Function::Sin, Function::Sqrt];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Function::Exp => "exp",
            Function::Ln => "ln",
            Function::Sin => "sin",
            Function::Sqrt => "sqrt",
        }
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Applies `function` to one value.
#[inline]
pub fn apply_one(function: Function, x: f64) -> f64 {
    match function {
        Function::Exp => x.exp(),
        Function::Ln => x.ln(),
        Function::Sin => x.sin(),
        Function::Sqrt => x.sqrt(),
    }
}

/// Applies `function` to every element of `input`, writing `output[i] = f(input[i])`.
///
/// # Panics
/// If the slices differ in length (a bug in the caller, never input-dependent).
pub fn apply(function: Function, input: &[f64], output: &mut [f64]) {
    assert_eq!(input.len(), output.len(), "kernel slices differ in length");
    // One monomorphic loop per function so the compiler can unroll and pipeline it.
    macro_rules! each {
        ($f:expr) => {
            for (y, &x) in output.iter_mut().zip(input) {
                *y = $f(x);
            }
        };
    }
    match function {
        Function::Exp => each!(f64::exp),
        Function::Ln => each!(f64::ln),
        Function::Sin => each!(f64::sin),
        Function::Sqrt => each!(f64::sqrt),
    }
}

/// Applies `function` in place.
pub fn apply_in_place(function: Function, data: &mut [f64]) {
    for x in data.iter_mut() {
        *x = apply_one(function, *x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_and_single_element_paths_agree_bit_for_bit() {
        let input: Vec<f64> = (0..1000).map(|i| i as f64 / 997.0).collect();
        for function in Function::ALL {
            let mut out = vec![0.0; input.len()];
            apply(function, &input, &mut out);
            let mut in_place = input.clone();
            apply_in_place(function, &mut in_place);
            for (i, &x) in input.iter().enumerate() {
                assert_eq!(
                    out[i].to_bits(),
                    apply_one(function, x).to_bits(),
                    "{function} at {i}"
                );
                assert_eq!(out[i].to_bits(), in_place[i].to_bits(), "{function} at {i}");
            }
        }
    }

    #[test]
    fn exp_of_zero_is_one() {
        let mut out = [0.0];
        apply(Function::Exp, &[0.0], &mut out);
        assert_eq!(out[0], 1.0);
    }
}
