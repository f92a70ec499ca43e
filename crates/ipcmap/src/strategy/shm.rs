//! `shm`: input and output live in shared memory. The coordinator generates the input in
//! place, only (offset, length) ranges travel, and workers write their results in place:
//! nothing is serialized or copied between processes, and the assembled result is the shared
//! output region itself.
//!
//! The regions are memfds (nothing appears in /dev/shm, nothing outlives the last process that
//! holds them). Shared memory gets no huge pages on most kernels, and faulting 160 MB in 4 KiB
//! pages one touch at a time costs more than the math, so pages are faulted in bulk: the
//! coordinator pre-faults the input it generates (`MAP_POPULATE`); the output is left to the
//! workers, which inherit both descriptors, map them lazily and pre-fault only the ranges of
//! their tasks (`MADV_POPULATE_READ` / `MADV_POPULATE_WRITE`), in parallel, so the cost of
//! allocating the output is spread over the workers instead of paid by the coordinator and
//! no worker maps pages it never touches.

use super::{ns_since, Compute, Outcome, Output, TaskTiming};
use crate::codec::CodecError;
use crate::config::RunConfig;
use crate::data;
use crate::error::RunError;
use crate::kernel::{self, Function};
use crate::memory::BufferPool;
use crate::partition::Task;
use crate::protocol::{ShmRegions, TaskHeader, WorkerMode};
use crate::report::Measurement;
use crate::scheduler::{run_on_pool, ScatterGather};
use nix::sys::mman::{madvise, mmap, munmap, MapFlags, MmapAdvise, ProtFlags};
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::time::Instant;

/// A shared, mapped memfd holding f64 values.
pub struct SharedRegion {
    fd: OwnedFd,
    map: Option<NonNull<c_void>>,
    bytes: usize,
}

impl SharedRegion {
    /// A new zeroed region of `n` f64, mapped, and pre-faulted when `populate` is set.
    pub fn create(name: &str, n: usize, populate: bool) -> Result<SharedRegion, String> {
        let bytes = n
            .checked_mul(8)
            .ok_or_else(|| format!("{n} f64 do not fit in memory"))?;
        let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| format!("memfd_create: {e}"))?;
        let len = i64::try_from(bytes).map_err(|_| format!("{bytes} bytes is too large"))?;
        nix::unistd::ftruncate(&fd, len)
            .map_err(|e| format!("sizing the region to {bytes} bytes: {e}"))?;
        SharedRegion::map(fd, bytes, populate)
    }

    /// Maps an inherited region of at least `bytes` bytes (the worker's side).
    ///
    /// # Safety
    /// `fd` must be an open descriptor that nothing else in this process owns.
    pub unsafe fn adopt(fd: i32, bytes: usize) -> Result<SharedRegion, String> {
        let fd = OwnedFd::from_raw_fd(fd);
        let size = nix::sys::stat::fstat(&fd)
            .map_err(|e| format!("descriptor {}: {e}", fd.as_raw_fd()))?
            .st_size;
        if usize::try_from(size).map_or(true, |size| size < bytes) {
            return Err(format!(
                "descriptor {} holds {size} bytes, {bytes} expected",
                fd.as_raw_fd()
            ));
        }
        SharedRegion::map(fd, bytes, false)
    }

    /// Faults in the pages holding elements `range` in one call, for reading or for writing
    /// (`MADV_POPULATE_*`, Linux 5.14+). Best effort: where the kernel lacks it, the kernel
    /// loop faults the pages one touch at a time instead, with the same result.
    pub fn prefault(&self, range: std::ops::Range<usize>, write: bool) {
        let (Some(base), false) = (self.map, range.is_empty()) else {
            return;
        };
        let page = 4096;
        let start = (range.start * 8) / page * page;
        let end = (range.end * 8).min(self.bytes);
        let advice = if write {
            MmapAdvise::MADV_POPULATE_WRITE
        } else {
            MmapAdvise::MADV_POPULATE_READ
        };
        // SAFETY: start is page-aligned and [start, end) lies inside our mapping; populating
        // changes no contents.
        let _ = unsafe {
            madvise(
                NonNull::new_unchecked(base.as_ptr().cast::<u8>().add(start).cast()),
                end - start,
                advice,
            )
        };
    }

    fn map(fd: OwnedFd, bytes: usize, populate: bool) -> Result<SharedRegion, String> {
        let map = match NonZeroUsize::new(bytes) {
            None => None,
            Some(len) => {
                let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
                let flags = if populate {
                    MapFlags::MAP_SHARED | MapFlags::MAP_POPULATE
                } else {
                    MapFlags::MAP_SHARED
                };
                // SAFETY: a fresh shared mapping of a file we hold; unmapped in Drop.
                Some(
                    unsafe { mmap(None, len, prot, flags, &fd, 0) }
                        .map_err(|e| format!("mapping {bytes} bytes: {e}"))?,
                )
            }
        };
        Ok(SharedRegion { fd, map, bytes })
    }

    /// The descriptor, to be inherited by workers.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The values.
    pub fn as_f64s(&self) -> &[f64] {
        match self.map {
            // SAFETY: the mapping is page-aligned, `bytes` long and lives as long as `self`.
            Some(ptr) => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr() as *const f64, self.bytes / 8)
            },
            None => &[],
        }
    }

    /// The values, for writing. Other processes may write other elements at the same time;
    /// the scheduler gives each range to one worker at a time.
    pub fn as_f64s_mut(&mut self) -> &mut [f64] {
        match self.map {
            // SAFETY: as in `as_f64s`, and `&mut self` makes this the process's only view.
            Some(ptr) => unsafe {
                std::slice::from_raw_parts_mut(ptr.as_ptr() as *mut f64, self.bytes / 8)
            },
            None => &mut [],
        }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        if let Some(ptr) = self.map.take() {
            // SAFETY: mapped in `map` with this length and not unmapped since.
            let _ = unsafe { munmap(ptr, self.bytes) };
        }
    }
}

