//! The marker file (`ENGINE`) that says which engine and format a store directory holds.
//!
//! Written once, atomically, when a store is created; checked on every open, so opening a
//! directory as the wrong engine, or with a build that reads another format version, is an
//! error instead of a silent misread.
//!
//! ## Format (version 1)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `KVMARKER` |
//! | 8 | 4 | marker format version, `u32` little-endian (1) |
//! | 12 | 4 | the engine's format version, `u32` LE |
//! | 16 | 1 | length `n` of the engine name (1 to 32) |
//! | 17 | n | engine name, ASCII |
//! | 17 + n | 4 | CRC32 of bytes `0 .. 17 + n`, `u32` LE |

use crate::dump::{Dump, quoted};
use crate::framing::{ByteReader, DecodeError, put_crc, put_magic_version};

/// The first eight bytes of a marker file.
pub const MAGIC: &[u8; 8] = b"KVMARKER";
/// The marker format this build writes and reads.
pub const VERSION: u32 = 1;
/// Longest engine name a marker holds.
pub const MAX_NAME_LEN: usize = 32;

/// What a marker file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The engine that created the store.
    pub engine: String,
    /// That engine's format version.
    pub format_version: u32,
}

/// Encodes a marker.
///
/// # Panics
/// When `engine` is empty or longer than [`MAX_NAME_LEN`]: engine names are constants.
pub fn encode(engine: &str, format_version: u32) -> Vec<u8> {
    assert!(
        !engine.is_empty() && engine.len() <= MAX_NAME_LEN,
        "bad engine name"
    );
    let mut out = Vec::with_capacity(21 + engine.len());
    put_magic_version(&mut out, MAGIC, VERSION);
    out.extend_from_slice(&format_version.to_le_bytes());
    out.push(engine.len() as u8);
    out.extend_from_slice(engine.as_bytes());
    put_crc(&mut out);
    out
}

/// Decodes a marker, checking magic, version, lengths and checksum.
///
/// # Errors
/// [`DecodeError`] saying which check failed.
pub fn decode(bytes: &[u8]) -> Result<Marker, DecodeError> {
    let mut r = ByteReader::past_magic_version(bytes, MAGIC, VERSION, "marker file")?;
    let format_version = r.u32("engine format version")?;
    let n = r.u8("name length")? as u64;
    let n = r.check_len(n, MAX_NAME_LEN, "name length")?;
    let name = r.bytes(n, "engine name")?;
    r.crc_at_end("marker")?;
    let engine = std::str::from_utf8(name)
        .map_err(|_| DecodeError::new(17, "engine name is not UTF-8"))?
        .to_string();
    Ok(Marker {
        engine,
        format_version,
    })
}

/// The annotated dump of a marker file.
pub fn dump(bytes: &[u8]) -> String {
    let mut d = Dump::new(format!("marker file ({} bytes)", bytes.len()));
    match decode(bytes) {
        Ok(m) => {
            d.magic_version(bytes, "marker version");
            d.field(
                &bytes[12..16],
                format!("engine format version {}", m.format_version),
            );
            d.field(
                &bytes[16..17],
                format!("engine name length {}", m.engine.len()),
            );
            let end = 17 + m.engine.len();
            d.field(
                &bytes[17..end],
                format!("engine name {}", quoted(m.engine.as_bytes(), 32)),
            );
            d.field(&bytes[end..], "crc32 (ok)");
        }
        Err(e) => d.note(format!("invalid marker: {e}")),
    }
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_is_detected() {
        let bytes = encode("hashlog", 3);
        assert_eq!(
            decode(&bytes).unwrap(),
            Marker {
                engine: "hashlog".into(),
                format_version: 3
            }
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert!(decode(&bad).is_err(), "flip at {i} undetected");
        }
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
        }
    }
}
