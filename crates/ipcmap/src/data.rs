//! Input data: `n` uniform random f64 in [0, 1), like `numpy.random.rand(n)`.
//!
//! Generation is block-seeded: block `b` of [`BLOCK`] elements is drawn from its own generator
//! seeded by `(seed, b)`, so the data depend only on `seed` and `n`, never on how it is generated
//! or by whom.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

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
    for (b, block) in out.chunks_mut(BLOCK).enumerate() {
        if b % 16 == 0 && stop() {
            return false;
        }
        let mut rng = SmallRng::seed_from_u64(block_seed(seed, first + b as u64));
        for x in block {
            *x = rng.random::<f64>();
        }
    }
    true
}

/// Values `start..start + out.len()` of the data for `seed` into `out`, on this thread;
/// `start` must be a multiple of [`BLOCK`] (a block is drawn whole or not at all).
pub fn generate_at(seed: u64, start: usize, out: &mut [f64]) {
    debug_assert_eq!(start % BLOCK, 0, "generate_at starts on a block");
    generate_blocks(seed, (start / BLOCK) as u64, out, &|| false);
}

/// Values `start..start + out.len()` of the data for `seed` into `out`, on this thread, from
/// any `start` (a block the range begins inside is drawn whole and its tail kept).
pub fn generate_range(seed: u64, start: usize, out: &mut [f64]) {
    let offset = start % BLOCK;
    let mut at = 0;
    if offset != 0 {
        let mut block = vec![0.0; BLOCK];
        generate_blocks(seed, (start / BLOCK) as u64, &mut block, &|| false);
        at = (BLOCK - offset).min(out.len());
        out[..at].copy_from_slice(&block[offset..offset + at]);
    }
    generate_blocks(seed, ((start + at) / BLOCK) as u64, &mut out[at..], &|| false);
}

/// A new vector of `n` values for `seed`.
pub fn generate(seed: u64, n: usize) -> Vec<f64> {
    let mut out = crate::memory::zeroed(n);
    generate_into(seed, &mut out);
    out
}

fn block_seed(seed: u64, block: u64) -> u64 {
    // SplitMix64 finaliser over (seed, block): distinct, well-mixed seeds per block.
    let mut z = seed ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
