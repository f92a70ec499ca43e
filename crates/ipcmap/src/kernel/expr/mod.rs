//! A user's own function (`--fn 'exp(-x*x/2)*sin(3*x)+sqrt(x)'`), compiled as numexpr does:
//! parsed once (`parse.rs`), constants folded, then run as a short program over blocks of
//! [`BLOCK`] values, each operation one tight loop over a block in L1 cache (the kernel's
//! vector paths for `exp`, `ln` and `sin`; AVX2 loops for arithmetic), never an interpreter
//! step per value and never generated machine code.
//!
//! Every value's result depends on that value alone and each operation is the same IEEE
//! operation on every path, so a block, a slice of any length and one value give the same bits:
//! the coordinator sends the expression's text, each worker compiles it the same way, and every
//! strategy's result equals the sequential one bit for bit.

mod parse;

pub use parse::{ExprError, MAX_DEPTH, MAX_NODES, MAX_TEXT};

use parse::Node;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Values per register: a block of every register stays in L1 cache while the program runs.
pub const BLOCK: usize = 1024;

/// A function of one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `-a`.
    Neg,
    /// `exp` (the kernel's vector path).
    Exp,
    /// `ln`, also spelled `log` as in numpy (the kernel's vector path).
    Ln,
    /// `sin` (the kernel's vector path).
    Sin,
    /// `cos` (the standard library's).
    Cos,
    /// `tan` (the standard library's).
    Tan,
    /// `sqrt` (correctly rounded in hardware).
    Sqrt,
    /// `abs`.
    Abs,
    /// `tanh` (the standard library's).
    Tanh,
}

impl Unary {
    /// The function a call names.
    fn named(name: &str) -> Option<Unary> {
        Some(match name {
            "exp" => Unary::Exp,
            "ln" | "log" => Unary::Ln,
            "sin" => Unary::Sin,
            "cos" => Unary::Cos,
            "tan" => Unary::Tan,
            "sqrt" => Unary::Sqrt,
            "abs" => Unary::Abs,
            "tanh" => Unary::Tanh,
            _ => return None,
        })
    }

    /// One value: the bits every lane of [`Unary::slice`] gives.
    #[inline]
    fn one(self, x: f64) -> f64 {
        match self {
            Unary::Neg => -x,
            Unary::Exp => super::exp::exp(x),
            Unary::Ln => super::ln::ln(x),
            Unary::Sin => super::sin::sin(x),
            Unary::Cos => x.cos(),
            Unary::Tan => x.tan(),
            Unary::Sqrt => x.sqrt(),
            Unary::Abs => x.abs(),
            Unary::Tanh => x.tanh(),
        }
    }

    /// Every value of `input` into `output` (same length).
    fn slice(self, input: &[f64], output: &mut [f64]) {
        match self {
            Unary::Exp => super::exp::exp_slice(input, output),
            Unary::Ln => super::ln::ln_slice(input, output),
            Unary::Sin => super::sin::sin_slice(input, output),
            Unary::Neg => lanes::map(input, output, |x| -x),
            Unary::Sqrt => lanes::map(input, output, f64::sqrt),
            Unary::Abs => lanes::map(input, output, f64::abs),
            other => {
                for (y, &x) in output.iter_mut().zip(input) {
                    *y = other.one(x);
                }
            }
        }
    }
}

/// An operator or function of two values. Comparisons give 1.0 or 0.0, as numpy's booleans
/// do in arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a ** b`: as numpy, `a*a` for an exponent of 2, `sqrt(a)` for 0.5, `1/a` for -1, `a`
    /// for 1, else the C library's `pow`.
    Pow,
    /// `min(a, b)`: NaN if either is (numpy's `minimum`).
    Min,
    /// `max(a, b)`: NaN if either is (numpy's `maximum`).
    Max,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
}

impl Binary {
    /// The comparison an operator spells.
    fn comparison(op: &str) -> Option<Binary> {
        Some(match op {
            "<" => Binary::Lt,
            "<=" => Binary::Le,
            ">" => Binary::Gt,
            ">=" => Binary::Ge,
            "==" => Binary::Eq,
            "!=" => Binary::Ne,
            _ => return None,
        })
    }

