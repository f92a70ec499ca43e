//! Verification: a parallel result must equal the sequential result bit for bit. It is
//! checked block by block against the sequential kernel applied to the run's own input (still
//! there once the run ends), on every CPU, outside the timed region: no reference copy of the
//! output is kept, so a run needs its input and output and nothing more (16 bytes a value).

use crate::error::RunError;
use crate::kernel::{self, Function};

/// Values the checker computes and compares at a time (512 KiB: it stays in cache).
const BLOCK: usize = 1 << 16;

/// How a result is verified, as reports say it.
pub const METHOD: &str = "block by block against the sequential kernel applied to the input";

/// How a result computed in place, or from an input kept from an earlier run, is verified, as
/// reports say it.
pub const METHOD_IN_PLACE: &str =
    "block by block against the sequential kernel applied to the input regenerated from its seed";

/// Where the checker reads the input: the run's own, or regenerated from the seed (a run in
/// place has overwritten its own).
#[derive(Clone, Copy)]
enum Source<'a> {
    Kept(&'a [f64]),
    Seed(u64),
}

// The checker's blocks are the generator's, so each is regenerated whole.
const _: () = assert!(BLOCK == crate::data::BLOCK);

/// Errors naming the first index where `got` differs from `function` applied `work` times to
/// `input` (compared as bits), computed in blocks of 64K values on every CPU.
pub fn check_against_kernel(
    mode: &str,
    function: Function,
    work: u32,
    input: &[f64],
    got: &[f64],
) -> Result<(), RunError> {
    if input.len() != got.len() {
        return Err(RunError::WrongLength {
            mode: mode.to_string(),
            got: got.len(),
            expected: input.len(),
        });
    }
    check_blocks(mode, function, work, Source::Kept(input), got)
}

/// [`check_against_kernel`] for a result that overwrote its input (`--in-place`): each block
/// of the input is regenerated from `seed` ([`crate::data`] draws every block on its own).
pub fn check_against_seed(
    mode: &str,
    function: Function,
    work: u32,
    seed: u64,
    got: &[f64],
) -> Result<(), RunError> {
    check_blocks(mode, function, work, Source::Seed(seed), got)
}

