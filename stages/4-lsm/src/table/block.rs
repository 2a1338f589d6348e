//! Blocks: the unit a table is read in. Data blocks and the index block share this format.
//!
//! A block holds entries in internal-key order. Each entry is a user key, its 8-byte
//! trailer (sequence number and kind, see [`crate::key`]) and a value. In a data block the
//! value is the user's value (empty for a tombstone); in the index block each entry's key is
//! the **last** internal key of one data block and its value is that block's 12-byte handle
//! (offset and size), so a binary search over the index finds the only block that can hold a
//! key.
//!
//! Neighbouring keys in a sorted block share long prefixes (`user:000123`, `user:000124`),
//! so, as in LevelDB, each key is stored as the length of the prefix it shares with the key
//! before it and the bytes that differ ([`crate::table::block_builder`] writes them). To read a
//! key, the reader must have rebuilt the key before it; so every `restart_interval` entries
//! (16 by default) comes a **restart point**, an entry that shares nothing, and the block
//! ends with the offsets of all restart points. A lookup binary-searches the restart points
//! (their keys are whole, so they are compared in place) and then decodes at most one
//! interval ([`Block::get`]).
//!
//! Reading is in two steps. [`decode`] (or [`decode_owned`], which saves a copy) runs once
//! when a block comes off the disk: it checks the checksum, decompresses
//! ([`crate::table::compression`]) and checks the restart array, and returns the block's
//! *contents*. [`Block::new`] then wraps contents without copying or
//! checksumming them, for as many lookups as the caller likes (a cache keeps contents).
//! Neither panics on any bytes: damage is a [`DecodeError`].
//!
//! ## Format
//!
//! A block on disk is its **stored bytes** (the contents, or the contents compressed) and a
//! 5-byte block trailer:
//!
//! | size | field |
//! |---|---|
//! | s | stored bytes: the contents below, or for lz4 their compressed form ([`crate::table::compression`]) |
//! | 1 | compression type: 0 none, 1 lz4 |
//! | 4 | CRC32 of the stored bytes and the type byte, `u32` LE |
//!
//! The contents are the entries, one after the other:
//!
//! | size | field |
//! |---|---|
//! | 1-3 | `shared`: bytes of the key shared with the previous entry's key, varint (0 at a restart point) |
//! | 1-3 | `unshared`: bytes of the key that follow, varint (`shared + unshared` at most [`kv_shared::MAX_KEY_LEN`]) |
//! | 1-4 | `value_len`: value length, varint (at most [`kv_shared::MAX_VALUE_LEN`]) |
//! | unshared | the key's bytes after the shared prefix |
//! | 8 | trailer `seq << 8 \| kind`, `u64` LE (never shared: only user-key bytes are) |
//! | value_len | value |
//!
//! and then the restart array:
//!
//! | size | field |
//! |---|---|
//! | 4 × n | offset in the contents of each restart point's entry, `u32` LE, increasing, the first 0 |
//! | 4 | n, the number of restart points, `u32` LE (at least 1) |

use std::cmp::Ordering;
use std::ops::Deref;

use kv_shared::framing::{ByteReader, DecodeError, crc32, put_crc};
use kv_shared::{MAX_KEY_LEN, MAX_VALUE_LEN};

use crate::key::{Kind, compare, split_trailer};
use crate::table::compression::{self, Compression};

/// Bytes of the block trailer: the compression type and the checksum.
pub const TRAILER_LEN: usize = 5;

/// The on-disk bytes of a block made of `contents`: compressed with `compression` when that
/// saves at least an eighth ([`compression::lz4_compress`]), then the block trailer.
pub fn encode(contents: Vec<u8>, compression: Compression) -> Vec<u8> {
    let (mut out, used) = match compression {
        Compression::Lz4 => match compression::lz4_compress(&contents) {
            Some(packed) => (packed, Compression::Lz4),
            None => (contents, Compression::None),
        },
        Compression::None => (contents, Compression::None),
    };
    out.push(used as u8);
    put_crc(&mut out);
    out
}

/// Checks one block's on-disk bytes `raw` (trailer included) and returns its contents, ready
/// for [`Block::new`]: verifies the checksum, decompresses, and checks the restart array.
///
/// # Errors
/// [`DecodeError`] for a block shorter than its trailer, a checksum mismatch, an unknown
/// compression type, lz4 data that does not decode, or a bad restart array. Offsets are in
/// `raw`, except for the restart array's, which are in the decompressed contents.
pub fn decode(raw: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let (compression, stored_len) = check_trailer(raw)?;
    with_checked_restarts(match compression {
        Compression::None => raw[..stored_len].to_vec(),
        Compression::Lz4 => compression::lz4_decompress(&raw[..stored_len])?,
    })
}

