//! Big f64 buffers: zeroed, and advised for transparent huge pages, so that first touching
//! 80 MB costs 40 faults of 2 MiB instead of 20,000 of 4 KiB.
//!
//! A zeroed vector this large comes straight from a fresh anonymous mapping that nobody has
//! touched yet, so advising it before the first write decides the page size it gets.

use std::ptr::NonNull;

/// Huge pages are 2 MiB on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// A vector of `n` zeros whose memory is advised for huge pages (when it spans at least one).
pub fn zeroed(n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n];
    advise_huge_pages(&mut v);
    v
}

/// Asks the kernel to back the whole 2 MiB pages inside `buf` with huge pages. Best effort:
/// a kernel without transparent huge pages just says no.
pub fn advise_huge_pages(buf: &mut [f64]) {
    let start = buf.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(buf);
    let (aligned_start, aligned_end) =
        (start.next_multiple_of(HUGE_PAGE), end / HUGE_PAGE * HUGE_PAGE);
    if aligned_end <= aligned_start {
        return;
    }
    let Some(addr) = NonNull::new(aligned_start as *mut std::ffi::c_void) else {
        return;
    };
    // SAFETY: the range lies inside `buf`, which we borrow mutably; MADV_HUGEPAGE changes how
    // pages are backed, never their contents.
    let _ = unsafe {
        nix::sys::mman::madvise(
            addr,
            aligned_end - aligned_start,
            nix::sys::mman::MmapAdvise::MADV_HUGEPAGE,
        )
    };
}

/// Buffers kept from one run to the next of a session (`--reuse-buffers`), so that steady
/// state can be measured without allocating and faulting in fresh memory every run. Disabled,
/// it allocates every time and keeps nothing. With `keep_input` (`--keep-input`) a buffer
/// given back holding a seed's generated input says so, and the next run asking for that
/// input gets it as it is, ungenerated: numpy's warm figure, where the data exists.
#[derive(Default)]
pub struct BufferPool {
    enabled: bool,
    keep_input: bool,
    /// Each kept vector, with the seed whose input it holds (`None`: anything).
    vecs: Vec<(Vec<f64>, Option<u64>)>,
    /// The same for shared regions.
    regions: Vec<(crate::shared::SharedRegion, Option<u64>)>,
    reused: bool,
}

/// Which kept buffer of length `n` to hand out: one holding `seed`'s input when asked for one
/// (`Some`), else a free one, else any; its position and whether it holds that input.
fn pick<T>(
    kept: &[(T, Option<u64>)],
    len: impl Fn(&T) -> usize,
    n: usize,
    seed: Option<u64>,
) -> Option<(usize, bool)> {
    let fits = |i: &usize| len(&kept[*i].0) == n;
    let all = || (0..kept.len()).filter(fits);
    if let Some(i) = seed.and_then(|s| all().find(|&i| kept[i].1 == Some(s))) {
        return Some((i, true));
    }
    all().find(|&i| kept[i].1.is_none()).or_else(|| all().next()).map(|i| (i, false))
}

impl BufferPool {
    /// A pool that keeps buffers between runs when `enabled`, and generated input with them
    /// when `keep_input` too.
    pub fn new(enabled: bool, keep_input: bool) -> BufferPool {
        BufferPool { enabled, keep_input: enabled && keep_input, ..BufferPool::default() }
    }

    /// A vector of `n` values: a kept one (its old contents left in place) or a new zeroed one;
    /// with `input: Some(seed)`, true when it already holds that seed's generated input.
    pub fn vec(&mut self, n: usize, input: Option<u64>) -> (Vec<f64>, bool) {
        match pick(&self.vecs, Vec::len, n, input.filter(|_| self.keep_input)) {
            Some((i, holds)) => {
                self.reused = true;
                (self.vecs.swap_remove(i).0, holds)
            }
            None => (zeroed(n), false),
        }
    }

