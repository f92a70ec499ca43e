//! `exp`, vectorised: the same FMA sequence on 4 lanes (AVX2 + FMA) or on one (any CPU), so
//! every path gives the same bits.
//!
//! For |x| <= 708: x = k·ln2 + r with k = round(x·log2 e) and |r| <= ln2/2 (Cody-Waite, two
//! parts of ln2), e^r by its Taylor polynomial to degree 13 in Horner form with fused
//! multiply-adds (truncation below 1e-17), and 2^k added into the exponent bits. Elsewhere
//! (overflow, underflow, NaN, infinities) the standard library's `f64::exp`. Accuracy: within
//! 1 ulp of `f64::exp` (tested in `kernel::tests`).

const LOG2E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split so that k·LN2_HI is exact for |k| < 2^21 (fdlibm's constants).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000); // 6.93147180369123816490e-01
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76); // 1.90821492927058770002e-10
/// Inputs up to this magnitude take the polynomial path (2^k stays a normal number).
const LIMIT: f64 = 708.0;
/// 1/13!, 1/12!, ..., 1/2!: the Taylor coefficients of e^r above the linear term.
const C: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    1.0 / 2.0,
];

one_value_kernel! {
    /// e^x for one value; the reference every vector lane reproduces bit for bit.
    pub fn exp(exp_one);
}

#[inline(always)]
fn exp_one(x: f64) -> f64 {
    if x.abs() > LIMIT || x.is_nan() {
        return x.exp();
    }
    let k = (x * LOG2E).round_ties_even();
    let r = (-k).mul_add(LN2_HI, x);
    let r = (-k).mul_add(LN2_LO, r);
    let mut p = C[0];
    for c in &C[1..] {
        p = p.mul_add(r, *c);
    }
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    f64::from_bits(p.to_bits().wrapping_add(((k as i64) << 52) as u64))
}

slice_kernel! {
    /// e^x over a slice, 4 lanes at a time where the CPU allows.
    pub fn exp_slice(exp_one);
    // |x| <= LIMIT, false for NaN: those lanes need the scalar path.
    inside: |x| {
        _mm256_cmp_pd::<_CMP_LE_OQ>(_mm256_andnot_pd(_mm256_set1_pd(-0.0), x), _mm256_set1_pd(LIMIT))
    },
    vector: |x| {
        let k = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_pd(x, _mm256_set1_pd(LOG2E)),
        );
        let r = _mm256_fnmadd_pd(k, _mm256_set1_pd(LN2_HI), x);
        let r = _mm256_fnmadd_pd(k, _mm256_set1_pd(LN2_LO), r);
        let mut p = _mm256_set1_pd(C[0]);
        for c in &C[1..] {
            p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(*c));
        }
        let one = _mm256_set1_pd(1.0);
        p = _mm256_fmadd_pd(p, r, one);
        p = _mm256_fmadd_pd(p, r, one);
        let k64 = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(k));
        let scaled = _mm256_add_epi64(_mm256_castpd_si256(p), _mm256_slli_epi64::<52>(k64));
        _mm256_castsi256_pd(scaled)
    },
}
