//! A data block: a few KiB of a table's entries, sorted by key, read and checked as one unit.
//!
//! A table is cut into blocks so that a lookup reads one block, not the whole file, and so
//! that the index in memory needs one key per block rather than one per entry. The block
//! is also the unit of checking: its [`crate::frame`] checksum is verified on every read.
//!
//! ## Format (version 1)
//!
//! On disk a block is one [`crate::frame`] (`crc32 u32 | body length u32 | body`); the body
//! is entries back to back, in strictly increasing key order:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | `k`, key length, `u16` LE |
//! | 2 | 4 | value word, `u32` LE: [`TOMBSTONE`] (bit 31) for a tombstone, else the value length `v` (at most 16 MiB) |
//! | 6 | k | key |
//! | 6 + k | v | value (absent for a tombstone) |
//!
//! A block normally holds about `block_bytes` (default 4 KiB) of entries: the builder closes
//! it once it reaches that size, so one entry larger than that gets a block of its own.
//!
//! Inside a block the search is linear: entries have different lengths, so there is no
//! way to jump to the middle one. That is cheap because the block is small and already
//! in memory.
//!
//! A [`BlockCursor`] also walks backwards. LevelDB's blocks keep *restart points*, offsets
//! of every sixteenth entry, and step back by seeking to the restart point before the
//! current entry and scanning forward. These blocks keep none, so the cursor makes its
//! own: on loading a block it records where each entry's key and value lie (one pass, which
//! also checks every entry), and then moves by index, a step back as cheap as a step
//! forward and a seek a binary search.

use std::ops::Range;

use kv_shared::framing::{ByteReader, DecodeError};
use kv_shared::{Error, FileRef, MAX_VALUE_LEN, Result};

use crate::entry::Entry;
use crate::frame::{self, FRAME_HEADER_LEN};

/// Bit 31 of the value word: this entry is a tombstone.
pub const TOMBSTONE: u32 = 1 << 31;

/// Bytes an entry takes before its key and value.
pub const ENTRY_HEADER_LEN: usize = 6;

/// Appends one entry (`None` is a tombstone) to a block body.
pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    let word = value.map_or(TOMBSTONE, |v| v.len() as u32);
    out.extend_from_slice(&word.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value.unwrap_or_default());
}

/// Decodes the entry at the reader's position: its key and value (`None` for a tombstone).
///
/// # Errors
/// [`DecodeError`] when a length runs past the body or over the limits.
pub fn decode_entry<'a>(
    r: &mut ByteReader<'a>,
) -> Result<(&'a [u8], Option<&'a [u8]>), DecodeError> {
    let key_len = r.u16("key length")? as usize;
    let word = r.u32("value word")?;
    let key = r.bytes(key_len, "key")?;
    if word == TOMBSTONE {
        return Ok((key, None));
    }
    let len = r.check_len(u64::from(word), MAX_VALUE_LEN, "value length")?;
    Ok((key, Some(r.bytes(len, "value")?)))
}

/// One data block, read from a table file with its checksum verified.
#[derive(Debug, Clone)]
pub struct Block {
    frame: Vec<u8>,
    offset: u64,
}

impl Block {
    /// Reads the block framed at `offset`, `len` bytes long (frame included), and checks it.
    /// The caller has bounded `len` by the file's size.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset when the frame fails its check,
    /// [`Error::Io`].
    pub fn read(file: &FileRef, offset: u64, len: usize) -> Result<Block> {
        let frame = file.read_vec_at(offset, len)?;
        Block::check(file, frame, offset)
    }

    /// Reads the block framed at `offset` without knowing its length: first its 8-byte frame
    /// header, then its body (two reads). The frame must end by `end`. This is how a linear
    /// search walks a table without its index.
    ///
    /// # Errors
    /// [`Error::Corruption`] when the header's length runs past `end` or the frame fails its
    /// check, [`Error::Io`].
    pub fn read_unindexed(file: &FileRef, offset: u64, end: u64) -> Result<Block> {
        let left = end.saturating_sub(offset);
        if left < FRAME_HEADER_LEN as u64 {
            return Err(Error::corruption(
                file.path(),
                offset,
                "block frame header runs past the data blocks",
            ));
        }
        let mut frame = file.read_vec_at(offset, FRAME_HEADER_LEN)?;
        let max_body = (left - FRAME_HEADER_LEN as u64).min(u32::MAX as u64) as usize;
        let len = frame::frame_len(&frame, max_body)
            .map_err(|e| e.into_corruption(file.path(), offset))?;
        frame.resize(len, 0);
        file.read_at(
            &mut frame[FRAME_HEADER_LEN..],
            offset + FRAME_HEADER_LEN as u64,
        )?;
        Block::check(file, frame, offset)
    }

