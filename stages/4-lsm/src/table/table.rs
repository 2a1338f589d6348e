//! Tables (SSTables): immutable sorted files of entries, with a filter and an index.
//!
//! Stage 3's tables are data blocks, an index and a footer. Stage 4 keeps that shape and adds
//! two things: every entry carries its sequence number and kind (so versions and tombstones
//! survive a flush and are settled by compaction), and every table carries a **filter block**,
//! a Bloom filter over its user keys ([`crate::bloom`]), which `get` asks before it reads any
//! data block.
//!
//! Opening a table reads its footer, filter and index into memory (all three are checked)
//! and keeps the filter and index there, pinned, for the table's life. A `get` then costs
//! at most one data block, and none when the filter says no; that block comes from the
//! tree's [`BlockCache`] when it is there, and is read, checked and put there when not.
//!
//! ## Format (version [`FORMAT_VERSION`])
//!
//! | part | contents |
//! |---|---|
//! | data blocks | entries in internal-key order, each block in the [`crate::block`] format (prefix-compressed keys, restart points, optional lz4, 5-byte trailer), about `block_bytes` each before compression |
//! | filter block | the [`crate::bloom`] filter bytes, then their CRC32 (`u32` LE) |
//! | index block | a [`crate::block`] (never compressed, a restart point at every entry) with one entry per data block: key and trailer = the block's **last** internal key, value = handle (`u64` LE offset, `u32` LE size, the block's trailer included) |
//! | footer | 48 bytes, below |
//!
//! Footer, the last 48 bytes of the file:
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
//! Tables are named `NNNNNN.sst` after their file number.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use kv_shared::dump::{Dump, quoted};
use kv_shared::framing::{ByteReader, DecodeError, crc32};
use kv_shared::{Error, FileRef, Fs, Result};

use crate::table::block::{self, Block};
use crate::block_cache::{BlockCache, BlockContents};
use crate::table::dump as block_dump;
use crate::bloom::BloomFilter;
use crate::counters::Counters;
use crate::key::{Entry, EntryIter, Kind};
use crate::memtable::Lookup;

