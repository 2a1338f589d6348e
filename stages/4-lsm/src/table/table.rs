//! The table reader: an open table, its point lookups and its cursor.
//!
//! Opening a table reads its footer ([`crate::table::footer`]), filter
//! ([`crate::table::filter`]) and index ([`crate::table::index`]) into memory (all three
//! are checked) and keeps the filter and index there, pinned, for the table's life. A `get`
//! then costs at most one data block, and none when the filter says no; that block comes
//! from the tree's [`BlockCache`] when it is there, and is read, checked and put there when
//! not. A [`TableCursor`] walks the entries both ways, a block at a time
//! ([`crate::cursor::concat`]).
//!
//! Tables are named `NNNNNN.sst` after their file number; their layout is in
//! [`crate::table`].

use std::cell::RefCell;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use kv_shared::framing::DecodeError;
use kv_shared::{Error, FileRef, Fs, Result};

use crate::block_cache::{BlockCache, BlockContents, Charge};
use crate::bloom::BloomFilter;
use crate::counters::Counters;
use crate::cursor::concat::{ConcatCursor, Pieces};
use crate::cursor::{EntryCursor, EntryRef};
use crate::key::{Kind, Lookup, LookupKey};
use crate::table::block::{self, Block, BlockCursor};
use crate::table::filter;
use crate::table::footer::{FOOTER_LEN, Footer};
use crate::table::index::{Index, IndexEntry};

