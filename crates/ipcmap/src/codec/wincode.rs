//! The `wincode` codec: wincode 0.6, bincode-compatible and maintained. Its default
//! configuration writes what bincode 1.x wrote (and bincode 2 writes with
//! `config::legacy()`): a u64 length, then 8 bytes a value; a test checks the bytes.

use super::{Codec, CodecError};
use crate::named::named;
use wincode::config::Configuration;

const NAME: &str = "wincode";

/// wincode with its default (bincode-legacy) layout, its preallocation limit raised to the
/// largest frame ipcmap sends.
pub struct Wincode;

/// The largest sequence wincode may allocate for: 1 GiB (its default is 4 MiB).
const LIMIT: usize = 1 << 30;

fn cfg() -> impl wincode::config::Config {
    Configuration::default().with_preallocation_size_limit::<LIMIT>()
}

fn malformed(e: impl std::fmt::Display) -> CodecError {
    super::malformed(NAME, e)
}

const WIDTH: usize = std::mem::size_of::<f64>();

named!(Wincode, NAME, "wincode 0.6: bincode-compatible (bincode 1's layout: a u64 length, 8 bytes a value), maintained");

impl Codec for Wincode {
    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        wincode::config::serialize_into(&mut *out, &x, cfg()).map_err(malformed)
    }

    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError> {
        let head = super::front(NAME, bytes, WIDTH)?;
        let x: f64 = wincode::config::deserialize(head, cfg()).map_err(malformed)?;
        Ok((x, WIDTH))
    }

    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
        wincode::config::serialize_into(&mut *out, xs, cfg()).map_err(malformed)
    }

    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        // The length first, so a wrong count is refused before anything is allocated.
        let found = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(CodecError::Truncated { codec: NAME, needed: 8, available: bytes.len() })?;
        if found != out.len() as u64 {
            return Err(CodecError::LengthMismatch {
                codec: NAME,
                expected: out.len(),
                found: usize::try_from(found).unwrap_or(usize::MAX),
            });
        }
        let values: Vec<f64> = wincode::config::deserialize_exact(bytes, cfg()).map_err(|e| {
            match bytes.len().cmp(&(8 + out.len() * WIDTH)) {
                std::cmp::Ordering::Less => CodecError::Truncated {
                    codec: NAME,
                    needed: 8 + out.len() * WIDTH,
                    available: bytes.len(),
                },
                _ => malformed(e),
            }
        })?;
        out.copy_from_slice(&values);
        Ok(())
    }
}