    /// Gives a vector back for the next run (kept only when enabled), holding `input`'s
    /// generated values where it does.
    pub fn give_vec(&mut self, v: Vec<f64>, input: Option<u64>) {
        if self.enabled && self.vecs.len() < 4 {
            self.vecs.push((v, input.filter(|_| self.keep_input)));
        }
    }

    /// A shared region of `n` values: a kept one or a new one; with `input: Some(seed)`, true
    /// when it already holds that seed's generated input.
    pub fn region(
        &mut self,
        name: &str,
        n: usize,
        populate: bool,
        input: Option<u64>,
    ) -> Result<(crate::shared::SharedRegion, bool), crate::shared::SharedError> {
        let len = |r: &crate::shared::SharedRegion| r.as_f64s().len();
        match pick(&self.regions, len, n, input.filter(|_| self.keep_input)) {
            Some((i, holds)) => {
                self.reused = true;
                Ok((self.regions.swap_remove(i).0, holds))
            }
            None => Ok((crate::shared::SharedRegion::create(name, n, populate)?, false)),
        }
    }

    /// Gives a region back for the next run (kept only when enabled), holding `input`'s
    /// generated values where it does.
    pub fn give_region(&mut self, r: crate::shared::SharedRegion, input: Option<u64>) {
        if self.enabled && self.regions.len() < 4 {
            self.regions.push((r, input.filter(|_| self.keep_input)));
        }
    }

    /// Whether a kept buffer was handed out since the last call.
    pub fn take_reused(&mut self) -> bool {
        std::mem::take(&mut self.reused)
    }
}

/// Resets this process's peak resident set size to its current size (Linux: `clear_refs` 5),
/// so that [`peak_rss_bytes`] then measures what follows. Best effort.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident set size (`VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_sees_a_big_buffer() {
        reset_peak_rss();
        let before = peak_rss_bytes().unwrap();
        let mut v = zeroed(8 << 20); // 64 MiB
        v.iter_mut().step_by(512).for_each(|x| *x = 1.0);
        let after = peak_rss_bytes().unwrap();
        assert!(after >= before + (48 << 20), "{before} -> {after}");
        drop(v);
    }

    #[test]
    fn a_pool_keeps_buffers_only_when_enabled() {
        let mut off = BufferPool::new(false, false);
        let (v, _) = off.vec(10, None);
        off.give_vec(v, None);
        let _ = off.vec(10, None);
        assert!(!off.take_reused());
        let mut on = BufferPool::new(true, false);
        let (mut v, _) = on.vec(10, None);
        v[0] = 7.0;
        on.give_vec(v, None);
        assert_eq!(on.vec(10, None).0[0], 7.0);
        assert!(on.take_reused());
        assert!(!on.take_reused());
        assert_eq!(on.vec(11, None).0.len(), 11);
    }

    #[test]
    fn a_kept_input_goes_to_the_input_of_its_seed_and_nowhere_else() {
        let mut pool = BufferPool::new(true, true);
        pool.give_vec(vec![1.0; 10], Some(3));
        pool.give_vec(vec![2.0; 10], None);
        // The output (no seed) takes the free buffer, the input of seed 3 the one holding it.
        assert_eq!(pool.vec(10, None), (vec![2.0; 10], false));
        assert_eq!(pool.vec(10, Some(3)), (vec![1.0; 10], true));
        // Another seed's input is not this one's.
        pool.give_vec(vec![1.0; 10], Some(3));
        assert!(!pool.vec(10, Some(4)).1);
        // Without keep_input nothing is said to hold an input.
        let mut plain = BufferPool::new(true, false);
        plain.give_vec(vec![1.0; 10], Some(3));
        assert!(!plain.vec(10, Some(3)).1);
    }

    #[test]
    fn zeroed_buffers_are_zero_and_of_the_asked_length() {
        for n in [0, 1, 1000, 1 << 20] {
            let v = zeroed(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }
}
