//! Reading a table: open it (footer, then index), look a key up, walk it with a cursor.
//!
//! [`Table::open`] reads the footer from the end of the file, then the index block it
//! points to, checks both, and keeps the index in memory. Data blocks are read only when
//! needed and checked on every read; this stage has no block cache, so every lookup that
//! reaches a table costs one read of one block (the lesson of `get_disk_reads`).
//!
//! ## Two ways to search ([`Search`], the `search` option)
//!
//! * [`Search::Binary`] (the default) binary-searches the in-memory index for the one
//!   block that can hold the key, reads that block, and searches inside it: **one read**,
//!   or none when the key lies outside the table's first and last keys.
//! * [`Search::Linear`] ignores the index, as a table without one would have to: it walks
//!   the data blocks from the start of the file, reading each block's frame header and then
//!   its body (**two reads per block**), until it finds the key or passes it.
//!
//! Both give the same answers (the tests check it); what differs is the number of reads,
//! which grows with the table for `Linear` and stays at one for `Binary`.
//!
//! ## Walking a table ([`TableCursor`])
//!
//! A cursor moves both ways, so it needs to know where the block *before* a block starts:
//! it always goes through the index (a table without one could only walk forward). It
//! holds one block in memory, a [`crate::block::BlockCursor`], and reads the neighbouring
//! block when a step leaves it.
//!
//! ## Deleting a table that readers still use
//!
//! A table is shared as `Arc<Table>`: the store's list of tables holds one, and every
//! running `get` or cursor holds its own. When a compaction replaces a table it calls
//! [`Table::mark_obsolete`]; the file is removed by `Drop` when the **last** `Arc` goes, so
//! a reader never finds its file gone. (If the process dies first, the file is left behind
//! and the next open recognises and removes it, see [`crate::recovery`].)

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use kv_shared::{Direction, Error, FileRef, Fs, RemoveWhenObsolete, Result};

use crate::block::{Block, BlockCursor, BlockSearch};
use crate::cursor::EntryCursor;
use crate::entry::Entry;
use crate::footer::{FOOTER_LEN, Footer, FooterError, TABLE_VERSION};
use crate::frame;
use crate::index::{self, Index};

/// How a lookup finds the block that may hold a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Search {
    /// Binary search of the sparse index, then one block read.
    #[default]
    Binary,
    /// Walk the blocks from the start of the file, ignoring the index.
    Linear,
}

impl FromStr for Search {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "binary" => Ok(Search::Binary),
            "linear" => Ok(Search::Linear),
            other => Err(format!("expected binary or linear, got `{other}`")),
        }
    }
}

/// An open table: its file, footer and index.
#[derive(Debug)]
pub struct Table {
    file: FileRef,
    number: u64,
    footer: Footer,
    index: Index,
    file_bytes: u64,
    removal: RemoveWhenObsolete,
}

