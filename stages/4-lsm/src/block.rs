//! Blocks: the unit a table is read in. Data blocks and the index block share this format.
//!
//! A block is a run of entries in internal-key order, a count, and a checksum. Each entry is
//! a user key, its 8-byte trailer (sequence number and kind, see [`crate::key`]) and a value.
//! In a data block the value is the user's value (empty for a tombstone); in the index
//! block each entry's key is the **last** internal key of one data block and its value is
//! that block's 12-byte handle (offset and size), so a binary search over the index finds
//! the only block that can hold a key.
//!
//! Entries are stored whole, with no prefix compression: a block is read front to back.
//! (LevelDB shares key prefixes and keeps restart points for a binary search inside the
//! block; that is a later speed step, and it would change only this file.)
//!
//! ## Format
//!
//! | size | field |
//! |---|---|
//! | 1-3 | key length `k`, varint (at most [`kv_shared::MAX_KEY_LEN`]) |
//! | k | user key |
//! | 8 | trailer `seq << 8 \| kind`, `u64` LE |
//! | 1-4 | value length `v`, varint (at most [`kv_shared::MAX_VALUE_LEN`]) |
//! | v | value |
//!
//! repeated for each entry, then:
//!
//! | size | field |
//! |---|---|
//! | 4 | number of entries, `u32` LE |
//! | 4 | CRC32 of every byte of the block before this field, `u32` LE |

use std::cmp::Ordering;

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32, put_varint};
use kv_shared::{MAX_KEY_LEN, MAX_VALUE_LEN};

use crate::key::{Kind, compare, split_trailer};

/// Bytes after the entries: the count and the checksum.
pub const TRAILER_LEN: usize = 8;

/// Builds one block entry by entry (in internal-key order).
#[derive(Debug, Default)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    count: u32,
}

impl BlockBuilder {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry.
    pub fn add(&mut self, key: &[u8], trailer: u64, value: &[u8]) {
        put_varint(&mut self.buf, key.len() as u64);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&trailer.to_le_bytes());
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(value);
        self.count += 1;
    }

    /// The block's size if finished now.
    pub fn size(&self) -> usize {
        self.buf.len() + TRAILER_LEN
    }

    /// True when no entry was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished block's bytes; the builder is empty again afterwards.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.extend_from_slice(&self.count.to_le_bytes());
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        self.count = 0;
        out
    }
}

/// One entry of a block, borrowed from the block's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEntry<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// The sequence number.
    pub seq: u64,
    /// Put or delete.
    pub kind: Kind,
    /// The value (empty for a tombstone).
    pub value: &'a [u8],
    /// Offset of the entry in the block.
    pub offset: usize,
}

/// A checked block: its checksum and entry count were verified.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    entries: &'a [u8],
    count: u32,
}

