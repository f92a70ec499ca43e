//! Input data: `n` uniform random f64 in [0, 1), like `numpy.random.rand(n)`.
//!
//! Generation is block-seeded: block `b` of [`BLOCK`] values is drawn by four xoshiro256+
//! generators side by side (value `4k + j` is lane `j`'s `k`-th draw), each seeded by
//! SplitMix64 from (seed, b, lane), the top 52 bits of each draw made a double in [0, 1). So
//! the data depend only on the seed, never on how or by whom they are generated: any block is
//! drawn where it is needed (owner's workers make their own ranges, verification regenerates
//! blocks), blocks are shared among threads, and the four lanes run in one AVX2 register.

/// Elements per independently seeded block.
pub const BLOCK: usize = 1 << 16;

/// Fills `out` with the data for `seed`; `out[i]` is the same value whatever `out.len()` is.
pub fn generate_into(seed: u64, out: &mut [f64]) {
    generate_until(seed, out, || false);
}

/// [`generate_into`], asking `stop` between blocks; false if it stopped early (`out` then
/// holds only part of the data).
///
/// Blocks are independent, so they are drawn on every core this process may use (a share of
/// consecutive blocks each, the first touch of their pages included): the same values as one
/// thread draws, at several times its speed.
pub fn generate_until(seed: u64, out: &mut [f64], stop: impl Fn() -> bool + Sync) -> bool {
    let blocks = out.len().div_ceil(BLOCK);
    let threads =
        std::thread::available_parallelism().map_or(1, usize::from).min(blocks / 4).max(1);
    if threads == 1 {
        return generate_blocks(seed, 0, out, &stop);
    }
    let share = blocks.div_ceil(threads) * BLOCK;
    std::thread::scope(|scope| {
        let handles: Vec<_> = out
            .chunks_mut(share)
            .enumerate()
            .map(|(t, part)| {
                let stop = &stop;
                let first = (t * share / BLOCK) as u64;
                // A thread the limits refuse (ulimit -u) leaves its share to this one.
                std::thread::Builder::new()
                    .name(format!("generate-{t}"))
                    .spawn_scoped(scope, move || generate_blocks(seed, first, part, stop))
                    .map_err(|_| (first, t))
            })
            .collect();
        let mut done = true;
        for handle in handles {
            done &= match handle {
                Ok(h) => h.join().unwrap_or(false),
                Err(_) => false,
            };
        }
        done
    }) || (!stop() && generate_blocks(seed, 0, out, &stop))
}

/// Blocks `first..` of the data into `out` (which starts at block `first`), asking `stop`
/// every 16 blocks.
fn generate_blocks(
    seed: u64,
    first: u64,
    out: &mut [f64],
    stop: &(impl Fn() -> bool + Sync),
) -> bool {
    let key = key(seed);
    for (b, block) in out.chunks_mut(BLOCK).enumerate() {
        if b % 16 == 0 && stop() {
            return false;
        }
        fill(key, first + b as u64, block);
    }
    true
}

/// Values `start..start + out.len()` of the data for `seed` into `out`, on this thread;
/// `start` must be a multiple of [`BLOCK`] (verification's unit).
pub fn generate_at(seed: u64, start: usize, out: &mut [f64]) {
    debug_assert_eq!(start % BLOCK, 0, "generate_at starts on a block");
    generate_range(seed, start, out);
}

/// Values `start..start + out.len()` of the data for `seed` into `out`, on this thread, from
/// any `start` (a block the range begins inside is drawn up to its start, then kept).
pub fn generate_range(seed: u64, start: usize, out: &mut [f64]) {
    let key = key(seed);
    let offset = start % BLOCK;
    let mut at = 0;
    if offset != 0 {
        let mut block = vec![0.0; BLOCK];
        let block = &mut block[..(offset + out.len()).min(BLOCK)];
        fill(key, (start / BLOCK) as u64, block);
        at = block.len() - offset;
        out[..at].copy_from_slice(&block[offset..]);
    }
    for (b, part) in out[at..].chunks_mut(BLOCK).enumerate() {
        fill(key, ((start + at) / BLOCK + b) as u64, part);
    }
}

