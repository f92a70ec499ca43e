//! Codecs: how f64 values become bytes on the wire (`--codec`) and back.
//!
//! The codec is what item and split modes measure, so every codec encodes into plain bytes that
//! travel in frames over whichever transport carries them. Two shapes are measured, after the tutorial:
//! - an *item* is one value encoded on its own (one codec call per float, like pickling each one);
//! - a *block* is a whole sub-vector encoded as one value (like pickling one numpy array).

mod bincode;
mod bitcode;
pub mod npy;
mod pickle;
mod postcard;
mod raw;
mod rkyv;
mod wincode;

use crate::named::registry_slice;
pub use crate::named::Named;
use serde::Deserialize;

pub use self::bincode::Bincode;
pub use self::bitcode::Bitcode;
pub use self::npy::Npy;
pub use self::pickle::Pickle;
pub use self::postcard::Postcard;
pub use self::raw::Raw;
pub use self::rkyv::Rkyv;
pub use self::wincode::Wincode;

/// Why bytes could not be decoded (or, rarely, values encoded).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes end before the value does.
    #[error("{codec}: truncated input: needed {needed} bytes, {available} available")]
    Truncated { codec: &'static str, needed: usize, available: usize },
    /// The bytes decode to a different number of values than expected.
    #[error("{codec}: block holds {found} values, expected {expected}")]
    LengthMismatch { codec: &'static str, expected: usize, found: usize },
    /// Bytes left over after the value.
    #[error("{codec}: {extra} trailing bytes after the value")]
    Trailing { codec: &'static str, extra: usize },
    /// The codec's own library rejected the bytes.
    #[error("{codec}: {message}")]
    Malformed { codec: &'static str, message: String },
}

/// The error for bytes `codec`'s own library (or its format's rules) rejected.
pub(crate) fn malformed(codec: &'static str, e: impl std::fmt::Display) -> CodecError {
    CodecError::Malformed { codec, message: e.to_string() }
}

/// The first `n` bytes of `bytes`, or the truncation error that names `codec`.
pub(crate) fn front<'b>(
    codec: &'static str,
    bytes: &'b [u8],
    n: usize,
) -> Result<&'b [u8], CodecError> {
    bytes.get(..n).ok_or(CodecError::Truncated { codec, needed: n, available: bytes.len() })
}

/// One way of turning f64 values into bytes and back.
pub trait Codec: Named + Sync {
    /// The fewest bytes it spends on one f64; decoders use it to bound allocations before
    /// decoding untrusted input.
    fn min_bytes_per_value(&self) -> usize {
        8
    }
    /// Its items and blocks are the values' own little-endian bytes and nothing else, so a
    /// transport can read them straight into place (raw, on a little-endian machine).
    fn own_bytes(&self) -> bool {
        false
    }
    /// Appends `x`, encoded on its own, to `out`.
    fn encode_item(&self, x: f64, out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decodes one item from the front of `bytes`: the value and how many bytes it used.
    fn decode_item(&self, bytes: &[u8]) -> Result<(f64, usize), CodecError>;
    /// Appends the whole slice `xs`, encoded as one value, to `out`.
    fn encode_block(&self, xs: &[f64], out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decodes a block that must hold exactly `out.len()` values and nothing more, into `out`.
    fn decode_block_into(&self, bytes: &[u8], out: &mut [f64]) -> Result<(), CodecError>;
}

/// Every codec, in the order `--help` lists them: its name, then its value. To add one: a file
/// in this folder implementing [`Codec`], and its line here; `--codec`, sweeps, the probe and
/// the tests that run for every codec (one `#[test]` per codec and behaviour) follow.
#[macro_export]
macro_rules! for_each_codec {
    ($($then:ident)::+!($($args:tt)*)) => {
        $($then)::+! { [$($args)*]
            bincode => &Bincode,
            postcard => &Postcard,
            raw => &Raw,
            pickle => &Pickle,
            npy => &Npy,
            rkyv => &Rkyv,
            wincode => &Wincode,
            bitcode => &Bitcode,
        }
    };
}

/// Every codec, in the order `--help` lists them ([`for_each_codec!`]).
pub static REGISTRY: &[&dyn Codec] = crate::for_each_codec!(registry_slice!());

/// The codec named by `--codec`: a handle on a [`REGISTRY`] entry, compared, hashed and
/// serialized by its name.
#[derive(Clone, Copy)]
pub struct CodecKind(&'static dyn Codec);

impl CodecKind {
    /// bincode 2 over serde (the default): a varint length, then 8 bytes a value.
    pub const BINCODE: CodecKind = CodecKind(&Bincode);
    /// postcard over serde (what ipc-channel uses for typed messages).
    pub const POSTCARD: CodecKind = CodecKind(&Postcard);
    /// The f64s' own bytes, no framing at all.
    pub const RAW: CodecKind = CodecKind(&Raw);

    /// Every codec, in registry order.
    pub fn all() -> impl Iterator<Item = CodecKind> {
        REGISTRY.iter().map(|&c| CodecKind(c))
    }

    /// The codec called `name`.
    pub fn named(name: &str) -> Option<CodecKind> {
        CodecKind::all().find(|c| c.name() == name)
    }

    /// The codec itself.
    pub fn codec(self) -> &'static dyn Codec {
        self.0
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

by_name!(CodecKind);

impl schemars::JsonSchema for CodecKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CodecKind".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = CodecKind::all().map(CodecKind::name).collect();
        schemars::json_schema!({
            "description": "A codec, by its name on the command line (`--codec`).",
            "type": "string",
            "enum": names,
        })
    }
}

impl<'de> Deserialize<'de> for CodecKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        CodecKind::named(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("no codec called {name:?}")))
    }
}

