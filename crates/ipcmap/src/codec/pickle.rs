//! The `pickle` codec: Python's pickle format, protocol 3, as `serde-pickle` 1.2 writes it. A
//! block is a list of floats, exactly what `multiprocessing.Pool.map(exp, data)` pickles for
//! each chunk; an item is one pickled float (12 bytes: PROTO 3, BINFLOAT and its 8 big-endian
//! bytes, STOP). Python's own `pickle.loads` reads these bytes, and this codec reads Python's
//! (`coordinator/tests/python.rs`), so the format's cost is measured apart from the
//! interpreter's.

use super::{check_block, Codec, CodecError};
use crate::named::named;
use serde_pickle::{DeOptions, SerOptions};

const NAME: &str = "pickle";
/// One pickled float: PROTO, its version, BINFLOAT and 8 bytes, STOP.
const ITEM: usize = 12;

/// Python's pickle, protocol 3.
pub struct Pickle;

fn malformed(e: impl std::fmt::Display) -> CodecError {
    super::malformed(NAME, e)
}

named!(
    Pickle,
    NAME,
    "Python's pickle (protocol 3, serde-pickle): a list of floats, as Pool.map pickles a chunk"
);

impl Codec for Pickle {
    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_pickle::to_writer(out, &x, SerOptions::new()).map_err(malformed)
    }

    /// The 12 bytes of one float as both serde-pickle and CPython write it (PROTO 2 or 3,
    /// BINFLOAT, STOP) are read directly: serde-pickle's own reader costs about 0.25 µs a
    /// call before it reads a byte (a fresh 8 KiB buffer), which is the library's cost, not
    /// the format's. Any other bytes go through serde-pickle.
    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError> {
        let head = super::front(NAME, bytes, ITEM)?;
        if let [0x80, 2 | 3, b'G', value @ .., b'.'] = head {
            let value: [u8; 8] = value.try_into().map_err(malformed)?;
            return Ok((f64::from_be_bytes(value), ITEM));
        }
        let x = serde_pickle::from_slice::<f64>(head, DeOptions::new()).map_err(malformed)?;
        Ok((x, ITEM))
    }

    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_pickle::to_writer(out, &xs, SerOptions::new()).map_err(malformed)
    }

    /// A block is read by `read_float_list`, a flat reader of exactly the opcodes a pickled
    /// list of floats holds: a peer's bytes never build a value tree (serde-pickle's, whose
    /// depth a nested list sets, overflowed the stack at 200,000 levels), and nothing is
    /// allocated for them.
    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        let (found, used) = read_float_list(bytes, out)?;
        if used != bytes.len() {
            return Err(CodecError::Trailing { codec: NAME, extra: bytes.len() - used });
        }
        check_block(NAME, out.len(), found, bytes.len(), bytes.len())
    }
}

/// Reads one pickled list of floats (any protocol 2-5, as serde-pickle and CPython write it:
/// PROTO, FRAMEs, EMPTY_LIST, memo puts, MARK, BINFLOATs, APPENDS or APPEND, STOP) into
/// `out`, in one pass with no recursion. Returns the floats read and the bytes used; any other
/// opcode (a nested list, a string, a reference) is malformed, as is more floats than `out`
/// holds.
fn read_float_list(bytes: &[u8], out: &mut [f64]) -> Result<(usize, usize), CodecError> {
    let mut at = 0;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], CodecError> {
        let got = bytes.get(*at..*at + n).ok_or(CodecError::Truncated {
            codec: NAME,
            needed: *at + n,
            available: bytes.len(),
        })?;
        *at += n;
        Ok(got)
    };
    let (mut list, mut marked, mut filled, room) = (false, false, 0, out.len());
    loop {
        let op = take(&mut at, 1)?[0];
        match op {
            0x80 => drop(take(&mut at, 1)?),          // PROTO n
            0x95 => drop(take(&mut at, 8)?),          // FRAME length
            0x94 => {}                                // MEMOIZE
            b'q' => drop(take(&mut at, 1)?),          // BINPUT
            b'r' => drop(take(&mut at, 4)?),          // LONG_BINPUT
            b']' if !list => list = true,             // EMPTY_LIST, once
            b'(' if list && !marked => marked = true, // MARK
            b'e' if marked => marked = false,         // APPENDS
            b'a' if list && !marked => {}             // APPEND (after one float)
            b'G' if list => {
                let value: [u8; 8] = take(&mut at, 8)?.try_into().map_err(malformed)?;
                let slot = out
                    .get_mut(filled)
                    .ok_or_else(|| malformed(format!("block holds more than {room} values")))?;
                *slot = f64::from_be_bytes(value);
                filled += 1;
            }
            b'.' if list && !marked => return Ok((filled, at)), // STOP
            _ => {
                return Err(malformed(format!(
                    "opcode 0x{op:02x} at byte {}: not part of a list of floats",
                    at - 1
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_nested_200000_deep_is_refused_without_recursion() {
        let mut bytes = vec![0x80, 3];
        bytes.extend(std::iter::repeat_n([b']', b'('], 200_000).flatten());
        bytes.push(b'.');
        let mut out = [0.0; 4];
        let e = Pickle.decode_block_into(&bytes, &mut out).unwrap_err();
        assert!(e.to_string().contains("not part of a list of floats"), "{e}");
    }

    #[test]
    fn python_and_serde_pickle_lists_are_read_and_a_lie_refused() {
        let xs: Vec<f64> = (0..2500).map(|i| i as f64 * 0.5).collect();
        let mut bytes = Vec::new();
        Pickle.encode_block(&xs, &mut bytes).unwrap();
        let mut out = vec![0.0; xs.len()];
        Pickle.decode_block_into(&bytes, &mut out).unwrap();
        assert_eq!(out, xs);
        // CPython 3.11, pickle.dumps([0.5, 1.5], protocol=4): FRAME, MEMOIZE, APPENDS.
        let python = b"\x80\x04\x95\x19\x00\x00\x00\x00\x00\x00\x00]\x94(G?\xe0\x00\x00\x00\x00\x00\x00G?\xf8\x00\x00\x00\x00\x00\x00e.";
        let mut two = [0.0; 2];
        Pickle.decode_block_into(python, &mut two).unwrap();
        assert_eq!(two, [0.5, 1.5]);
        let mut short = vec![0.0; xs.len() - 1];
        assert!(Pickle.decode_block_into(&bytes, &mut short).is_err(), "more values than room");
        assert!(Pickle.decode_block_into(&bytes[..bytes.len() - 1], &mut out).is_err());
    }
}
