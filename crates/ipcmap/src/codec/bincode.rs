//! The `bincode` codec: bincode 2 over serde, standard configuration.

use super::{check_block, Codec, CodecError, IntoSlice};
use crate::named::named;
use bincode::config::{self, Configuration};

const NAME: &str = "bincode";

/// bincode 2 with its standard configuration (varint lengths, 8 bytes an f64).
pub struct Bincode;

fn cfg() -> Configuration {
    config::standard()
}

fn malformed(e: impl std::fmt::Display) -> CodecError {
    CodecError::Malformed { codec: NAME, message: e.to_string() }
}

named!(Bincode, NAME, "bincode 2 over serde, standard configuration: a varint length, 8 bytes a value (the default; RUSTSEC-2025-0141: unmaintained)");

impl Codec for Bincode {
    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        bincode::serde::encode_into_std_write(x, out, cfg()).map_err(malformed)?;
        Ok(())
    }

    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError> {
        bincode::serde::decode_from_slice::<f64, _>(bytes, cfg()).map_err(|e| match e {
            bincode::error::DecodeError::UnexpectedEnd { additional } => CodecError::Truncated {
                codec: NAME,
                needed: bytes.len() + additional,
                available: bytes.len(),
            },
            other => malformed(other),
        })
    }

    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
        bincode::serde::encode_into_std_write(xs, out, cfg()).map_err(malformed)?;
        Ok(())
    }

    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        let expected = out.len();
        let (found, used) = bincode::serde::seed_decode_from_slice(IntoSlice(out), bytes, cfg())
            .map_err(malformed)?;
        check_block(NAME, expected, found, used, bytes.len())
    }
}
