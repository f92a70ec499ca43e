//! `split`: `pool.map(f, numpy.split(data, S), chunksize=C)`. The input is cut into S parts
//! (like `numpy.array_split`), each part is encoded as one contiguous block, C parts travel in
//! one task message, and the worker applies the kernel to whole slices.

use super::{
    compute_into, on_processes_encoded, timed, Compute, Info, Run, Strategy, TaskIn, TaskOut,
};
use crate::codec::{Codec, CodecError};
use crate::error::{PayloadError, RunError};
use crate::partition::Task;
use crate::protocol::{
    begin_block_frame, block_header, end_block_frame, read_block_frame, Reader, Setup,
};
use crate::scheduler::{Received, ScatterGather};
use crate::transport::place::Piece;

/// `pool.map(f, split(data, S), chunksize=C)`: sub-vectors encoded as blocks.
pub struct Split;

/// Its `--help` line.
const ABOUT: &str = "sub-vectors as blocks, like pool.map(exp, split(data, S), chunksize=C)";

impl Strategy for Split {
    /// Its parts encoded, moved and decoded both ways, pipelined with the workers' compute.
    fn predict(&self, l: &crate::costs::Load<'_>) -> Option<crate::costs::Prediction> {
        l.shipped(false)
    }

    fn info(&self) -> Info {
        Info::local("split", ABOUT).on_processes().encoded()
    }

    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        on_processes_encoded(run, |codec, input| Box::new(SplitScatter { codec, input }))
    }

    fn worker(&self, setup: &Setup) -> Result<Box<dyn Compute>, PayloadError> {
        Ok(Box::new(SplitCompute::new(setup.function, setup.work, setup.codec)))
    }
}

/// The coordinator half of split mode: parts of `input` out, results into `output`.
pub(crate) struct SplitScatter<'a> {
    pub(crate) codec: &'static dyn Codec,
    pub(crate) input: &'a [f64],
}

impl ScatterGather for SplitScatter<'_> {
    fn encode_task(&self, _: u32, task: &Task, out: &mut Vec<u8>) -> Result<u64, PayloadError> {
        let mut payload = 0;
        for part in &task.parts {
            payload += encode_block(self.codec, &self.input[part.clone()], out)?;
        }
        Ok(payload as u64)
    }

    /// Each part's block header, then its values.
    fn result_pieces(&self, task: &Task) -> Option<Vec<Piece>> {
        let pieces = task.parts.iter().flat_map(|part| {
            let header = block_header(part.len(), part.len() * 8).to_vec();
            [Piece::Expect(header), Piece::Values(part.clone())]
        });
        self.codec.own_bytes().then(|| pieces.collect())
    }

    fn decode_result(&self, got: Received<'_>, out: &mut [f64]) -> Result<u64, PayloadError> {
        let (task, payload) = (got.task, got.payload);
        let base = task.span().start;
        let mut r = Reader::new(payload);
        let mut bytes = 0;
        for part in &task.parts {
            let (elements, block) = read_block_frame(&mut r, part.len())?;
            if elements != part.len() {
                return Err(PayloadError::Mismatch {
                    what: "values in a result block",
                    got: elements as u64,
                    expected: part.len() as u64,
                });
            }
            let len = out.len() as u64;
            let place =
                out.get_mut(part.start - base..part.end - base).ok_or(PayloadError::Mismatch {
                    what: "output values for a result block",
                    got: len,
                    expected: (part.end - base) as u64,
                })?;
            self.codec.decode_block_into(block, place)?;
            bytes += block.len();
        }
        if r.remaining() != 0 {
            return Err(PayloadError::Mismatch {
                what: "bytes after the last block",
                got: r.remaining() as u64,
                expected: 0,
            });
        }
        Ok(bytes as u64)
    }
}

/// Appends one framed block; returns the codec bytes.
fn encode_block(codec: &dyn Codec, values: &[f64], out: &mut Vec<u8>) -> Result<usize, CodecError> {
    let at = begin_block_frame(out, values.len());
    codec.encode_block(values, out)?;
    Ok(end_block_frame(out, at))
}

/// The worker half of split mode.
pub type SplitCompute = super::CodedCompute<Split>;