    /// One pair: the bits every lane of a block gives.
    #[inline(always)]
    fn one(self, a: f64, b: f64) -> f64 {
        let truth = |t: bool| if t { 1.0 } else { 0.0 };
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Pow => pow(a, b),
            Binary::Min => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if b < a {
                    b
                } else {
                    a
                }
            }
            Binary::Max => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if b > a {
                    b
                } else {
                    a
                }
            }
            Binary::Lt => truth(a < b),
            Binary::Le => truth(a <= b),
            Binary::Gt => truth(a > b),
            Binary::Ge => truth(a >= b),
            Binary::Eq => truth(a == b),
            Binary::Ne => truth(a != b),
        }
    }
}

/// `a ** b`, as numpy computes an array to a power.
#[inline(always)]
fn pow(a: f64, b: f64) -> f64 {
    if b == 2.0 {
        a * a
    } else if b == 0.5 {
        a.sqrt()
    } else if b == 1.0 {
        a
    } else if b == -1.0 {
        1.0 / a
    } else {
        a.powf(b)
    }
}

/// The loops over blocks: compiled for AVX2 where the CPU has it (the same IEEE operations,
/// so the same bits, on wider registers), else for the baseline.
mod lanes {
    /// `output[i] = f(input[i])`.
    #[inline(always)]
    pub fn map(input: &[f64], output: &mut [f64], f: impl Fn(f64) -> f64 + Copy) {
        wide(move || {
            for (y, &x) in output.iter_mut().zip(input) {
                *y = f(x);
            }
        })
    }

    /// `out[i] = f(a[i], b[i])`.
    #[inline(always)]
    pub fn zip(a: &[f64], b: &[f64], out: &mut [f64], f: impl Fn(f64, f64) -> f64 + Copy) {
        wide(move || {
            for ((y, &x), &z) in out.iter_mut().zip(a).zip(b) {
                *y = f(x, z);
            }
        })
    }

    /// `out[i] = if c[i] != 0 { a[i] } else { b[i] }` (a NaN condition is not zero).
    #[inline(always)]
    pub fn select(c: &[f64], a: &[f64], b: &[f64], out: &mut [f64]) {
        wide(move || {
            for (((y, &c), &a), &b) in out.iter_mut().zip(c).zip(a).zip(b) {
                *y = if c != 0.0 { a } else { b };
            }
        })
    }

    /// `to = from`, in AVX registers where the CPU has them: glibc's `memcpy` of a few KiB
    /// (`rep movsb`) is many times slower than this on some machines, and a block is copied
    /// at least once a run of the program.
    #[inline(always)]
    pub fn copy(from: &[f64], to: &mut [f64]) {
        let n = from.len().min(to.len());
        #[cfg(target_arch = "x86_64")]
        if crate::kernel::has_avx2_fma() {
            #[target_feature(enable = "avx2")]
            unsafe fn avx2(from: &[f64], to: &mut [f64], n: usize) {
                use std::arch::x86_64::*;
                let mut i = 0;
                while i + 4 <= n {
                    _mm256_storeu_pd(to.as_mut_ptr().add(i), _mm256_loadu_pd(from.as_ptr().add(i)));
                    i += 4;
                }
                to[i..n].copy_from_slice(&from[i..n]);
            }
            // SAFETY: the CPU supports AVX2 (checked at run time); every index is below n,
            // the length of both slices' common part.
            unsafe { avx2(from, to, n) };
            return;
        }
        to[..n].copy_from_slice(&from[..n])
    }

    /// Runs `body` compiled with AVX2 where the CPU has it.
    #[inline(always)]
    fn wide(body: impl FnOnce()) {
        #[cfg(target_arch = "x86_64")]
        if crate::kernel::has_avx2_fma() {
            #[target_feature(enable = "avx2")]
            unsafe fn avx2(body: impl FnOnce()) {
                body()
            }
            // SAFETY: the CPU supports AVX2 (checked at run time).
            unsafe { avx2(body) };
            return;
        }
        body()
    }
}

/// Where an operation reads a value from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    /// The input block.
    X,
    /// A register (a slot of the stack).
    Reg(usize),
    /// A number.
    K(f64),
}

