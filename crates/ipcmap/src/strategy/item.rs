//! `item`: `pool.map(f, data, chunksize=C)`. Tasks of C items; every item is encoded as its own
//! value (one codec call per float, like pickling each one), the worker applies the function
//! item by item, and the results come back item by item.

use super::{ns_since, on_processes_encoded, Compute, Info, Run, Strategy, TaskIn, TaskOut};
use crate::codec::{Codec, CodecError};
use crate::error::{PayloadError, RunError};
use crate::kernel;
use crate::partition::{self, Task};
use crate::protocol::Setup;
use crate::scheduler::{Received, ScatterGather};
use crate::transport::place::Piece;
use std::time::Instant;

/// `pool.map(f, data, chunksize=C)`: items encoded one by one.
pub struct Item;

/// Its `--help` line.
const ABOUT: &str = "every float its own value, like pool.map(exp, data, chunksize=C)";

/// The most items a default chunk holds: 4M (about 36 MB of bincode); `Pool.map`'s rule is
/// under it up to 16M values on 1 worker, 32M on 2.
pub const MAX_DEFAULT_CHUNK: usize = 1 << 22;

impl Strategy for Item {
    /// Every value encoded and decoded on its own both ways, pipelined with the compute.
    fn predict(&self, l: &crate::costs::Load<'_>) -> Option<crate::costs::Prediction> {
        l.shipped(true)
    }

    fn info(&self) -> Info {
        Info::local("item", ABOUT).on_processes().encoded().unsplit()
    }

    /// `Pool.map`'s own rule: ceil(n / (4 * workers)).
    /// `Pool.map`'s own rule, up to [`MAX_DEFAULT_CHUNK`] items: at 10^9 the rule's 125M-item
    /// frames (over 1 GB each) would take ipc-channel's slow path and several GB in flight.
    fn default_chunksize(&self, n: usize, workers: usize) -> Option<usize> {
        Some(partition::pool_map_default_chunksize(n, workers).min(MAX_DEFAULT_CHUNK))
    }

    fn tasks(&self, s: &crate::settings::Settings, chunksize: usize) -> Vec<Task> {
        partition::item_tasks(s.n, chunksize)
    }

    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        on_processes_encoded(run, |codec, input| Box::new(ItemScatter { codec, input }))
    }

    fn worker(&self, setup: &Setup) -> Result<Box<dyn Compute>, PayloadError> {
        Ok(Box::new(ItemCompute::new(setup.function, setup.work, setup.codec)))
    }
}

struct ItemScatter<'a> {
    codec: &'static dyn Codec,
    input: &'a [f64],
}

impl ScatterGather for ItemScatter<'_> {
    fn encode_task(&self, _: u32, task: &Task, out: &mut Vec<u8>) -> Result<u64, PayloadError> {
        let before = out.len();
        encode_items(self.codec, &self.input[task.span()], out)?;
        Ok((out.len() - before) as u64)
    }

    fn decode_result(&self, got: Received<'_>, out: &mut [f64]) -> Result<u64, PayloadError> {
        let payload = got.payload;
        decode_items(self.codec, payload, out)?;
        Ok(payload.len() as u64)
    }

    /// The items' values, one after another.
    fn result_pieces(&self, task: &Task) -> Option<Vec<Piece>> {
        let values = Piece::Values(task.span());
        self.codec.own_bytes().then(|| vec![values])
    }
}

/// Appends every value, each encoded on its own.
fn encode_items(codec: &dyn Codec, values: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
    values.iter().try_for_each(|&x| codec.encode_item(x, out))
}

/// Decodes exactly `out.len()` items that must fill `bytes`.
fn decode_items(codec: &dyn Codec, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
    let mut at = 0;
    for y in out.iter_mut() {
        let (x, used) = codec.decode_item(&bytes[at..])?;
        *y = x;
        at += used;
    }
    if at != bytes.len() {
        return Err(CodecError::Trailing { codec: codec.name(), extra: bytes.len() - at });
    }
    Ok(())
}

/// The worker half of item mode.
pub type ItemCompute = super::CodedCompute<Item>;

impl Compute for ItemCompute {
    fn compute(&mut self, task: TaskIn<'_>, out: TaskOut<'_>) -> Result<(), PayloadError> {
        let (TaskIn { header, payload }, TaskOut { bytes: out, timing }) = (task, out);
        let fits = payload.len() / self.codec.min_bytes_per_value();
        let len = usize::try_from(header.len).ok().filter(|&len| len <= fits).ok_or(
            PayloadError::Mismatch {
                what: "items that fit in the payload",
                got: fits as u64,
                expected: header.len,
            },
        )?;
        let t = Instant::now();
        self.input.resize(len, 0.0);
        decode_items(self.codec, payload, &mut self.input)?;
        timing.decode_ns = ns_since(t);

        let t = Instant::now();
        self.output.resize(len, 0.0);
        for (y, &x) in self.output.iter_mut().zip(&self.input) {
            *y = kernel::apply_one_work(self.function, self.work, x);
        }
        timing.compute_ns = ns_since(t);

        let t = Instant::now();
        encode_items(self.codec, &self.output, out)?;
        timing.encode_ns = ns_since(t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CodecKind;
    use crate::kernel::Function;
    use crate::protocol::TaskHeader;
    use crate::strategy::ComputeOnce;

    #[test]
    fn worker_half_computes_what_the_kernel_computes() {
        let input = [0.5, 1.0, -2.0];
        for codec in CodecKind::all() {
            let mut payload = Vec::new();
            encode_items(codec.codec(), &input, &mut payload).unwrap();
            let header = TaskHeader { task: 0, start: 0, len: 3, parts: 1 };
            let mut out = Vec::new();
            ItemCompute::new(Function::Exp, 1, codec).once(&header, &payload, &mut out).unwrap();
            let mut got = [0.0; 3];
            decode_items(codec.codec(), &out, &mut got).unwrap();
            assert_eq!(got, input.map(|x| kernel::apply_one(Function::Exp, x)));
        }
    }

    #[test]
    fn worker_half_refuses_a_length_the_payload_cannot_hold() {
        let header = TaskHeader { task: 0, start: 0, len: u64::MAX, parts: 1 };
        let mut c = ItemCompute::new(Function::Exp, 1, CodecKind::RAW);
        assert!(c.once(&header, &[0; 16], &mut Vec::new()).is_err());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any task frame the worker gets is decoded or refused, never a panic.
            #[test]
            fn worker_half_never_panics(len in 0u64..64, payload in proptest::collection::vec(any::<u8>(), 0..600)) {
                for codec in CodecKind::all() {
                    let header = TaskHeader { task: 0, start: 0, len, parts: 1 };
                    let _ = ItemCompute::new(Function::Exp, 1, codec).once(&header, &payload, &mut Vec::new());
                }
            }

            /// Any result payload the coordinator gets is placed or refused, never a panic.
            #[test]
            fn coordinator_half_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
                let input = vec![1.0; 40];
                let task = crate::partition::item_tasks(40, 40).remove(0);
                for codec in CodecKind::all() {
                    let mut output = vec![0.0; 40];
                    let sg = ItemScatter { codec: codec.codec(), input: &input };
                    let _ = sg.decode_result(Received::new(0, &task, &payload), &mut output);
                    // A valid result, truncated anywhere, is refused.
                    let mut valid = Vec::new();
                    encode_items(codec.codec(), &input, &mut valid).unwrap();
                    let cut = cut.min(valid.len().saturating_sub(1));
                    prop_assert!(sg.decode_result(Received::new(0, &task, &valid[..cut]), &mut output).is_err());
                }
            }
        }
    }
}
