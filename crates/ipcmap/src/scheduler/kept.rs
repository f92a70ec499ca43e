//! Kept pools (`--pool persistent`): worker processes started once and kept for every later
//! run whose workers would be started the same way, as a Python `Pool` created once serves
//! many `map` calls. A run ends its workers' run with an empty frame instead of closing their
//! channels ([`Pool::end_run`]), and a later run hands them a new setup ([`Pool::next_run`]);
//! the worker keeps its strategy half (and its mappings) where the setup is the same.
//!
//! A pool is kept only after a clean run: every worker alive and its stats in. A run that
//! wrote a worker off, was stopped or failed ends its pool as a per-run pool ends, so faults,
//! deadlines, retries and signals behave as they do per run. At most [`MOST_KEPT`] pools are
//! kept; the engine ends them all when its runs are over ([`end_all`]), and a coordinator that
//! dies takes them with it (each worker dies with its parent).

use crate::transport::Pool;
use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

/// Pools kept at once; a pool kept beyond this ends the one kept longest.
pub const MOST_KEPT: usize = 8;

/// How long a kept worker may take to end once its channel closes.
const END_GRACE: Duration = Duration::from_secs(1);

/// What a pool's workers were started with: a run takes a kept pool only where every field is
/// the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolKey {
    /// The transport, by name.
    pub transport: &'static str,
    /// The worker executable.
    pub worker_bin: PathBuf,
    /// How many workers.
    pub workers: usize,
    /// Its frame trains (`--frame-bytes`).
    pub frame_bytes: usize,
    /// Each worker's inherited descriptors, as (device, inode): the same files (shm's
    /// regions), not only the same numbers.
    pub files: Vec<Vec<(u64, u64)>>,
}

impl PoolKey {
    /// (device, inode) of each descriptor in `fds`, this process's own; `None` for one that
    /// cannot be looked at (no pool is kept for it).
    pub fn files(fds: &[i32]) -> Option<Vec<(u64, u64)>> {
        fds.iter()
            .map(|&fd| {
                // SAFETY: the descriptors are the run's own (its shared regions), open while
                // its workers are started; fstat only reads them.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                nix::sys::stat::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino))
            })
            .collect()
    }
}

thread_local! {
    /// The pools kept by this thread's runs, the one kept longest first.
    static KEPT: RefCell<Vec<(PoolKey, Box<dyn Pool>)>> = const { RefCell::new(Vec::new()) };
}

/// The kept pool started as `key` says, taken out of the kept ones.
pub fn take(key: &PoolKey) -> Option<Box<dyn Pool>> {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        let at = kept.iter().position(|(k, _)| k == key)?;
        Some(kept.remove(at).1)
    })
}

/// Keeps `pool` for a later run; beyond [`MOST_KEPT`], the pool kept longest ends.
pub fn keep(key: PoolKey, pool: Box<dyn Pool>) {
    let over = KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        kept.push((key, pool));
        let over = kept.len().saturating_sub(MOST_KEPT);
        kept.drain(..over).map(|(_, p)| p).collect::<Vec<_>>()
    });
    over.into_iter().for_each(end);
}

/// Ends every kept pool: each worker's channel closed, then each reaped (stopped after a
/// second, at once when a stop was asked for).
pub fn end_all() {
    let all = KEPT.with(|kept| std::mem::take(&mut *kept.borrow_mut()));
    all.into_iter().map(|(_, p)| p).for_each(end);
}

/// Ends one pool: every worker's channel closed (it leaves its loop and exits), then reaped.
pub fn end(mut pool: Box<dyn Pool>) {
    let workers = pool.workers().len();
    for w in 0..workers {
        pool.close(w);
    }
    let grace = match crate::interrupt::requested() {
        Some(_) => Duration::ZERO,
        None => END_GRACE,
    };
    for w in 0..workers {
        pool.reap(w, grace);
    }
}