thread_local! {
    /// The buffer `Block::get` rebuilds prefix-compressed keys in, one per thread, reused by
    /// every `get` so that a cached lookup allocates nothing but its value.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The last 8 bytes of every table.
pub const MAGIC: &[u8; 8] = b"KVLSMTBL";
/// The table format version: 3. Stage 3's table format was the first of the course; 2 added
/// sequence numbers and the filter; 3 has prefix-compressed blocks with restart points and
/// a compression type in each block trailer.
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of the footer.
pub const FOOTER_LEN: usize = 48;

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

/// The first 16 bytes of `key` as a big-endian number, zero-padded. Two keys whose heads
/// differ compare as their heads do (a shorter key padded with zero bytes sorts where its
/// prefix-ness puts it); only keys with equal heads need the whole comparison.
pub fn key_head(key: &[u8]) -> u128 {
    let mut head = [0u8; 16];
    let n = key.len().min(16);
    head[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(head)
}

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

/// An open table: its file, and its index and filter in memory.
#[derive(Debug)]
pub struct Table {
    file: FileRef,
    /// The file number: with a block's offset, its key in the cache.
    number: u64,
    cache: Arc<BlockCache>,
    index: Vec<IndexEntry>,
    filter: BloomFilter,
    footer: Footer,
}

/// Decodes and checks a footer; `file_len` bounds the offsets it names.
fn decode_footer(bytes: &[u8], file_len: u64) -> Result<Footer, DecodeError> {
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

/// Decodes an index block; every handle must lie inside the data region `[0, data_end)`.
fn decode_index(bytes: &[u8], data_end: u64) -> Result<Vec<IndexEntry>, DecodeError> {
    let contents = block::decode(bytes)?;
    let block = Block::new(&contents)?;
    let mut out = Vec::new();
    let mut expected_offset = 0;
    let mut entries = block.iter();
    while let Some(entry) = entries.next_entry() {
        let e = entry?;
        let mut r = ByteReader::new(e.value);
        let offset = r.u64("block offset")?;
        let size = r.u32("block size")?;
        if offset != expected_offset || offset + u64::from(size) > data_end || !r.is_empty() {
            return Err(DecodeError::new(e.offset, "block handle out of place"));
        }
        expected_offset = offset + u64::from(size);
        out.push(IndexEntry {
            last_key: e.key.to_vec(),
            last_key_head: key_head(e.key),
            last_seq: e.seq,
            offset,
            size,
        });
    }
    if expected_offset != data_end {
        return Err(DecodeError::new(
            0,
            "data blocks do not reach the filter block",
        ));
    }
    Ok(out)
}

/// Checks a filter block's CRC and decodes the filter.
fn decode_filter(bytes: &[u8]) -> Result<BloomFilter, DecodeError> {
    if bytes.len() < 5 {
        return Err(DecodeError::new(0, "filter block too short"));
    }
    let (filter, crc) = bytes.split_at(bytes.len() - 4);
    if u32::from_le_bytes(crc.try_into().unwrap_or_default()) != crc32(filter) {
        return Err(DecodeError::new(filter.len(), "filter checksum mismatch"));
    }
    BloomFilter::decode(filter).ok_or_else(|| DecodeError::new(filter.len() - 1, "bad probe count"))
}

impl Table {
    /// Opens table `number` at `path`, reading and checking its footer, filter and index.
    /// Its data blocks go through `cache`.
    ///
    /// # Errors
    /// [`Error::Corruption`] when any of them is damaged or the file is not a table;
    /// [`Error::Io`] (kind `NotFound` for a missing file).
    pub fn open(fs: &Fs, path: &Path, number: u64, cache: Arc<BlockCache>) -> Result<Table> {
        let file = fs.open(path)?;
        let len = file.len()?;
        if len < FOOTER_LEN as u64 {
            return Err(Error::corruption(
                path,
                0,
                format!("a table of {len} bytes is shorter than its footer"),
            ));
        }
        let footer_at = len - FOOTER_LEN as u64;
        let footer_bytes = file.read_vec_at(footer_at, FOOTER_LEN)?;
        let footer =
            decode_footer(&footer_bytes, len).map_err(|e| e.into_corruption(path, footer_at))?;
        let filter_bytes = file.read_vec_at(footer.filter_offset, footer.filter_size as usize)?;
        let filter = decode_filter(&filter_bytes)
            .map_err(|e| e.into_corruption(path, footer.filter_offset))?;
        let index_bytes = file.read_vec_at(footer.index_offset, footer.index_size as usize)?;
        let index = decode_index(&index_bytes, footer.filter_offset)
            .map_err(|e| e.into_corruption(path, footer.index_offset))?;
        Ok(Table {
            file,
            number,
            cache,
            index,
            filter,
            footer,
        })
    }

    /// The table's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The footer.
    pub fn footer(&self) -> Footer {
        self.footer
    }

    /// The index entries, one per data block.
    pub fn index(&self) -> &[IndexEntry] {
        &self.index
    }

    /// The table's filter.
    pub fn filter(&self) -> &BloomFilter {
        &self.filter
    }

    /// Bytes of memory the pinned index holds.
    pub fn index_bytes(&self) -> u64 {
        let entries = self.index.len() * std::mem::size_of::<IndexEntry>();
        let keys: usize = self.index.iter().map(|e| e.last_key.len()).sum();
        (entries + keys) as u64
    }

    /// Bytes of memory the pinned filter holds.
    pub fn filter_bytes(&self) -> u64 {
        self.filter.bit_len().div_ceil(8) as u64
    }

    /// The contents of data block `i`: from the cache, or read, checked (and, with
    /// `fill_cache`, put in the cache). `read` counts the blocks read from the file.
    fn block(&self, i: usize, fill_cache: bool, read: Option<&AtomicU64>) -> Result<BlockContents> {
        let offset = self.index[i].offset;
        if let Some(contents) = self.cache.get(self.number, offset) {
            return Ok(contents);
        }
        if let Some(counter) = read {
            Counters::add(counter, 1);
        }
        let contents = Arc::new(self.read_block(i)?);
        if fill_cache {
            self.cache.insert(self.number, offset, contents.clone());
        }
        Ok(contents)
    }

    /// Reads data block `i` and returns its checked, decompressed contents
    /// ([`block::decode_owned`]), ready for [`Block::new`].
    fn read_block(&self, i: usize) -> Result<Vec<u8>> {
        let handle = &self.index[i];
        let raw = self.file.read_vec_at(handle.offset, handle.size as usize)?;
        block::decode_owned(raw).map_err(|e| self.corruption(i, e))
    }

    fn corruption(&self, i: usize, e: DecodeError) -> Error {
        e.into_corruption(self.path(), self.index[i].offset)
    }

    /// The newest version of `key` (whose [`crate::bloom::hash`] is `key_hash`, computed
    /// once by the caller for every table it asks) at or below `snapshot` in this table.
    /// Asks the filter
    /// first; then looks at most one data block up in the cache, reading it on a miss.
    /// Counts filter checks, false positives and block reads in `counters`. Allocates
    /// nothing but the returned value when the block is cached.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged block; [`Error::Io`].
    pub fn get(
        &self,
        key: &[u8],
        key_hash: u64,
        snapshot: u64,
        counters: &Counters,
    ) -> Result<Lookup> {
        Counters::add(&counters.bloom_checks, 1);
        if !self.filter.may_contain_hash(key_hash) {
            return Ok(Lookup::Absent);
        }
        // The first block whose last internal key is at or after (key, snapshot).
        let head = key_head(key);
        let i = self
            .index
            .partition_point(|e| match e.last_key_head.cmp(&head) {
                Ordering::Equal => {
                    crate::key::compare(&e.last_key, e.last_seq, key, snapshot).is_lt()
                }
                order => order.is_lt(),
            });
        let mut key_present = false;
        let mut result = Lookup::Absent;
        if i < self.index.len() {
            let contents = self.block(i, true, Some(&counters.get_disk_reads))?;
            let block = Block::new(&contents).map_err(|e| self.corruption(i, e))?;
            let found = SCRATCH
                .with_borrow_mut(|scratch| block.get(key, snapshot, scratch))
                .map_err(|e| self.corruption(i, e))?;
            if let Some((kind, value)) = found {
                key_present = true;
                result = match kind {
                    Kind::Put => Lookup::Found(value.to_vec()),
                    Kind::Delete => Lookup::Deleted,
                };
            }
        }
        // The filter said "maybe" but the table does not hold the key.
        if !key_present {
            Counters::add(&counters.bloom_false_positives, 1);
        }
        Ok(result)
    }

    /// Every entry from the user-key bound `start` on, read one block at a time through
    /// the block cache (blocks read are put in it).
    pub fn iter(self: &Arc<Self>, start: Bound<&[u8]>) -> EntryIter<'static> {
        self.iter_from(start, true)
    }

    /// Every entry, for compaction: blocks already cached are used, blocks read are not
    /// put in the cache (the table is about to be replaced).
    pub fn compaction_iter(self: &Arc<Self>) -> EntryIter<'static> {
        self.iter_from(Bound::Unbounded, false)
    }

    fn iter_from(self: &Arc<Self>, start: Bound<&[u8]>, fill_cache: bool) -> EntryIter<'static> {
        let (block, skip) = match start {
            Bound::Unbounded => (0, None),
            Bound::Included(k) => (
                self.index.partition_point(|e| e.last_key.as_slice() < k),
                Some(Bound::Included(k.to_vec())),
            ),
            Bound::Excluded(k) => (
                self.index.partition_point(|e| e.last_key.as_slice() <= k),
                Some(Bound::Excluded(k.to_vec())),
            ),
        };
        Box::new(TableIter {
            table: self.clone(),
            next_block: block,
            entries: VecDeque::new(),
            skip,
            fill_cache,
            failed: false,
        })
    }
}