    fn check(file: &FileRef, frame: Vec<u8>, offset: u64) -> Result<Block> {
        frame::open(&frame).map_err(|e| e.into_corruption(file.path(), offset))?;
        Ok(Block { frame, offset })
    }

    /// The block's offset in its file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The whole frame's length in bytes.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// The body: the entries.
    pub fn body(&self) -> &[u8] {
        &self.frame[FRAME_HEADER_LEN..]
    }

    /// The entry at `pos` in the body and the position after it, or `None` at the end.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and the entry's offset. (The checksum passed,
    /// so this means a bug in the writer or bytes written by something else.)
    #[allow(clippy::type_complexity)]
    pub fn entry_at(
        &self,
        file: &FileRef,
        pos: usize,
    ) -> Result<Option<(&[u8], Option<&[u8]>, usize)>> {
        let body = self.body();
        if pos >= body.len() {
            return Ok(None);
        }
        let mut r = ByteReader::new(&body[pos..]);
        let (key, value) = decode_entry(&mut r).map_err(|e| {
            e.into_corruption(file.path(), self.offset + (FRAME_HEADER_LEN + pos) as u64)
        })?;
        Ok(Some((key, value, pos + r.pos())))
    }

    /// Searches the block for `key`: `Ok(Found(entry))`, or whether a key past it was seen
    /// (so a linear walk over the blocks can stop).
    ///
    /// # Errors
    /// As [`Block::entry_at`].
    pub fn search(&self, file: &FileRef, key: &[u8]) -> Result<BlockSearch> {
        let mut pos = 0;
        while let Some((k, v, next)) = self.entry_at(file, pos)? {
            match k.cmp(key) {
                std::cmp::Ordering::Less => pos = next,
                std::cmp::Ordering::Equal => {
                    return Ok(BlockSearch::Found(
                        v.map_or(Entry::Tombstone, |v| Entry::Value(v.to_vec())),
                    ));
                }
                std::cmp::Ordering::Greater => return Ok(BlockSearch::Passed),
            }
        }
        Ok(BlockSearch::NotYet)
    }
}

/// Where one entry's key and value lie in a block's body.
#[derive(Debug, Clone)]
struct Span {
    key: Range<usize>,
    /// `None` for a tombstone.
    value: Option<Range<usize>>,
}

/// A cursor over one block's entries, both ways (see the module documentation).
#[derive(Debug, Clone)]
pub struct BlockCursor {
    block: Block,
    entries: Vec<Span>,
    /// The entry the cursor is at; `entries.len()` when not valid.
    at: usize,
}

impl BlockCursor {
    /// A cursor over `block`, not yet positioned: records where every entry lies.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset of an entry that does not decode.
    pub fn new(file: &FileRef, block: Block) -> Result<BlockCursor> {
        let mut entries = Vec::new();
        let mut pos = 0;
        while let Some((key, value, next)) = block.entry_at(file, pos)? {
            let key_start = pos + ENTRY_HEADER_LEN;
            let key_end = key_start + key.len();
            let value = value.map(|v| key_end..key_end + v.len());
            entries.push(Span {
                key: key_start..key_end,
                value,
            });
            pos = next;
        }
        let at = entries.len();
        Ok(BlockCursor { block, entries, at })
    }

    /// True when the cursor is at an entry.
    pub fn valid(&self) -> bool {
        self.at < self.entries.len()
    }

    /// Moves to the first entry (not valid for an empty block).
    pub fn seek_to_first(&mut self) {
        self.at = 0;
    }

    /// Moves to the last entry (not valid for an empty block).
    pub fn seek_to_last(&mut self) {
        self.at = self.entries.len().saturating_sub(1);
    }

