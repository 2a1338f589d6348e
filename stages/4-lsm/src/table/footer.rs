//! The footer: the last 48 bytes of every table, where a reader starts.
//!
//! A reader knows only the file's length; the footer, at a fixed distance from the end,
//! tells it where the filter and index blocks are and how many entries the table holds.
//! It carries its own checksum and the table magic, so a file that is not a table, or a
//! table of another format version, is refused before anything else is read.
//!
//! ## Format, 48 bytes
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | filter block offset, `u64` LE |
//! | 8 | 4 | filter block size (with its CRC), `u32` LE |
//! | 12 | 8 | index block offset, `u64` LE |
//! | 20 | 4 | index block size, `u32` LE |
//! | 24 | 8 | number of entries, `u64` LE |
//! | 32 | 4 | format version, `u32` LE ([`FORMAT_VERSION`]) |
//! | 36 | 4 | CRC32 of footer bytes 0..36, `u32` LE |
//! | 40 | 8 | magic, ASCII `KVLSMTBL` |
//!
//! The filter block must end where the index block starts, and the index block where the
//! footer starts: the data blocks fill everything before the filter.

use kv_shared::framing::{ByteReader, DecodeError, crc32, put_crc};

/// The last 8 bytes of every table.
pub const MAGIC: &[u8; 8] = b"KVLSMTBL";
/// The table format version: 3. Stage 3's table format was the first of the course; 2 added
/// sequence numbers and the filter; 3 has prefix-compressed blocks with restart points and
/// a compression type in each block trailer.
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of the footer.
pub const FOOTER_LEN: usize = 48;

/// The decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Filter block offset.
    pub filter_offset: u64,
    /// Filter block size.
    pub filter_size: u32,
    /// Index block offset.
    pub index_offset: u64,
    /// Index block size.
    pub index_size: u32,
    /// Entries in the table.
    pub entries: u64,
}

impl Footer {
    /// The footer's 48 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        out.extend_from_slice(&self.filter_offset.to_le_bytes());
        out.extend_from_slice(&self.filter_size.to_le_bytes());
        out.extend_from_slice(&self.index_offset.to_le_bytes());
        out.extend_from_slice(&self.index_size.to_le_bytes());
        out.extend_from_slice(&self.entries.to_le_bytes());
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        put_crc(&mut out);
        out.extend_from_slice(MAGIC);
        out
    }

    /// Decodes and checks the footer `bytes` of a table of `file_len` bytes (which bounds
    /// the offsets it names).
    ///
    /// # Errors
    /// [`DecodeError`] for a bad magic, checksum or version, or offsets that do not tile
    /// the file.
    pub fn decode(bytes: &[u8], file_len: u64) -> Result<Footer, DecodeError> {
        let mut r = ByteReader::new(bytes);
        let footer = Footer {
            filter_offset: r.u64("filter offset")?,
            filter_size: r.u32("filter size")?,
            index_offset: r.u64("index offset")?,
            index_size: r.u32("index size")?,
            entries: r.u64("entry count")?,
        };
        let version = r.u32("format version")?;
        let crc = r.u32("footer checksum")?;
        if r.bytes(8, "magic")? != MAGIC {
            return Err(DecodeError::new(40, "not a table (bad magic)"));
        }
        if crc != crc32(&bytes[..36]) {
            return Err(DecodeError::new(36, "footer checksum mismatch"));
        }
        if version != FORMAT_VERSION {
            return Err(DecodeError::new(
                32,
                format!("table format version {version}, this build reads {FORMAT_VERSION}"),
            ));
        }
        let body = file_len - FOOTER_LEN as u64;
        let filter_end = footer.filter_offset.checked_add(footer.filter_size.into());
        let index_end = footer.index_offset.checked_add(footer.index_size.into());
        if filter_end != Some(footer.index_offset) || index_end != Some(body) {
            return Err(DecodeError::new(0, "footer offsets do not tile the file"));
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let footer = Footer {
            filter_offset: 100,
            filter_size: 20,
            index_offset: 120,
            index_size: 30,
            entries: 7,
        };
        let bytes = footer.encode();
        assert_eq!(bytes.len(), FOOTER_LEN);
        let file_len = 150 + FOOTER_LEN as u64;
        assert_eq!(Footer::decode(&bytes, file_len), Ok(footer));
        assert!(Footer::decode(&bytes, file_len + 1).is_err(), "a gap");
        for i in 0..FOOTER_LEN {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Footer::decode(&bad, file_len).is_err(), "flip at {i}");
        }
    }
}
