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

/// Where a data block lies, and the sequence number of the last entry in it. The entry's
/// user key is kept apart, in the [`Index`]'s one buffer of keys ([`Index::last_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset of the block in the file.
    pub offset: u64,
    /// Sequence number of the block's last entry.
    pub last_seq: u64,
    /// Size of the block, checksum included.
    pub size: u32,
    /// Where the block's last user key ends in the index's key buffer (it starts where the
    /// entry before's ends).
    key_end: u32,
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
///
/// Laid out for the binary search that every seek and `get` runs over it, and for the
/// memory it holds for as long as its table is open: three arrays side by side rather than
/// one array of entries that each own their key. The search reads only `heads`, 16 bytes
/// a block (four to a cache line), and looks at a key in `keys` only when two heads are
/// equal; the keys sit end to end in one buffer, not one allocation each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// [`key_head`] of each block's last user key.
    heads: Vec<u128>,
    /// Each block's place, size and last sequence number.
    entries: Vec<IndexEntry>,
    /// The blocks' last user keys, end to end.
    keys: Vec<u8>,
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
        let mut index = Index::default();
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
            index.keys.extend_from_slice(cursor.key());
            let key_end = u32::try_from(index.keys.len())
                .map_err(|_| DecodeError::new(cursor.offset(), "index keys over 4 GiB"))?;
            index.heads.push(key_head(cursor.key()));
            index.entries.push(IndexEntry {
                offset,
                last_seq: cursor.seq(),
                size,
                key_end,
            });
            cursor.step_forward()?;
        }
        if expected_offset != data_end {
            return Err(DecodeError::new(
                0,
                "data blocks do not reach the filter block",
            ));
        }
        index.heads.shrink_to_fit();
        index.entries.shrink_to_fit();
        index.keys.shrink_to_fit();
        Ok(index)
    }

    /// The entries, one per data block.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The last user key of block `i`.
    ///
    /// # Panics
    /// When `i` is not below [`Index::len`].
    pub fn last_key(&self, i: usize) -> &[u8] {
        let start = match i {
            0 => 0,
            _ => self.entries[i - 1].key_end as usize,
        };
        &self.keys[start..self.entries[i].key_end as usize]
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
        // The heads alone order every block but those whose head equals `key`'s; those
        // form one run, searched by whole keys.
        let from = self.heads.partition_point(|&h| h < head);
        let (mut lo, mut hi) = match self.heads.get(from) {
            Some(&h) if h == head => (
                from,
                from + self.heads[from..].partition_point(|&h| h == head),
            ),
            _ => return from,
        };
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if compare(self.last_key(mid), self.entries[mid].last_seq, key, seq).is_lt() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Bytes of memory the index holds.
    pub fn memory_bytes(&self) -> u64 {
        let heads = self.heads.capacity() * std::mem::size_of::<u128>();
        let entries = self.entries.capacity() * std::mem::size_of::<IndexEntry>();
        (heads + entries + self.keys.capacity()) as u64
    }
}
