//! The index block: where each data block starts and its first key, and the table's last key.
//!
//! The index is **sparse**: one entry per data block, not per key. It is small enough to
//! keep in memory for every open table (a 4 MiB table of 100-byte entries has about a
//! thousand blocks), and it is enough to find the one block that can hold a key: the last
//! block whose first key is at most the key. [`find_block`] does that by binary search.
//! With the table's last key beside it, the index also gives the table's key range, so a
//! lookup of a key outside it reads nothing.
//!
//! ## Format (version 1)
//!
//! On disk the index is one [`crate::frame`] right after the last data block. Its body
//! starts with the table's last key:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | `k`, key length, `u16` LE |
//! | 2 | k | the table's last (largest) key; empty for a table with no entries |
//!
//! then has one entry per data block, in file order:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | `k`, key length, `u16` LE |
//! | 2 | k | the block's first key |
//! | 2 + k | 8 | the block's offset in the file, `u64` LE |
//! | 10 + k | 4 | the block's length, frame included, `u32` LE |
//!
//! [`decode`] checks what a reader relies on: first keys strictly increasing, the last key
//! not before the last block's first key, and blocks that tile the data region exactly
//! (the first at offset 0, each starting where the one before ended, the last ending where
//! the index begins).

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

/// A table's index, as kept in memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Index {
    /// The table's last (largest) key; empty when the table has no entries.
    pub last_key: Vec<u8>,
    /// One entry per data block, in file order.
    pub blocks: Vec<IndexEntry>,
}

impl Index {
    /// True when `key` lies between the table's first and last keys, so a lookup must
    /// read a block.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.blocks.first().is_some_and(|first| {
            first.first_key.as_slice() <= key && key <= self.last_key.as_slice()
        })
    }
}

/// Encodes the index body.
pub fn encode(index: &Index) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(index.last_key.len() as u16).to_le_bytes());
    out.extend_from_slice(&index.last_key);
    let entries = &index.blocks;
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
pub fn decode(body: &[u8], data_end: u64) -> Result<Index, DecodeError> {
    let mut r = ByteReader::new(body);
    let last_len = r.u16("last key length")? as usize;
    let last_key = r.bytes(last_len, "last key")?.to_vec();
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
    let last_key_fits = match entries.last() {
        Some(last_block) => last_block.first_key <= last_key,
        None => last_key.is_empty(),
    };
    if !last_key_fits {
        return Err(DecodeError::new(
            0,
            "the table's last key is before its last block",
        ));
    }
    Ok(Index {
        last_key,
        blocks: entries,
    })
}

// Exercise 3.3: find a key's block. Read: chapter 3, "Binary search against linear search".
// Tests: lib::index::tests::round_trip_checks_and_search
// Tests: search::one_table_binary_reads_one_block_linear_walks_to_it
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
        let index = |last: &str, blocks: Vec<IndexEntry>| Index {
            last_key: last.as_bytes().to_vec(),
            blocks,
        };
        let entries = vec![entry("b", 0, 10), entry("f", 10, 20), entry("m", 30, 5)];
        let whole = index("q", entries.clone());
        let body = encode(&whole);
        assert_eq!(decode(&body, 35).unwrap(), whole);
        assert!(decode(&body, 36).is_err());
        assert!(decode(&body[..body.len() - 1], 35).is_err());
        let unordered = encode(&index("z", vec![entry("f", 0, 10), entry("b", 10, 20)]));
        assert!(decode(&unordered, 30).is_err());
        let gap = encode(&index("z", vec![entry("b", 0, 10), entry("f", 11, 20)]));
        assert!(decode(&gap, 31).is_err());
        let short_last = encode(&index("c", entries.clone()));
        assert!(decode(&short_last, 35).is_err());
        assert_eq!(
            decode(&encode(&Index::default()), 0).unwrap(),
            Index::default()
        );
        assert!(decode(&[], 0).is_err());
        let range = |k: &str| whole.may_contain(k.as_bytes());
        assert_eq!(
            [range("a"), range("b"), range("q"), range("r")],
            [false, true, true, false]
        );
        assert!(!Index::default().may_contain(b""));
        let find = |k: &str| find_block(&entries, k.as_bytes());
        assert_eq!(
            [find("a"), find("b"), find("c"), find("f"), find("z")],
            [None, Some(0), Some(0), Some(1), Some(2)]
        );
    }
}
