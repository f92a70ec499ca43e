//! The `bitcode` codec: bitcode 0.6, which packs what it can (lengths, integers, and floats
//! whose bits it can shrink: 0.0 takes 2 bytes). Its format has no item boundaries, so an
//! item is one byte of length, then bitcode's bytes for the one f64.

use super::{Codec, CodecError};
use crate::named::named;

const NAME: &str = "bitcode";

/// bitcode 0.6, native `Encode`/`Decode` (no serde).
pub struct Bitcode;

fn malformed(e: impl std::fmt::Display) -> CodecError {
    super::malformed(NAME, e)
}

named!(Bitcode, NAME, "bitcode 0.6: packs lengths, integers and the floats it can");

impl Codec for Bitcode {
    fn min_bytes_per_value(&self) -> usize {
        1
    }

    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let bytes = bitcode::encode(&x);
        let len = u8::try_from(bytes.len())
            .map_err(|_| malformed(format!("an f64 took {} bytes", bytes.len())))?;
        out.push(len);
        out.extend_from_slice(&bytes);
        Ok(())
    }

    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError> {
        let len = super::front(NAME, bytes, 1)?[0] as usize;
        let item = &super::front(NAME, bytes, 1 + len)?[1..];
        let x: f64 = bitcode::decode(item).map_err(malformed)?;
        Ok((x, 1 + len))
    }

    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&bitcode::encode(xs));
        Ok(())
    }

    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        let values: Vec<f64> = bitcode::decode(bytes).map_err(malformed)?;
        if values.len() != out.len() {
            return Err(CodecError::LengthMismatch {
                codec: NAME,
                expected: out.len(),
                found: values.len(),
            });
        }
        out.copy_from_slice(&values);
        Ok(())
    }
}
