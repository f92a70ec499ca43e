//! `ln`, vectorised: fdlibm's `__ieee754_log` (error below 1 ulp) as one sequence of plain
//! multiplies, adds and one divide, run on 4 lanes (AVX2) or on one, so every path gives the
//! same bits.
//!
//! x = 2^k · m with m in [√2/2, √2), f = m − 1, s = f / (2 + f), and
//! ln x = k·ln2 + f − (f²/2 − s·(f²/2 + R(s²))) with R fdlibm's degree-7 polynomial. Zero,
//! negatives, subnormals, infinities and NaN take the standard library's `f64::ln`.

const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
const LG: [f64; 7] = [
    f64::from_bits(0x3FE5_5555_5555_5593), // 6.666666666666735130e-01
    f64::from_bits(0x3FD9_9999_9997_FA04), // 3.999999999940941908e-01
    f64::from_bits(0x3FD2_4924_9422_9359), // 2.857142874366239149e-01
    f64::from_bits(0x3FCC_71C5_1D8E_78AF), // 2.222219843214978396e-01
    f64::from_bits(0x3FC7_4664_96CB_03DE), // 1.818357216161805012e-01
    f64::from_bits(0x3FC3_9A09_D078_C69F), // 1.531383769920937332e-01
    f64::from_bits(0x3FC2_F112_DF3E_5244), // 1.479819860511658591e-01
];
/// Mantissas above √2 (high word 0x6A09E) are halved, so m stays in [√2/2, √2).
const SQRT2_MANTISSA: u64 = 0x6_A09E_667F_3BCD;
const MANTISSA: u64 = (1 << 52) - 1;

/// ln x for one value; the reference every vector lane reproduces bit for bit.
#[inline]
pub fn ln(x: f64) -> f64 {
    if !(f64::MIN_POSITIVE..f64::INFINITY).contains(&x) {
        return x.ln();
    }
    let bits = x.to_bits();
    let mantissa = bits & MANTISSA;
    let big = u64::from(mantissa > SQRT2_MANTISSA);
    let k = ((bits >> 52) as i64 - 1023 + big as i64) as f64;
    let m = f64::from_bits(mantissa | ((1023 - big) << 52));
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

slice_kernel! {
    /// ln x over a slice, 4 lanes at a time where the CPU allows.
    pub fn ln_slice(ln);
    inside: |x| {
        // Normal, positive and finite in every lane (false for NaN), else the scalar path.
        _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_GE_OQ>(x, _mm256_set1_pd(f64::MIN_POSITIVE)),
            _mm256_cmp_pd::<_CMP_LT_OQ>(x, _mm256_set1_pd(f64::INFINITY)),
        )
    },
    vector: |x| {
        let c = |v: f64| _mm256_set1_pd(v);
        let bits = _mm256_castpd_si256(x);
        let mantissa = _mm256_and_si256(bits, _mm256_set1_epi64x(MANTISSA as i64));
        // 1 where the mantissa is above √2 (signed compare is fine: both sides < 2^52).
        let big = _mm256_srli_epi64::<63>(_mm256_cmpgt_epi64(
            mantissa,
            _mm256_set1_epi64x(SQRT2_MANTISSA as i64),
        ));
        let exponent = _mm256_sub_epi64(
            _mm256_add_epi64(_mm256_srli_epi64::<52>(bits), big),
            _mm256_set1_epi64x(1023),
        );
        let k = avx2::int64_to_f64(exponent);
        let m_exp =
            _mm256_slli_epi64::<52>(_mm256_sub_epi64(_mm256_set1_epi64x(1023), big));
        let m = _mm256_castsi256_pd(_mm256_or_si256(mantissa, m_exp));
        let f = _mm256_sub_pd(m, c(1.0));
        let s = _mm256_div_pd(f, _mm256_add_pd(c(2.0), f));
        let z = _mm256_mul_pd(s, s);
        let w = _mm256_mul_pd(z, z);
        let t1 = _mm256_mul_pd(
            w,
            _mm256_add_pd(
                c(LG[1]),
                _mm256_mul_pd(w, _mm256_add_pd(c(LG[3]), _mm256_mul_pd(w, c(LG[5])))),
            ),
        );
        let t2 = _mm256_mul_pd(
            z,
            _mm256_add_pd(
                c(LG[0]),
                _mm256_mul_pd(
                    w,
                    _mm256_add_pd(
                        c(LG[2]),
                        _mm256_mul_pd(
                            w,
                            _mm256_add_pd(c(LG[4]), _mm256_mul_pd(w, c(LG[6]))),
                        ),
                    ),
                ),
            ),
        );
        let r = _mm256_add_pd(t2, t1);
        let hfsq = _mm256_mul_pd(_mm256_mul_pd(c(0.5), f), f);
        let inner = _mm256_add_pd(
            _mm256_mul_pd(s, _mm256_add_pd(hfsq, r)),
            _mm256_mul_pd(k, c(LN2_LO)),
        );
        _mm256_sub_pd(
            _mm256_mul_pd(k, c(LN2_HI)),
            _mm256_sub_pd(_mm256_sub_pd(hfsq, inner), f),
        )
    },
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Exact for |v| < 2^51: 1.5·2^52 + v stays in one binade (ulp 1), then subtract.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn int64_to_f64(v: __m256i) -> __m256d {
        let magic = _mm256_set1_pd(6_755_399_441_055_744.0); // 2^52 + 2^51
        let biased = _mm256_add_epi64(v, _mm256_castpd_si256(magic));
        _mm256_sub_pd(_mm256_castsi256_pd(biased), magic)
    }
}