/// A streaming iterator over a table (see [`Table::iter`]).
struct TableIter {
    table: Arc<Table>,
    next_block: usize,
    entries: VecDeque<Entry>,
    /// Entries before this bound are skipped (only in the first block read).
    skip: Option<Bound<Vec<u8>>>,
    /// Whether blocks read go into the block cache.
    fill_cache: bool,
    failed: bool,
}

impl TableIter {
    fn load_block(&mut self) -> Result<()> {
        let i = self.next_block;
        self.next_block += 1;
        let contents = self.table.block(i, self.fill_cache, None)?;
        let block = Block::new(&contents).map_err(|e| self.table.corruption(i, e))?;
        let mut entries = block.iter();
        if let Some(Bound::Included(k) | Bound::Excluded(k)) = &self.skip {
            entries.seek(k).map_err(|e| self.table.corruption(i, e))?;
        }
        while let Some(entry) = entries.next_entry() {
            let e = entry.map_err(|e| self.table.corruption(i, e))?;
            if matches!(&self.skip, Some(Bound::Excluded(k)) if e.key == k.as_slice()) {
                continue;
            }
            self.entries.push_back(e.to_entry());
        }
        self.skip = None;
        Ok(())
    }
}

impl Iterator for TableIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        while self.entries.is_empty() && !self.failed && self.next_block < self.table.index.len() {
            if let Err(e) = self.load_block() {
                self.failed = true;
                return Some(Err(e));
            }
        }
        self.entries.pop_front().map(Ok)
    }
}

