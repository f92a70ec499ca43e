//! `owner`: move the work, not the data. Each worker owns a range of the input: it generates
//! it from the seed itself (the generator draws every 64K-value block on its own, so any range
//! is the values the coordinator would have made), computes it in place in its own memory,
//! and sends back only a checksum of the result's bits and its timings. The coordinator holds
//! neither input nor output: under `--transport mpi` each rank holds n / workers values, so n
//! is bounded by the cluster's memory, not rank 0's. It is the answer to the tutorial's
//! "billions of items": what a value costs when nothing is moved, beside what it costs when
//! everything is.
//!
//! Verification stays bit for bit: after the run, outside its timed region, the coordinator
//! regenerates each range block by block, applies the sequential kernel and compares the
//! checksums ([`crate::verify::check_checksums`]).

use super::{ns_since, on_processes, Compute, Info, Run, Strategy, TaskIn, TaskOut};
use crate::costs::{Load, Prediction};
use crate::error::{PayloadError, RunError};
use crate::kernel::{self, Function};
use crate::partition::Task;
use crate::protocol::{decode_extra, encode_extra, Setup};
use crate::scheduler::{Attach, Received, ScatterGather};
use crate::settings::Settings;
use crate::verify::{checksum, Checksum, CHECKSUM_START};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Instant;

/// Move the work, not the data.
pub struct Owner;

/// Its `--help` line.
const ABOUT: &str =
    "move the work, not the data: each worker generates its own range from the seed, computes it in place and sends back a checksum";

/// What a worker needs to make its range: the seed and the input's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerSetup {
    /// The input's seed.
    pub seed: u64,
    /// Values in the whole input.
    pub n: u64,
}

/// Bytes of a result's payload: its values, then its checksum.
const RESULT_BYTES: usize = 16;

impl Strategy for Owner {
    /// Its workers keep their results: each one's checksum against the sequential kernel
    /// applied to its range, regenerated from the seed.
    fn verify(&self, s: &Settings, outcome: &super::Outcome) -> Result<(), RunError> {
        let sums = &outcome.measurement.checksums;
        crate::verify::check_checksums(self.name(), s.function, s.work, s.seed, s.n, sums)
    }

    fn verified_by(&self, _: &Settings) -> &'static str {
        crate::verify::METHOD_CHECKSUM
    }

    /// Starting the workers, then each generating and computing its own range in its own
    /// memory (only headers and checksums cross).
    fn predict(&self, l: &Load<'_>) -> Option<Prediction> {
        let spawn = l.spawn_ns();
        let each = l.n * (l.cal.generate_ns.at(l.pick) + l.cal.touch_private_ns.at(l.pick));
        let work = (each + l.compute_ns()) / l.parallel() + l.tasks * l.message_ns();
        Some(Prediction {
            wall_ms: Load::ms(spawn + work),
            phases_ms: vec![("spawn", Load::ms(spawn)), ("generate and compute", Load::ms(work))],
        })
    }

    fn info(&self) -> Info {
        Info::local("owner", ABOUT)
            .on_processes()
            .unsplit()
            .moving("nothing: the seed out, a checksum back")
            .owning()
    }

    /// One range per worker, on the generator's block boundaries (so no worker draws a block
    /// another draws too); fewer where n has fewer blocks than there are workers.
    fn tasks(&self, s: &Settings, _chunksize: usize) -> Vec<Task> {
        let blocks = s.n.div_ceil(crate::data::BLOCK);
        let parts = crate::partition::array_split(blocks, s.workers.clamp(1, blocks.max(1)));
        let ranges = parts
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(|r| (r.start * crate::data::BLOCK)..(r.end * crate::data::BLOCK).min(s.n));
        ranges.enumerate().map(|(index, r)| Task { index, parts: vec![r] }).collect()
    }

    fn label(&self, s: &Settings) -> String {
        let ranges = self.tasks(s, 1).len();
        format!("owner, {ranges} range{} kept by the workers", if ranges == 1 { "" } else { "s" })
    }

    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        let tasks = run.mode.tasks(run.cfg);
        let setup = OwnerSetup { seed: run.cfg.seed, n: run.cfg.n as u64 };
        let sg = Kept {
            attach: Attach { setup: encode_extra(&setup), inherit_fds: Vec::new() },
            sums: Mutex::new(vec![None; tasks.len()]),
        };
        // The workers' generate time comes back in their result headers, as compute does.
        on_processes(run.cfg, run.mode, &sg, &mut [], run.m, run.start)?;
        let sums = sg.sums.into_inner().unwrap_or_default();
        run.m.checksums = tasks
            .iter()
            .zip(sums)
            .filter_map(|(t, sum)| {
                Some(Checksum { start: t.span().start, len: t.len(), checksum: sum? })
            })
            .collect();
        Ok(())
    }

    fn worker(&self, setup: &Setup) -> Result<Box<dyn Compute>, PayloadError> {
        let owner: OwnerSetup = decode_extra(&setup.extra)?;
        Ok(Box::new(OwnerCompute {
            function: setup.function,
            work: setup.work,
            owner,
            data: Vec::new(),
        }))
    }
}

