//! The footer: the fixed-size end of every table, read first when a table is opened.
//!
//! A table is written front to back in one pass, so where its index lands is only known at
//! the end; the footer, at a fixed distance from the end of the file, says. It also
//! carries what the store needs to know about the table without reading it: how many
//! entries and tombstones it holds, and which WALs' data it holds (see
//! [`crate::recovery`] for how recovery uses that).
//!
//! ## Format (version 1), the last [`FOOTER_LEN`] bytes of the file
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | index offset, `u64` LE (also where the data blocks end) |
//! | 8 | 4 | index length, frame included, `u32` LE |
//! | 12 | 8 | entry count, tombstones included, `u64` LE |
//! | 20 | 8 | tombstone count, `u64` LE |
//! | 28 | 8 | first WAL number whose data the table holds, `u64` LE |
//! | 36 | 8 | last WAL number whose data the table holds, `u64` LE |
//! | 44 | 4 | format version, `u32` LE (1) |
//! | 48 | 4 | CRC32 of bytes `0 .. 48`, `u32` LE |
//! | 52 | 8 | magic, ASCII `KVSSTABL` |
//!
//! The magic is last, so a file can be recognised as a table from its end, and a file
//! that was cut short (its footer gone) is refused rather than misread.

use kv_shared::framing::{ByteReader, DecodeError, crc32};

/// The last eight bytes of every table file.
pub const TABLE_MAGIC: &[u8; 8] = b"KVSSTABL";
/// The table format version this build writes and reads.
pub const TABLE_VERSION: u32 = 1;
/// Length of the footer in bytes.
pub const FOOTER_LEN: usize = 60;

/// What the footer of a table records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Offset of the index block; the data blocks fill `0 .. index_offset`.
    pub index_offset: u64,
    /// Length of the index block, frame included.
    pub index_len: u32,
    /// Entries in the table, tombstones included.
    pub entries: u64,
    /// Tombstones among them.
    pub tombstones: u64,
    /// First WAL number whose data the table holds.
    pub first_wal: u64,
    /// Last WAL number whose data the table holds.
    pub last_wal: u64,
}

/// Why a footer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FooterError {
    /// Not a footer of a table (wrong magic or checksum, bad fields).
    Decode(DecodeError),
    /// A table footer of another format version.
    Version(u32),
}

impl Footer {
    /// The footer's bytes.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0; FOOTER_LEN];
        out[0..8].copy_from_slice(&self.index_offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.index_len.to_le_bytes());
        out[12..20].copy_from_slice(&self.entries.to_le_bytes());
        out[20..28].copy_from_slice(&self.tombstones.to_le_bytes());
        out[28..36].copy_from_slice(&self.first_wal.to_le_bytes());
        out[36..44].copy_from_slice(&self.last_wal.to_le_bytes());
        out[44..48].copy_from_slice(&TABLE_VERSION.to_le_bytes());
        let crc = crc32(&out[..48]);
        out[48..52].copy_from_slice(&crc.to_le_bytes());
        out[52..60].copy_from_slice(TABLE_MAGIC);
        out
    }

    /// Decodes and checks a footer: magic, version, checksum, fields consistent with each
    /// other. `bytes` must be exactly [`FOOTER_LEN`] long.
    ///
    /// # Errors
    /// [`FooterError`]; decode offsets are relative to the footer's start.
    pub fn decode(bytes: &[u8]) -> Result<Footer, FooterError> {
        let fail =
            |offset: usize, detail: &str| FooterError::Decode(DecodeError::new(offset, detail));
        if bytes.len() != FOOTER_LEN {
            return Err(fail(0, "a table footer is 60 bytes"));
        }
        if &bytes[52..60] != TABLE_MAGIC {
            return Err(fail(52, "not a table: bad magic"));
        }
        let mut r = ByteReader::new(bytes);
        let d = FooterError::Decode;
        let footer = Footer {
            index_offset: r.u64("index offset").map_err(d)?,
            index_len: r.u32("index length").map_err(d)?,
            entries: r.u64("entry count").map_err(d)?,
            tombstones: r.u64("tombstone count").map_err(d)?,
            first_wal: r.u64("first WAL").map_err(d)?,
            last_wal: r.u64("last WAL").map_err(d)?,
        };
        let version = r.u32("format version").map_err(d)?;
        let crc = r.u32("footer checksum").map_err(d)?;
        if crc != crc32(&bytes[..48]) {
            return Err(fail(48, "footer checksum mismatch"));
        }
        if version != TABLE_VERSION {
            return Err(FooterError::Version(version));
        }
        if footer.tombstones > footer.entries || footer.first_wal > footer.last_wal {
            return Err(fail(12, "footer counts or WAL range inconsistent"));
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_is_caught() {
        let f = Footer {
            index_offset: 4100,
            index_len: 40,
            entries: 99,
            tombstones: 3,
            first_wal: 4,
            last_wal: 9,
        };
        let bytes = f.encode();
        assert_eq!(Footer::decode(&bytes).unwrap(), f);
        for i in 0..FOOTER_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x01;
            assert!(Footer::decode(&bad).is_err(), "flip at {i} missed");
        }
    }
}
