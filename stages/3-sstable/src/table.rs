//! Reading a table: open it (footer, then index), look a key up, iterate a range.
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
//! ## Deleting a table that readers still use
//!
//! A table is shared as `Arc<Table>`: the store's list of tables holds one, and every
//! running `get` or scan holds its own. When a compaction replaces a table it calls
//! [`Table::mark_obsolete`]; the file is removed by `Drop` when the **last** `Arc` goes, so
//! a reader never finds its file gone. (If the process dies first, the file is left behind
//! and the next open recognises and removes it, see [`crate::store`].)

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use kv_shared::{Error, FileRef, Fs, KeyRange, Result};

use crate::block::{Block, BlockSearch};
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
    fs: Fs,
    file: FileRef,
    number: u64,
    footer: Footer,
    index: Index,
    file_bytes: u64,
    obsolete: AtomicBool,
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
            fs: fs.clone(),
            file,
            number,
            footer,
            index,
            file_bytes,
            obsolete: AtomicBool::new(false),
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

    /// The entries in `range`, in key order, tombstones included, read lazily one block at
    /// a time. With [`Search::Binary`] the iterator starts at the block the index points
    /// to; with [`Search::Linear`] at the first block.
    pub fn iter(self: &Arc<Self>, range: &KeyRange, search: Search) -> TableIter {
        let first_block = match (&range.start, search) {
            (std::ops::Bound::Unbounded, _) | (_, Search::Linear) => 0,
            (std::ops::Bound::Included(k) | std::ops::Bound::Excluded(k), Search::Binary) => {
                index::find_block(&self.index.blocks, k).unwrap_or(0)
            }
        };
        TableIter {
            table: self.clone(),
            range: range.clone(),
            search,
            next_block: first_block,
            next_offset: self.index.blocks.get(first_block).map_or(0, |e| e.offset),
            block: None,
            pos: 0,
            done: range.is_empty(),
        }
    }

    /// Marks the table as replaced: its file is removed when the last reader lets go.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, SeqCst);
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if self.obsolete.load(SeqCst) {
            // Best effort: a file left behind is recognised and removed by the next open.
            let _ = self.fs.remove_if_exists(self.file.path());
        }
    }
}

/// A lazy iterator over a table's entries in a key range.
#[derive(Debug)]
pub struct TableIter {
    table: Arc<Table>,
    range: KeyRange,
    search: Search,
    next_block: usize,
    next_offset: u64,
    block: Option<Block>,
    pos: usize,
    done: bool,
}

impl TableIter {
    fn load_next_block(&mut self) -> Result<bool> {
        let t = &self.table;
        let block = match self.search {
            Search::Binary => {
                let Some(at) = t.index.blocks.get(self.next_block) else {
                    return Ok(false);
                };
                Block::read(&t.file, at.offset, at.len as usize)?
            }
            Search::Linear => {
                if self.next_offset >= t.footer.index_offset {
                    return Ok(false);
                }
                Block::read_unindexed(&t.file, self.next_offset, t.footer.index_offset)?
            }
        };
        self.next_block += 1;
        self.next_offset = block.offset() + block.frame_len() as u64;
        self.block = Some(block);
        self.pos = 0;
        Ok(true)
    }

    fn advance(&mut self) -> Result<Option<(Vec<u8>, Entry)>> {
        loop {
            if self.block.is_none() && !self.load_next_block()? {
                return Ok(None);
            }
            let block = self.block.as_ref().expect("loaded above");
            let Some((key, value, next)) = block.entry_at(&self.table.file, self.pos)? else {
                self.block = None;
                continue;
            };
            self.pos = next;
            if self.range.is_past_end(key) {
                return Ok(None);
            }
            if self.range.contains(key) {
                let entry = value.map_or(Entry::Tombstone, |v| Entry::Value(v.to_vec()));
                return Ok(Some((key.to_vec(), entry)));
            }
        }
    }
}

impl Iterator for TableIter {
    type Item = Result<(Vec<u8>, Entry)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.advance().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}
