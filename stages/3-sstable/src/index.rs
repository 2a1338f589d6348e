//! The index block: where each data block starts, and its first key.
//!
//! The index is **sparse**: one entry per data block, not per key. It is small enough to
//! keep in memory for every open table (a 4 MiB table of 100-byte entries has about a
//! thousand blocks), and it is enough to find the one block that can hold a key: the last
//! block whose first key is at most the key. [`find_block`] does that by binary search.
//!
//! ## Format (version 1)
//!
//! On disk the index is one [`crate::frame`] right after the last data block; its body is
//! one entry per data block, in file order:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | `k`, key length, `u16` LE |
//! | 2 | k | the block's first key |
//! | 2 + k | 8 | the block's offset in the file, `u64` LE |
//! | 10 + k | 4 | the block's length, frame included, `u32` LE |
//!
//! [`decode`] checks what a reader relies on: first keys strictly increasing, and blocks
//! that tile the data region exactly (the first at offset 0, each starting where the one
//! before ended, the last ending where the index begins).

use kv_shared::framing::{ByteReader, DecodeError};

/// Where one data block is, and the first key in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The block's first (smallest) key.
    pub first_key: Vec<u8>,
    /// The block's offset in the table file.
    pub offset: u64,
    /// The block's length in bytes, frame included.
    pub len: u32,
}

/// Encodes the index body.
pub fn encode(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&(e.first_key.len() as u16).to_le_bytes());
        out.extend_from_slice(&e.first_key);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
    }
    out
}

/// Decodes one entry at the reader's position.
///
/// # Errors
/// [`DecodeError`] when a field runs past the body.
pub fn decode_entry(r: &mut ByteReader<'_>) -> Result<IndexEntry, DecodeError> {
    let key_len = r.u16("index key length")? as usize;
    let first_key = r.bytes(key_len, "index key")?.to_vec();
    let offset = r.u64("block offset")?;
    let len = r.u32("block length")?;
    Ok(IndexEntry {
        first_key,
        offset,
        len,
    })
}

/// Decodes and checks the index body of a table whose data blocks end at `data_end`.
///
/// # Errors
/// [`DecodeError`] (offsets relative to the body) for a truncated entry, keys out of
/// order, or blocks that do not tile `0 .. data_end`.
pub fn decode(body: &[u8], data_end: u64) -> Result<Vec<IndexEntry>, DecodeError> {
    let mut r = ByteReader::new(body);
    let mut entries: Vec<IndexEntry> = Vec::new();
    let mut expected_offset = 0u64;
    while !r.is_empty() {
        let at = r.pos();
        let e = decode_entry(&mut r)?;
        if let Some(prev) = entries.last()
            && prev.first_key >= e.first_key
        {
            return Err(DecodeError::new(at, "index keys out of order"));
        }
        if e.offset != expected_offset {
            return Err(DecodeError::new(
                at,
                format!(
                    "block at offset {} where {expected_offset} was expected",
                    e.offset
                ),
            ));
        }
        expected_offset = e.offset + u64::from(e.len);
        if expected_offset > data_end {
            return Err(DecodeError::new(at, "block runs past the data region"));
        }
        entries.push(e);
    }
    if expected_offset != data_end {
        return Err(DecodeError::new(
            r.pos(),
            format!("blocks end at {expected_offset}, data region at {data_end}"),
        ));
    }
    Ok(entries)
}

/// The position of the only block that can hold `key`: the last one whose first key is at
/// most `key`. `None` when `key` sorts before every block.
pub fn find_block(entries: &[IndexEntry], key: &[u8]) -> Option<usize> {
    entries
        .partition_point(|e| e.first_key.as_slice() <= key)
        .checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, offset: u64, len: u32) -> IndexEntry {
        IndexEntry {
            first_key: key.as_bytes().to_vec(),
            offset,
            len,
        }
    }

    #[test]
    fn round_trip_checks_and_search() {
        let entries = vec![entry("b", 0, 10), entry("f", 10, 20), entry("m", 30, 5)];
        let body = encode(&entries);
        assert_eq!(decode(&body, 35).unwrap(), entries);
        assert!(decode(&body, 36).is_err());
        assert!(decode(&body[..body.len() - 1], 35).is_err());
        let unordered = encode(&[entry("f", 0, 10), entry("b", 10, 20)]);
        assert!(decode(&unordered, 30).is_err());
        let gap = encode(&[entry("b", 0, 10), entry("f", 11, 20)]);
        assert!(decode(&gap, 31).is_err());
        assert_eq!(decode(&[], 0).unwrap(), Vec::new());
        let find = |k: &str| find_block(&entries, k.as_bytes());
        assert_eq!(
            [find("a"), find("b"), find("c"), find("f"), find("z")],
            [None, Some(0), Some(0), Some(1), Some(2)]
        );
    }
}