    /// Moves to the first entry whose key is at least `target` (not valid when none is).
    pub fn seek(&mut self, target: &[u8]) {
        let body = self.block.body();
        self.at = self
            .entries
            .partition_point(|span| &body[span.key.clone()] < target);
    }

    /// Moves to the next entry; off the end, not valid.
    pub fn next(&mut self) {
        if self.valid() {
            self.at += 1;
        }
    }

    /// Moves to the entry before; off the start, not valid.
    pub fn prev(&mut self) {
        if self.valid() {
            self.at = self.at.checked_sub(1).unwrap_or(self.entries.len());
        }
    }

    /// The key of the entry the cursor is at.
    ///
    /// # Panics
    /// When the cursor is not valid.
    pub fn key(&self) -> &[u8] {
        &self.block.body()[self.entries[self.at].key.clone()]
    }

    /// The value of the entry the cursor is at, `None` for a tombstone.
    ///
    /// # Panics
    /// When the cursor is not valid.
    pub fn value(&self) -> Option<&[u8]> {
        let span = self.entries[self.at].value.clone()?;
        Some(&self.block.body()[span])
    }
}

/// The outcome of [`Block::search`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockSearch {
    /// The key is in the block.
    Found(Entry),
    /// The block holds a larger key, so the key is in no later block either.
    Passed,
    /// Every key in the block is smaller: the key may be in a later block.
    NotYet,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_bad_lengths_are_caught() {
        let mut body = Vec::new();
        encode_entry(&mut body, b"apple", Some(b"red"));
        encode_entry(&mut body, b"gone", None);
        encode_entry(&mut body, b"", Some(b""));
        let mut r = ByteReader::new(&body);
        assert_eq!(
            decode_entry(&mut r).unwrap(),
            (&b"apple"[..], Some(&b"red"[..]))
        );
        assert_eq!(decode_entry(&mut r).unwrap(), (&b"gone"[..], None));
        assert_eq!(decode_entry(&mut r).unwrap(), (&b""[..], Some(&b""[..])));
        assert!(r.is_empty());
        let mut too_long = Vec::new();
        too_long.extend_from_slice(&1u16.to_le_bytes());
        too_long.extend_from_slice(&(TOMBSTONE - 1).to_le_bytes());
        too_long.extend_from_slice(b"kvalue");
        assert!(decode_entry(&mut ByteReader::new(&too_long)).is_err());
    }

    #[test]
    fn a_block_cursor_walks_both_ways_and_seeks() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = kv_shared::Fs::default();
        let path = tmp.path().join("block");
        let mut frame = Vec::new();
        let start = frame::begin(&mut frame);
        for (key, value) in [("b", Some("1")), ("d", None), ("f", Some(""))] {
            encode_entry(&mut frame, key.as_bytes(), value.map(str::as_bytes));
        }
        frame::seal(&mut frame, start);
        let file = fs.create(&path).unwrap();
        file.append(&frame).unwrap();
        let block = Block::read(&file, 0, frame.len()).unwrap();
        let mut c = BlockCursor::new(&file, block).unwrap();
        assert!(!c.valid());
        let walk = |c: &mut BlockCursor, forward: bool| {
            let mut seen = Vec::new();
            while c.valid() {
                seen.push((c.key().to_vec(), c.value().map(<[u8]>::to_vec)));
                if forward { c.next() } else { c.prev() }
            }
            seen
        };
        c.seek_to_first();
        let forward = walk(&mut c, true);
        c.seek_to_last();
        let mut backward = walk(&mut c, false);
        backward.reverse();
        assert_eq!(forward, backward);
        assert_eq!(forward[1], (b"d".to_vec(), None));
        assert_eq!(forward[2], (b"f".to_vec(), Some(Vec::new())));
        for (target, want) in [
            ("", Some("b")),
            ("b", Some("b")),
            ("c", Some("d")),
            ("f", Some("f")),
            ("g", None),
        ] {
            c.seek(target.as_bytes());
            assert_eq!(
                c.valid().then(|| c.key().to_vec()),
                want.map(|k| k.as_bytes().to_vec()),
                "seek {target}"
            );
        }
        c.seek(b"c");
        c.prev();
        assert_eq!(c.key(), b"b");
        c.prev();
        assert!(!c.valid());
        c.next();
        assert!(
            !c.valid(),
            "next on a cursor that is not valid does nothing"
        );
    }
}