fn check_blocks(
    mode: &str,
    function: Function,
    work: u32,
    input: Source<'_>,
    got: &[f64],
) -> Result<(), RunError> {
    if got.is_empty() {
        return Ok(());
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(got.len().div_ceil(BLOCK))
        .max(1);
    let share = got.len().div_ceil(threads).next_multiple_of(BLOCK);
    // The first differing index in each thread's share, in order; a share stops at its first.
    let first = std::thread::scope(|scope| {
        let handles: Vec<_> = got
            .chunks(share)
            .enumerate()
            .map(|(t, ys)| {
                scope.spawn(move || {
                    let mut expected = vec![0.0; BLOCK.min(ys.len())];
                    let mut scratch = Vec::new();
                    for (b, y) in ys.chunks(BLOCK).enumerate() {
                        let start = t * share + b * BLOCK;
                        // Block `start` of the input: kept, or regenerated from the seed.
                        let x: &[f64] = match input {
                            Source::Kept(xs) => &xs[start..start + y.len()],
                            Source::Seed(seed) => {
                                scratch.resize(y.len(), 0.0);
                                crate::data::generate_at(seed, start, &mut scratch);
                                &scratch
                            }
                        };
                        let e = &mut expected[..y.len()];
                        kernel::apply_work(function, work, x, e);
                        if let Some(i) = first_difference(e, y) {
                            return Some((start + i, x[i]));
                        }
                    }
                    None
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let first =
        first.into_iter().collect::<Result<Vec<_>, _>>().map_err(|_| RunError::Channel {
            what: "verification".into(),
            message: "a checking thread panicked".into(),
        })?;
    match first.into_iter().flatten().next() {
        None => Ok(()),
        Some((index, x)) => {
            let expected = kernel::apply_one_work(function, work, x);
            Err(mismatch(mode, index, got[index], expected))
        }
    }
}

/// How a result its workers kept (owner) is verified, as reports say it.
pub const METHOD_CHECKSUM: &str = "each worker's checksum of its result's bits against the \
    sequential kernel applied to its range regenerated from the seed (the coordinator holds \
    neither input nor output)";

/// The checksum a result starts from.
pub const CHECKSUM_START: u64 = 0x6970_636d_6170_0001;

/// Folds `values`' bits into checksum `h` (start from [`CHECKSUM_START`]): every bit of every
/// value and its place count (a rotate, an xor and an odd multiply per value, as FxHash
/// does), so one flipped bit or two swapped values give another checksum. Folding a range in
/// pieces gives the checksum of the whole.
pub fn checksum(mut h: u64, values: &[f64]) -> u64 {
    for v in values {
        h = (h.rotate_left(5) ^ v.to_bits()).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h
}

/// A worker's result over `start..start + len`, kept in its memory, as its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// First value of the range.
    pub start: usize,
    /// Values in the range.
    pub len: usize,
    /// [`checksum`] of the result's values, from [`CHECKSUM_START`].
    pub checksum: u64,
}

/// Errors unless `results` cover `0..n` once and each checksum is that of `function` applied
/// `work` times to its range of the input for `seed`, regenerated and computed here block by
/// block (64K values at a time, ranges spread over every CPU): the coordinator never holds the
/// input or the output.
pub fn check_checksums(
    mode: &str,
    function: Function,
    work: u32,
    seed: u64,
    n: usize,
    results: &[Checksum],
) -> Result<(), RunError> {
    let failed = |start: usize, end: usize, problem: String| RunError::Checksum {
        mode: mode.to_string(),
        start,
        end,
        problem,
    };
    let mut sorted = results.to_vec();
    sorted.sort_by_key(|c| c.start);
    let mut next = 0;
    for c in &sorted {
        if c.start != next {
            return Err(failed(next, c.start, "no result covers these values once".into()));
        }
        next = c.start + c.len;
    }
    if next != n {
        return Err(failed(next, n, "no result covers these values".into()));
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let turn = std::sync::atomic::AtomicUsize::new(0);
    let wrong = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(sorted.len()).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let (mut input, mut output) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
                    loop {
                        let i = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let c = sorted.get(i)?;
                        let mut h = CHECKSUM_START;
                        let mut at = c.start;
                        while at < c.start + c.len {
                            let len = BLOCK.min(c.start + c.len - at);
                            crate::data::generate_range(seed, at, &mut input[..len]);
                            kernel::apply_work(function, work, &input[..len], &mut output[..len]);
                            h = checksum(h, &output[..len]);
                            at += len;
                        }
                        if h != c.checksum {
                            return Some(*c);
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let wrong =
        wrong.into_iter().collect::<Result<Vec<_>, _>>().map_err(|_| RunError::Channel {
            what: "verification".into(),
            message: "a checking thread panicked".into(),
        })?;
    match wrong.into_iter().flatten().min_by_key(|c| c.start) {
        None => Ok(()),
        Some(c) => Err(failed(
            c.start,
            c.start + c.len,
            format!("its worker's checksum {:#018x} is not the sequential kernel's", c.checksum),
        )),
    }
}

fn first_difference(expected: &[f64], got: &[f64]) -> Option<usize> {
    expected.iter().zip(got).position(|(a, b)| a.to_bits() != b.to_bits())
}

fn mismatch(mode: &str, index: usize, got: f64, expected: f64) -> RunError {
    RunError::Mismatch {
        mode: mode.to_string(),
        index,
        got,
        got_bits: got.to_bits(),
        expected,
        expected_bits: expected.to_bits(),
    }
}

/// Errors naming the first index where `got` differs from `expected` (compared as bits, so
/// NaNs compare equal to themselves and -0.0 differs from 0.0).
pub fn check(mode: &str, expected: &[f64], got: &[f64]) -> Result<(), RunError> {
    if expected.len() != got.len() {
        return Err(RunError::WrongLength {
            mode: mode.to_string(),
            got: got.len(),
            expected: expected.len(),
        });
    }
    match first_difference(expected, got) {
        None => Ok(()),
        Some(index) => Err(mismatch(mode, index, got[index], expected[index])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_differing_index() {
        let err = check("split", &[1.0, 2.0, 3.0], &[1.0, 2.5, 3.5]).unwrap_err();
        assert!(err.to_string().contains("index 1"), "{err}");
        assert!(check("split", &[0.0], &[-0.0]).is_err());
        assert!(check("split", &[f64::NAN], &[f64::NAN]).is_ok());
        assert!(check("split", &[1.0], &[]).is_err());
    }

    #[test]
    fn the_block_check_finds_the_first_wrong_bit_in_any_block() {
        let input = crate::data::generate(3, 3 * BLOCK + 17);
        let mut got = vec![0.0; input.len()];
        kernel::apply_work(Function::Exp, 2, &input, &mut got);
        check_against_kernel("split", Function::Exp, 2, &input, &got).unwrap();
        for index in [0, BLOCK - 1, 2 * BLOCK + 5, input.len() - 1] {
            let mut wrong = got.clone();
            wrong[index] = f64::from_bits(wrong[index].to_bits() ^ 1);
            wrong[input.len() - 1] = f64::from_bits(got[input.len() - 1].to_bits() ^ 1);
            let err = check_against_kernel("split", Function::Exp, 2, &input, &wrong).unwrap_err();
            assert!(err.to_string().contains(&format!("index {index}")), "{err}");
        }
        assert!(check_against_kernel("split", Function::Sin, 2, &input, &got).is_err(), "sin");
        assert!(check_against_kernel("split", Function::Exp, 2, &input, &got[1..]).is_err());
        // In place: the input regenerated from its seed, the same verdicts.
        check_against_seed("shm", Function::Exp, 2, 3, &got).unwrap();
        let mut wrong = got.clone();
        wrong[2 * BLOCK + 5] = f64::from_bits(wrong[2 * BLOCK + 5].to_bits() ^ 1);
        let err = check_against_seed("shm", Function::Exp, 2, 3, &wrong).unwrap_err();
        assert!(err.to_string().contains(&format!("index {}", 2 * BLOCK + 5)), "{err}");
        assert!(check_against_seed("shm", Function::Exp, 2, 4, &got).is_err(), "another seed");
    }

    #[test]
    fn kept_results_are_checked_by_checksum_and_must_cover_the_input_once() {
        let n = 2 * BLOCK + 300;
        let input = crate::data::generate(8, n);
        let mut output = vec![0.0; n];
        kernel::apply_work(Function::Ln, 1, &input, &mut output);
        let sum = |r: std::ops::Range<usize>| Checksum {
            start: r.start,
            len: r.len(),
            checksum: checksum(CHECKSUM_START, &output[r]),
        };
        let good = [sum(BLOCK..n), sum(0..BLOCK)];
        check_checksums("owner", Function::Ln, 1, 8, n, &good).unwrap();
        // Folding in pieces is folding the whole.
        let whole = checksum(checksum(CHECKSUM_START, &output[..7]), &output[7..]);
        assert_eq!(whole, checksum(CHECKSUM_START, &output));
        let err = check_checksums("owner", Function::Exp, 1, 8, n, &good).unwrap_err();
        assert!(err.to_string().contains("owner result of values 0..65536"), "{err}");
        let mut flipped = output.clone();
        flipped[BLOCK + 9] = f64::from_bits(flipped[BLOCK + 9].to_bits() ^ 1);
        let bad = Checksum { checksum: checksum(CHECKSUM_START, &flipped[BLOCK..]), ..good[0] };
        let err = check_checksums("owner", Function::Ln, 1, 8, n, &[bad, good[1]]).unwrap_err();
        assert!(err.to_string().contains(&format!("values {BLOCK}..{n}")), "{err}");
        let gap = check_checksums("owner", Function::Ln, 1, 8, n, &good[..1]).unwrap_err();
        assert!(gap.to_string().contains("no result covers"), "{gap}");
        let twice = [good[0], good[1], good[1]];
        assert!(check_checksums("owner", Function::Ln, 1, 8, n, &twice).is_err());
    }
}
