//! The `postcard` codec: postcard over serde, the format ipc-channel itself uses.

use super::{check_block, Codec, CodecError, IntoSlice};
use crate::named::named;

const NAME: &str = "postcard";

/// postcard: varint lengths, 8 little-endian bytes an f64.
pub struct Postcard;

fn malformed(e: postcard::Error) -> CodecError {
    CodecError::Malformed { codec: NAME, message: e.to_string() }
}

named!(Postcard, NAME, "postcard over serde, what ipc-channel uses for typed messages");

impl Codec for Postcard {
    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let buf = std::mem::take(out);
        *out = postcard::to_extend(&x, buf).map_err(malformed)?;
        Ok(())
    }

    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError> {
        let (x, rest) = postcard::take_from_bytes::<f64>(bytes).map_err(|e| match e {
            postcard::Error::DeserializeUnexpectedEnd => {
                CodecError::Truncated { codec: NAME, needed: 8, available: bytes.len() }
            }
            other => malformed(other),
        })?;
        Ok((x, bytes.len() - rest.len()))
    }

    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let buf = std::mem::take(out);
        *out = postcard::to_extend(xs, buf).map_err(malformed)?;
        Ok(())
    }

    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        use serde::de::DeserializeSeed;
        let expected = out.len();
        let mut deserializer = postcard::Deserializer::from_bytes(bytes);
        let found = IntoSlice(out).deserialize(&mut deserializer).map_err(malformed)?;
        let rest = deserializer.finalize().map_err(malformed)?;
        check_block(NAME, expected, found, bytes.len() - rest.len(), bytes.len())
    }
}