/// SplitMix64's increment, γ: the odd integer nearest 2^64 / φ.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Stafford's Mix13).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator's key for `seed`.
fn key(seed: u64) -> u64 {
    mix(seed ^ 0x6970_636d_6170_2e31)
}

/// Lanes of the block generator: value `4k + j` of a block is lane `j`'s `k`-th draw.
const LANES: usize = 4;

/// Block `block`'s values (a prefix of them, `out.len()` at most [`BLOCK`]) for `key`: four
/// xoshiro256+ generators side by side, each seeded by SplitMix64 from (key, block, lane),
/// their top 52 bits made doubles in [0, 1). The loop over the four lanes has no dependence
/// between them, so it runs in one AVX2 register (compiled for AVX2 where the CPU has it; the
/// same bits either way: integer arithmetic and one exact subtraction).
fn fill(key: u64, block: u64, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernel::has_avx2_fma() {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { fill_avx2(key, block, out) };
    }
    fill_lanes(key, block, out);
}

fn fill_lanes(key: u64, block: u64, out: &mut [f64]) {
    let mut s = seed_lanes(key, block);
    let mut chunks = out.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        let x = step(&mut s);
        for (o, x) in chunk.iter_mut().zip(x) {
            *o = unit(x);
        }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let x = step(&mut s);
        for (o, x) in rest.iter_mut().zip(x) {
            *o = unit(x);
        }
    }
}

/// The four lanes' starting states for `block`: `s[w][j]` is word `w` of lane `j`, so each
/// word is one vector of four lanes; SplitMix64 from (key, block) fills them.
fn seed_lanes(key: u64, block: u64) -> [[u64; LANES]; 4] {
    let mut s = [[0u64; LANES]; 4];
    let mut z = key ^ block.wrapping_mul(GAMMA).rotate_left(17);
    for j in 0..LANES {
        for w in &mut s {
            z = z.wrapping_add(GAMMA);
            w[j] = mix(z);
        }
    }
    s
}

/// One step of the four xoshiro256+ lanes: each lane's output.
#[inline(always)]
fn step(s: &mut [[u64; LANES]; 4]) -> [u64; LANES] {
    let mut out = [0u64; LANES];
    for j in 0..LANES {
        out[j] = s[0][j].wrapping_add(s[3][j]);
        let t = s[1][j] << 17;
        s[2][j] ^= s[0][j];
        s[3][j] ^= s[1][j];
        s[1][j] ^= s[2][j];
        s[0][j] ^= s[3][j];
        s[2][j] ^= t;
        s[3][j] = s[3][j].rotate_left(45);
    }
    out
}

/// A draw's top 52 bits as a double in [1, 2), less 1: uniform on the multiples of 2^-52 in
/// [0, 1) (xoshiro256+'s weak low bits are not used).
#[inline(always)]
fn unit(x: u64) -> f64 {
    f64::from_bits(0x3FF0_0000_0000_0000 | (x >> 12)) - 1.0
}

/// [`fill_lanes`] in AVX2 intrinsics: the four lanes' state words in four registers, four
/// values a step (the compiler alone turns the lanes' rotation into scalar code).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_avx2(key: u64, block: u64, out: &mut [f64]) {
    use std::arch::x86_64::*;
    let seeds = seed_lanes(key, block);
    let load = |w: usize| {
        let l = seeds[w];
        _mm256_set_epi64x(l[3] as i64, l[2] as i64, l[1] as i64, l[0] as i64)
    };
    let (mut s0, mut s1, mut s2, mut s3) = (load(0), load(1), load(2), load(3));
    let one = _mm256_set1_epi64x(0x3FF0_0000_0000_0000);
    let ones = _mm256_set1_pd(1.0);
    let mut chunks = out.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        let x = _mm256_add_epi64(s0, s3);
        let t = _mm256_slli_epi64::<17>(s1);
        s2 = _mm256_xor_si256(s2, s0);
        s3 = _mm256_xor_si256(s3, s1);
        s1 = _mm256_xor_si256(s1, s2);
        s0 = _mm256_xor_si256(s0, s3);
        s2 = _mm256_xor_si256(s2, t);
        s3 = _mm256_or_si256(_mm256_slli_epi64::<45>(s3), _mm256_srli_epi64::<19>(s3));
        let bits = _mm256_or_si256(_mm256_srli_epi64::<12>(x), one);
        let v = _mm256_sub_pd(_mm256_castsi256_pd(bits), ones);
        // SAFETY: the chunk holds exactly four f64.
        unsafe { _mm256_storeu_pd(chunk.as_mut_ptr(), v) };
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut lanes = [[0u64; LANES]; 4];
        for (w, s) in [s0, s1, s2, s3].into_iter().enumerate() {
            // SAFETY: a 256-bit register stored to four u64.
            unsafe { _mm256_storeu_si256(lanes[w].as_mut_ptr().cast(), s) };
        }
        let x = step(&mut lanes);
        for (o, x) in rest.iter_mut().zip(x) {
            *o = unit(x);
        }
    }
}