/// The annotated dump of a table file, or `None` when `bytes` does not end with the table
/// magic.
pub fn dump(bytes: &[u8]) -> Option<String> {
    if bytes.len() < FOOTER_LEN || !bytes.ends_with(MAGIC) {
        return None;
    }
    let mut d = Dump::new(format!("lsm table ({} bytes)", bytes.len()));
    let footer_at = bytes.len() - FOOTER_LEN;
    let footer = match decode_footer(&bytes[footer_at..], bytes.len() as u64) {
        Ok(f) => f,
        Err(e) => {
            d.note(format!("bad footer: {e}"));
            return Some(d.finish());
        }
    };
    let index_range =
        footer.index_offset as usize..footer.index_offset as usize + footer.index_size as usize;
    let index = match decode_index(&bytes[index_range.clone()], footer.filter_offset) {
        Ok(index) => index,
        Err(e) => {
            d.note(format!("bad index block: {e}"));
            return Some(d.finish());
        }
    };
    for (i, handle) in index.iter().enumerate() {
        d.section(format!(
            "data block {i} (offset {}, {} bytes)",
            handle.offset, handle.size
        ));
        let range = handle.offset as usize..handle.offset as usize + handle.size as usize;
        block_dump::dump_block(&mut d, handle.offset, &bytes[range], |v, _| {
            format!("value {}", quoted(v, 40))
        });
    }
    let filter_range = footer.filter_offset as usize..footer.index_offset as usize;
    let filter_bytes = &bytes[filter_range];
    d.section(format!(
        "filter block (offset {}, {} bytes)",
        footer.filter_offset, footer.filter_size
    ));
    d.seek(footer.filter_offset);
    match decode_filter(filter_bytes) {
        Ok(filter) => {
            let n = filter_bytes.len() - 5;
            d.field(
                &filter_bytes[..n],
                format!("bloom bit array, {} bits", filter.bit_len()),
            );
            d.field(
                &filter_bytes[n..n + 1],
                format!("probes per key {}", filter.probes()),
            );
            d.field(&filter_bytes[n + 1..], "crc32 (ok)");
        }
        Err(e) => d.field(filter_bytes, format!("bad filter block: {e}")),
    }
    d.section(format!(
        "index block (offset {}, {} bytes)",
        footer.index_offset, footer.index_size
    ));
    block_dump::dump_block(&mut d, footer.index_offset, &bytes[index_range], |v, _| {
        let mut r = ByteReader::new(v);
        match (r.u64("offset"), r.u32("size")) {
            (Ok(offset), Ok(size)) => {
                format!("handle: data block at offset {offset}, {size} bytes")
            }
            _ => "bad handle".to_string(),
        }
    });
    d.section("footer");
    d.seek(footer_at as u64);
    let f = &bytes[footer_at..];
    d.field(&f[0..8], format!("filter offset {}", footer.filter_offset));
    d.field(&f[8..12], format!("filter size {}", footer.filter_size));
    d.field(&f[12..20], format!("index offset {}", footer.index_offset));
    d.field(&f[20..24], format!("index size {}", footer.index_size));
    d.field(&f[24..32], format!("entry count {}", footer.entries));
    d.field(&f[32..36], format!("format version {FORMAT_VERSION}"));
    d.field(&f[36..40], "footer crc32 (ok)");
    d.field(&f[40..48], format!("magic {}", quoted(MAGIC, 8)));
    Some(d.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_heads_order_as_their_keys_unless_equal() {
        let keys: [&[u8]; 9] = [
            b"",
            b"\0",
            b"a",
            b"a\0",
            b"a\x01",
            b"ab",
            b"0000000000000000",
            b"00000000000000000",
            b"0000000000000001",
        ];
        for x in keys {
            for y in keys {
                let (hx, hy) = (key_head(x), key_head(y));
                if hx != hy {
                    assert_eq!(hx.cmp(&hy), x.cmp(y), "{x:?} {y:?}");
                }
            }
        }
        assert_eq!(
            key_head(b"a"),
            key_head(b"a\0"),
            "equal heads: compare whole keys"
        );
    }
}
