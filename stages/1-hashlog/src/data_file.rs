//! The data file, `data.log`: a header, then records, appended and never changed.
//!
//! The whole store is this one file (beside the `ENGINE` marker and the `LOCK` file that
//! every store directory has). Each put, each delete and each write batch appends one
//! [record](crate::record); nothing already written is ever modified. The latest record of
//! a key says what the key holds; every earlier record of it is dead weight, kept forever,
//! because stage 1 has no compaction.
//!
//! ## Format
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `KVHASHLG` |
//! | 8 | 4 | format version, `u32` little-endian ([`VERSION`], 2) |
//! | 12 | 4 | CRC32 of bytes `0 .. 12`, `u32` LE |
//! | 16 | ... | records, one after another (see [`crate::record`]), to the end of the file |
//!
//! There is no footer and no count: the file ends where the last record ends, which is what
//! lets a put be a single append.
//!
//! The file is created with its header in one atomic step, so a header that is short or
//! does not check out is damage, never a crash's leftover: see [`crate::file_names`].

use std::path::Path;

use kv_shared::framing::{ByteReader, crc32};
use kv_shared::{Error, Result};

/// The first eight bytes of a data file.
pub const MAGIC: &[u8; 8] = b"KVHASHLG";

/// The data file format this build writes and reads, which is also the store's format
/// version (the `ENGINE` marker records it). Version 2 added the batch record
/// ([`crate::record`]). A build that knows only version 1 would take a batch record for
/// damage and cut it off, so the version changed: each build refuses the other's stores.
pub const VERSION: u32 = 2;

/// Length of the file header; the first record starts here.
pub const FILE_HEADER_LEN: u64 = 16;

/// The header of a data file of [`VERSION`].
pub fn encode_header() -> [u8; FILE_HEADER_LEN as usize] {
    let mut out = [0; FILE_HEADER_LEN as usize];
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32(&out[..12]);
    out[12..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Checks the header at the start of `bytes` (the first [`FILE_HEADER_LEN`] bytes of the
/// file at `path`, or fewer when the file is shorter).
///
/// # Errors
/// [`Error::Corruption`] at offset 0 when the header is short, has the wrong magic or fails
/// its checksum; [`Error::FormatVersion`] when it is whole but of another version.
pub fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    let corrupt = |detail: String| Error::corruption(path, 0, format!("file header: {detail}"));
    let mut r = ByteReader::new(bytes);
    let magic = r
        .bytes(MAGIC.len(), "magic")
        .map_err(|e| corrupt(e.detail))?;
    if magic != MAGIC {
        return Err(corrupt(format!(
            "magic is {}, not {}",
            kv_shared::dump::quoted(magic, 8),
            kv_shared::dump::quoted(MAGIC, 8)
        )));
    }
    let version = r.u32("format version").map_err(|e| corrupt(e.detail))?;
    let stored_crc = r.u32("checksum").map_err(|e| corrupt(e.detail))?;
    let actual_crc = crc32(&bytes[..12]);
    if stored_crc != actual_crc {
        return Err(corrupt(format!(
            "checksum mismatch: stored {stored_crc:#010x}, computed {actual_crc:#010x}"
        )));
    }
    if version != VERSION {
        return Err(Error::FormatVersion {
            file: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let path = Path::new("data.log");
        let good = encode_header();
        assert_eq!(&good[..12], b"KVHASHLG\x02\x00\x00\x00");
        check_header(path, &good).unwrap();
        for cut in 0..good.len() {
            let err = check_header(path, &good[..cut]).unwrap_err();
            assert!(matches!(err, Error::Corruption { offset: 0, .. }), "{err}");
        }
        for i in 0..good.len() {
            let mut bad = good;
            bad[i] ^= 0x04;
            let err = check_header(path, &bad).unwrap_err();
            assert!(matches!(err, Error::Corruption { offset: 0, .. }), "{err}");
        }
        for other in [VERSION - 1, VERSION + 1] {
            let mut bad = good;
            bad[8..12].copy_from_slice(&other.to_le_bytes());
            let crc = crc32(&bad[..12]);
            bad[12..].copy_from_slice(&crc.to_le_bytes());
            assert!(matches!(
                check_header(path, &bad),
                Err(Error::FormatVersion { found, .. }) if found == other
            ));
        }
    }
}