/// [`decode`] for bytes the caller owns (as a block just read from disk): an uncompressed
/// block's contents are `raw` itself, with its trailer cut off, without a copy.
///
/// # Errors
/// As [`decode`].
pub fn decode_owned(mut raw: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
    let (compression, stored_len) = check_trailer(&raw)?;
    with_checked_restarts(match compression {
        Compression::None => {
            raw.truncate(stored_len);
            raw
        }
        Compression::Lz4 => compression::lz4_decompress(&raw[..stored_len])?,
    })
}

/// `contents`, once its restart array has passed [`Block::check_restarts`].
fn with_checked_restarts(contents: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
    Block::new(&contents)?.check_restarts()?;
    Ok(contents)
}

/// Checks the block trailer of `raw`: the checksum, and a known compression type, which it
/// returns with the length of the stored bytes.
fn check_trailer(raw: &[u8]) -> Result<(Compression, usize), DecodeError> {
    let Some(stored_len) = raw.len().checked_sub(TRAILER_LEN) else {
        return Err(DecodeError::new(0, "block shorter than its trailer"));
    };
    let mut r = ByteReader::new(&raw[stored_len..]);
    let kind = r.u8("compression type")?;
    let crc = r.u32("block checksum")?;
    if crc != crc32(&raw[..=stored_len]) {
        return Err(DecodeError::new(stored_len + 1, "block checksum mismatch"));
    }
    let compression = Compression::from_byte(kind)
        .ok_or_else(|| DecodeError::new(stored_len, format!("unknown compression type {kind}")))?;
    Ok((compression, stored_len))
}

/// An entry's fields as stored, before its key is rebuilt.
#[derive(Debug, Clone, Copy)]
struct RawEntry<'a> {
    shared: usize,
    suffix: &'a [u8],
    seq: u64,
    kind: Kind,
    value: &'a [u8],
    /// Offset of the next entry.
    end: usize,
}

/// Decodes the entry at offset `at` of `data` (the entries of a block).
fn parse_entry(data: &[u8], at: usize) -> Result<RawEntry<'_>, DecodeError> {
    let rest = data
        .get(at..)
        .ok_or_else(|| DecodeError::new(at, "entry offset past the entries"))?;
    // The three lengths: one byte each when all are under 128 (the common case, read
    // directly as LevelDB does), else three full varints.
    let (shared, unshared, value_len, header) = match rest {
        &[s, u, v, ..] if (s | u | v) < 0x80 => (s.into(), u.into(), v.into(), 3),
        _ => parse_lengths(rest).map_err(|e| DecodeError::new(at + e.offset, e.detail))?,
    };
    // Each length is bounded (by MAX_KEY_LEN and MAX_VALUE_LEN), so these sums cannot
    // overflow, and `end` within `rest` puts every slice below within it too.
    let key_end = header + unshared;
    let trailer_end = key_end + 8;
    let end = trailer_end + value_len;
    if end > rest.len() {
        return Err(DecodeError::new(
            at,
            format!(
                "entry of {end} bytes runs past the entries ({} bytes remain)",
                rest.len()
            ),
        ));
    }
    let trailer: [u8; 8] = rest[key_end..trailer_end].try_into().unwrap_or_default();
    let (seq, kind) = split_trailer(u64::from_le_bytes(trailer));
    let kind = kind.ok_or_else(|| DecodeError::new(at + key_end, "unknown entry kind"))?;
    Ok(RawEntry {
        shared,
        suffix: &rest[header..key_end],
        seq,
        kind,
        value: &rest[trailer_end..end],
        end: at + end,
    })
}

/// An entry's three length varints, checked against their limits, and the bytes they take.
fn parse_lengths(rest: &[u8]) -> Result<(usize, usize, usize, usize), DecodeError> {
    let mut r = ByteReader::new(rest);
    let shared = r.varint("shared key length")?;
    let unshared = r.varint("unshared key length")?;
    let key_len = shared.saturating_add(unshared);
    if key_len > MAX_KEY_LEN as u64 {
        return Err(DecodeError::new(
            0,
            format!("key length {shared} + {unshared} is over {MAX_KEY_LEN}"),
        ));
    }
    let value_len = r.varint("value length")?;
    let value_len = r.check_len(value_len, MAX_VALUE_LEN, "value length")?;
    Ok((shared as usize, unshared as usize, value_len, r.pos()))
}