impl Table {
    /// Opens the table at `path`, known to the store as file `number`: reads and checks
    /// the footer and the index.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset for a file too short, a wrong magic
    /// (not a table), a failed checksum or an inconsistent index; [`Error::FormatVersion`];
    /// [`Error::Io`].
    pub fn open(fs: &Fs, path: &Path, number: u64) -> Result<Table> {
        let file = fs.open(path)?;
        let file_bytes = file.len()?;
        if file_bytes < FOOTER_LEN as u64 {
            return Err(Error::corruption(
                path,
                0,
                format!("{file_bytes} bytes is too short for a table (footer is {FOOTER_LEN})"),
            ));
        }
        let footer_at = file_bytes - FOOTER_LEN as u64;
        let footer_bytes = file.read_vec_at(footer_at, FOOTER_LEN)?;
        let footer = Footer::decode(&footer_bytes).map_err(|e| match e {
            FooterError::Decode(e) => e.into_corruption(path, footer_at),
            FooterError::Version(found) => Error::FormatVersion {
                file: path.to_path_buf(),
                found,
                supported: TABLE_VERSION,
            },
        })?;
        let index_end = footer.index_offset.checked_add(u64::from(footer.index_len));
        if index_end != Some(footer_at) {
            return Err(Error::corruption(
                path,
                footer_at,
                "footer's index position does not end where the footer begins",
            ));
        }
        let block = Block::read(&file, footer.index_offset, footer.index_len as usize)?;
        let index = index::decode(block.body(), footer.index_offset).map_err(|e| {
            e.into_corruption(path, footer.index_offset + frame::FRAME_HEADER_LEN as u64)
        })?;
        Ok(Table {
            file,
            number,
            footer,
            index,
            file_bytes,
            removal: RemoveWhenObsolete::new(fs, path),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The store's number for this file (its name).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The footer.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The in-memory index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Bytes in the file.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    // Exercise 3.4: look a key up. Read: chapter 3, "Binary search against linear search".
    // Tests: search::binary_and_linear_search_agree_on_a_store
    // Tests: corruption::a_flipped_byte_in_a_table_is_never_a_wrong_value
    /// Looks `key` up, adding the number of positioned reads done to `reads`. `Some` for an
    /// entry (a value or a tombstone), `None` when the table does not hold the key.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset when a block read fails its check,
    /// [`Error::Io`].
    pub fn get(&self, key: &[u8], search: Search, reads: &mut u64) -> Result<Option<Entry>> {
        match search {
            Search::Binary => {
                if !self.index.may_contain(key) {
                    return Ok(None);
                }
                let Some(i) = index::find_block(&self.index.blocks, key) else {
                    return Ok(None);
                };
                let at = &self.index.blocks[i];
                *reads += 1;
                let block = Block::read(&self.file, at.offset, at.len as usize)?;
                Ok(match block.search(&self.file, key)? {
                    BlockSearch::Found(entry) => Some(entry),
                    BlockSearch::Passed | BlockSearch::NotYet => None,
                })
            }
            Search::Linear => {
                let mut offset = 0;
                while offset < self.footer.index_offset {
                    *reads += 2;
                    let block =
                        Block::read_unindexed(&self.file, offset, self.footer.index_offset)?;
                    match block.search(&self.file, key)? {
                        BlockSearch::Found(entry) => return Ok(Some(entry)),
                        BlockSearch::Passed => return Ok(None),
                        BlockSearch::NotYet => offset += block.frame_len() as u64,
                    }
                }
                Ok(None)
            }
        }
    }

    /// A cursor over the table's entries, tombstones included, not yet positioned.
    pub fn cursor(self: &Arc<Self>) -> TableCursor {
        TableCursor {
            table: self.clone(),
            block: None,
        }
    }

    /// Marks the table as replaced: its file is removed when the last reader lets go.
    pub fn mark_obsolete(&self) {
        self.removal.mark_obsolete();
    }
}

/// A cursor over a table's entries, both ways, one block in memory at a time.
///
/// It finds its blocks through the index, whatever the [`Search`] option (which is about
/// point lookups): a seek reads the one block that can hold the target, and a step off
/// either end of a block reads the block beside it.
#[derive(Debug)]
pub struct TableCursor {
    table: Arc<Table>,
    /// The block loaded (its position in the index) and the cursor over it.
    block: Option<(usize, BlockCursor)>,
}

impl TableCursor {
    /// The cursor over block `i`, read from the file unless it is the one loaded already.
    /// A read that fails leaves no block loaded: the cursor is then not valid.
    fn load(&mut self, i: usize) -> Result<&mut BlockCursor> {
        if self.block.as_ref().is_none_or(|(loaded, _)| *loaded != i) {
            self.block = None;
            let t = &self.table;
            let at = &t.index.blocks[i];
            let block = Block::read(&t.file, at.offset, at.len as usize)?;
            self.block = Some((i, BlockCursor::new(&t.file, block)?));
        }
        Ok(&mut self.block.as_mut().expect("loaded above").1)
    }

    /// From block `from` on, going `direction`, the first block that holds an entry, at its
    /// first entry going forward or its last going back; not valid when no block does.
    fn land(&mut self, from: Option<usize>, direction: Direction) -> Result<()> {
        let blocks = self.table.index.blocks.len();
        let mut at = from.filter(|&i| i < blocks);
        while let Some(i) = at {
            let block = self.load(i)?;
            match direction {
                Direction::Forward => block.seek_to_first(),
                Direction::Reverse => block.seek_to_last(),
            }
            if block.valid() {
                return Ok(());
            }
            at = beside(i, direction).filter(|&i| i < blocks);
        }
        self.block = None;
        Ok(())
    }

    /// One entry `direction`, into the block beside when this one ends.
    fn step(&mut self, direction: Direction) -> Result<()> {
        let Some((i, block)) = self.block.as_mut().filter(|(_, b)| b.valid()) else {
            return Ok(());
        };
        match direction {
            Direction::Forward => block.next(),
            Direction::Reverse => block.prev(),
        }
        if block.valid() {
            return Ok(());
        }
        let next = beside(*i, direction);
        self.land(next, direction)
    }
}

/// The position beside `i` going `direction` (`None` before the first).
fn beside(i: usize, direction: Direction) -> Option<usize> {
    match direction {
        Direction::Forward => i.checked_add(1),
        Direction::Reverse => i.checked_sub(1),
    }
}

impl EntryCursor for TableCursor {
    fn valid(&self) -> bool {
        self.block.as_ref().is_some_and(|(_, b)| b.valid())
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.land(Some(0), Direction::Forward)
    }
    fn seek_to_last(&mut self) -> Result<()> {
        let last = self.table.index.blocks.len().checked_sub(1);
        self.land(last, Direction::Reverse)
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        if self.table.index.blocks.is_empty() {
            self.block = None;
            return Ok(());
        }
        // The only block that can hold `target` (the first, for a target before every
        // key); when all its keys are smaller, the next block's first entry.
        let i = index::find_block(&self.table.index.blocks, target).unwrap_or(0);
        let block = self.load(i)?;
        block.seek(target);
        if block.valid() {
            return Ok(());
        }
        self.land(Some(i + 1), Direction::Forward)
    }
    fn next(&mut self) -> Result<()> {
        self.step(Direction::Forward)
    }
    fn prev(&mut self) -> Result<()> {
        self.step(Direction::Reverse)
    }
    fn key(&self) -> &[u8] {
        self.block.as_ref().expect("a valid cursor").1.key()
    }
    fn value(&self) -> Option<&[u8]> {
        self.block.as_ref().expect("a valid cursor").1.value()
    }
}
