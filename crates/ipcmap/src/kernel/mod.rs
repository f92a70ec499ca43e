//! The kernel: the element-wise math function every strategy applies (`--fn`).
//!
//! Sequential, thread and process strategies all call [`apply`] (or [`apply_one`], which is the
//! same computation for one element), so their results are identical bit for bit. `exp`, `ln`
//! and `sin` are vectorised with run-time CPU-feature dispatch (AVX2 (+ FMA), else the same
//! sequence on one lane), within 1 ulp of the standard library; `sqrt` is correctly rounded in
//! hardware on every path. A user's own expression ([`expr`]) is compiled to a program over
//! blocks that uses these same paths.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Declares a kernel's one-value function: `$scalar` compiled with hardware fused multiply-add
/// where the CPU has it (without it, `mul_add` is a call into libm: the same result, many times
/// slower).
macro_rules! one_value_kernel {
    ($(#[$doc:meta])* pub fn $name:ident($scalar:path);) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(x: f64) -> f64 {
            #[cfg(target_arch = "x86_64")]
            if $crate::kernel::has_avx2_fma() {
                #[target_feature(enable = "fma")]
                unsafe fn with_fma(x: f64) -> f64 {
                    $scalar(x)
                }
                // SAFETY: the CPU supports FMA (checked at run time).
                return unsafe { with_fma(x) };
            }
            $scalar(x)
        }
    };
}

/// Declares a kernel's slice function: `$scalar` on every value, or, where the CPU has AVX2
/// and FMA (checked once, at run time), `$vector` four values at a time wherever `$inside` sets
/// all four lanes, and `$scalar` on the lanes of a group it does not and on the tail. Both
/// closures take and return `__m256d`, with `std::arch::x86_64::*` in scope.
macro_rules! slice_kernel {
    ($(#[$doc:meta])* pub fn $name:ident($scalar:path); inside: $inside:expr, vector: $vector:expr $(,)?) => {
        $(#[$doc])*
        pub fn $name(input: &[f64], output: &mut [f64]) {
            #[cfg(target_arch = "x86_64")]
            if $crate::kernel::has_avx2_fma() {
                /// # Safety
                /// The CPU must support AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                unsafe fn four_lanes(input: &[f64], output: &mut [f64]) {
                    #[allow(unused_imports)]
                    use std::arch::x86_64::*;
                    $crate::kernel::lanes::map4(input, output, $scalar, $inside, $vector)
                }
                // SAFETY: the CPU supports AVX2 and FMA (checked at run time), all it needs.
                unsafe { four_lanes(input, output) };
                return;
            }
            for (y, &x) in output.iter_mut().zip(input) {
                *y = $scalar(x);
            }
        }
    };
}

mod exp;
pub mod expr;
mod ln;
mod sin;

/// True when this CPU runs the AVX2 + FMA paths (checked once).
#[cfg(target_arch = "x86_64")]
pub fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// The 4-lane loop every kernel shares: its vector body where all four lanes are inside its
/// domain, its scalar function on the lanes of a group that is not and on the tail.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use std::arch::x86_64::*;

    /// `vector` four values at a time where `inside` sets all four lanes, `scalar` elsewhere.
    ///
    /// # Safety
    /// The CPU must support AVX2 (and whatever `inside` and `vector` use); inlined into the
    /// kernel's `#[target_feature]` function, which its closures share.
    #[inline(always)]
    pub unsafe fn map4(
        input: &[f64],
        output: &mut [f64],
        scalar: fn(f64) -> f64,
        inside: impl Fn(__m256d) -> __m256d,
        vector: impl Fn(__m256d) -> __m256d,
    ) {
        let n = input.len().min(output.len());
        let mut i = 0;
        while i + 4 <= n {
            let x = _mm256_loadu_pd(input.as_ptr().add(i));
            // false for NaN lanes, as the kernels' masks are.
            if _mm256_movemask_pd(inside(x)) == 0b1111 {
                _mm256_storeu_pd(output.as_mut_ptr().add(i), vector(x));
            } else {
                for j in i..i + 4 {
                    output[j] = scalar(input[j]);
                }
            }
            i += 4;
        }
        for j in i..n {
            output[j] = scalar(input[j]);
        }
    }
}

/// The instruction set the kernel dispatches to on this CPU, for reports.
pub fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        return "avx2+fma";
    }
    "scalar"
}

/// The element-wise function applied to every input value: a built-in by name, or an
/// expression in `x` ([`expr`]). On the command line, in reports and on the wire it is its
/// text (`"exp"`, `"exp(-x*x/2)*sin(3*x)"`); the compiled program is kept for the process's
/// life, so a `Function` is `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// `e^x`, the tutorial's `numpy.exp`.
    Exp,
    /// Natural logarithm.
    Ln,
    /// Sine.
    Sin,
    /// Square root.
    Sqrt,
    /// An expression in `x`, compiled.
    Expr(&'static expr::Expr),
}