/// Runs shm mode once.
pub fn run(cfg: &RunConfig, pool: &mut BufferPool) -> Result<Outcome, RunError> {
    let mut m = Measurement::default();
    let start = Instant::now();
    let t = Instant::now();
    let mut input = pool
        .region("ipcmap-input", cfg.n, true)
        .map_err(RunError::Shm)?;
    data::generate_into(cfg.seed, input.as_f64s_mut());
    m.generate_ns = ns_since(t);
    let t = Instant::now();
    let output = pool
        .region("ipcmap-output", cfg.n, false)
        .map_err(RunError::Shm)?;
    m.assemble_ns = ns_since(t);
    let regions = ShmRegions {
        input_fd: input.raw_fd(),
        output_fd: output.raw_fd(),
        bytes: (cfg.n * 8) as u64,
    };
    let tasks = cfg.tasks_for(super::Mode::Shm);
    run_on_pool(
        &cfg.process_run(WorkerMode::Shm)?,
        &tasks,
        &mut RangesOnly,
        Some(&regions),
        &mut m,
        start,
    )?;
    pool.give_region(input);
    m.buffers_reused = pool.take_reused();
    Ok(Outcome {
        output: Output::Shared(output),
        measurement: m,
    })
}

/// The coordinator half: tasks are their headers (a range); results are already in place.
struct RangesOnly;

impl ScatterGather for RangesOnly {
    fn encode_task(&mut self, _task: &Task, _out: &mut Vec<u8>) -> Result<u64, CodecError> {
        Ok(0)
    }

    fn decode_result(&mut self, _task: &Task, payload: &[u8]) -> Result<u64, String> {
        if !payload.is_empty() {
            return Err(format!(
                "shm result carries {} payload bytes, expected none",
                payload.len()
            ));
        }
        Ok(0)
    }
}

/// The worker half of shm mode: computes a range of the shared input into the shared output.
pub struct ShmCompute {
    function: Function,
    work: u32,
    input: SharedRegion,
    output: SharedRegion,
}