impl Compute for SplitCompute {
    fn compute(&mut self, task: TaskIn<'_>, out: TaskOut<'_>) -> Result<(), PayloadError> {
        let (TaskIn { header, payload }, TaskOut { bytes: out, timing }) = (task, out);
        let mut r = Reader::new(payload);
        for _ in 0..header.parts {
            let max = r.remaining() / self.codec.min_bytes_per_value();
            let (elements, block) = read_block_frame(&mut r, max)?;
            timed(&mut timing.decode_ns, || {
                self.input.resize(elements, 0.0);
                self.codec.decode_block_into(block, &mut self.input)
            })?;
            let (function, work) = (self.function, self.work);
            timed(&mut timing.compute_ns, || {
                compute_into(function, work, &self.input, &mut self.output)
            });
            timed(&mut timing.encode_ns, || encode_block(self.codec, &self.output, out))?;
        }
        if r.remaining() != 0 {
            return Err(PayloadError::Mismatch {
                what: "bytes after the last block",
                got: r.remaining() as u64,
                expected: 0,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CodecKind;
    use crate::kernel::Function;
    use crate::partition::{array_split, group};
    use crate::protocol::TaskHeader;
    use crate::strategy::ComputeOnce;

    #[test]
    fn both_halves_round_trip_a_task_of_several_parts() {
        let input: Vec<f64> = (0..103).map(|i| i as f64 / 10.0).collect();
        let task = group(array_split(103, 4), 3).remove(0);
        for codec in CodecKind::all() {
            let mut output = vec![0.0; 103];
            let sg = SplitScatter { codec: codec.codec(), input: &input };
            let mut frame = Vec::new();
            let payload = sg.encode_task(0, &task, &mut frame).unwrap();
            if codec == CodecKind::RAW {
                assert_eq!(payload, 8 * task.len() as u64);
            }
            let header = TaskHeader { task: 0, start: 0, len: task.len() as u64, parts: 3 };
            let mut result = Vec::new();
            SplitCompute::new(Function::Sqrt, 1, codec).once(&header, &frame, &mut result).unwrap();
            sg.decode_result(Received::new(0, &task, &result), &mut output[task.span()]).unwrap();
            for i in task.span() {
                assert_eq!(output[i].to_bits(), input[i].sqrt().to_bits(), "{codec} at {i}");
            }
        }
    }

    #[test]
    fn worker_half_rejects_missing_and_extra_blocks() {
        let mut frame = Vec::new();
        encode_block(&crate::codec::Raw, &[1.0, 2.0], &mut frame).unwrap();
        let mut c = SplitCompute::new(Function::Exp, 1, CodecKind::RAW);
        let two = TaskHeader { task: 0, start: 0, len: 2, parts: 2 };
        assert!(c.once(&two, &frame, &mut Vec::new()).is_err());
        let zero = TaskHeader { parts: 0, ..two };
        assert!(c.once(&zero, &frame, &mut Vec::new()).is_err());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn worker_half_never_panics(parts in 0u32..8, payload in proptest::collection::vec(any::<u8>(), 0..600)) {
                for codec in CodecKind::all() {
                    let header = TaskHeader { task: 0, start: 0, len: 10, parts };
                    let _ = SplitCompute::new(Function::Exp, 1, codec).once(&header, &payload, &mut Vec::new());
                }
            }

            #[test]
            fn worker_half_never_panics_on_framed_garbage(elements in any::<u64>(), bytes in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..200)) {
                let mut payload = elements.to_le_bytes().to_vec();
                payload.extend_from_slice(&bytes.to_le_bytes());
                payload.extend_from_slice(&tail);
                for codec in CodecKind::all() {
                    let header = TaskHeader { task: 0, start: 0, len: 10, parts: 1 };
                    let _ = SplitCompute::new(Function::Exp, 1, codec).once(&header, &payload, &mut Vec::new());
                }
            }

            #[test]
            fn coordinator_half_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
                let input = vec![2.0; 30];
                let task = group(array_split(30, 3), 3).remove(0);
                for codec in CodecKind::all() {
                    let mut output = vec![0.0; 30];
                    let sg = SplitScatter { codec: codec.codec(), input: &input };
                    let out = &mut output[task.span()];
                    let _ = sg.decode_result(Received::new(0, &task, &payload), out);
                    let mut valid = Vec::new();
                    sg.encode_task(0, &task, &mut valid).unwrap();
                    let cut = cut.min(valid.len().saturating_sub(1));
                    prop_assert!(sg.decode_result(Received::new(0, &task, &valid[..cut]), out).is_err());
                }
            }
        }
    }
}