impl Function {
    /// Every built-in function, in the order `--help` lists them.
    pub const ALL: [Function; 4] = [Function::Exp, Function::Ln, Function::Sin, Function::Sqrt];

    /// The name used on the command line and in reports: a built-in's name or the expression.
    pub fn name(self) -> &'static str {
        match self {
            Function::Exp => "exp",
            Function::Ln => "ln",
            Function::Sin => "sin",
            Function::Sqrt => "sqrt",
            Function::Expr(e) => e.text(),
        }
    }

    /// A built-in's name, else `text` parsed and compiled as an expression.
    pub fn parse(text: &str) -> Result<Function, expr::ExprError> {
        let text = text.trim();
        if let Some(&builtin) = Function::ALL.iter().find(|f| f.name() == text) {
            return Ok(builtin);
        }
        expr::intern(text).map(Function::Expr)
    }
}

impl std::str::FromStr for Function {
    type Err = expr::ExprError;

    fn from_str(text: &str) -> Result<Function, expr::ExprError> {
        Function::parse(text)
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Function {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Function {
    /// Its text, parsed and compiled here: a peer's text is bounded by the parser before it
    /// recurses on it.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Function, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Function::parse(&text).map_err(|e| serde::de::Error::custom(format!("--fn {text:?}: {e}")))
    }
}

impl schemars::JsonSchema for Function {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Function".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The element-wise function: a built-in (exp, ln, sin, sqrt) or an expression in x, as given to --fn.",
            "type": "string",
            "minLength": 1,
            "maxLength": expr::MAX_TEXT
        })
    }
}

/// Applies `function` to one value.
#[inline]
pub fn apply_one(function: Function, x: f64) -> f64 {
    match function {
        Function::Exp => exp::exp(x),
        Function::Ln => ln::ln(x),
        Function::Sin => sin::sin(x),
        Function::Sqrt => x.sqrt(),
        Function::Expr(e) => e.eval_one(x),
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
        Function::Exp => exp::exp_slice(input, output),
        Function::Ln => ln::ln_slice(input, output),
        Function::Sin => sin::sin_slice(input, output),
        Function::Sqrt => each!(f64::sqrt),
        Function::Expr(e) => e.eval(input, output),
    }
}

/// Elements per round of [`apply_work`]'s inner loop (a stack buffer's worth).
const WORK_BLOCK: usize = 1024;

/// Applies `function` `work` times per element, each time to `x + 0·y` where y is the last
/// result: K times the cost, and for finite results the same value as [`apply`].
///
/// All K rounds run on one cache-sized block before the next block, so the extra work is math,
/// not K passes over main memory: a long slice costs what many short ones do.
pub fn apply_work(function: Function, work: u32, input: &[f64], output: &mut [f64]) {
    if work <= 1 {
        return apply(function, input, output);
    }
    let mut shifted = [0.0; WORK_BLOCK];
    for (x, y) in input.chunks(WORK_BLOCK).zip(output.chunks_mut(WORK_BLOCK)) {
        apply(function, x, y);
        let tmp = &mut shifted[..x.len()];
        for _ in 1..work {
            for ((t, &x), &y) in tmp.iter_mut().zip(x).zip(y.iter()) {
                *t = x + y * 0.0;
            }
            apply(function, tmp, y);
        }
    }
}

/// [`apply_work`] in pieces of about 64 blocks' worth of math (fewer elements as `work` grows,
/// down to one), asking `stop` between pieces so that a long compute answers a signal within
/// milliseconds whatever `work` is. Returns `false` when `stop` said yes: `output` is then
/// only partly written. Every element's result depends on that element alone, so the bits
/// are the same however the slice is cut.
pub fn apply_work_until(
    function: Function,
    work: u32,
    input: &[f64],
    output: &mut [f64],
    stop: &dyn Fn() -> bool,
) -> bool {
    let piece = (WORK_BLOCK * 64 / work.max(1) as usize).max(1);
    for (x, y) in input.chunks(piece).zip(output.chunks_mut(piece)) {
        if stop() {
            return false;
        }
        apply_work(function, work, x, y);
    }
    true
}

/// The values a kernel reads and where it writes: two slices of one length, or one slice the
/// result overwrites (`--in-place`, as `numpy.exp(data, out=data)`).
pub enum Values<'a> {
    /// Input and output apart.
    Apart(&'a [f64], &'a mut [f64]),
    /// One slice, input then output.
    InPlace(&'a mut [f64]),
}