impl ShmCompute {
    /// Maps the regions the worker inherited.
    pub fn attach(function: Function, work: u32, regions: ShmRegions) -> Result<Self, String> {
        let bytes = usize::try_from(regions.bytes)
            .map_err(|_| format!("{} bytes is too large", regions.bytes))?;
        if regions.input_fd == regions.output_fd || regions.input_fd < 0 || regions.output_fd < 0 {
            return Err(format!(
                "bad descriptors {} and {}",
                regions.input_fd, regions.output_fd
            ));
        }
        // SAFETY: the coordinator made these descriptors inheritable for this process alone and
        // nothing else in the worker owns them.
        let (input, output) = unsafe {
            (
                SharedRegion::adopt(regions.input_fd, bytes)?,
                SharedRegion::adopt(regions.output_fd, bytes)?,
            )
        };
        Ok(ShmCompute {
            function,
            work,
            input,
            output,
        })
    }
}

impl Compute for ShmCompute {
    fn compute(
        &mut self,
        header: &TaskHeader,
        payload: &[u8],
        _out: &mut Vec<u8>,
        timing: &mut TaskTiming,
    ) -> Result<(), String> {
        if !payload.is_empty() {
            return Err(format!(
                "shm task carries {} payload bytes, expected none",
                payload.len()
            ));
        }
        let n = self.input.as_f64s().len();
        let range = usize::try_from(header.start)
            .ok()
            .zip(usize::try_from(header.len).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?))
            .filter(|r| r.end <= n)
            .ok_or_else(|| {
                format!(
                    "range {}+{} outside the {n}-element region",
                    header.start, header.len
                )
            })?;
        let t = Instant::now();
        self.input.prefault(range.clone(), false);
        self.output.prefault(range.clone(), true);
        let input = &self.input.as_f64s()[range.clone()];
        kernel::apply_work(
            self.function,
            self.work,
            input,
            &mut self.output.as_f64s_mut()[range],
        );
        timing.compute_ns = ns_since(t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn compute(start: u64, len: u64, payload: &[u8]) -> Result<(), String> {
        let (input, output) = (
            SharedRegion::create("t-in", 100, true)?,
            SharedRegion::create("t-out", 100, false)?,
        );
        let mut c = ShmCompute {
            function: Function::Sqrt,
            work: 1,
            input,
            output,
        };
        let header = TaskHeader {
            task: 0,
            start,
            len,
            parts: 1,
        };
        c.compute(
            &header,
            payload,
            &mut Vec::new(),
            &mut TaskTiming::default(),
        )
    }

    #[test]
    fn ranges_inside_the_region_are_computed_and_outside_refused() {
        assert!(compute(0, 100, &[]).is_ok());
        assert!(compute(90, 10, &[]).is_ok());
        assert!(compute(90, 11, &[]).is_err());
        assert!(compute(u64::MAX, 2, &[]).is_err());
        assert!(compute(0, 1, &[1]).is_err(), "shm tasks carry no payload");
    }

    #[test]
    fn a_region_is_shared_through_its_descriptor() {
        let mut a = SharedRegion::create("t-share", 4, false).unwrap();
        a.as_f64s_mut().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        let dup = nix::unistd::dup(&a.fd).unwrap();
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        let mut b =
            unsafe { SharedRegion::adopt(std::os::fd::IntoRawFd::into_raw_fd(dup), 32) }.unwrap();
        assert_eq!(b.as_f64s(), &[1.0, 2.0, 3.0, 4.0]);
        b.as_f64s_mut()[0] = 9.0;
        assert_eq!(a.as_f64s()[0], 9.0);
        assert!(unsafe {
            SharedRegion::adopt(
                std::os::fd::IntoRawFd::into_raw_fd(nix::unistd::dup(&a.fd).unwrap()),
                64,
            )
        }
        .is_err());
        assert!(SharedRegion::create("t-empty", 0, true)
            .unwrap()
            .as_f64s()
            .is_empty());
    }

    proptest! {
        #[test]
        fn worker_half_never_panics(start in any::<u64>(), len in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = compute(start, len, &payload);
        }
    }
}
