//! Per-block compression: none (the default) or lz4.
//!
//! A table compresses each block on its own, so a read still decompresses only the block it
//! needs. The choice is made per block when it is written: the compressed form is kept only
//! when it saves at least an eighth of the block (as LevelDB does); otherwise the block is
//! stored as is, and its type byte says so. A table can therefore mix both kinds, and a
//! reader never needs to know the writer's option.
//!
//! lz4 trades ratio for speed: it decompresses at several GB/s, so a compressed block costs
//! a read little CPU, while it can save much disk and cache space on repetitive values (and
//! nothing on random bytes, which it cannot shrink).
//!
//! ## Format of an lz4 block's stored bytes
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | length `n` of the uncompressed contents, `u32` LE |
//! | 4 | rest | the contents compressed as one lz4 *block* (not an lz4 frame) |
//!
//! `n` decides how much the reader allocates, so it is checked first: it must be at most
//! [`MAX_RATIO`] times the compressed length (lz4 cannot expand more than that, so a larger
//! `n` is a damaged field), and the decompressed length must come out exactly `n`.

use std::fmt;
use std::str::FromStr;

use kv_shared::framing::{ByteReader, DecodeError};

/// How a block's stored bytes are encoded: its type byte in the block trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Stored as is (type byte 0).
    #[default]
    None = 0,
    /// Compressed with lz4 (type byte 1).
    Lz4 = 1,
}

/// The largest uncompressed/compressed size ratio a reader accepts. One lz4 match-length
/// byte stands for at most 255 output bytes, so no real lz4 block expands more.
pub const MAX_RATIO: usize = 255;

impl Compression {
    /// The compression from its type byte, or `None` for an unknown byte.
    pub fn from_byte(byte: u8) -> Option<Compression> {
        match byte {
            0 => Some(Compression::None),
            1 => Some(Compression::Lz4),
            _ => None,
        }
    }

    /// The option name: `none` or `lz4`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            _ => Err(format!("unknown compression {s:?} (none or lz4)")),
        }
    }
}

/// `contents` lz4-compressed in the format above, or `None` when that would not save at
/// least an eighth of its size (then the block is stored uncompressed).
pub fn lz4_compress(contents: &[u8]) -> Option<Vec<u8>> {
    let n = u32::try_from(contents.len()).ok()?;
    let packed = lz4_flex::block::compress(contents);
    let stored = 4 + packed.len();
    if stored > contents.len() - contents.len() / 8 || contents.len() > packed.len() * MAX_RATIO {
        return None;
    }
    let mut out = Vec::with_capacity(stored);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&packed);
    Some(out)
}

/// Decompresses stored bytes written by [`lz4_compress`].
///
/// # Errors
/// [`DecodeError`] when the length field is over its bound or the lz4 data does not decode
/// to exactly that many bytes.
pub fn lz4_decompress(stored: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut r = ByteReader::new(stored);
    let n = r.u32("uncompressed length")? as usize;
    let packed = &stored[4..];
    if n > packed.len().saturating_mul(MAX_RATIO) {
        return Err(DecodeError::new(
            0,
            format!(
                "uncompressed length {n} is over {MAX_RATIO} times the {} compressed bytes",
                packed.len()
            ),
        ));
    }
    let mut out = vec![0; n];
    match lz4_flex::block::decompress_into(packed, &mut out) {
        Ok(written) if written == n => Ok(out),
        Ok(written) => Err(DecodeError::new(
            4,
            format!("lz4 data decodes to {written} bytes, not {n}"),
        )),
        Err(e) => Err(DecodeError::new(
            4,
            format!("lz4 data does not decode: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let repetitive: Vec<u8> = b"abcdefgh".iter().copied().cycle().take(4000).collect();
        let stored = lz4_compress(&repetitive).expect("repetitive bytes compress");
        assert!(stored.len() < repetitive.len() / 8);
        assert_eq!(lz4_decompress(&stored).unwrap(), repetitive);
        // Bytes that lz4 cannot shrink by an eighth stay uncompressed.
        let mut x = 1u64;
        let varied: Vec<u8> = (0..4000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        assert_eq!(lz4_compress(&varied), None);
        assert_eq!(lz4_compress(b""), None);
        // A length over the ratio bound is refused before any allocation.
        let mut huge = stored.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(lz4_decompress(&huge).is_err());
        // A length that does not match what the data decodes to.
        let mut short = stored.clone();
        short[..4].copy_from_slice(&3999u32.to_le_bytes());
        assert!(lz4_decompress(&short).is_err());
        assert!(lz4_decompress(&[1, 0]).is_err());
        for name in ["none", "lz4"] {
            assert_eq!(name.parse::<Compression>().unwrap().to_string(), name);
        }
        assert!("zstd".parse::<Compression>().is_err());
        assert_eq!(Compression::from_byte(1), Some(Compression::Lz4));
        assert_eq!(Compression::from_byte(2), None);
    }
}
