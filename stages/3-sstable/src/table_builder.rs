//! Writing a table: sorted entries in, a file of data blocks, an index and a footer out.
//!
//! ## The file, front to back
//!
//! | part | what | format |
//! |---|---|---|
//! | data blocks | the entries, in key order, cut into blocks of about `block_bytes` | [`crate::block`] |
//! | index block | the last key; first key, offset and length of every data block | [`crate::index`] |
//! | footer | index position, counts, WAL range, version, magic | [`crate::footer`] |
//!
//! Every block (data and index) is a [`crate::frame`] with its own CRC32; the footer has
//! its own CRC32. A table with no entries is valid: no data blocks, an empty index.
//!
//! [`TableBuilder`] writes in one pass with one append per block, holding only the block
//! being filled and the index in memory, so a table of any size is built in bounded
//! memory. [`write_table`] wraps it in the crash-safe way to create a table: write under a
//! temporary name, sync, rename, sync the directory. A crash at any point leaves either no
//! table (and a `.tmp` file, deleted on the next open) or the whole table.

use std::path::{Path, PathBuf};

use kv_shared::{Error, FileRef, Fs, Result};

use crate::block_builder::BlockBuilder;
use crate::entry::Entry;
use crate::file_names::parent_dir;
use crate::footer::Footer;
use crate::frame;
use crate::index::{self, Index, IndexEntry};

/// What a finished table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSummary {
    /// Entries written, tombstones included.
    pub entries: u64,
    /// Tombstones written.
    pub tombstones: u64,
    /// Bytes in the file.
    pub file_bytes: u64,
}

/// Writes one table to an open, empty file.
#[derive(Debug)]
pub struct TableBuilder {
    file: FileRef,
    block_bytes: usize,
    block: BlockBuilder,
    index: Vec<IndexEntry>,
    offset: u64,
    entries: u64,
    tombstones: u64,
    last_key: Option<Vec<u8>>,
}

impl TableBuilder {
    /// A builder writing to `file`, which must be empty, closing blocks at `block_bytes`.
    pub fn new(file: FileRef, block_bytes: usize) -> Self {
        TableBuilder {
            file,
            block_bytes: block_bytes.max(1),
            block: BlockBuilder::new(),
            index: Vec::new(),
            offset: 0,
            entries: 0,
            tombstones: 0,
            last_key: None,
        }
    }

    /// Adds an entry (`None` is a tombstone). Keys must be strictly increasing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a key not greater than the one before (nothing
    /// written), [`Error::Io`] when a full block fails to write.
    pub fn add(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if self.last_key.as_deref().is_some_and(|last| last >= key) {
            return Err(Error::InvalidArgument(
                "table keys must be added in strictly increasing order".to_string(),
            ));
        }
        if !self.block.is_empty()
            && self.block.body_len() + BlockBuilder::entry_len(key, value) > self.block_bytes
        {
            self.flush_block()?;
        }
        self.block.add(key, value);
        self.entries += 1;
        self.tombstones += u64::from(value.is_none());
        self.last_key = Some(key.to_vec());
        Ok(())
    }

    /// Adds an [`Entry`].
    ///
    /// # Errors
    /// As [`TableBuilder::add`].
    pub fn add_entry(&mut self, key: &[u8], entry: &Entry) -> Result<()> {
        self.add(key, entry.value())
    }

    fn flush_block(&mut self) -> Result<()> {
        if let Some((framed, first_key)) = self.block.finish() {
            self.file.append(&framed)?;
            self.index.push(IndexEntry {
                first_key,
                offset: self.offset,
                len: framed.len() as u32,
            });
            self.offset += framed.len() as u64;
        }
        Ok(())
    }

    /// Writes the last data block, the index and the footer (recording that the table holds
    /// the data of WALs `first_wal ..= last_wal`), and syncs the file.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn finish(mut self, first_wal: u64, last_wal: u64) -> Result<TableSummary> {
        self.flush_block()?;
        let mut index_frame = Vec::new();
        frame::begin(&mut index_frame);
        let index = Index {
            last_key: self.last_key.take().unwrap_or_default(),
            blocks: std::mem::take(&mut self.index),
        };
        index_frame.extend_from_slice(&index::encode(&index));
        frame::seal(&mut index_frame, 0);
        let footer = Footer {
            index_offset: self.offset,
            index_len: index_frame.len() as u32,
            entries: self.entries,
            tombstones: self.tombstones,
            first_wal,
            last_wal,
        };
        index_frame.extend_from_slice(&footer.encode());
        self.file.append(&index_frame)?;
        self.file.sync()?;
        Ok(TableSummary {
            entries: self.entries,
            tombstones: self.tombstones,
            file_bytes: self.offset + index_frame.len() as u64,
        })
    }
}

/// The temporary name a table is written under before it is renamed to `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Writes the entries of `source` (sorted, strictly increasing keys) as a table at `path`,
/// crash-safely: to [`temp_path`], synced, renamed to `path`, directory synced.
///
/// # Errors
/// Any error from `source`, [`Error::InvalidArgument`] for keys out of order, [`Error::Io`].
/// On error the temporary file is removed (best effort) and `path` is untouched.
pub fn write_table(
    fs: &Fs,
    path: &Path,
    block_bytes: usize,
    first_wal: u64,
    last_wal: u64,
    source: impl IntoIterator<Item = Result<(Vec<u8>, Entry)>>,
) -> Result<TableSummary> {
    let tmp = temp_path(path);
    let build = || -> Result<TableSummary> {
        let mut builder = TableBuilder::new(fs.create(&tmp)?, block_bytes);
        for item in source {
            let (key, entry) = item?;
            builder.add_entry(&key, &entry)?;
        }
        builder.finish(first_wal, last_wal)
    };
    let summary = match build() {
        Ok(summary) => summary,
        Err(e) => {
            let _ = fs.remove_if_exists(&tmp);
            return Err(e);
        }
    };
    fs.rename(&tmp, path)?;
    fs.sync_dir(parent_dir(path))?;
    Ok(summary)
}