/// Rebuilds the key of entry `e` (at offset `at`) in `key`, which holds the previous key.
fn rebuild_key(key: &mut Vec<u8>, e: &RawEntry<'_>, at: usize) -> Result<(), DecodeError> {
    if e.shared > key.len() {
        return Err(DecodeError::new(
            at,
            format!(
                "entry shares {} key bytes, the key before it has {}",
                e.shared,
                key.len()
            ),
        ));
    }
    key.truncate(e.shared);
    key.extend_from_slice(e.suffix);
    Ok(())
}

/// A block's contents, split into entries and restart array (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// The whole contents.
    contents: &'a [u8],
    /// The entries.
    data: &'a [u8],
    /// The restart array, 4 bytes per restart point.
    restarts: &'a [u8],
}

impl<'a> Block<'a> {
    /// Wraps a block's contents (from [`decode`]). Cheap: it reads only the restart count;
    /// every other field is checked as it is used.
    ///
    /// # Errors
    /// [`DecodeError`] for contents too short for their restart array.
    pub fn new(contents: &'a [u8]) -> Result<Block<'a>, DecodeError> {
        let Some(count_at) = contents.len().checked_sub(4) else {
            return Err(DecodeError::new(0, "block shorter than its restart count"));
        };
        let mut r = ByteReader::new(&contents[count_at..]);
        let n = r.u32("restart count")? as usize;
        if n == 0 || n > count_at / 4 {
            return Err(DecodeError::new(
                count_at,
                format!(
                    "restart count {n} does not fit a block of {} bytes",
                    contents.len()
                ),
            ));
        }
        let restarts_at = count_at - 4 * n;
        Ok(Block {
            contents,
            data: &contents[..restarts_at],
            restarts: &contents[restarts_at..count_at],
        })
    }

    /// True for a block without entries.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of restart points.
    pub fn restart_count(&self) -> usize {
        self.restarts.len() / 4
    }

    /// Bytes of entries (the contents before the restart array).
    pub fn entries_len(&self) -> usize {
        self.data.len()
    }

    /// Offset in the contents of restart point `i`.
    ///
    /// # Errors
    /// [`DecodeError`] when there is no restart point `i` or it lies past the entries.
    pub fn restart_offset(&self, i: usize) -> Result<usize, DecodeError> {
        let at = self.data.len() + 4 * i;
        let offset = self
            .restarts
            .get(4 * i..4 * i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| DecodeError::new(at, "no such restart point"))?;
        let offset = offset as usize;
        if offset > self.data.len() {
            return Err(DecodeError::new(
                at,
                format!("restart point at {offset} is past the entries"),
            ));
        }
        Ok(offset)
    }

    /// Checks that the restart offsets start at 0, increase and point inside the entries.
    fn check_restarts(&self) -> Result<(), DecodeError> {
        let mut previous = None;
        for i in 0..self.restart_count() {
            let offset = self.restart_offset(i)?;
            let ok = match previous {
                None => offset == 0,
                Some(p) => offset > p && offset < self.data.len(),
            };
            if !ok {
                return Err(DecodeError::new(
                    self.data.len() + 4 * i,
                    format!("restart point {i} at {offset} is out of order"),
                ));
            }
            previous = Some(offset);
        }
        Ok(())
    }

    /// The whole key and sequence number of restart point `i`, borrowed from the block.
    fn restart_key(&self, i: usize) -> Result<(&'a [u8], u64), DecodeError> {
        let at = self.restart_offset(i)?;
        let e = parse_entry(self.data, at)?;
        if e.shared != 0 {
            return Err(DecodeError::new(at, "a restart point shares key bytes"));
        }
        Ok((e.suffix, e.seq))
    }

    /// The last restart point before the entry at offset `at` (which must not be before the
    /// first entry), or `None` for the first entry.
    fn restart_before_offset(&self, at: usize) -> Result<Option<usize>, DecodeError> {
        let (mut lo, mut hi) = (0, self.restart_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.restart_offset(mid)? < at {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.checked_sub(1))
    }

    /// The last restart point whose key is before the internal key `(key, seq)`, or 0: a
    /// scan from it reaches the first entry at or after `(key, seq)` within one interval.
    fn restart_before(&self, key: &[u8], seq: u64) -> Result<usize, DecodeError> {
        let (mut lo, mut hi) = (0, self.restart_count());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let (k, s) = self.restart_key(mid)?;
            if compare(k, s, key, seq) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The newest version of `key` with a sequence number at most `snapshot` held in this
    /// block: its kind and value, borrowed from the contents. Binary search over the restart
    /// points, then a scan of at most one interval that rebuilds keys in `scratch` (reused
    /// across calls, so a lookup allocates nothing once it has grown).
    ///
    /// Versions of one key can continue in the next block; the table's index picks the block
    /// whose range holds `(key, snapshot)`, so this block is the only one to ask.
    ///
    /// # Errors
    /// [`DecodeError`] for an entry or restart point that does not decode.
    pub fn get(
        &self,
        key: &[u8],
        snapshot: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<Option<(Kind, &'a [u8])>, DecodeError> {
        let mut at = self.restart_offset(self.restart_before(key, snapshot)?)?;
        scratch.clear();
        while at < self.data.len() {
            let e = parse_entry(self.data, at)?;
            rebuild_key(scratch, &e, at)?;
            if compare(scratch, e.seq, key, snapshot) != Ordering::Less {
                return Ok((scratch.as_slice() == key).then_some((e.kind, e.value)));
            }
            at = e.end;
        }
        Ok(None)
    }

    /// An iterator over the entries from the first one on.
    pub fn iter(&self) -> BlockIter<'a> {
        BlockIter {
            cursor: BlockCursor::unpositioned(self.contents, self.data.len(), self.restart_count()),
            step: Step::First,
        }
    }
}

/// One entry of a block, as [`BlockIter::next_entry`] yields it: the key in the iterator's
/// buffer, the value borrowed from the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEntry<'k, 'a> {
    /// The user key.
    pub key: &'k [u8],
    /// The sequence number.
    pub seq: u64,
    /// Put or delete.
    pub kind: Kind,
    /// The value (empty for a tombstone).
    pub value: &'a [u8],
    /// Offset of the entry in the contents.
    pub offset: usize,
    /// Key bytes shared with the previous entry (0 at a restart point).
    pub shared: usize,
}

/// A position among a block's entries that moves both ways: LevelDB's block iterator.
///
/// It holds the block's contents `C` (a shared [`crate::block_cache::BlockContents`], or a
/// borrowed `&[u8]`) and rebuilds the current key in a buffer of its own, which stops
/// growing once it has held the longest key. Keys are prefix-compressed, so an entry can
/// only be read after the one before it: a step forward decodes the entry that follows; a
/// step back goes back to the restart point before the current entry (whose key is stored
/// whole) and decodes forward to the entry just before it, at most one interval.
///
/// A move that meets damage returns the [`DecodeError`] and leaves the cursor not valid.
#[derive(Debug, Clone)]
pub struct BlockCursor<C> {
    contents: C,
    /// Bytes of entries: where the restart array starts.
    data_len: usize,
    restart_count: usize,
    /// Offset of the current entry; `data_len` when not valid.
    current: usize,
    /// Offset of the entry after the current one.
    next: usize,
    key: Vec<u8>,
    seq: u64,
    kind: Kind,
    shared: usize,
    /// Where the current value lies in the contents.
    value: std::ops::Range<usize>,
}

impl<C: Deref<Target: AsRef<[u8]>>> BlockCursor<C> {
    /// A cursor over a block's contents (from [`decode`]), not yet positioned.
    ///
    /// # Errors
    /// [`DecodeError`] for contents too short for their restart array.
    pub fn new(contents: C) -> Result<BlockCursor<C>, DecodeError> {
        let block = Block::new((*contents).as_ref())?;
        let (data_len, restart_count) = (block.data.len(), block.restart_count());
        Ok(BlockCursor::unpositioned(contents, data_len, restart_count))
    }

    /// A cursor over `contents`, already split by [`Block::new`] into `data_len` bytes of
    /// entries and `restart_count` restart points.
    fn unpositioned(contents: C, data_len: usize, restart_count: usize) -> BlockCursor<C> {
        BlockCursor {
            contents,
            data_len,
            restart_count,
            current: data_len,
            next: data_len,
            key: Vec::new(),
            seq: 0,
            kind: Kind::Delete,
            shared: 0,
            value: 0..0,
        }
    }

    /// The contents.
    fn bytes(&self) -> &[u8] {
        (*self.contents).as_ref()
    }

    /// The block, as [`Block::new`] split it.
    fn block(&self) -> Block<'_> {
        let contents = self.bytes();
        Block {
            contents,
            data: &contents[..self.data_len],
            restarts: &contents[self.data_len..self.data_len + 4 * self.restart_count],
        }
    }

    /// True when the cursor is at an entry.
    pub fn valid(&self) -> bool {
        self.current < self.data_len
    }

    /// The current entry's user key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The current entry's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The current entry's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The current entry's value (empty for a tombstone).
    pub fn value(&self) -> &[u8] {
        &self.bytes()[self.value.clone()]
    }

    /// The current entry's offset in the contents.
    pub fn offset(&self) -> usize {
        self.current
    }

    /// Key bytes the current entry shares with the one before it (0 at a restart point).
    pub fn shared(&self) -> usize {
        self.shared
    }

    /// Moves to the first entry (not valid for a block without entries).
    ///
    /// # Errors
    /// [`DecodeError`] for damage; the cursor is then not valid.
    pub fn seek_to_first(&mut self) -> Result<(), DecodeError> {
        self.checked(|c| {
            c.go_to_restart(0)?;
            c.parse_next().map(drop)
        })
    }

    /// Moves to the last entry.
    ///
    /// # Errors
    /// As [`BlockCursor::seek_to_first`].
    pub fn seek_to_last(&mut self) -> Result<(), DecodeError> {
        self.checked(|c| {
            c.go_to_restart(c.restart_count - 1)?;
            while c.parse_next()? && c.next < c.data_len {}
            Ok(())
        })
    }

    /// Moves to the first entry at or after the internal key `(key, seq)` (`seq` =
    /// `u64::MAX`: the first version of `key` or of a later key); not valid when there is
    /// none. Binary search over the restart points, then a scan of at most one interval.
    ///
    /// # Errors
    /// As [`BlockCursor::seek_to_first`].
    pub fn seek(&mut self, key: &[u8], seq: u64) -> Result<(), DecodeError> {
        self.checked(|c| {
            let restart = c.block().restart_before(key, seq)?;
            c.go_to_restart(restart)?;
            while c.parse_next()? && compare(&c.key, c.seq, key, seq) == Ordering::Less {}
            Ok(())
        })
    }

    /// Moves to the next entry; does nothing when not valid.
    ///
    /// # Errors
    /// As [`BlockCursor::seek_to_first`].
    pub fn step_forward(&mut self) -> Result<(), DecodeError> {
        if !self.valid() {
            return Ok(());
        }
        self.checked(|c| c.parse_next().map(drop))
    }

    /// Moves to the entry before; does nothing when not valid.
    ///
    /// # Errors
    /// As [`BlockCursor::seek_to_first`].
    pub fn step_back(&mut self) -> Result<(), DecodeError> {
        if !self.valid() {
            return Ok(());
        }
        self.checked(|c| {
            let original = c.current;
            let Some(restart) = c.block().restart_before_offset(original)? else {
                c.invalidate(); // the first entry: nothing before it
                return Ok(());
            };
            c.go_to_restart(restart)?;
            while c.parse_next()? && c.next < original {}
            Ok(())
        })
    }

    /// Runs a move, leaving the cursor not valid if it fails.
    fn checked(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let moved = step(self);
        if moved.is_err() {
            self.invalidate();
        }
        moved
    }

    fn invalidate(&mut self) {
        self.current = self.data_len;
        self.next = self.data_len;
    }

    /// Places the cursor just before the entry at restart point `i`.
    fn go_to_restart(&mut self, i: usize) -> Result<(), DecodeError> {
        self.next = self.block().restart_offset(i)?;
        self.key.clear();
        Ok(())
    }

    /// Decodes the entry at `next` and makes it current: false (and not valid) past the
    /// last entry.
    fn parse_next(&mut self) -> Result<bool, DecodeError> {
        let at = self.next;
        if at >= self.data_len {
            self.invalidate();
            return Ok(false);
        }
        let data = &(*self.contents).as_ref()[..self.data_len];
        let e = parse_entry(data, at)?;
        rebuild_key(&mut self.key, &e, at)?;
        (self.current, self.next) = (at, e.end);
        (self.seq, self.kind, self.shared) = (e.seq, e.kind, e.shared);
        self.value = e.end - e.value.len()..e.end;
        Ok(true)
    }
}

impl<'a> BlockCursor<&'a [u8]> {
    /// The current entry, its value borrowed from the block itself.
    pub fn entry(&self) -> BlockEntry<'_, 'a> {
        let contents: &'a [u8] = self.contents;
        BlockEntry {
            key: &self.key,
            seq: self.seq,
            kind: self.kind,
            value: &contents[self.value.clone()],
            offset: self.current,
            shared: self.shared,
        }
    }
}

/// Walks a [`Block`]'s entries in order: a [`BlockCursor`] as a one-way walk from a start.
///
/// Not an [`Iterator`]: each entry borrows the cursor's key buffer until the next call.
#[derive(Debug, Clone)]
pub struct BlockIter<'a> {
    cursor: BlockCursor<&'a [u8]>,
    /// What the next call to [`BlockIter::next_entry`] does first.
    step: Step,
}

