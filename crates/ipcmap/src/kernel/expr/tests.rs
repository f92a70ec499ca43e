//! The expression language: what it accepts, what it refuses (one line, with the column),
//! and that every path gives the same bits.

use super::*;

fn eval(text: &str, x: f64) -> f64 {
    Expr::compile(text).unwrap_or_else(|e| panic!("{text}: {e}")).eval_one(x)
}

#[test]
fn arithmetic_follows_python_precedence() {
    assert_eq!(eval("1 + 2 * 3", 0.0), 7.0);
    assert_eq!(eval("(1 + 2) * 3", 0.0), 9.0);
    assert_eq!(eval("-x**2", 3.0), -9.0, "power binds tighter than unary minus");
    assert_eq!(eval("2**-1", 0.0), 0.5);
    assert_eq!(eval("2**3**2", 0.0), 512.0, "right-associative");
    assert_eq!(eval("x - 1 - 1", 5.0), 3.0, "left-associative");
    assert_eq!(eval("8 / 2 / 2", 0.0), 2.0);
    assert_eq!(eval("--x", 2.0), 2.0);
    assert_eq!(eval("+x", 2.0), 2.0);
    assert_eq!(eval("1.5e2 + .5 + 2E-1", 0.0), 150.7);
    assert_eq!(eval("x*2", 1.25), 2.5);
    assert_eq!(eval("pi", 0.0), std::f64::consts::PI);
    assert_eq!(eval("e", 0.0), std::f64::consts::E);
}

#[test]
fn functions_comparisons_and_where() {
    assert_eq!(eval("min(x, 1)", 3.0), 1.0);
    assert_eq!(eval("max(x, 1)", 3.0), 3.0);
    assert!(eval("min(x, 1)", f64::NAN).is_nan(), "NaN propagates, as numpy.minimum");
    assert_eq!(eval("where(x > 0.5, 1, -1)", 0.7), 1.0);
    assert_eq!(eval("where(x > 0.5, 1, -1)", 0.2), -1.0);
    assert_eq!(eval("where(x, x, 7)", 0.0), 7.0);
    assert!(eval("where(x < 1, x, 7)", f64::NAN) == 7.0, "NaN < 1 is false");
    assert!(eval("where(x == x, 1, x)", f64::NAN).is_nan());
    assert_eq!(eval("(x <= 2) + (x >= 2) + (x != 2) + (x == 2) + (x < 2)", 2.0), 3.0);
    assert_eq!(eval("abs(-x) + sqrt(x)", 4.0), 6.0);
    assert_eq!(eval("log(x)", 1.0), 0.0);
    assert_eq!(eval("np.exp(x) + numpy.sin(x)", 0.0), 1.0);
    assert_eq!(eval("cos(x) + tan(x) + tanh(x)", 0.0), 1.0);
    assert_eq!(eval("where(1, x, 2)", 5.0), 5.0, "a constant condition is folded");
}

#[test]
fn powers_are_numpys_special_cases() {
    assert_eq!(eval("x**2", 3.0), 9.0);
    assert_eq!(eval("x**0.5", -0.0).to_bits(), (-0.0f64).to_bits(), "sqrt, as numpy");
    assert_eq!(eval("x**-1", 4.0), 0.25);
    assert_eq!(eval("x**1", 4.0), 4.0);
    assert_eq!(eval("x**3", 2.0), 8.0);
    assert_eq!(eval("x**x", 2.0), 4.0);
}

#[test]
fn the_builtins_as_expressions_give_the_kernels_bits() {
    let input: Vec<f64> = (0..5000).map(|i| i as f64 / 4999.0 * 3.0 - 0.5).collect();
    for (text, function) in [
        ("exp(x)", crate::kernel::Function::Exp),
        ("ln(x)", crate::kernel::Function::Ln),
        ("sin(x)", crate::kernel::Function::Sin),
        ("sqrt(x)", crate::kernel::Function::Sqrt),
    ] {
        let mut want = vec![0.0; input.len()];
        crate::kernel::apply(function, &input, &mut want);
        let mut got = vec![0.0; input.len()];
        Expr::compile(text).unwrap().eval(&input, &mut got);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{text}");
    }
}

#[test]
fn blocks_slices_and_one_value_agree_bit_for_bit() {
    let mut input: Vec<f64> = (0..3001).map(|i| i as f64 / 1000.0 - 0.7).collect();
    input.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e300, 5e-324]);
    for text in [
        "exp(-x*x/2)*sin(3*x)+sqrt(x)",
        "exp(sin(x))**2/(1+x*x)",
        "where(x > 0.5, ln(x), cos(x)) - max(x, tanh(x)) * min(2, abs(x))",
        "x*2",
        "1/x + x**x - 2**x",
        "3",
    ] {
        let program = Expr::compile(text).unwrap();
        let mut whole = vec![0.0; input.len()];
        program.eval(&input, &mut whole);
        for cut in [1, 7, 1024, 1025] {
            let mut pieces = vec![0.0; input.len()];
            for (x, y) in input.chunks(cut).zip(pieces.chunks_mut(cut)) {
                program.eval(x, y);
            }
            assert!(
                whole.iter().zip(&pieces).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{text} in {cut}s"
            );
        }
        for (x, y) in input.iter().zip(&whole) {
            assert_eq!(program.eval_one(*x).to_bits(), y.to_bits(), "{text} at {x}");
        }
    }
}

