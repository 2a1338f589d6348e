//! Writing a table: entries in internal-key order in, a finished, synced file out.
//!
//! Flushes and compactions both write tables through [`TableBuilder`]. Entries go into the
//! current data block; when it reaches `block_bytes` it is appended to the file and its last
//! key and handle go into the index. The hash of every user key is kept for the filter. At
//! [`TableBuilder::finish`] the last data block, the filter block, the index block and the
//! footer follow, and the file is synced. The layout is documented in [`crate::table`].
//!
//! Finished blocks are gathered in a write buffer and handed to the OS
//! [`WRITE_BUFFER_BYTES`] at a time: a 2 MiB table is some 500 blocks of 4 KiB, and one
//! `write` call per block cost a bulk load about a tenth of its time in system calls.
//!
//! Data blocks get a restart point every `restart_interval` entries and are compressed
//! when the `compression` option asks for it and it pays ([`crate::table::compression`]). The
//! index block is never compressed and has a restart point at every entry: it is read once
//! when the table is opened, and its keys are the blocks' last keys, which share little.

use std::path::Path;

use kv_shared::{FileRef, Fs, Result};

use crate::bloom::{self, BloomFilter};
use crate::key::{Kind, compare, trailer};
use crate::options::LsmOptions;
use crate::table::block_builder::BlockBuilder;
use crate::table::compression::Compression;
use crate::table::filter;
use crate::table::footer::{FOOTER_LEN, Footer};
use crate::table::index::encode_handle;
use crate::version_edit::TableMeta;

/// Bytes of finished blocks gathered before they are handed to the OS in one append.
pub const WRITE_BUFFER_BYTES: usize = 256 << 10;

/// Writes one table file.
#[derive(Debug)]
pub struct TableBuilder {
    file: FileRef,
    number: u64,
    block_bytes: usize,
    bits_per_key: usize,
    compression: Compression,
    block: BlockBuilder,
    index: BlockBuilder,
    hashes: Vec<u64>,
    /// Finished blocks not yet handed to the OS; they start at `offset - out.len()`.
    out: Vec<u8>,
    /// Bytes of the table so far: those handed to the OS, then those in `out`.
    offset: u64,
    entries: u64,
    /// First internal key written.
    smallest: Option<(Vec<u8>, u64)>,
    /// Last internal key written.
    last: Option<(Vec<u8>, u64, Kind)>,
}

impl TableBuilder {
    /// Creates table file `number` at `path`, with the block size, restart interval,
    /// compression and filter bits per key of `options`.
    ///
    /// # Errors
    /// [`kv_shared::Error::Io`].
    pub fn create(fs: &Fs, path: &Path, number: u64, options: &LsmOptions) -> Result<TableBuilder> {
        Ok(TableBuilder {
            file: fs.create(path)?,
            number,
            block_bytes: options.block_bytes.max(1),
            bits_per_key: options.bloom_bits_per_key,
            compression: options.compression,
            block: BlockBuilder::new(options.restart_interval),
            index: BlockBuilder::new(1),
            hashes: Vec::new(),
            out: Vec::new(),
            offset: 0,
            entries: 0,
            smallest: None,
            last: None,
        })
    }

    /// Adds an entry; entries must come in strictly increasing internal-key order.
    ///
    /// # Errors
    /// [`kv_shared::Error::Io`] when a full block is written out;
    /// [`kv_shared::Error::Corruption`] for an entry out of order, which only a damaged
    /// input table can give a compaction (a table whose block checksum holds over entries
    /// out of order): refused, so that the damage is not copied into a table that breaks
    /// its own order.
    pub fn add(&mut self, key: &[u8], seq: u64, value: Option<&[u8]>) -> Result<()> {
        let kind = Kind::of(value);
        if let Some((k, s, _)) = &self.last
            && compare(k, *s, key, seq).is_ge()
        {
            return Err(kv_shared::Error::corruption(
                self.file.path(),
                self.offset,
                "table entries out of order: an input of this table is damaged",
            ));
        }
        if self.last.as_ref().is_none_or(|(k, _, _)| k != key) {
            self.hashes.push(bloom::hash(key));
        }
        if self.smallest.is_none() {
            self.smallest = Some((key.to_vec(), seq));
        }
        self.block
            .add(key, trailer(seq, kind), value.unwrap_or_default());
        self.entries += 1;
        match &mut self.last {
            Some(last) => {
                last.0.clear();
                last.0.extend_from_slice(key);
                last.1 = seq;
                last.2 = kind;
            }
            None => self.last = Some((key.to_vec(), seq, kind)),
        }
        if self.block.size() >= self.block_bytes {
            self.finish_block()?;
        }
        Ok(())
    }

    fn finish_block(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let bytes = self.block.finish(self.compression);
        self.write(&bytes)?;
        let (key, seq, kind) = self
            .last
            .as_ref()
            .expect("a non-empty block has a last key");
        let handle = encode_handle(self.offset, bytes.len() as u32);
        self.index.add(key, trailer(*seq, *kind), &handle);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Adds `bytes` to the write buffer, and hands the buffer to the OS once it holds
    /// [`WRITE_BUFFER_BYTES`].
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.out.capacity() == 0 {
            self.out
                .reserve_exact(WRITE_BUFFER_BYTES + self.block_bytes);
        }
        self.out.extend_from_slice(bytes);
        if self.out.len() >= WRITE_BUFFER_BYTES {
            self.file.append(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Bytes the file would have if finished now (without the filter and index).
    pub fn estimated_size(&self) -> u64 {
        self.offset + self.block.size() as u64
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes the last data block, the filter, the index and the footer, syncs the file,
    /// and describes the table. Call only after at least one [`TableBuilder::add`].
    ///
    /// # Errors
    /// [`kv_shared::Error::InvalidArgument`] for an empty table; [`kv_shared::Error::Io`].
    pub fn finish(self) -> Result<TableMeta> {
        let (meta, file) = self.finish_unsynced()?;
        file.sync()?;
        Ok(meta)
    }

    /// [`TableBuilder::finish`] without the sync: the table is written (handed to the OS)
    /// and its file returned, for the caller to sync, perhaps in another thread while it
    /// builds the next table (a bulk load does, [`crate::ingest`]).
    ///
    /// # Errors
    /// As [`TableBuilder::finish`].
    pub fn finish_unsynced(mut self) -> Result<(TableMeta, FileRef)> {
        self.finish_block()?;
        let (Some((smallest, smallest_seq)), Some((largest, largest_seq, _))) =
            (self.smallest.take(), self.last.take())
        else {
            return Err(kv_shared::Error::InvalidArgument("an empty table".into()));
        };
        let filter = filter::encode(&BloomFilter::build(&self.hashes, self.bits_per_key));
        let filter_offset = self.offset;
        self.write(&filter)?;
        let index_offset = filter_offset + filter.len() as u64;
        let index = self.index.finish(Compression::None);
        self.write(&index)?;
        let footer = Footer {
            filter_offset,
            filter_size: filter.len() as u32,
            index_offset,
            index_size: index.len() as u32,
            entries: self.entries,
        };
        self.out.extend_from_slice(&footer.encode());
        self.file.append(&self.out)?;
        let meta = TableMeta {
            number: self.number,
            size: index_offset + index.len() as u64 + FOOTER_LEN as u64,
            entries: self.entries,
            smallest,
            smallest_seq,
            largest,
            largest_seq,
        };
        Ok((meta, self.file))
    }
}