/// One step of a compiled program: reads its sources, writes a block into register `to` (the
/// result of the last step goes straight to the output).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    /// `to = f(a)`.
    Unary(Unary, Src, usize),
    /// `to = a op b` (at most one of them a number).
    Binary(Binary, Src, Src, usize),
    /// `to = c != 0 ? a : b` (all three blocks).
    Where(Src, Src, Src, usize),
    /// `to = k` (a number where a block is needed).
    Fill(f64, usize),
}

/// A compiled expression: its text (what reports name it by and what goes to workers) and
/// its program.
pub struct Expr {
    text: String,
    ops: Vec<Op>,
    /// Where the result is when no step computes it (`x`, or a number).
    result: Src,
    /// The registers the program needs at most.
    stack: usize,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.text)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Expr {}

impl std::hash::Hash for Expr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state)
    }
}

/// Replaces every subtree that does not read `x` by its value, computed as a block would.
fn fold(node: Node) -> Node {
    match node {
        Node::Unary(u, a) => match fold(*a) {
            Node::Number(v) => Node::Number(u.one(v)),
            a => Node::Unary(u, Box::new(a)),
        },
        Node::Binary(b, l, r) => match (fold(*l), fold(*r)) {
            (Node::Number(x), Node::Number(y)) => Node::Number(b.one(x, y)),
            (l, r) => Node::Binary(b, Box::new(l), Box::new(r)),
        },
        Node::Where(c, a, b) => match (fold(*c), fold(*a), fold(*b)) {
            (Node::Number(c), a, b) => {
                if c != 0.0 {
                    a
                } else {
                    b
                }
            }
            (c, a, b) => Node::Where(Box::new(c), Box::new(a), Box::new(b)),
        },
        leaf => leaf,
    }
}

/// Compiles `node` into `ops`, its registers from `free` up (those below hold live values);
/// returns where its value is. `most` tracks the registers used.
fn emit(node: &Node, ops: &mut Vec<Op>, free: usize, most: &mut usize) -> Src {
    // A register operand frees its slot for the next; a block is needed for where's operands.
    let slot = |s: Src, free: usize| if matches!(s, Src::Reg(_)) { free + 1 } else { free };
    match node {
        Node::X => Src::X,
        Node::Number(v) => Src::K(*v),
        Node::Unary(u, a) => {
            let a = emit(a, ops, free, most);
            let u = *u;
            *most = (*most).max(free + 1);
            ops.push(Op::Unary(u, a, free));
            Src::Reg(free)
        }
        Node::Binary(b, l, r) => {
            let l = emit(l, ops, free, most);
            let r = emit(r, ops, slot(l, free), most);
            *most = (*most).max(free + 1);
            ops.push(Op::Binary(*b, l, r, free));
            Src::Reg(free)
        }
        Node::Where(c, a, b) => {
            let block = |node: &Node, at: usize, ops: &mut Vec<Op>, most: &mut usize| match emit(
                node, ops, at, most,
            ) {
                Src::K(k) => {
                    *most = (*most).max(at + 1);
                    ops.push(Op::Fill(k, at));
                    Src::Reg(at)
                }
                s => s,
            };
            let c = block(c, free, ops, most);
            let a = block(a, slot(c, free), ops, most);
            let b = block(b, slot(a, slot(c, free)), ops, most);
            *most = (*most).max(free + 1);
            ops.push(Op::Where(c, a, b, free));
            Src::Reg(free)
        }
    }
}

