//! The `rkyv` codec: rkyv 0.8's zero-copy archive. A block is an archived vector (the values'
//! own bytes, then a relative pointer and a length at the end); decoding it is validating the
//! archive (bytecheck) and reading the values in place, then copying them into the output
//! slice, which is what "decode" measures here. Built with rkyv's `unaligned` format, so an
//! archive can be read wherever it lands in a received frame (frames are not 8-aligned).

use super::{Codec, CodecError};
use crate::named::named;
use rkyv::rancor::Error;
use rkyv::vec::{ArchivedVec, VecResolver};
use rkyv::{Archive, Archived, Place, Serialize};

const NAME: &str = "rkyv";

/// rkyv 0.8, validated on access.
pub struct Rkyv;

/// A borrowed slice archived as rkyv archives a `Vec<f64>`, so encoding copies nothing
/// more than the archive's own bytes.
struct Block<'a>(&'a [f64]);

impl Archive for Block<'_> {
    type Archived = ArchivedVec<Archived<f64>>;
    type Resolver = VecResolver;

    fn resolve(&self, resolver: Self::Resolver, out: Place<Self::Archived>) {
        ArchivedVec::resolve_from_slice(self.0, resolver, out);
    }
}

impl<S> Serialize<S> for Block<'_>
where
    S: rkyv::rancor::Fallible + rkyv::ser::Allocator + rkyv::ser::Writer + ?Sized,
{
    fn serialize(&self, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        ArchivedVec::<Archived<f64>>::serialize_from_slice(self.0, serializer)
    }
}

fn malformed(e: impl std::fmt::Display) -> CodecError {
    super::malformed(NAME, e)
}

/// An archived f64: its 8 bytes (the unaligned little-endian format).
const ITEM: usize = std::mem::size_of::<Archived<f64>>();

named!(
    Rkyv,
    NAME,
    "rkyv 0.8, zero-copy: decode validates the archive and reads the values in place"
);

impl Codec for Rkyv {
    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let frame = std::mem::take(out);
        *out = rkyv::api::high::to_bytes_in::<_, Error>(&x, frame).map_err(malformed)?;
        Ok(())
    }

    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError> {
        let head = super::front(NAME, bytes, ITEM)?;
        let x = rkyv::access::<Archived<f64>, Error>(head).map_err(malformed)?;
        Ok((x.to_native(), ITEM))
    }

    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError> {
        // Straight into the frame (relative pointers do not mind what precedes the archive,
        // and the unaligned format needs no padding), its room reserved once.
        out.reserve(xs.len() * ITEM + std::mem::size_of::<ArchivedVec<Archived<f64>>>());
        let frame = std::mem::take(out);
        *out = rkyv::api::high::to_bytes_in::<_, Error>(&Block(xs), frame).map_err(malformed)?;
        Ok(())
    }

    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError> {
        let archived =
            rkyv::access::<ArchivedVec<Archived<f64>>, Error>(bytes).map_err(malformed)?;
        if archived.len() != out.len() {
            return Err(CodecError::LengthMismatch {
                codec: NAME,
                expected: out.len(),
                found: archived.len(),
            });
        }
        let used = archived.len() * ITEM;
        for (y, x) in out.iter_mut().zip(archived.iter()) {
            *y = x.to_native();
        }
        // The values, then the vector's pointer and length: nothing else may follow.
        let tail = std::mem::size_of::<ArchivedVec<Archived<f64>>>();
        if bytes.len() != used + tail {
            return Err(CodecError::Trailing {
                codec: NAME,
                extra: bytes.len().saturating_sub(used + tail),
            });
        }
        Ok(())
    }
}
