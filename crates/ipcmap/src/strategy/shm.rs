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

use super::{ns_since, on_processes, Compute, Info, Run, Strategy, TaskIn, TaskOut};
use crate::costs::{Load, Prediction};
use crate::error::{PayloadError, RunError};
use crate::kernel::{self, Function};
use crate::partition::Task;
use crate::protocol::{decode_extra, encode_extra, Setup};
use crate::scheduler::Attach;
use crate::scheduler::{Received, ScatterGather};
use crate::shared::SharedRegion;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The shared memory of shm mode: two memfds the worker inherited when it was spawned (their
/// numbers are the same in both processes), input written by the coordinator, output by the
/// workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmRegions {
    /// File descriptor of the input region.
    pub input_fd: i32,
    /// File descriptor of the output region.
    pub output_fd: i32,
    /// Bytes of each region (8 a value).
    pub bytes: u64,
}

/// Shared memory in and out; only ranges travel.
pub struct Shm;

/// Its `--help` line.
const ABOUT: &str = "shared memory in and out, only (offset, length) ranges travel";

impl Strategy for Shm {
    /// Starting the workers and generating into shared memory, then ranges out and back (a
    /// message each) while the workers compute into the shared output, faulting its pages.
    fn predict(&self, l: &Load<'_>) -> Option<Prediction> {
        let (spawn, generate) = (l.spawn_ns(), l.generate_ns(true));
        let workers = l.compute_ns() + l.n * l.worker_touch_ns();
        let run = l.pipeline_ns(l.tasks * l.message_ns(), workers);
        Some(Prediction {
            wall_ms: Load::ms(spawn + generate + run),
            phases_ms: vec![
                ("spawn", Load::ms(spawn)),
                ("generate", Load::ms(generate)),
                ("ranges and compute", Load::ms(run)),
            ],
        })
    }

    fn info(&self) -> Info {
        Info::local("shm", ABOUT).on_processes().shared().moving("shared memory (memfd)").in_place()
    }

    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        let regions = {
            // In place, the one region is both.
            let output = run.output.as_deref().unwrap_or(run.input);
            let (Some(input), Some(output)) = (run.input.region(), output.region()) else {
                return Err(RunError::Channel {
                    what: "shm".into(),
                    message: "its buffers are not shared regions".into(),
                });
            };
            ShmRegions {
                input_fd: input.raw_fd(),
                output_fd: output.raw_fd(),
                bytes: (run.cfg.n * 8) as u64,
            }
        };
        let mut inherit_fds = vec![regions.input_fd, regions.output_fd];
        inherit_fds.dedup();
        let attach = Attach { setup: encode_extra(&regions), inherit_fds };
        // In place, a task sent again (its worker lost mid-task, perhaps after it overwrote
        // part of its range) first gets its input back, regenerated from the seed.
        let rerun = super::RerunInPlace::of(run.cfg.seed, run.input, run.output.is_none());
        let sg = RangesOnly { attach, rerun };
        on_processes(run.cfg, run.mode, &sg, &mut [], run.m, run.start)?;
        // Read after the clock stopped: /proc/self/smaps walks every mapping's page tables,
        // milliseconds with the regions mapped (it once added 5 ms to every warm run).
        let region = run.input.region();
        run.m.extras.shm_huge_pages = region.and_then(|r| r.huge_pages());
        run.m.extras.shm_pages =
            match (region.is_some_and(|r| r.in_reserved_huge_pages()), run.m.extras.shm_huge_pages)
            {
                (true, _) => Some("2 MiB, reserved"),
                (false, Some(true)) => Some("2 MiB, transparent"),
                (false, Some(false)) => Some("4 KiB"),
                (false, None) => None,
            };
        Ok(())
    }

    fn worker(&self, setup: &Setup) -> Result<Box<dyn Compute>, PayloadError> {
        let regions: ShmRegions = decode_extra(&setup.extra)?;
        let compute = ShmCompute::attach(setup.function, setup.work, regions)?;
        Ok(Box::new(compute))
    }
}

/// The coordinator half: tasks are their headers (a range); results are already in place.
/// Every worker gets the same regions.
struct RangesOnly<'a> {
    attach: Attach,
    /// In place: what a task sent again needs first.
    rerun: Option<super::RerunInPlace<'a>>,
}

impl ScatterGather for RangesOnly<'_> {
    fn attach(&self, _worker: u32) -> Attach {
        self.attach.clone()
    }

    fn encode_task(&self, _: u32, task: &Task, _out: &mut Vec<u8>) -> Result<u64, PayloadError> {
        if let Some(rerun) = &self.rerun {
            rerun.before_send(task);
        }
        Ok(0)
    }

    fn decode_result(&self, got: Received<'_>, _out: &mut [f64]) -> Result<u64, PayloadError> {
        let payload = got.payload;
        if !payload.is_empty() {
            return Err(PayloadError::Mismatch {
                what: "payload bytes of an shm result",
                got: payload.len() as u64,
                expected: 0,
            });
        }
        Ok(0)
    }
}