#[test]
fn constants_are_folded_and_the_stack_is_small() {
    let e = Expr::compile("x * (2 * pi) + sqrt(4)").unwrap();
    let two_pi = 2.0 * std::f64::consts::PI;
    assert_eq!(
        e.ops,
        [
            Op::Binary(Binary::Mul, Src::X, Src::K(two_pi), 0),
            Op::Binary(Binary::Add, Src::Reg(0), Src::K(2.0), 0)
        ]
    );
    assert_eq!(e.stack, 1);
    let e = Expr::compile("exp(x)").unwrap();
    assert_eq!(e.ops, [Op::Unary(Unary::Exp, Src::X, 0)]);
    assert_eq!(Expr::compile("x + x*x").unwrap().stack, 1, "x is read in place");
    assert_eq!(Expr::compile("exp(x) + sin(x)*cos(x)").unwrap().stack, 3);
    let e = Expr::compile("where(x > 0, 1, x)").unwrap();
    assert_eq!(e.steps(), 3, "the condition, the number as a block, the choice");
    assert_eq!(Expr::compile("x").unwrap().steps(), 0);
}

#[test]
fn interning_gives_one_program_per_text() {
    let a = intern(" x*3 ").unwrap();
    let b = intern("x*3").unwrap();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.text(), "x*3");
}

/// Each malformed input: refused with one line, naming the column where it can.
#[test]
fn malformed_expressions_are_refused_with_one_line_and_a_column() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("   ", "empty"),
        ("exp(", "column 5: the expression ends where a value"),
        ("exp(x", "column 6: expected ')' to close the exp( at column 4"),
        ("(x + 1", "column 7: expected ')' to close the ( at column 1"),
        ("x + 1)", "column 6: ')' closes nothing"),
        ("x +", "column 4: the expression ends"),
        ("* x", "column 1: expected a value"),
        ("x ^ 2", "column 3: unexpected '^' (powers are **"),
        ("2x", "column 2: a number runs into 'x'"),
        ("x y", "column 3: expected an operator or the end, found 'y'"),
        ("foo(x)", "column 1: unknown name 'foo'"),
        ("y + 1", "column 1: unknown name 'y'"),
        ("exp", "column 4: 'exp' is a function: write exp(...)"),
        ("exp x", "column 5: 'exp' is a function"),
        ("min(x)", "column 1: min takes 2 arguments, found 1"),
        ("sin(x, 2)", "column 1: sin takes 1 argument, found 2"),
        ("where(x, 1)", "where takes 3 arguments"),
        ("x < 1 < 2", "column 7: comparisons do not chain"),
        ("1e", "column 1: '1e' is not a number"),
        ("1.2.3", "'1.2.3' is not a number"),
        ("x = 1", "column 3: unexpected '=' (comparing is ==)"),
        ("x, 2", "column 2: ',' outside a function's arguments"),
        ("x(2)", "column 2: 'x' is not a function"),
        ("x && 1", "unexpected '&'"),
        ("[x]", "column 1: unexpected '['"),
        ("np.foo(x)", "unknown name 'foo'"),
        ("x + $", "column 5: unexpected '$'"),
        ("()", "column 2: expected a value"),
        ("exp()", "column 5: expected a value"),
    ];
    for (text, want) in cases {
        let err = Expr::compile(text).expect_err(text).to_string();
        assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
        assert!(!err.contains('\n'), "{text:?}: one line");
    }
}

#[test]
fn bounds_hold_before_anything_recurses() {
    let long = "x+".repeat(600) + "x";
    assert!(matches!(Expr::compile(&long), Err(ExprError::TooLong(1201))));
    let deep = "(".repeat(200) + "x" + &")".repeat(200);
    assert!(Expr::compile(&deep).unwrap_err().to_string().contains("nested more than"));
    let minus = "-".repeat(900) + "x";
    assert!(Expr::compile(&minus).unwrap_err().to_string().contains("nested more than"));
    let power = "x**".repeat(300) + "x";
    assert!(Expr::compile(&power).unwrap_err().to_string().contains("nested more than"));
    let wide = "x+".repeat(300) + "x";
    assert!(Expr::compile(&wide).unwrap_err().to_string().contains("more than 256 operations"));
    let calls = "exp(".repeat(60) + "x" + &")".repeat(60);
    assert!(Expr::compile(&calls).unwrap_err().to_string().contains("nested more than"));
}
