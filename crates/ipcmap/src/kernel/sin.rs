//! `sin`, vectorised: the same FMA sequence on 4 lanes (AVX2 + FMA) or on one (any CPU), so
//! every path gives the same bits.
//!
//! For 0 < |x| <= 512: x = k·π/2 + r with k = round(x·2/π) and |r| <= π/4, reduced with
//! fdlibm's π/2 in four parts (k·part exact for |k| < 2^20, about 150 bits of π/2 in all);
//! then sin r or cos r by its Taylor polynomial (to degree 17 and 16) in Horner form with fused
//! multiply-adds, picked and signed by the quadrant k mod 4. Elsewhere (large arguments, NaN,
//! infinities) the standard library's `f64::sin`. Accuracy: within 1 ulp of `f64::sin`
//! (tested in `kernel::tests`).

const FRAC_2_PI: f64 = std::f64::consts::FRAC_2_PI;
/// π/2 in parts of 33 bits and a tail (fdlibm's pio2_1, pio2_2, pio2_3, pio2_3t).
const PIO2_1: f64 = f64::from_bits(0x3FF9_21FB_5440_0000);
const PIO2_2: f64 = f64::from_bits(0x3DD0_B461_1A60_0000);
const PIO2_3: f64 = f64::from_bits(0x3BA3_198A_2E00_0000);
const PIO2_3T: f64 = f64::from_bits(0x397B_839A_2520_49C1);
/// Inputs up to this magnitude take the polynomial path. Beyond about 1000 the rounding of the
/// reduced argument (one double, not fdlibm's two) can reach 2 ulps; the data is in [0, 1).
const LIMIT: f64 = 512.0;
/// sin r = r + r·z·S(z), z = r²: S's coefficients, highest first (-1)^i / (2i+1)!, i = 8..1.
const S: [f64; 8] = [
    1.0 / 355_687_428_096_000.0,
    -1.0 / 1_307_674_368_000.0,
    1.0 / 6_227_020_800.0,
    -1.0 / 39_916_800.0,
    1.0 / 362_880.0,
    -1.0 / 5_040.0,
    1.0 / 120.0,
    -1.0 / 6.0,
];
/// cos r = 1 + z·C(z): C's coefficients, highest first (-1)^i / (2i)!, i = 8..1.
const C: [f64; 8] = [
    1.0 / 20_922_789_888_000.0,
    -1.0 / 87_178_291_200.0,
    1.0 / 479_001_600.0,
    -1.0 / 3_628_800.0,
    1.0 / 40_320.0,
    -1.0 / 720.0,
    1.0 / 24.0,
    -1.0 / 2.0,
];

one_value_kernel! {
    /// sin x for one value; the reference every vector lane reproduces bit for bit.
    pub fn sin(sin_one);
}

#[inline(always)]
fn sin_one(x: f64) -> f64 {
    // Zero keeps its sign (reduction would give +0 for -0).
    if x.abs() > LIMIT || x.is_nan() || x == 0.0 {
        return x.sin();
    }
    let k = (x * FRAC_2_PI).round_ties_even();
    let mut r = (-k).mul_add(PIO2_1, x);
    r = (-k).mul_add(PIO2_2, r);
    r = (-k).mul_add(PIO2_3, r);
    r = (-k).mul_add(PIO2_3T, r);
    let z = r * r;
    let (mut s, mut c) = (S[0], C[0]);
    for i in 1..S.len() {
        s = s.mul_add(z, S[i]);
        c = c.mul_add(z, C[i]);
    }
    let sin_r = (r * z).mul_add(s, r);
    let cos_r = z.mul_add(c, 1.0);
    let q = k as i64;
    let v = if q & 1 == 0 { sin_r } else { cos_r };
    if q & 2 == 0 {
        v
    } else {
        -v
    }
}

slice_kernel! {
    /// sin x over a slice, 4 lanes at a time where the CPU allows.
    pub fn sin_slice(sin_one);
    inside: |x| {
        // 0 < |x| <= LIMIT, false for NaN: other lanes need the scalar path.
        let magnitude = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
        _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_LE_OQ>(magnitude, _mm256_set1_pd(LIMIT)),
            _mm256_cmp_pd::<_CMP_GT_OQ>(magnitude, _mm256_setzero_pd()),
        )
    },
    vector: |x| {
        let k = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_pd(x, _mm256_set1_pd(FRAC_2_PI)),
        );
        let mut r = _mm256_fnmadd_pd(k, _mm256_set1_pd(PIO2_1), x);
        r = _mm256_fnmadd_pd(k, _mm256_set1_pd(PIO2_2), r);
        r = _mm256_fnmadd_pd(k, _mm256_set1_pd(PIO2_3), r);
        r = _mm256_fnmadd_pd(k, _mm256_set1_pd(PIO2_3T), r);
        let z = _mm256_mul_pd(r, r);
        let mut s = _mm256_set1_pd(S[0]);
        let mut c = _mm256_set1_pd(C[0]);
        for j in 1..S.len() {
            s = _mm256_fmadd_pd(s, z, _mm256_set1_pd(S[j]));
            c = _mm256_fmadd_pd(c, z, _mm256_set1_pd(C[j]));
        }
        let sin_r = _mm256_fmadd_pd(_mm256_mul_pd(r, z), s, r);
        let cos_r = _mm256_fmadd_pd(z, c, _mm256_set1_pd(1.0));
        // The quadrant's two low bits: bit 0 picks cos, bit 1 flips the sign.
        let q = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(k));
        let odd = _mm256_cmpeq_epi64(
            _mm256_and_si256(q, _mm256_set1_epi64x(1)),
            _mm256_set1_epi64x(1),
        );
        let v = _mm256_blendv_pd(sin_r, cos_r, _mm256_castsi256_pd(odd));
        let flip = _mm256_slli_epi64::<62>(_mm256_and_si256(q, _mm256_set1_epi64x(2)));
        _mm256_xor_pd(v, _mm256_castsi256_pd(flip))
    },
}