/// The coordinator half: tasks are their headers; results are checksums, kept per task.
struct Kept {
    attach: Attach,
    /// Each task's checksum, as its result said.
    sums: Mutex<Vec<Option<u64>>>,
}

impl ScatterGather for Kept {
    fn attach(&self, _worker: u32) -> Attach {
        self.attach.clone()
    }

    fn encode_task(&self, _: u32, _task: &Task, _out: &mut Vec<u8>) -> Result<u64, PayloadError> {
        Ok(0)
    }

    fn decode_result(&self, got: Received<'_>, _out: &mut [f64]) -> Result<u64, PayloadError> {
        let payload = got.payload;
        if payload.len() != RESULT_BYTES {
            return Err(PayloadError::Mismatch {
                what: "payload bytes of an owner result",
                got: payload.len() as u64,
                expected: RESULT_BYTES as u64,
            });
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&payload[8 * i..8 * i + 8]);
            u64::from_le_bytes(b)
        };
        let (values, sum) = (word(0), word(1));
        if values != got.task.len() as u64 {
            return Err(PayloadError::Mismatch {
                what: "values of an owner result",
                got: values,
                expected: got.task.len() as u64,
            });
        }
        if let Ok(mut sums) = self.sums.lock() {
            if let Some(slot) = sums.get_mut(got.task.index) {
                *slot = Some(sum);
            }
        }
        Ok(payload.len() as u64)
    }
}

/// The worker half: generates its range, computes it in place, checksums it.
pub struct OwnerCompute {
    function: Function,
    work: u32,
    owner: OwnerSetup,
    /// Its range, kept between tasks.
    data: Vec<f64>,
}

impl Compute for OwnerCompute {
    fn compute(&mut self, task: TaskIn<'_>, out: TaskOut<'_>) -> Result<(), PayloadError> {
        let (TaskIn { header, payload }, TaskOut { bytes, timing }) = (task, out);
        if !payload.is_empty() {
            return Err(PayloadError::Mismatch {
                what: "payload bytes of an owner task",
                got: payload.len() as u64,
                expected: 0,
            });
        }
        let n = self.owner.n;
        let fits = header.start.checked_add(header.len).is_some_and(|end| end <= n);
        let range = usize::try_from(header.start).ok().zip(usize::try_from(header.len).ok());
        let Some((start, len)) = range.filter(|_| fits) else {
            return Err(PayloadError::OutOfRange { start: header.start, len: header.len, n });
        };
        let t = Instant::now();
        if self.data.len() != len {
            self.data = crate::memory::zeroed(len);
        }
        crate::data::generate_range(self.owner.seed, start, &mut self.data);
        timing.generate_ns = ns_since(t);
        let t = Instant::now();
        kernel::apply_work_in_place(self.function, self.work, &mut self.data);
        timing.compute_ns = ns_since(t);
        let t = Instant::now();
        let sum = checksum(CHECKSUM_START, &self.data);
        for word in [len as u64, sum] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        timing.encode_ns = ns_since(t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TaskHeader;
    use crate::strategy::TaskTiming;

    fn compute(n: u64, start: u64, len: u64, payload: &[u8]) -> Result<Vec<u8>, PayloadError> {
        let mut c = OwnerCompute {
            function: Function::Exp,
            work: 1,
            owner: OwnerSetup { seed: 5, n },
            data: Vec::new(),
        };
        let header = TaskHeader { task: 0, start, len, parts: 1 };
        let mut bytes = Vec::new();
        c.compute(
            TaskIn { header: &header, payload },
            TaskOut { bytes: &mut bytes, timing: &mut TaskTiming::default() },
        )?;
        Ok(bytes)
    }

    #[test]
    fn a_range_gives_the_checksum_of_the_sequential_result_and_bad_ranges_are_refused() {
        let n = 3 * crate::data::BLOCK as u64 + 11;
        let bytes = compute(n, 1000, 70_000, &[]).unwrap();
        assert_eq!(bytes.len(), RESULT_BYTES);
        let input = crate::data::generate(5, n as usize);
        let mut expected = vec![0.0; 70_000];
        kernel::apply(Function::Exp, &input[1000..71_000], &mut expected);
        let sum = u64::from_le_bytes(bytes[8..].try_into().unwrap());
        assert_eq!(sum, checksum(CHECKSUM_START, &expected));
        assert!(compute(n, n - 1, 2, &[]).is_err());
        assert!(compute(n, u64::MAX, 2, &[]).is_err());
        assert!(compute(n, 0, 1, &[1]).is_err(), "owner tasks carry no payload");
    }

    #[test]
    fn ranges_cover_the_input_once_on_block_boundaries() {
        let block = crate::data::BLOCK;
        for (n, workers) in [(10 * block + 5, 3), (100, 4), (block, 1), (2 * block, 5)] {
            let s = Settings { n, workers, ..Settings::default() };
            let tasks = Owner.tasks(&s, 1);
            assert!(!tasks.is_empty() && tasks.len() <= workers, "{n} {workers}");
            let mut next = 0;
            for t in &tasks {
                assert_eq!(t.span().start, next);
                assert_eq!(t.span().start % block, 0);
                next = t.span().end;
            }
            assert_eq!(next, n);
        }
    }
}
