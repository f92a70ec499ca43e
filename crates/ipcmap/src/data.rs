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
pub fn generate_until(seed: u64, out: &mut [f64], stop: impl Fn() -> bool) -> bool {
    for (b, block) in out.chunks_mut(BLOCK).enumerate() {
        if b % 16 == 0 && stop() {
            return false;
        }
        let mut rng = SmallRng::seed_from_u64(block_seed(seed, b as u64));
        for x in block {
            *x = rng.random::<f64>();
        }
    }
    true
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
    fn different_seeds_differ() {
        assert_ne!(generate(1, 16), generate(2, 16));
    }
}