impl<'a> Values<'a> {
    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            Values::Apart(x, _) => x.len(),
            Values::InPlace(x) => x.len(),
        }
    }

    /// No values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `at` values and the rest, as two disjoint [`Values`].
    pub fn split_at(self, at: usize) -> (Values<'a>, Values<'a>) {
        match self {
            Values::Apart(x, y) => {
                let ((x0, x1), (y0, y1)) = (x.split_at(at), y.split_at_mut(at));
                (Values::Apart(x0, y0), Values::Apart(x1, y1))
            }
            Values::InPlace(x) => {
                let (a, b) = x.split_at_mut(at);
                (Values::InPlace(a), Values::InPlace(b))
            }
        }
    }
}

/// [`apply_work`] with the result written over the input: each cache-sized block is copied
/// aside (it stays in L1) and computed back into place, so memory is read once and written
/// once, 8 bytes a value in all, and the bits are [`apply_work`]'s.
pub fn apply_work_in_place(function: Function, work: u32, data: &mut [f64]) {
    let mut block = [0.0; WORK_BLOCK];
    for y in data.chunks_mut(WORK_BLOCK) {
        let x = &mut block[..y.len()];
        x.copy_from_slice(y);
        apply_work(function, work, x, y);
    }
}

/// [`apply_work_until`] over [`Values`], apart or in place.
pub fn apply_values_until(
    function: Function,
    work: u32,
    values: Values<'_>,
    stop: &dyn Fn() -> bool,
) -> bool {
    match values {
        Values::Apart(input, output) => apply_work_until(function, work, input, output, stop),
        Values::InPlace(data) => {
            let piece = (WORK_BLOCK * 64 / work.max(1) as usize).max(1);
            for y in data.chunks_mut(piece) {
                if stop() {
                    return false;
                }
                apply_work_in_place(function, work, y);
            }
            true
        }
    }
}

