//! The `npy` codec: a numpy array as pickle protocol 5 moves it out of band, a small header
//! naming dtype and shape, then the raw buffer. The header is numpy's own `.npy` format
//! (version 1.0): `\x93NUMPY`, the version, a little-endian u16 header length, then the
//! header dict `{'descr': '<f8', 'fortran_order': False, 'shape': (N,), }` padded with
//! spaces to a multiple of 64 bytes and ended by a newline; the values follow, 8 bytes each.
//! `numpy.load` reads these bytes, and this codec reads what `numpy.save` writes
//! (`coordinator/tests/python.rs`). An item is a 0-d array (shape `()`), as `numpy.save` writes
//! one float64.

use super::{Codec, CodecError};
use crate::named::named;

const NAME: &str = "npy";
const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";
const WIDTH: usize = std::mem::size_of::<f64>();
/// The header's alignment: numpy pads the magic, length and dict to a multiple of 64.
const ALIGN: usize = 64;

/// numpy's `.npy` format: header, then the f64s' own bytes.
pub struct Npy;

fn malformed(message: impl std::fmt::Display) -> CodecError {
    super::malformed(NAME, message)
}

/// Appends the header of a float64 array of `shape` (`"()"` or `"(N,)"`).
fn write_header(shape: &str, out: &mut Vec<u8>) {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = MAGIC.len() + 2 + dict.len() + 1;
    let len = dict.len() + 1 + (ALIGN - unpadded % ALIGN) % ALIGN;
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(out.len() + len - dict.len() - 1, b' ');
    out.push(b'\n');
}

/// Writes `values` as a `.npy` file (what `numpy.save` writes for a 1-d float64 array), in
/// pieces: no second copy of the values is made.
pub fn write_array(values: &[f64], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut header = Vec::new();
    write_header(&format!("({},)", values.len()), &mut header);
    out.write_all(&header)?;
    let mut bytes = Vec::with_capacity(64 << 10);
    for piece in values.chunks(8 << 10) {
        bytes.clear();
        bytes.extend(piece.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&bytes)?;
    }
    Ok(())
}

/// The header of a 0-d float64 array, made once.
fn scalar_header() -> &'static [u8] {
    static HEADER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    HEADER.get_or_init(|| {
        let mut header = Vec::new();
        write_header("()", &mut header);
        header
    })
}

/// Reads a header from the front of `bytes`: the shape's element count (`None` for a 0-d
/// array) and where the data starts. Only what this codec writes is accepted: little-endian
/// float64 in C order, one dimension or none.
fn read_header(bytes: &[u8]) -> Result<(Option<usize>, usize), CodecError> {
    let truncated = |needed| CodecError::Truncated { codec: NAME, needed, available: bytes.len() };
    let fixed = MAGIC.len() + 2;
    let head = super::front(NAME, bytes, fixed)?;
    if &head[..MAGIC.len()] != MAGIC {
        return Err(malformed("not an .npy version 1.0 header"));
    }
    let len = u16::from_le_bytes([head[MAGIC.len()], head[MAGIC.len() + 1]]) as usize;
    let dict = bytes.get(fixed..fixed + len).ok_or(truncated(fixed + len))?;
    let dict = std::str::from_utf8(dict).map_err(|_| malformed("a header that is not text"))?;
    let dict = dict.trim_end();
    let field = |key: &str| {
        let at = dict.find(&format!("'{key}': "))? + key.len() + 4;
        Some(&dict[at..])
    };
    if !field("descr").is_some_and(|v| v.starts_with("'<f8'")) {
        return Err(malformed(format!("not little-endian float64: {dict}")));
    }
    if !field("fortran_order").is_some_and(|v| v.starts_with("False")) {
        return Err(malformed(format!("not in C order: {dict}")));
    }
    let shape = field("shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split_once(')'))
        .map(|(inside, _)| inside.trim())
        .ok_or_else(|| malformed(format!("no shape: {dict}")))?;
    let count = match shape {
        "" => None,
        one => Some(
            one.strip_suffix(',')
                .and_then(|n| n.trim().parse::<usize>().ok())
                .ok_or_else(|| malformed(format!("not one dimension: ({shape})")))?,
        ),
    };
    Ok((count, fixed + len))
}

named!(
    Npy,
    NAME,
    "numpy's buffer, as pickle protocol 5 sends it out of band: an .npy header, then the raw f64s"
);

impl Codec for Npy {
    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(scalar_header());
        out.extend_from_slice(&x.to_le_bytes());
        Ok(())
    }

    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError> {
        // The header this codec (and numpy.save) writes for one float64 is always the same.
        let header = scalar_header();
        if let Some(value) = bytes
            .strip_prefix(header)
            .and_then(|rest| rest.get(..WIDTH))
            .and_then(|b| b.try_into().ok())
        {
            return Ok((f64::from_le_bytes(value), header.len() + WIDTH));
        }
        let (count, at) = read_header(bytes)?;
        if count.is_some() {
            return Err(malformed("an item must be a 0-d array"));
        }
        let value = bytes
            .get(at..at + WIDTH)
            .and_then(|b| b.try_into().ok())
            .map(f64::from_le_bytes)
            .ok_or(CodecError::Truncated {
                codec: NAME,
                needed: at + WIDTH,
                available: bytes.len(),
            })?;
        Ok((value, at + WIDTH))
    }

    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
        write_header(&format!("({},)", xs.len()), out);
        super::Raw.encode_block(xs, out)
    }

    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        let (count, at) = read_header(bytes)?;
        let found = count.ok_or_else(|| malformed("a block must be a 1-d array"))?;
        if found != out.len() {
            return Err(CodecError::LengthMismatch { codec: NAME, expected: out.len(), found });
        }
        let data = &bytes[at..];
        let want = out.len() * WIDTH;
        match data.len().cmp(&want) {
            std::cmp::Ordering::Less => Err(CodecError::Truncated {
                codec: NAME,
                needed: at + want,
                available: bytes.len(),
            }),
            std::cmp::Ordering::Greater => {
                Err(CodecError::Trailing { codec: NAME, extra: data.len() - want })
            }
            std::cmp::Ordering::Equal => super::Raw.decode_block_into(data, out),
        }
    }
}