thread_local! {
    /// Each thread's registers: `stack + 1` blocks (one spare that each step writes into).
    static REGISTERS: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

impl Expr {
    /// Parses and compiles `text`.
    pub fn compile(text: &str) -> Result<Expr, ExprError> {
        let tree = fold(parse::parse(text)?);
        let (mut ops, mut stack) = (Vec::new(), 0);
        let result = emit(&tree, &mut ops, 0, &mut stack);
        Ok(Expr { text: text.trim().to_string(), ops, result, stack })
    }

    /// The text, as given (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The program's steps: one pass over a block each.
    pub fn steps(&self) -> usize {
        self.ops.len()
    }

    /// `output[i] = f(input[i])`, a block at a time.
    pub fn eval(&self, input: &[f64], output: &mut [f64]) {
        REGISTERS.with(|registers| {
            let mut registers = registers.borrow_mut();
            while registers.len() < self.stack + 1 {
                registers.push(vec![0.0; BLOCK]);
            }
            for (x, y) in input.chunks(BLOCK).zip(output.chunks_mut(BLOCK)) {
                self.block(x, y, &mut registers[..self.stack + 1]);
            }
        })
    }

    /// One value: the same steps on a block of one, so the same bits as [`Expr::eval`].
    pub fn eval_one(&self, x: f64) -> f64 {
        let mut y = [0.0];
        self.eval(&[x], &mut y);
        y[0]
    }

    /// Runs the program on one block (`x.len() <= BLOCK`); `registers` holds `stack + 1`.
    /// Each step writes into the spare register, which then trades places with its target;
    /// the last writes into `y`. No block is copied.
    fn block(&self, x: &[f64], y: &mut [f64], registers: &mut [Vec<f64>]) {
        let n = x.len();
        let Some((last, steps)) = self.ops.split_last() else {
            match self.result {
                Src::K(k) => y.fill(k),
                _ => lanes::copy(x, y),
            }
            return;
        };
        let (held, spare) = registers.split_at_mut(self.stack);
        for op in steps {
            step(*op, x, held, &mut spare[0][..n]);
            let to = match *op {
                Op::Unary(.., to) | Op::Binary(.., to) | Op::Where(.., to) | Op::Fill(_, to) => to,
            };
            std::mem::swap(&mut held[to], &mut spare[0]);
        }
        step(*last, x, held, y);
    }
}

/// One step: its sources read from `x` and `held`, its block written to `out`.
fn step(op: Op, x: &[f64], held: &[Vec<f64>], out: &mut [f64]) {
    let n = out.len();
    let block = |s: Src| -> &[f64] {
        match s {
            Src::Reg(r) => &held[r][..n],
            _ => x,
        }
    };
    match op {
        Op::Fill(k, _) => out.fill(k),
        Op::Unary(u, a, _) => match a {
            Src::K(k) => out.fill(u.one(k)),
            a => u.slice(block(a), out),
        },
        Op::Binary(b, Src::K(k), r, _) => constant_first(b, k, block(r), out),
        Op::Binary(b, l, Src::K(k), _) => constant_second(b, block(l), k, out),
        Op::Binary(b, l, r, _) => binary(b, block(l), block(r), out),
        Op::Where(c, a, b, _) => lanes::select(block(c), block(a), block(b), out),
    }
}

/// `out = a op b` over a block, one monomorphic loop per operator.
fn binary(op: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
    macro_rules! each {
        ($($variant:ident),*) => {
            match op {
                $(Binary::$variant => lanes::zip(a, b, out, |x, y| Binary::$variant.one(x, y)),)*
            }
        };
    }
    each!(Add, Sub, Mul, Div, Pow, Min, Max, Lt, Le, Gt, Ge, Eq, Ne)
}

/// `out = a op k` over a block.
fn constant_second(op: Binary, a: &[f64], k: f64, out: &mut [f64]) {
    macro_rules! each {
        ($($variant:ident),*) => {
            match op {
                $(Binary::$variant => lanes::map(a, out, move |x| Binary::$variant.one(x, k)),)*
            }
        };
    }
    each!(Add, Sub, Mul, Div, Pow, Min, Max, Lt, Le, Gt, Ge, Eq, Ne)
}

/// `out = k op b` over a block.
fn constant_first(op: Binary, k: f64, b: &[f64], out: &mut [f64]) {
    macro_rules! each {
        ($($variant:ident),*) => {
            match op {
                $(Binary::$variant => lanes::map(b, out, move |x| Binary::$variant.one(k, x)),)*
            }
        };
    }
    each!(Add, Sub, Mul, Div, Pow, Min, Max, Lt, Le, Gt, Ge, Eq, Ne)
}

/// The compiled expression for `text`, compiled once per process and kept for its life (a run
/// names a handful), so a [`crate::kernel::Function`] holding it stays `Copy`.
pub fn intern(text: &str) -> Result<&'static Expr, ExprError> {
    static TABLE: OnceLock<Mutex<HashMap<String, &'static Expr>>> = OnceLock::new();
    let key = text.trim();
    let table = TABLE.get_or_init(Default::default);
    if let Some(found) = table.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
        return Ok(found);
    }
    let compiled: &'static Expr = Box::leak(Box::new(Expr::compile(key)?));
    let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
    Ok(*table.entry(key.to_string()).or_insert(compiled))
}

#[cfg(test)]
mod tests;
