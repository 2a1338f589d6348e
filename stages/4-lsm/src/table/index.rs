//! The index block: where each data block lies, and the last key in it.
//!
//! A table's index has one entry per data block, in key order, so a binary search over it
//! finds the only block that can hold a key. The reader decodes it once, when the table is
//! opened, and keeps it in memory ([`Index`]) for the table's life.
//!
//! ## Format
//!
//! A [`crate::table::block`], never compressed, with a restart point at every entry (its
//! keys are the blocks' last keys, which share little). Each entry's key and trailer are
//! the **last** internal key of one data block; its value is that block's 12-byte
//! **handle**:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | offset of the data block in the file, `u64` LE |
//! | 8 | 4 | size of the data block, its block trailer included, `u32` LE |
//!
//! The handles tile the data region: the first block starts at offset 0, each next one
//! where the one before ends, and the last ends where the filter block starts.

use kv_shared::framing::{ByteReader, DecodeError};

use crate::key::{compare, key_head};
use crate::table::block::{self, BlockCursor};

/// Bytes of a block handle.
pub const HANDLE_LEN: usize = 12;

/// Where a data block lies, and the last internal key in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Last user key of the block.
    pub last_key: Vec<u8>,
    /// [`key_head`] of `last_key`: the binary search compares it first, in the entry itself,
    /// and reads `last_key` (elsewhere in memory) only when two heads are equal.
    pub last_key_head: u128,
    /// Sequence number of the block's last entry.
    pub last_seq: u64,
    /// Offset of the block in the file.
    pub offset: u64,
    /// Size of the block, checksum included.
    pub size: u32,
}

/// The handle of the block at `offset` of `size` bytes.
pub fn encode_handle(offset: u64, size: u32) -> [u8; HANDLE_LEN] {
    let mut handle = [0; HANDLE_LEN];
    handle[..8].copy_from_slice(&offset.to_le_bytes());
    handle[8..].copy_from_slice(&size.to_le_bytes());
    handle
}

/// The offset and size a handle holds.
///
/// # Errors
/// [`DecodeError`] for a value that is not exactly a handle.
pub fn decode_handle(value: &[u8]) -> Result<(u64, u32), DecodeError> {
    let mut r = ByteReader::new(value);
    let offset = r.u64("block offset")?;
    let size = r.u32("block size")?;
    if !r.is_empty() {
        return Err(DecodeError::new(HANDLE_LEN, "bytes after the block handle"));
    }
    Ok((offset, size))
}

/// A table's index, decoded: one entry per data block, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    entries: Vec<IndexEntry>,
}

impl Index {
    /// Decodes an index block's on-disk bytes; every handle must lie inside the data region
    /// `[0, data_end)`, and together they must tile it.
    ///
    /// # Errors
    /// [`DecodeError`] for a damaged block or a handle out of place.
    pub fn decode(raw: &[u8], data_end: u64) -> Result<Index, DecodeError> {
        let contents = block::decode(raw)?;
        let mut cursor = BlockCursor::new(contents.as_slice())?;
        let mut entries = Vec::new();
        let mut expected_offset = 0;
        cursor.seek_to_first()?;
        while cursor.valid() {
            let (offset, size) = decode_handle(cursor.value())
                .map_err(|e| DecodeError::new(cursor.offset(), e.detail))?;
            if offset != expected_offset || offset + u64::from(size) > data_end {
                return Err(DecodeError::new(
                    cursor.offset(),
                    "block handle out of place",
                ));
            }
            expected_offset = offset + u64::from(size);
            entries.push(IndexEntry {
                last_key: cursor.key().to_vec(),
                last_key_head: key_head(cursor.key()),
                last_seq: cursor.seq(),
                offset,
                size,
            });
            cursor.step_forward()?;
        }
        if expected_offset != data_end {
            return Err(DecodeError::new(
                0,
                "data blocks do not reach the filter block",
            ));
        }
        Ok(Index { entries })
    }

    /// The entries, one per data block.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The number of data blocks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for a table without data blocks.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first block whose last internal key is at or after `(key, seq)`: the only block
    /// that can hold the first entry at or after it. [`Index::len`] when there is none.
    pub fn find(&self, key: &[u8], seq: u64) -> usize {
        let head = key_head(key);
        self.entries
            .partition_point(|e| match e.last_key_head.cmp(&head) {
                std::cmp::Ordering::Equal => compare(&e.last_key, e.last_seq, key, seq).is_lt(),
                order => order.is_lt(),
            })
    }

    /// Bytes of memory the entries hold.
    pub fn memory_bytes(&self) -> u64 {
        let entries = self.entries.len() * std::mem::size_of::<IndexEntry>();
        let keys: usize = self.entries.iter().map(|e| e.last_key.len()).sum();
        (entries + keys) as u64
    }
}