/// The worker half of shm mode: computes a range of the shared input into the shared output,
/// or over the input itself where the two are one region (`--in-place`).
pub struct ShmCompute {
    function: Function,
    work: u32,
    input: SharedRegion,
    /// `None`: in place.
    output: Option<SharedRegion>,
    /// The ranges this worker has faulted in already: a kept worker (`--pool persistent`)
    /// that gets one again finds its pages mapped, and asks the kernel nothing.
    faulted: std::collections::HashSet<(usize, usize)>,
}

impl ShmCompute {
    /// Maps the regions the worker inherited.
    pub fn attach(
        function: Function,
        work: u32,
        regions: ShmRegions,
    ) -> Result<Self, PayloadError> {
        let bytes = usize::try_from(regions.bytes)
            .map_err(|_| PayloadError::Setup(format!("{} bytes is too large", regions.bytes)))?;
        if regions.input_fd < 0 || regions.output_fd < 0 {
            return Err(PayloadError::Setup(format!(
                "bad descriptors {} and {}",
                regions.input_fd, regions.output_fd
            )));
        }
        // Each region is mapped through a copy of its descriptor: the inherited one stays open,
        // so a worker of a kept pool (`--pool persistent`) can map it again for a later run
        // whose setup differs (another function or work over the same regions).
        let copy = |fd: i32| {
            // SAFETY: `fd` was inherited from the coordinator and is only read here (fcntl's
            // F_DUPFD_CLOEXEC); a bad number is an error, not a use of another's descriptor.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
                .try_clone_to_owned()
                .map(std::os::fd::IntoRawFd::into_raw_fd)
                .map_err(|e| PayloadError::Setup(format!("descriptor {fd}: {e}")))
        };
        // SAFETY: each copy was just made and nothing else in the worker owns it; one
        // descriptor named twice is adopted once.
        let (input, output) = unsafe {
            let input = SharedRegion::adopt(copy(regions.input_fd)?, bytes)?;
            match regions.output_fd == regions.input_fd {
                true => (input, None),
                false => (input, Some(SharedRegion::adopt(copy(regions.output_fd)?, bytes)?)),
            }
        };
        Ok(ShmCompute { function, work, input, output, faulted: Default::default() })
    }
}

impl Compute for ShmCompute {
    fn compute(&mut self, task: TaskIn<'_>, out: TaskOut<'_>) -> Result<(), PayloadError> {
        let (TaskIn { header, payload }, TaskOut { timing, .. }) = (task, out);
        if !payload.is_empty() {
            return Err(PayloadError::Mismatch {
                what: "payload bytes of an shm task",
                got: payload.len() as u64,
                expected: 0,
            });
        }
        let n = self.input.as_f64s().len();
        let range = usize::try_from(header.start)
            .ok()
            .zip(usize::try_from(header.len).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?))
            .filter(|r| r.end <= n)
            .ok_or(PayloadError::OutOfRange {
                start: header.start,
                len: header.len,
                n: n as u64,
            })?;
        let t = Instant::now();
        let fresh = self.faulted.insert((range.start, range.end));
        match &mut self.output {
            // Faulted in for reading, even where written: a read fault on a shared mapping maps
            // 16 pages at once, writable (shmem asks no notice of writes), where a write fault
            // maps one; the kernel loop then writes without faulting.
            Some(output) => {
                if fresh {
                    self.input.prefault(range.clone(), false);
                    output.prefault(range.clone(), false);
                }
                let input = &self.input.as_f64s()[range.clone()];
                kernel::apply_work(
                    self.function,
                    self.work,
                    input,
                    &mut output.as_f64s_mut()[range],
                );
            }
            None => {
                if fresh {
                    self.input.prefault(range.clone(), false);
                }
                let data = &mut self.input.as_f64s_mut()[range];
                kernel::apply_work_in_place(self.function, self.work, data);
            }
        }
        timing.compute_ns = ns_since(t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TaskHeader;
    use crate::strategy::TaskTiming;
    use proptest::prelude::*;

    fn compute(start: u64, len: u64, payload: &[u8]) -> Result<(), PayloadError> {
        let (input, output) =
            (SharedRegion::create("t-in", 100, true)?, SharedRegion::create("t-out", 100, false)?);
        let faulted = Default::default();
        let mut c =
            ShmCompute { function: Function::Sqrt, work: 1, input, output: Some(output), faulted };
        let header = TaskHeader { task: 0, start, len, parts: 1 };
        c.compute(
            TaskIn { header: &header, payload },
            TaskOut { bytes: &mut Vec::new(), timing: &mut TaskTiming::default() },
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

    proptest! {
        #[test]
        fn worker_half_never_panics(start in any::<u64>(), len in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = compute(start, len, &payload);
        }
    }
}