/// [`apply_work`] for one value: the same computation, so the same bits.
pub fn apply_one_work(function: Function, work: u32, x: f64) -> f64 {
    let mut y = apply_one(function, x);
    for _ in 1..work {
        y = apply_one(function, x + y * 0.0);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_in_pieces_gives_the_same_bits_and_stops_when_asked() {
        let input: Vec<f64> = (0..100_003).map(|i| i as f64 / 99_991.0).collect();
        for work in [1, 3, 70] {
            let mut whole = vec![0.0; input.len()];
            let mut pieces = vec![0.0; input.len()];
            apply_work(Function::Exp, work, &input, &mut whole);
            assert!(apply_work_until(Function::Exp, work, &input, &mut pieces, &|| false));
            assert!(whole.iter().zip(&pieces).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        let mut out = vec![0.0; input.len()];
        assert!(!apply_work_until(Function::Exp, 1, &input, &mut out, &|| true));
    }

    #[test]
    fn slice_and_single_element_paths_agree_bit_for_bit() {
        let input: Vec<f64> = (0..1000).map(|i| i as f64 / 997.0).collect();
        for function in Function::ALL {
            let mut out = vec![0.0; input.len()];
            apply(function, &input, &mut out);
            for (i, &x) in input.iter().enumerate() {
                assert_eq!(out[i].to_bits(), apply_one(function, x).to_bits(), "{function} at {i}");
            }
        }
    }

    /// ulps between two finite values of the same sign (or 0 when both are the same NaN/inf).
    fn ulps(a: f64, b: f64) -> u64 {
        if a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        let key = |v: f64| {
            let bits = v.to_bits() as i64;
            if bits < 0 {
                i64::MIN - bits
            } else {
                bits
            }
        };
        key(a).abs_diff(key(b))
    }

    /// `f` over `xs` (the slice path) is within one ulp of std's `reference` everywhere, and
    /// equal bit for bit to the one-value path.
    /// `steps` evenly spaced values over [0, 1), the range of the generated data.
    #[test]
    fn in_place_gives_the_bits_of_apart_for_every_function_and_work() {
        let mut xs = unit_grid(5000);
        xs.extend(SPECIALS);
        for function in [Function::Exp, Function::Ln, Function::Sin, Function::Sqrt] {
            for work in [1, 3] {
                let mut apart = vec![0.0; xs.len()];
                apply_work(function, work, &xs, &mut apart);
                let mut data = xs.clone();
                assert!(apply_values_until(function, work, Values::InPlace(&mut data), &|| false));
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&data), bits(&apart), "{function:?} work {work}");
            }
        }
        let (mut a, mut b) = (vec![1.0; 10], vec![0.0; 10]);
        let (left, right) = Values::Apart(&a, &mut b).split_at(4);
        assert_eq!((left.len(), right.len()), (4, 6));
        let (left, right) = Values::InPlace(&mut a).split_at(10);
        assert_eq!((left.len(), right.is_empty()), (10, true));
    }

    fn unit_grid(steps: u32) -> Vec<f64> {
        (0..steps).map(|i| f64::from(i) / f64::from(steps)).collect()
    }

    /// `from`, `from + step`, ... below `to` (accumulated, as a loop adding `step` would).
    fn stepped(from: f64, to: f64, step: f64) -> impl Iterator<Item = f64> {
        std::iter::successors(Some(from), move |x| Some(x + step)).take_while(move |&x| x < to)
    }

    /// The values every IEEE function must get right, added to every kernel's sweep.
    const SPECIALS: [f64; 8] = [
        0.0,
        -0.0,
        5e-324,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];

    fn assert_within_one_ulp(f: Function, mut xs: Vec<f64>, reference: fn(f64) -> f64) {
        xs.extend(SPECIALS);
        let xs = &xs[..];
        let mut out = vec![0.0; xs.len()];
        apply(f, xs, &mut out);
        let (worst, at) = xs
            .iter()
            .zip(&out)
            .map(|(&x, &y)| (ulps(y, reference(x)), x))
            .max_by_key(|p| p.0)
            .unwrap();
        assert!(worst <= 1, "{f:?}({at:e}) is {worst} ulps from std");
        assert!(out.iter().zip(xs).all(|(y, x)| y.to_bits() == apply_one(f, *x).to_bits()));
    }

    #[test]
    fn exp_is_within_one_ulp_of_std_over_its_domain() {
        // A dense sweep of [0, 1) (the data), then a log-spaced sweep of the whole range.
        let mut xs = unit_grid(2_000_000);
        xs.extend(stepped(-750.0, 750.0, 0.000_731).flat_map(|x| [x, -x, x * 1e-3, x * 1e-9]));
        xs.extend([708.0, -708.0, 709.7, -745.1]);
        assert_within_one_ulp(Function::Exp, xs, f64::exp);
    }

    #[test]
    fn ln_is_within_one_ulp_of_std_over_its_domain() {
        let mut xs = unit_grid(2_000_000);
        // Powers of two over the whole range, and the mantissas next to the halving point.
        let (sqrt2, half_sqrt2) = (std::f64::consts::SQRT_2, std::f64::consts::FRAC_1_SQRT_2);
        xs.extend(
            stepped(-1074.0, 1024.0, 0.0137).map(|e| 2f64.powf(e)).flat_map(|x| {
                [x, x * sqrt2, x * 1.41422, x * half_sqrt2, x * 0.99999, x * 1.00001]
            }),
        );
        xs.extend([1.0, 2.0, 0.5, -1.0]);
        assert_within_one_ulp(Function::Ln, xs, f64::ln);
    }

    #[test]
    fn sin_is_within_one_ulp_of_std_over_its_domain() {
        // The data's [0, 1), a sweep of [-LIMIT, LIMIT], tiny values, and the doubles next to
        // multiples of pi/2 (where reduction cancels most) up to the limit.
        let mut xs = unit_grid(1_000_000);
        xs.extend(stepped(-512.0, 512.0, 0.000_731).flat_map(|x| [x, x * 1e-3, x * 1e-12]));
        for k in -326i64..=326 {
            let near = k as f64 * std::f64::consts::FRAC_PI_2;
            let mut y = near;
            for _ in 0..3 {
                xs.push(y);
                y = f64::from_bits(y.to_bits() + 1);
            }
        }
        xs.extend([512.0, -512.0, 513.0, 65_536.0, 1e300]);
        assert_within_one_ulp(Function::Sin, xs, f64::sin);
    }

    #[test]
    fn special_values_follow_std() {
        for x in
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 710.0, -746.0, 0.0, -0.0, -1.0, 1e-310]
        {
            let mut out = [0.0; 5];
            apply(Function::Exp, &[x; 5], &mut out);
            assert!(out.iter().all(|y| ulps(*y, x.exp()) == 0), "exp({x}) = {out:?}");
            apply(Function::Ln, &[x; 5], &mut out);
            assert!(out.iter().all(|y| ulps(*y, x.ln()) == 0), "ln({x}) = {out:?}");
        }
    }

    #[test]
    fn work_repeats_the_kernel_without_changing_finite_results() {
        let input: Vec<f64> = (0..3000).map(|i| i as f64 / 3000.0).collect();
        let (mut once, mut thrice) = (vec![0.0; 3000], vec![0.0; 3000]);
        apply(Function::Sin, &input, &mut once);
        apply_work(Function::Sin, 3, &input, &mut thrice);
        assert_eq!(once, thrice);
        assert!(input
            .iter()
            .zip(&thrice)
            .all(|(&x, y)| apply_one_work(Function::Sin, 3, x).to_bits() == y.to_bits()));
    }

    #[test]
    fn exp_of_zero_is_one() {
        let mut out = [0.0];
        apply(Function::Exp, &[0.0], &mut out);
        assert_eq!(out[0], 1.0);
    }
}