thread_local! {
    /// The buffer `Block::get` rebuilds prefix-compressed keys in, one per thread, reused by
    /// every `get` so that a cached lookup allocates nothing but its value.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// An open table: its file, and its index and filter in memory.
#[derive(Debug)]
pub struct Table {
    file: FileRef,
    /// The file number: with a block's offset, its key in the cache.
    number: u64,
    cache: Arc<BlockCache>,
    index: Index,
    filter: BloomFilter,
    footer: Footer,
    /// The index's and filter's memory, charged to the block cache's budget while the table
    /// is open.
    _charge: Charge,
}

impl Table {
    /// Opens table `number` at `path`, reading and checking its footer, filter and index.
    /// Its data blocks go through `cache`, whose budget pays for the index and filter while
    /// the table is open ([`crate::block_cache`]).
    ///
    /// # Errors
    /// [`Error::Corruption`] when any of them is damaged or the file is not a table;
    /// [`Error::Io`] (kind `NotFound` for a missing file).
    pub fn open(fs: &Fs, path: &Path, number: u64, cache: Arc<BlockCache>) -> Result<Table> {
        let file = fs.open(path)?;
        let len = file.len()?;
        let footer_at = len.checked_sub(FOOTER_LEN as u64).ok_or_else(|| {
            Error::corruption(
                path,
                0,
                format!("a table of {len} bytes is shorter than its footer"),
            )
        })?;
        let footer = read_part(&file, footer_at, FOOTER_LEN, |b| Footer::decode(b, len))?;
        let (filter_size, index_size) = (footer.filter_size as usize, footer.index_size as usize);
        let filter = read_part(&file, footer.filter_offset, filter_size, filter::decode)?;
        let index = read_part(&file, footer.index_offset, index_size, |b| {
            Index::decode(b, footer.filter_offset)
        })?;
        let pinned = index.memory_bytes() + filter.memory_bytes();
        Ok(Table {
            file,
            number,
            _charge: cache.charge(pinned),
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

    /// The index: one entry per data block.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The table's filter.
    pub fn filter(&self) -> &BloomFilter {
        &self.filter
    }

    /// Bytes of memory the pinned index holds.
    pub fn index_bytes(&self) -> u64 {
        self.index.memory_bytes()
    }

    /// Bytes of memory the pinned filter holds.
    pub fn filter_bytes(&self) -> u64 {
        self.filter.memory_bytes()
    }

    /// The contents of data block `i`: from the cache, or read, checked (and, with
    /// `fill_cache`, put in the cache). `read` counts the blocks read from the file.
    fn block(&self, i: usize, fill_cache: bool, read: Option<&AtomicU64>) -> Result<BlockContents> {
        if let Some(contents) = self.cached_block(i) {
            return Ok(contents);
        }
        if let Some(counter) = read {
            Counters::add(counter, 1);
        }
        let raw = self.read_blocks(i..i + 1)?;
        self.decode_block(i, raw, fill_cache)
    }

    /// Data block `i`'s contents, if the cache holds them.
    fn cached_block(&self, i: usize) -> Option<BlockContents> {
        self.cache.get(self.number, self.index.entries()[i].offset)
    }

    /// Reads data blocks `blocks` (consecutive, not empty) with one read: the file's bytes
    /// from the first block's start to the last block's end.
    fn read_blocks(&self, blocks: Range<usize>) -> Result<Vec<u8>> {
        let entries = self.index.entries();
        let (first, last) = (&entries[blocks.start], &entries[blocks.end - 1]);
        let len = (last.offset + u64::from(last.size)).saturating_sub(first.offset);
        self.file.read_vec_at(first.offset, len as usize)
    }

    /// Checks and decompresses `raw`, the stored bytes of data block `i`
    /// ([`block::decode_owned`]), putting the contents in the cache with `fill_cache`.
    fn decode_block(&self, i: usize, raw: Vec<u8>, fill_cache: bool) -> Result<BlockContents> {
        let contents = Arc::new(block::decode_owned(raw).map_err(|e| self.corruption(i, e))?);
        if fill_cache {
            let offset = self.index.entries()[i].offset;
            self.cache.insert(self.number, offset, contents.clone());
        }
        Ok(contents)
    }

    /// Damage found in data block `i`.
    fn corruption(&self, i: usize, e: DecodeError) -> Error {
        e.into_corruption(self.path(), self.index.entries()[i].offset)
    }

    // Exercise 4.5: look a key up in one table. Read: chapter 4b, "A snapshot, and `get`".
    // Tests: block_cache::first_get_misses_then_hits, block_cache::counters_follow_hits_and_misses
    // Tests: conformance::conformance::model
    /// The newest version of the looked-up key at or below its snapshot in this table.
    /// Asks the filter first; then looks at most one data block up in the cache, reading it
    /// on a miss. Counts filter checks, false positives and block reads in `counters`.
    /// Allocates nothing but the returned value when the block is cached.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged block; [`Error::Io`].
    pub fn get(&self, lookup: &LookupKey<'_>, counters: &Counters) -> Result<Lookup> {
        let LookupKey {
            key,
            hash,
            snapshot,
        } = *lookup;
        Counters::add(&counters.bloom_checks, 1);
        if !self.filter.may_contain_hash(hash) {
            return Ok(Lookup::Absent);
        }
        let i = self.index.find(key, snapshot);
        let mut result = Lookup::Absent;
        if i < self.index.len() {
            let contents = self.block(i, true, Some(&counters.get_disk_reads))?;
            let block = Block::new(&contents).map_err(|e| self.corruption(i, e))?;
            let found = SCRATCH
                .with_borrow_mut(|scratch| block.get(key, snapshot, scratch))
                .map_err(|e| self.corruption(i, e))?;
            result = match found {
                Some((Kind::Put, value)) => Lookup::Found(value.to_vec()),
                Some((Kind::Delete, _)) => Lookup::Deleted,
                None => Lookup::Absent,
            };
        }
        // The filter said "maybe" but the table does not hold the key.
        if result == Lookup::Absent {
            Counters::add(&counters.bloom_false_positives, 1);
        }
        Ok(result)
    }

    /// A cursor over every entry, not yet positioned. With `fill_cache`, blocks it reads
    /// are put in the block cache (a reader's scan); without, blocks already cached are
    /// used but blocks read are not kept (a compaction's inputs, about to be replaced).
    pub fn cursor(self: &Arc<Self>, fill_cache: bool) -> TableCursor {
        TableCursor::new(TableBlocks {
            table: self.clone(),
            fill_cache,
            ahead: RefCell::new(Readahead::default()),
        })
    }
}

/// Reads the `size` bytes at `offset` in `file` and decodes them with `decode`: what does
/// not decode is corruption at `offset`.
fn read_part<T>(
    file: &FileRef,
    offset: u64,
    size: usize,
    decode: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
) -> Result<T> {
    let bytes = file.read_vec_at(offset, size)?;
    decode(&bytes).map_err(|e| e.into_corruption(file.path(), offset))
}

/// A cursor over a table's entries (see [`Table::cursor`]): its data blocks concatenated,
/// one [`BlockCursor`] open at a time.
pub type TableCursor = ConcatCursor<TableBlocks>;

/// A table's data blocks, as the pieces of a [`TableCursor`].
///
/// **Readahead.** A cursor walking forward through blocks the cache does not hold would
/// read them one `pread` of about 4 KiB at a time: a system call per block. So, as
/// RocksDB's iterators do, once two blocks in a row had to be read from the file, the next
/// read fetches several consecutive blocks at once, [`READAHEAD_START`] bytes' worth, then
/// twice as much at each further sequential read, up to [`READAHEAD_MAX`]; the blocks
/// after the one wanted wait in the cursor's own buffer, each checked when the cursor gets
/// to it. A seek elsewhere (a block not next to the last one read) ends the run and drops
/// the buffer, so random reads never read more than they need.
#[derive(Debug)]
pub struct TableBlocks {
    table: Arc<Table>,
    /// Whether blocks read go into the block cache.
    fill_cache: bool,
    /// The cursor's readahead (see above).
    ahead: RefCell<Readahead>,
}

/// Bytes the first readahead of a sequential run reads.
pub const READAHEAD_START: u64 = 16 << 10;
/// Bytes a readahead reads at most.
pub const READAHEAD_MAX: u64 = 256 << 10;

/// A [`TableBlocks`]' readahead state.
#[derive(Debug, Default)]
struct Readahead {
    /// The last block read from the file (not found in the cache).
    last_read: Option<usize>,
    /// Bytes the next readahead reads (0: not in a sequential run).
    size: u64,
    /// Blocks read ahead, waiting for the cursor.
    buffered: Option<Buffered>,
}

impl TableBlocks {
    /// The contents of block `i`: from the cache, from the readahead buffer, or read (with
    /// the blocks after it, when the cursor reads sequentially).
    fn contents(&self, i: usize) -> Result<BlockContents> {
        if let Some(contents) = self.table.cached_block(i) {
            return Ok(contents);
        }
        let mut ahead = self.ahead.borrow_mut();
        let sequential = ahead.last_read.is_some_and(|last| last + 1 == i);
        ahead.last_read = Some(i);
        if !sequential {
            ahead.size = 0;
            ahead.buffered = None;
        }
        let raw = match ahead.take_buffered(i, self.table.index.entries()) {
            Some(raw) => raw,
            None if sequential => self.read_ahead(i, &mut ahead)?,
            None => {
                ahead.size = READAHEAD_START;
                self.table.read_blocks(i..i + 1)?
            }
        };
        self.table.decode_block(i, raw, self.fill_cache)
    }

    /// Reads block `i` and the blocks after it, `ahead.size` bytes' worth (at least block
    /// `i`), keeps them in the buffer, doubles the next size, and returns block `i`'s
    /// stored bytes.
    fn read_ahead(&self, i: usize, ahead: &mut Readahead) -> Result<Vec<u8>> {
        let entries = self.table.index.entries();
        let start = entries[i].offset;
        let end = (i + 1..entries.len())
            .find(|&j| entries[j].offset + u64::from(entries[j].size) - start > ahead.size)
            .unwrap_or(entries.len());
        let bytes = self.table.read_blocks(i..end)?;
        ahead.buffered = Some(Buffered {
            blocks: i..end,
            start,
            bytes,
        });
        ahead.size = (ahead.size * 2).min(READAHEAD_MAX);
        Ok(ahead.take_buffered(i, entries).unwrap_or_default())
    }
}

/// Blocks read ahead: which, where the first one starts in the file, and the file's bytes
/// from there.
#[derive(Debug)]
struct Buffered {
    blocks: Range<usize>,
    start: u64,
    bytes: Vec<u8>,
}

impl Readahead {
    /// A copy of block `i`'s stored bytes, when the buffer holds them.
    fn take_buffered(&mut self, i: usize, entries: &[IndexEntry]) -> Option<Vec<u8>> {
        let b = self.buffered.as_ref().filter(|b| b.blocks.contains(&i))?;
        let from = usize::try_from(entries[i].offset - b.start).ok()?;
        let to = from + entries[i].size as usize;
        b.bytes.get(from..to).map(<[u8]>::to_vec)
    }
}

impl Pieces for TableBlocks {
    type Cursor = DataBlockCursor;

    fn count(&self) -> usize {
        self.table.index.len()
    }

    fn find(&self, key: &[u8], seq: u64) -> usize {
        self.table.index.find(key, seq)
    }

    fn open(&self, i: usize) -> Result<DataBlockCursor> {
        let contents = self.contents(i)?;
        let cursor = BlockCursor::new(contents).map_err(|e| self.table.corruption(i, e))?;
        Ok(DataBlockCursor {
            table: self.table.clone(),
            block: i,
            cursor,
        })
    }
}

/// A cursor over one data block of a table, its damage reported as the table's.
#[derive(Debug)]
pub struct DataBlockCursor {
    table: Arc<Table>,
    /// The block's index in the table.
    block: usize,
    cursor: BlockCursor<BlockContents>,
}

impl DataBlockCursor {
    /// Moves the block cursor with `step`, its damage named in the table's file.
    fn moved(
        &mut self,
        step: impl FnOnce(&mut BlockCursor<BlockContents>) -> Result<(), DecodeError>,
    ) -> Result<()> {
        step(&mut self.cursor).map_err(|e| self.table.corruption(self.block, e))
    }
}

impl EntryCursor for DataBlockCursor {
    fn valid(&self) -> bool {
        self.cursor.valid()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.moved(BlockCursor::seek_to_first)
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.moved(BlockCursor::seek_to_last)
    }

    fn seek(&mut self, key: &[u8], seq: u64) -> Result<()> {
        self.moved(|c| c.seek(key, seq))
    }

    fn next(&mut self) -> Result<()> {
        self.moved(BlockCursor::step_forward)
    }

    fn prev(&mut self) -> Result<()> {
        self.moved(BlockCursor::step_back)
    }

    fn entry(&self) -> EntryRef<'_> {
        let c = &self.cursor;
        EntryRef {
            key: c.key(),
            seq: c.seq(),
            value: (c.kind() == Kind::Put).then(|| c.value()),
        }
    }
}
