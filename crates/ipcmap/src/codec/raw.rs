//! The `raw` codec: the f64s' own little-endian bytes, no length, no framing.

use super::{Codec, CodecError};
use crate::named::named;

const NAME: &str = "raw";
const WIDTH: usize = std::mem::size_of::<f64>();

/// The values' own bytes: 8 a value, nothing else. The floor every other codec is measured against.
pub struct Raw;

named!(Raw, NAME, "the f64s' own little-endian bytes, no framing: the floor");

impl Codec for Raw {
    fn own_bytes(&self) -> bool {
        cfg!(target_endian = "little")
    }

    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&x.to_le_bytes());
        Ok(())
    }

    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError> {
        let head = super::front(NAME, bytes, WIDTH)?;
        let head: [u8; WIDTH] = head.try_into().map_err(|e| super::malformed(NAME, e))?;
        Ok((f64::from_le_bytes(head), WIDTH))
    }

    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if cfg!(target_endian = "little") {
            out.extend_from_slice(bytemuck::cast_slice(xs));
        } else {
            xs.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        Ok(())
    }

    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        if !bytes.len().is_multiple_of(WIDTH) {
            return Err(CodecError::Truncated {
                codec: NAME,
                needed: bytes.len().next_multiple_of(WIDTH),
                available: bytes.len(),
            });
        }
        let found = bytes.len() / WIDTH;
        if found != out.len() {
            return Err(CodecError::LengthMismatch { codec: NAME, expected: out.len(), found });
        }
        // `out` is f64-aligned; the received bytes need not be, so copy bytes into it.
        bytemuck::cast_slice_mut::<f64, u8>(out).copy_from_slice(bytes);
        if cfg!(target_endian = "big") {
            out.iter_mut().for_each(|x| *x = f64::from_bits(u64::from_le(x.to_bits())));
        }
        Ok(())
    }
}
