//! The `pickle` codec: Python's pickle format, protocol 3, as `serde-pickle` 1.2 writes it. A
//! block is a list of floats, exactly what `multiprocessing.Pool.map(exp, data)` pickles for
//! each chunk; an item is one pickled float (12 bytes: PROTO 3, BINFLOAT and its 8 big-endian
//! bytes, STOP). Python's own `pickle.loads` reads these bytes, and this codec reads Python's
//! (`coordinator/tests/python.rs`), so the format's cost is measured apart from the
//! interpreter's.

use super::{check_block, Codec, CodecError, IntoSlice};
use crate::named::named;
use serde::de::DeserializeSeed;
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

    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        let expected = out.len();
        let mut de = serde_pickle::Deserializer::new(std::io::Cursor::new(bytes), DeOptions::new());
        let found = IntoSlice(out).deserialize(&mut de).map_err(malformed)?;
        de.end().map_err(|_| CodecError::Trailing { codec: NAME, extra: 1 })?;
        check_block(NAME, expected, found, bytes.len(), bytes.len())
    }
}