impl<'a> Block<'a> {
    /// Checks a block's checksum and splits off its entries.
    ///
    /// # Errors
    /// [`DecodeError`] for a block too short or a checksum mismatch.
    pub fn new(bytes: &'a [u8]) -> Result<Block<'a>, DecodeError> {
        if bytes.len() < TRAILER_LEN {
            return Err(DecodeError::new(0, "block shorter than its trailer"));
        }
        let body = bytes.len() - 4;
        let crc = u32::from_le_bytes(bytes[body..].try_into().unwrap_or_default());
        if crc != crc32(&bytes[..body]) {
            return Err(DecodeError::new(body, "block checksum mismatch"));
        }
        let count_at = body - 4;
        let count = u32::from_le_bytes(bytes[count_at..body].try_into().unwrap_or_default());
        Ok(Block {
            entries: &bytes[..count_at],
            count,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True for a block without entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries, in order. Each item is an error if the bytes do not decode (only possible
    /// for a block written wrongly, since the checksum matched).
    pub fn iter(&self) -> BlockIter<'a> {
        BlockIter {
            reader: ByteReader::new(self.entries),
            left: self.count,
            failed: false,
        }
    }

    /// The first entry at or after the internal key `(key, seq)`, if any.
    ///
    /// # Errors
    /// [`DecodeError`] for an entry that does not decode.
    pub fn seek(&self, key: &[u8], seq: u64) -> Result<Option<BlockEntry<'a>>, DecodeError> {
        for entry in self.iter() {
            let entry = entry?;
            if compare(entry.key, entry.seq, key, seq) != Ordering::Less {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }
}

/// Iterator over a [`Block`]'s entries.
#[derive(Debug, Clone)]
pub struct BlockIter<'a> {
    reader: ByteReader<'a>,
    left: u32,
    failed: bool,
}

impl<'a> BlockIter<'a> {
    fn decode_next(&mut self) -> Result<BlockEntry<'a>, DecodeError> {
        let r = &mut self.reader;
        let offset = r.pos();
        let key_len = r.varint("key length")?;
        let key_len = r.check_len(key_len, MAX_KEY_LEN, "key length")?;
        let key = r.bytes(key_len, "key")?;
        let (seq, kind) = split_trailer(r.u64("trailer")?);
        let kind = kind.ok_or_else(|| DecodeError::new(r.pos() - 8, "unknown entry kind"))?;
        let value_len = r.varint("value length")?;
        let value_len = r.check_len(value_len, MAX_VALUE_LEN, "value length")?;
        let value = r.bytes(value_len, "value")?;
        Ok(BlockEntry {
            key,
            seq,
            kind,
            value,
            offset,
        })
    }
}

impl<'a> Iterator for BlockIter<'a> {
    type Item = Result<BlockEntry<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if !self.reader.is_empty() {
                self.failed = true;
                return Some(Err(DecodeError::new(
                    self.reader.pos(),
                    "bytes after the last entry",
                )));
            }
            return None;
        }
        self.left -= 1;
        let entry = self.decode_next();
        self.failed = entry.is_err();
        Some(entry)
    }
}

/// Adds the fields of a block at `base` (its offset in the file) to a dump; `value` says
/// what each entry's value means.
pub fn dump_block(d: &mut Dump, base: u64, bytes: &[u8], value: impl Fn(&[u8], Kind) -> String) {
    d.seek(base);
    let block = match Block::new(bytes) {
        Ok(block) => block,
        Err(e) => {
            d.field(bytes, format!("unreadable block: {e}"));
            return;
        }
    };
    for entry in block.iter() {
        let Ok(e) = entry else {
            d.note("entry does not decode");
            return;
        };
        let start = base + e.offset as u64;
        let key_len_len = kv_shared::framing::varint_len(e.key.len() as u64);
        let at = e.offset;
        d.seek(start);
        d.field(
            &bytes[at..at + key_len_len],
            format!("key length {}", e.key.len()),
        );
        let at = at + key_len_len;
        d.field(
            &bytes[at..at + e.key.len()],
            format!("key {}", quoted(e.key, 40)),
        );
        let at = at + e.key.len();
        let kind = match e.kind {
            Kind::Put => "put",
            Kind::Delete => "delete",
        };
        d.field(&bytes[at..at + 8], format!("trailer: seq {} {kind}", e.seq));
        let at = at + 8;
        let value_len_len = kv_shared::framing::varint_len(e.value.len() as u64);
        d.field(
            &bytes[at..at + value_len_len],
            format!("value length {}", e.value.len()),
        );
        let at = at + value_len_len;
        if !e.value.is_empty() {
            d.field(&bytes[at..at + e.value.len()], value(e.value, e.kind));
        }
    }
    let body = bytes.len() - TRAILER_LEN;
    d.seek(base + body as u64);
    d.field(
        &bytes[body..body + 4],
        format!("entry count {}", block.len()),
    );
    d.field(&bytes[body + 4..], "crc32 (ok)");
}

/// Checks a block read from a file and returns its *contents*: the entries and the count,
/// without the checksum. What the block cache keeps; [`Block::from_contents`] reads it.
///
/// # Errors
/// [`DecodeError`] for a block too short or a checksum mismatch.
pub fn decode(raw: &[u8]) -> Result<Vec<u8>, DecodeError> {
    Block::new(raw)?;
    Ok(raw[..raw.len() - 4].to_vec())
}

impl<'a> Block<'a> {
    /// A block over contents returned by [`decode`] (the checksum was checked there).
    ///
    /// # Errors
    /// [`DecodeError`] for contents shorter than the entry count.
    pub fn from_contents(contents: &'a [u8]) -> Result<Block<'a>, DecodeError> {
        let Some(count_at) = contents.len().checked_sub(4) else {
            return Err(DecodeError::new(0, "block shorter than its trailer"));
        };
        let count = u32::from_le_bytes(contents[count_at..].try_into().unwrap_or_default());
        Ok(Block {
            entries: &contents[..count_at],
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::trailer;

    #[test]
    fn build_read_seek_and_damage() {
        let mut b = BlockBuilder::new();
        b.add(b"a", trailer(5, Kind::Put), b"five");
        b.add(b"a", trailer(2, Kind::Delete), b"");
        b.add(b"c", trailer(9, Kind::Put), b"nine");
        let bytes = b.finish();
        assert!(b.is_empty());
        let block = Block::new(&bytes).unwrap();
        assert_eq!(block.len(), 3);
        let seqs: Vec<u64> = block.iter().map(|e| e.unwrap().seq).collect();
        assert_eq!(seqs, vec![5, 2, 9]);
        assert_eq!(block.seek(b"a", 3).unwrap().unwrap().seq, 2);
        assert_eq!(block.seek(b"b", u64::MAX).unwrap().unwrap().key, b"c");
        assert_eq!(block.seek(b"d", u64::MAX).unwrap(), None);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Block::new(&bad).is_err(), "flip at {i}");
        }
    }
}