/// The move [`BlockIter::next_entry`] makes before it yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Go to the first entry.
    First,
    /// Stay: a seek has placed the cursor at the entry to yield.
    Stay,
    /// Go to the next entry.
    Next,
    /// Yield nothing: a move failed.
    Failed,
}

impl<'a> BlockIter<'a> {
    /// The next entry, `None` after the last one, or an error once (then `None`).
    pub fn next_entry(&mut self) -> Option<Result<BlockEntry<'_, 'a>, DecodeError>> {
        let moved = match self.step {
            Step::First => self.cursor.seek_to_first(),
            Step::Stay => Ok(()),
            Step::Next => self.cursor.step_forward(),
            Step::Failed => return None,
        };
        self.step = Step::Next;
        if let Err(e) = moved {
            self.step = Step::Failed;
            return Some(Err(e));
        }
        self.cursor.valid().then(|| Ok(self.cursor.entry()))
    }

    /// Positions the iterator so that [`BlockIter::next_entry`] yields the first entry whose
    /// user key is at or after `key` (or nothing, if there is none).
    ///
    /// # Errors
    /// [`DecodeError`] for an entry or restart point that does not decode; the iterator
    /// then yields nothing.
    pub fn seek(&mut self, key: &[u8]) -> Result<(), DecodeError> {
        // (key, u64::MAX) sorts before every version of `key`: sequence numbers are < 2^56.
        let found = self.cursor.seek(key, u64::MAX);
        self.step = if found.is_ok() {
            Step::Stay
        } else {
            Step::Failed
        };
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::trailer;
    use crate::table::block_builder::BlockBuilder;

    #[test]
    fn build_get_seek_and_damage() {
        for interval in [1, 2, 16] {
            let mut b = BlockBuilder::new(interval);
            b.add(b"apple", trailer(5, Kind::Put), b"five");
            b.add(b"apple", trailer(2, Kind::Delete), b"");
            b.add(b"apricot", trailer(9, Kind::Put), b"nine");
            b.add(b"banana", trailer(1, Kind::Put), b"one");
            let raw = b.finish(Compression::None);
            assert!(b.is_empty());
            let contents = decode(&raw).unwrap();
            let block = Block::new(&contents).unwrap();
            let mut scratch = Vec::new();
            let get = |key: &[u8], snapshot, scratch: &mut Vec<u8>| {
                block.get(key, snapshot, scratch).unwrap()
            };
            assert_eq!(
                get(b"apple", 9, &mut scratch),
                Some((Kind::Put, &b"five"[..]))
            );
            assert_eq!(
                get(b"apple", 4, &mut scratch),
                Some((Kind::Delete, &b""[..]))
            );
            assert_eq!(get(b"apple", 1, &mut scratch), None);
            assert_eq!(
                get(b"apricot", 9, &mut scratch),
                Some((Kind::Put, &b"nine"[..]))
            );
            assert_eq!(get(b"apricot", 8, &mut scratch), None);
            assert_eq!(get(b"b", 9, &mut scratch), None);
            assert_eq!(
                get(b"banana", 1, &mut scratch),
                Some((Kind::Put, &b"one"[..]))
            );
            assert_eq!(get(b"cherry", 9, &mut scratch), None);
            let mut it = block.iter();
            it.seek(b"apr").unwrap();
            let e = it.next_entry().unwrap().unwrap();
            assert_eq!((e.key, e.seq), (&b"apricot"[..], 9));
            assert_eq!(e.shared, if interval <= 2 { 0 } else { 2 });
            assert_eq!(it.next_entry().unwrap().unwrap().key, b"banana");
            assert!(it.next_entry().is_none());
            it.seek(b"c").unwrap();
            assert!(it.next_entry().is_none());
            for i in 0..raw.len() {
                let mut bad = raw.clone();
                bad[i] ^= 0x10;
                assert!(decode(&bad).is_err(), "flip at {i}");
            }
        }
    }
}
