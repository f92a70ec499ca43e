//! `shm`: input and output live in shared memory (ipc-channel's memfd-backed
//! `IpcSharedMemory`). The coordinator generates the input in place, only (offset, length)
//! ranges travel, and workers write their results in place: nothing is serialized or copied
//! between processes, and the assembled result is the shared output region itself.

use super::{f64s, f64s_mut, ns_since, Compute, Outcome, Output, TaskTiming};
use crate::codec::CodecError;
use crate::config::RunConfig;
use crate::data;
use crate::error::RunError;
use crate::kernel::{self, Function};
use crate::partition::Task;
use crate::protocol::{ShmRegions, TaskHeader, WorkerMode};
use crate::report::Measurement;
use crate::scheduler::{run_on_pool, shm_region, ScatterGather};
use std::time::Instant;

/// Runs shm mode once.
pub fn run(cfg: &RunConfig) -> Result<Outcome, RunError> {
    let mut m = Measurement::default();
    let start = Instant::now();
    let t = Instant::now();
    let mut input = shm_region(cfg.n)?;
    // SAFETY: the region was just created and is not yet shared with any process.
    let input_f64 = unsafe { input.deref_mut() };
    let input_f64 = f64s_mut(input_f64)?;
    data::generate_into(cfg.seed, input_f64);
    m.generate_ns = ns_since(t);
    let t = Instant::now();
    let regions = ShmRegions {
        input,
        output: shm_region(cfg.n)?,
    };
    m.assemble_ns = ns_since(t);
    let tasks = cfg.tasks_for(super::Mode::Shm);
    run_on_pool(
        &cfg.process_run(WorkerMode::Shm)?,
        &tasks,
        &mut RangesOnly,
        Some(&regions),
        &mut m,
        start,
    )?;
    Ok(Outcome {
        output: Output::Shared(regions.output),
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
    regions: ShmRegions,
}

impl ShmCompute {
    /// A worker half over the regions the coordinator sent.
    pub fn new(function: Function, work: u32, regions: ShmRegions) -> Self {
        ShmCompute {
            function,
            work,
            regions,
        }
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
        let input = f64s(&self.regions.input).map_err(|e| e.to_string())?;
        let n = input.len();
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
        // SAFETY: the coordinator gives each range to one worker at a time and reads the output
        // only after every result is in, so no one else touches these elements meanwhile.
        let output = unsafe { self.regions.output.deref_mut() };
        let output = f64s_mut(output).map_err(|e| e.to_string())?;
        if output.len() != n {
            return Err(format!(
                "output region holds {} values, input {n}",
                output.len()
            ));
        }
        let t = Instant::now();
        kernel::apply_work(
            self.function,
            self.work,
            &input[range.clone()],
            &mut output[range],
        );
        timing.compute_ns = ns_since(t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_channel::ipc::IpcSharedMemory;
    use proptest::prelude::*;

    fn compute(start: u64, len: u64, payload: &[u8]) -> Result<(), String> {
        let regions = ShmRegions {
            input: IpcSharedMemory::from_byte(0, 800),
            output: IpcSharedMemory::from_byte(0, 800),
        };
        let header = TaskHeader {
            task: 0,
            start,
            len,
            parts: 1,
        };
        ShmCompute::new(Function::Sqrt, 1, regions).compute(
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

    proptest! {
        #[test]
        fn worker_half_never_panics(start in any::<u64>(), len in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = compute(start, len, &payload);
        }
    }
}