/// Deserializes a sequence of f64 straight into a slice, with no intermediate vector: the
/// serde codecs decode blocks with it. Its value is the number of elements written.
pub(crate) struct IntoSlice<'a>(pub &'a mut [f64]);

impl<'de> serde::de::DeserializeSeed<'de> for IntoSlice<'_> {
    type Value = usize;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for IntoSlice<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a sequence of {} f64", self.0.len())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        use serde::de::Error;
        let expected = self.0.len();
        if let Some(len) = seq.size_hint().filter(|&len| len != expected) {
            return Err(A::Error::custom(format!("block holds {len} values, expected {expected}")));
        }
        let mut filled = 0;
        while let Some(x) = seq.next_element::<f64>()? {
            let slot = self.0.get_mut(filled).ok_or_else(|| {
                A::Error::custom(format!("block holds more than {expected} values"))
            })?;
            *slot = x;
            filled += 1;
        }
        Ok(filled)
    }
}

/// Checks that a decoded block has the expected length and used every byte.
fn check_block(
    codec: &'static str,
    expected: usize,
    found: usize,
    used: usize,
    available: usize,
) -> Result<(), CodecError> {
    if found != expected {
        return Err(CodecError::LengthMismatch { codec, expected, found });
    }
    if used != available {
        return Err(CodecError::Trailing { codec, extra: available - used });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: [f64; 7] =
        [0.0, -0.0, 1.5, f64::MIN_POSITIVE, f64::MAX, f64::INFINITY, f64::NAN];

    #[test]
    fn every_codec_round_trips_items_bit_for_bit() {
        for kind in CodecKind::all() {
            let codec = kind.codec();
            let mut bytes = Vec::new();
            for x in SAMPLES {
                codec.encode_item(x, &mut bytes).unwrap();
            }
            let mut at = 0;
            for x in SAMPLES {
                let (y, used) = codec.decode_item(&bytes[at..]).unwrap();
                assert_eq!(x.to_bits(), y.to_bits(), "{kind}");
                at += used;
            }
            assert_eq!(at, bytes.len());
        }
    }

    #[test]
    fn every_codec_round_trips_blocks_bit_for_bit() {
        let xs: Vec<f64> = (0..1000).map(|i| (i as f64).sqrt() - 3.0).chain(SAMPLES).collect();
        for kind in CodecKind::all() {
            let codec = kind.codec();
            let mut bytes = vec![0xAA]; // blocks append: keep what was there
            codec.encode_block(&xs, &mut bytes).unwrap();
            let mut out = vec![0.0; xs.len()];
            codec.decode_block_into(&bytes[1..], &mut out).unwrap();
            assert!(xs.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "{kind}");
        }
    }

    #[test]
    fn truncated_and_mismatched_input_is_an_error_not_a_panic() {
        let xs = [1.0, 2.0, 3.0];
        for kind in CodecKind::all() {
            let codec = kind.codec();
            let mut bytes = Vec::new();
            codec.encode_block(&xs, &mut bytes).unwrap();
            let mut out = [0.0; 3];
            assert!(
                codec.decode_block_into(&bytes[..bytes.len() - 1], &mut out).is_err(),
                "{kind}"
            );
            let mut short = [0.0; 2];
            assert!(codec.decode_block_into(&bytes, &mut short).is_err(), "{kind}");
            assert!(codec.decode_item(&[1, 2, 3]).is_err(), "{kind}");
            assert!(codec.decode_item(&[]).is_err(), "{kind}");
        }
    }

    proptest::proptest! {
        /// Whatever the bytes, every codec's decoders return, never panic (a fuzz test).
        #[test]
        fn any_bytes_decode_to_a_value_or_an_error(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            len in 0usize..40,
        ) {
            for kind in CodecKind::all() {
                let codec = kind.codec();
                let _ = codec.decode_item(&bytes);
                let mut out = vec![0.0; len];
                let _ = codec.decode_block_into(&bytes, &mut out);
            }
        }

        /// A valid block with bytes flipped, cut or appended decodes to a value or an error.
        #[test]
        fn damaged_blocks_are_values_or_errors(
            xs in proptest::collection::vec(proptest::prelude::any::<f64>(), 0..50),
            flip in 0usize..1000,
            cut in 0usize..1000,
        ) {
            for kind in CodecKind::all() {
                let codec = kind.codec();
                let mut bytes = Vec::new();
                codec.encode_block(&xs, &mut bytes).unwrap();
                let mut out = vec![0.0; xs.len()];
                if !bytes.is_empty() {
                    let mut flipped = bytes.clone();
                    let at = flip % flipped.len();
                    flipped[at] ^= 0x5A;
                    let _ = codec.decode_block_into(&flipped, &mut out);
                    proptest::prop_assert!(
                        codec.decode_block_into(&bytes[..cut % bytes.len()], &mut out).is_err(),
                        "{kind}: a cut block decoded"
                    );
                }
                bytes.push(0);
                proptest::prop_assert!(
                    codec.decode_block_into(&bytes, &mut out).is_err(),
                    "{kind}: a block with a trailing byte decoded"
                );
            }
        }
    }

    #[test]
    fn wincode_writes_what_bincode_writes_in_its_legacy_configuration() {
        let xs: Vec<f64> = (0..1000).map(|i| (i as f64).ln_1p()).chain(SAMPLES).collect();
        let mut ours = Vec::new();
        Wincode.encode_block(&xs, &mut ours).unwrap();
        let theirs = ::bincode::serde::encode_to_vec(&xs, ::bincode::config::legacy()).unwrap();
        assert_eq!(ours, theirs);
        let mut item = Vec::new();
        Wincode.encode_item(1.5, &mut item).unwrap();
        assert_eq!(
            item,
            ::bincode::serde::encode_to_vec(1.5f64, ::bincode::config::legacy()).unwrap()
        );
    }

    #[test]
    fn pickle_items_are_twelve_bytes_and_npy_blocks_are_aligned_headers() {
        let mut item = Vec::new();
        Pickle.encode_item(1.5, &mut item).unwrap();
        assert_eq!(item, b"\x80\x03G?\xf8\x00\x00\x00\x00\x00\x00.");
        let mut block = Vec::new();
        Npy.encode_block(&[1.0, 2.0], &mut block).unwrap();
        assert_eq!(&block[..8], b"\x93NUMPY\x01\x00");
        assert_eq!((block.len() - 16) % 64, 0, "header padded to 64 bytes");
        assert!(std::str::from_utf8(&block[10..block.len() - 16])
            .unwrap()
            .starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"));
    }

    #[test]
    fn raw_blocks_are_exactly_eight_bytes_a_value() {
        let mut bytes = Vec::new();
        Raw.encode_block(&[1.0; 10], &mut bytes).unwrap();
        assert_eq!(bytes.len(), 80);
    }
}