/// A new vector of `n` values for `seed`.
pub fn generate(seed: u64, n: usize) -> Vec<f64> {
    let mut out = crate::memory::zeroed(n);
    generate_into(seed, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data_and_prefix_stable() {
        let a = generate(7, 200_000);
        let b = generate(7, 100_003);
        assert_eq!(a[..100_003], b[..]);
        assert!(a.iter().all(|x| (0.0..1.0).contains(x)));
    }

    #[test]
    fn generating_on_many_threads_gives_the_values_one_thread_draws() {
        let n = 40 * BLOCK + 123;
        let mut one = vec![0.0; n];
        assert!(generate_blocks(9, 0, &mut one, &|| false));
        let mut many = vec![0.0; n];
        assert!(generate_until(9, &mut many, || false));
        assert!(one.iter().zip(&many).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(!generate_until(9, &mut many, || true), "a stop is honoured");
    }

    #[test]
    fn the_vector_loop_draws_the_bits_of_the_baseline_loop() {
        let mut a = vec![0.0; 10_007];
        let mut b = vec![0.0; 10_007];
        fill(key(3), 12_345, &mut a);
        fill_lanes(key(3), 12_345, &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn different_seeds_differ() {
        assert_ne!(generate(1, 16), generate(2, 16));
    }

    #[test]
    fn any_range_is_the_whole_datas_range() {
        let n = 5 * BLOCK + 77;
        let all = generate(11, n);
        for (start, len) in [
            (0, n),
            (1, 10),
            (BLOCK - 3, 7),
            (BLOCK, BLOCK),
            (3 * BLOCK + 5, 2 * BLOCK + 72),
            (n - 1, 1),
        ] {
            let mut part = vec![0.0; len];
            generate_range(11, start, &mut part);
            assert_eq!(part[..], all[start..start + len], "{start}+{len}");
        }
        let mut aligned = vec![0.0; BLOCK];
        generate_at(11, 2 * BLOCK, &mut aligned);
        assert_eq!(aligned[..], all[2 * BLOCK..3 * BLOCK]);
    }

    /// Uniform in [0, 1) like `numpy.random.rand`: 100 equal bins of 2^20 values pass a
    /// chi-square test (99 degrees of freedom: above 150 happens by chance about once in
    /// 6,000 seeds; a generator off by a few percent in a bin fails it), and the mean and
    /// variance are 1/2 and 1/12.
    #[test]
    fn values_are_uniform_in_zero_to_one() {
        let xs = generate(1, 1 << 20);
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mut bins = [0u64; 100];
        for &x in &xs {
            bins[(x * 100.0) as usize] += 1;
        }
        let expected = xs.len() as f64 / 100.0;
        let chi2: f64 = bins.iter().map(|&b| (b as f64 - expected).powi(2) / expected).sum();
        assert!(chi2 < 150.0, "chi-square {chi2}");
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.002, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.001, "variance {var}");
        // Neighbours are not correlated (a counter fed in raw would be).
        let lag: f64 = xs.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum::<f64>()
            / (xs.len() - 1) as f64
            / var;
        assert!(lag.abs() < 0.01, "lag-1 correlation {lag}");
    }
}
