//! [`RocksDb`]: RocksDB (the `rocksdb` crate, 0.24, over RocksDB 10) as a
//! [`kv_shared::Engine`] (a [`PeerEngine`] over [`RocksDbStore`]).
//!
//! RocksDB is the leveled LSM tree most production systems measure against: a write-ahead
//! log, memtables, block-based tables with bloom filters and a block cache, and leveled
//! compaction in background threads. Stage 4, `lsm`, is built on the same ideas.
//!
//! ## Settings
//!
//! | setting | value | why |
//! |---|---|---|
//! | durability of `put`/`delete` | default `WriteOptions`: the WAL record is handed to the OS on every write, no fsync | a write survives a kill of the process, not a power loss: the course's contract |
//! | `write` (a batch) | one RocksDB `WriteBatch`: one WAL record, applied at one sequence number | RocksDB's own atomic batch |
//! | cursors and scans | RocksDB's raw iterator, which reads at the sequence number current when it was created (an implicit snapshot) and pins the memtables and files it reads; its `seek`, `seek_for_prev`, `next` and `prev` are the cursor's | a scan's iterator gets its range as RocksDB's iterate bounds, so it stops at the range's end |
//! | `sync` | `flush_wal(true)`: writes and fsyncs the WAL | tables are synced when RocksDB writes them |
//! | `compact` | `compact_range` over every key with the bottommost level forced (`BottommostLevelCompaction::Force`): flushes the memtable and rewrites every level | RocksDB's manual full compaction |
//! | `flush` | `DB::flush`: writes the memtable to a level-0 table and waits for it | |
//! | bloom filters | full filters, `bloom_bits_per_key` (10) bits per key | RocksDB has none by default |
//! | compression | none (`DBCompressionType::None`; the crate is built without compression libraries) | RocksDB's default is Snappy |
//! | block cache | an LRU cache of `cache_bytes`, default 32 MiB (RocksDB's default size) | |
//! | memtable | `memtable_bytes`, default 64 MiB (RocksDB's `write_buffer_size` default) | |
//! | data blocks | `block_bytes`, default 4 KiB (RocksDB's default) | |
//! | key-value separation | `blob_files`, default false (RocksDB's default). `true` turns on RocksDB's integrated BlobDB (`set_enable_blob_files`): a flush or compaction writes each value of at least `min_blob_size` bytes to a blob file and keeps the key and a blob index in the table | WiscKey's idea, as RocksDB ships it; see below |
//! | separation threshold | `min_blob_size`, default 0 (RocksDB's default): every value is separated, as in WiscKey (`set_min_blob_size`) | the same default as fjall's adapter, so `--set min_blob_size=...` moves both |
//! | blob files | `blob_file_bytes`, default 64 MiB (RocksDB's default is 256 MiB; fjall's, 64 MiB): a blob file is closed at this size (`set_blob_file_size`); no blob compression | |
//! | blob cache | with `blob_files`, the block cache (`set_blob_cache`): one LRU cache of `cache_bytes` for blocks and values, as fjall shares one | RocksDB's default is no blob cache |
//! | blob garbage collection | `blob_gc`, default true (RocksDB's default is false): a compaction relocates the live values of the oldest 25 % of blob files it meets (`set_enable_blob_gc`, age cutoff 0.25, RocksDB's default) | without it an overwritten value's space is never reclaimed; fjall collects by default |
//! | everything else | RocksDB's defaults (leveled compaction, 2 background jobs, level sizes) | |
//! | statistics | on (`enable_statistics`), to count the bytes written | costs a few per cent |
//! | `load`, input sorted | `SstFileWriter` tables, then `IngestExternalFile` with `move_files`; see below | RocksDB's bulk load |
//! | `load`, input unsorted | batches of 1,000 pairs, then `sync` (the course's default) | `SstFileWriter` needs sorted input |
//!
//! ## Files
//!
//! `DIR/ENGINE` and `DIR/LOCK` (the course's marker and lock), and RocksDB's own files under
//! `DIR/rocksdb/`: `*.log` (WAL), `*.sst`, `*.blob` (with `blob_files`), `MANIFEST-*`,
//! `CURRENT`, `OPTIONS-*`, its `LOCK` and its info `LOG`.
//!
//! ## Key-value separation
//!
//! With `blob_files=true` the WAL and the memtable are as before; the separation happens
//! when the memtable is flushed: each value of at least `min_blob_size` bytes is appended to
//! a blob file (`*.blob`, beside the tables) and the table gets the key and a blob index
//! (the file, the offset, the size). Compactions then move keys and blob indexes, not the
//! values; with `blob_gc`, a compaction that meets a value in one of the oldest 25 % of the
//! blob files rewrites it into a new blob file, and a blob file no table points into any
//! more is deleted. A `get` finds the blob index in the tree, then reads the value from its
//! blob file. The blob settings are applied at every open (RocksDB keeps them in its
//! OPTIONS file but does not hold a store to them). A bulk load's `SstFileWriter` tables
//! are ingested with their values inline; a later compaction of them moves the values out.
//!
//! ## Bulk loads
//!
//! A load promised sorted is RocksDB's own bulk load. An `SstFileWriter`, made with the
//! store's options (so its tables have the same block size, filters and no compression),
//! writes the pairs, in strictly ascending order, into table files in a scratch directory
//! inside the store directory, `DIR/rocksdb-ingest/`, starting a new file every
//! [`INGEST_TABLE_BYTES`] of keys and values; `finish` completes and fsyncs each. Then one
//! `IngestExternalFile` call adds every file to the tree at once: with `move_files` the
//! files are hard-linked into `DIR/rocksdb/` rather than copied (the scratch directory is on
//! the same file system for that reason), RocksDB gives them one new sequence number, puts
//! them in the lowest level whose key ranges they do not overlap, and records them in the
//! MANIFEST, synced. The ingestion is atomic: a failure before it returns adds nothing. The
//! scratch directory is removed afterwards, whether the load succeeded or not.
//!
//! `SstFileWriter` refuses a key not greater than the one before; the adapter's
//! [`SortedPairs`] refuses a step back and collapses equal keys to the last value before
//! RocksDB sees them. An input in any order goes in by batches of 1,000 pairs, then `sync`
//! (the adapter does not sort it: that is the course's engines' work to show).
//!
//! ## Statistics
//!
//! `disk_bytes_written` is RocksDB's own count: WAL bytes + flush bytes + compaction bytes
//! (tickers `rocksdb.wal.bytes`, `rocksdb.flush.write.bytes`, `rocksdb.compact.write.bytes`),
//! plus the bytes of the table files bulk loads wrote (counted by the adapter, as
//! `extra["ingested_bytes"]`: RocksDB has no ticker for them);
//! it leaves out the MANIFEST, the OPTIONS files and the info LOG. Those are small but not
//! nothing: at `kvbench --num 100000` they were about 5 % of the bytes the process wrote,
//! enough for the report's check against `/proc/self/io` to flag the difference. `get_disk_reads` is the
//! number of blocks RocksDB read from table files during each `get` (`block_read_count` of
//! its per-thread perf context, at `PerfStatsLevel::EnableCount`), so it is exact per call.
//! `extra` adds the four byte counts and RocksDB's estimate of live keys.
//!
//! The blob files a flush or a compaction writes are in its ticker: RocksDB adds to
//! `rocksdb.flush.write.bytes` and `rocksdb.compact.write.bytes` every byte the job's thread
//! wrote through its file writers (its `IOStatsContext::bytes_written`), tables and blob
//! files alike, so `disk_bytes_written` counts them once with nothing added. With
//! `blob_files`, `extra` also has `blob_bytes_written` (ticker
//! `rocksdb.blobdb.blob.file.bytes.written`: the blob files' share of those bytes, already
//! in the total), `blob_files` (`rocksdb.num-blob-files`), `blob_garbage_bytes`
//! (`rocksdb.live-blob-file-garbage-size`: overwritten or deleted values still in blob
//! files) and `blob_reads` (reads of blob files since open, below).
//!
//! A `get` that finds a blob index reads the value from the blob cache or its blob file;
//! the perf context's `block_read_count` does not see the second, and the crate does not
//! expose the perf context's blob counters. So with `blob_files` a `get` also counts one
//! disk read when the bytes read from blob files (ticker
//! `rocksdb.blobdb.blob.file.bytes.read`) grew across the call: a get reads at most one
//! value, and the ticker is process-wide, so a compaction reading a blob file at that
//! instant (its garbage collection) may count for a get served from the cache. (The exact
//! count of blob-file reads, `extra["blob_reads"]`, is a histogram's count: reading it
//! costs microseconds, too much to do around every get.)
//!
//! ## Limits
//!
//! RocksDB takes keys and values up to 4 GiB; the course's limits are checked before calling
//! it.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use kv_shared::{
    BoxCursor, Cursor, Error, KeyRange, LoadReport, OptionDoc, Options, Result, WriteBatch,
};
use rocksdb::perf::{PerfContext, PerfMetric, PerfStatsLevel, set_perf_stats};
use rocksdb::statistics::{Histogram, Ticker};
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, CompactOptions, DB, DBCompressionType,
    DBRawIteratorWithThreadMode, IngestExternalFileOptions, ReadOptions, SstFileWriter,
};

use super::adapter::{LsmSettings, PeerEngine, PeerFigures, PeerStore, SortedPairs};
use super::counters::{ReadCounting, WriteCounting};

/// RocksDB as a course [`kv_shared::Engine`].
pub type RocksDb = PeerEngine<RocksDbStore>;

thread_local! {
    /// This thread's RocksDB perf context, with counting switched on for the thread the
    /// first time it is used.
    static PERF: PerfContext = {
        set_perf_stats(PerfStatsLevel::EnableCount);
        PerfContext::default()
    };
}

/// Key and value bytes per table file a bulk load writes before it starts the next
/// (RocksDB's default target file size for level 1 and its memtable size are both 64 MiB).
pub const INGEST_TABLE_BYTES: u64 = 64 << 20;

/// The scratch directory of bulk loads, beside `DIR/rocksdb/` in the store directory.
const INGEST_DIR: &str = "rocksdb-ingest";

/// A RocksDB database: the calls [`RocksDb`] makes.
pub struct RocksDbStore {
    // Field order is drop order: the database (closed on drop) first. `options` holds the
    // statistics object the byte counts come from.
    db: DB,
    options: rocksdb::Options,
    files: PathBuf,
    /// Bytes of the table files bulk loads wrote (RocksDB's tickers do not count them).
    ingested_bytes: AtomicU64,
    /// Opened with `blob_files`: the blob figures go into `extra`.
    blob_files: bool,
}

/// RocksDB's settings: the ones it shares with fjall, and its blob files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocksDbSettings {
    /// Memtable, block, bloom filter and cache sizes.
    pub lsm: LsmSettings,
    /// `blob_files`: integrated BlobDB on.
    pub blob_files: bool,
    /// `min_blob_size`: the smallest value that goes to a blob file.
    pub min_blob_size: u64,
    /// `blob_file_bytes`: the size at which a blob file is closed.
    pub blob_file_bytes: u64,
    /// `blob_gc`: compactions relocate the values of the oldest blob files.
    pub blob_gc: bool,
}

/// Converts a RocksDB error, keeping corruption apart from I/O.
fn rocks_error(path: &Path, error: rocksdb::Error) -> Error {
    match error.kind() {
        rocksdb::ErrorKind::Corruption => Error::corruption(path, 0, error.into_string()),
        _ => Error::io(path, std::io::Error::other(error)),
    }
}

impl RocksDbStore {
    /// Converts one of RocksDB's errors on this store.
    fn error(&self, error: rocksdb::Error) -> Error {
        rocks_error(&self.files, error)
    }

    /// The scratch directory of bulk loads: `DIR/rocksdb-ingest/`.
    fn ingest_dir(&self) -> PathBuf {
        let store = self.files.parent().unwrap_or(&self.files);
        store.join(INGEST_DIR)
    }

    /// Writes `pairs` into table files in `scratch` (created), a new one every
    /// [`INGEST_TABLE_BYTES`]; returns their paths (none for no pairs).
    fn write_tables(&self, pairs: &mut SortedPairs<'_>, scratch: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
        let mut tables = Vec::new();
        // The open table and the key and value bytes put into it.
        let mut open: Option<(SstFileWriter<'_>, u64)> = None;
        for pair in pairs.by_ref() {
            let (key, value) = pair?;
            let (writer, bytes) = match &mut open {
                Some(table) => table,
                None => {
                    let path = scratch.join(format!("{:06}.sst", tables.len()));
                    let writer = SstFileWriter::create(&self.options);
                    writer.open(&path).map_err(|e| rocks_error(&path, e))?;
                    tables.push(path);
                    open.insert((writer, 0))
                }
            };
            writer.put(&key, &value).map_err(|e| self.error(e))?;
            *bytes += (key.len() + value.len()) as u64;
            if *bytes >= INGEST_TABLE_BYTES {
                writer.finish().map_err(|e| self.error(e))?;
                open = None;
            }
        }
        if let Some((mut writer, _)) = open {
            writer.finish().map_err(|e| self.error(e))?;
        }
        Ok(tables)
    }

    /// Adds the finished `tables` to the tree in one `IngestExternalFile`, moving them in,
    /// and counts their bytes; nothing for no tables.
    fn ingest(&self, tables: &[PathBuf]) -> Result<()> {
        if tables.is_empty() {
            return Ok(());
        }
        let mut bytes = 0;
        for table in tables {
            bytes += std::fs::metadata(table)
                .map_err(|e| Error::io(table, e))?
                .len();
        }
        let mut ingest = IngestExternalFileOptions::default();
        ingest.set_move_files(true);
        self.db
            .ingest_external_file_opts(&ingest, tables.to_vec())
            .map_err(|e| self.error(e))?;
        self.ingested_bytes.fetch_add(bytes, Relaxed);
        Ok(())
    }
}

impl RocksDbStore {
    /// Bytes read from blob files so far, by any thread (ticker
    /// `rocksdb.blobdb.blob.file.bytes.read`); 0 without `blob_files`.
    fn blob_bytes_read(&self) -> u64 {
        if !self.blob_files {
            return 0;
        }
        self.options
            .get_ticker_count(Ticker::BlobDbBlobFileBytesRead)
    }

    /// Reads of blob files so far, by any thread (the count of RocksDB's histogram
    /// `rocksdb.blobdb.blob.file.read.micros`, which every read of a blob file records).
    fn blob_reads(&self) -> u64 {
        self.options
            .get_histogram_data(Histogram::BlobDbBlobFileReadMicros)
            .count()
    }
}

impl PeerStore for RocksDbStore {
    const NAME: &'static str = "rocksdb";
    const FORMAT_VERSION: u32 = 10;
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc {
            name: "memtable_bytes",
            default: "64M",
            doc: "memtable size before RocksDB flushes it (write_buffer_size)",
        },
        OptionDoc {
            name: "block_bytes",
            default: "4K",
            doc: "data block size (block_size)",
        },
        OptionDoc {
            name: "bloom_bits_per_key",
            default: "10",
            doc: "full bloom filter bits per key, 0 for none",
        },
        OptionDoc {
            name: "cache_bytes",
            default: "32M",
            doc: "LRU block cache capacity",
        },
        OptionDoc {
            name: "blob_files",
            default: "false",
            doc: "true: integrated BlobDB, values of at least min_blob_size bytes go to blob files at flush (enable_blob_files)",
        },
        OptionDoc {
            name: "min_blob_size",
            default: "0",
            doc: "with blob_files, the smallest value that is separated; 0: every value (min_blob_size)",
        },
        OptionDoc {
            name: "blob_file_bytes",
            default: "64M",
            doc: "with blob_files, the size at which a blob file is closed (blob_file_size)",
        },
        OptionDoc {
            name: "blob_gc",
            default: "true",
            doc: "with blob_files, compactions relocate the values of the oldest 25% of blob files (enable_blob_garbage_collection)",
        },
    ];
    const READS: ReadCounting = ReadCounting::Counted;

    type Settings = RocksDbSettings;

    fn settings(options: &Options) -> Result<RocksDbSettings> {
        Ok(RocksDbSettings {
            lsm: LsmSettings::parse(Self::NAME, options)?,
            blob_files: options.get_or("blob_files", false)?,
            min_blob_size: options.get_or("min_blob_size", 0)?,
            blob_file_bytes: options.get_at_least("blob_file_bytes", 64 << 20, 1)?,
            blob_gc: options.get_or("blob_gc", true)?,
        })
    }

    fn open(files: &Path, all: RocksDbSettings) -> Result<Self> {
        let settings = all.lsm;
        let mut table = BlockBasedOptions::default();
        table.set_block_size(settings.block_bytes as usize);
        let cache = Cache::new_lru_cache(settings.cache_bytes as usize);
        table.set_block_cache(&cache);
        if settings.bloom_bits > 0.0 {
            table.set_bloom_filter(settings.bloom_bits, false);
        }
        let mut rocks = rocksdb::Options::default();
        rocks.create_if_missing(true);
        rocks.set_write_buffer_size(settings.memtable_bytes as usize);
        rocks.set_compression_type(DBCompressionType::None);
        rocks.set_bottommost_compression_type(DBCompressionType::None);
        rocks.set_block_based_table_factory(&table);
        rocks.enable_statistics();
        if all.blob_files {
            rocks.set_enable_blob_files(true);
            rocks.set_min_blob_size(all.min_blob_size);
            rocks.set_blob_file_size(all.blob_file_bytes);
            rocks.set_blob_compression_type(DBCompressionType::None);
            rocks.set_enable_blob_gc(all.blob_gc);
            rocks.set_blob_cache(&cache);
        }
        let db = DB::open(&rocks, files).map_err(|e| rocks_error(files, e))?;
        Ok(RocksDbStore {
            db,
            options: rocks,
            files: files.to_path_buf(),
            ingested_bytes: AtomicU64::new(0),
            blob_files: all.blob_files,
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.put(key, value).map_err(|e| self.error(e))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.db.delete(key).map_err(|e| self.error(e))
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.iter() {
            match op.value {
                Some(value) => rocks_batch.put(op.key, value),
                None => rocks_batch.delete(op.key),
            }
        }
        self.db.write(rocks_batch).map_err(|e| self.error(e))
    }

    fn get(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, u64)> {
        let blob_bytes_before = self.blob_bytes_read();
        let (value, reads) = PERF.with(|perf| {
            let before = perf.metric(PerfMetric::BlockReadCount);
            let value = self.db.get(key);
            let after = perf.metric(PerfMetric::BlockReadCount);
            (value, after.saturating_sub(before))
        });
        // A get reads at most one value: one blob read when blob bytes were read meanwhile.
        let blob_read = self.blob_bytes_read() > blob_bytes_before;
        Ok((
            value.map_err(|e| self.error(e))?,
            reads + u64::from(blob_read),
        ))
    }

    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        let mut read = ReadOptions::default();
        if let Bound::Included(start) | Bound::Excluded(start) = &range.start {
            read.set_iterate_lower_bound(start.clone());
        }
        match &range.end {
            Bound::Excluded(end) => read.set_iterate_upper_bound(end.clone()),
            Bound::Included(end) => {
                // RocksDB's upper bound is exclusive: the smallest key after `end` is `end`
                // followed by a zero byte.
                read.set_iterate_upper_bound([end.as_slice(), &[0]].concat());
            }
            Bound::Unbounded => {}
        }
        Ok(Box::new(RocksCursor {
            iter: self.db.raw_iterator_opt(read),
            files: &self.files,
        }))
    }

    fn sync(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(|e| self.error(e))
    }

    fn compact(&self) -> Result<()> {
        let mut compact = CompactOptions::default();
        compact.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        self.db
            .compact_range_opt(None::<&[u8]>, None::<&[u8]>, &compact);
        Ok(())
    }

    fn flush(&self) -> Result<bool> {
        self.db.flush().map_err(|e| self.error(e))?;
        Ok(true)
    }

    fn load_sorted(&self, pairs: &mut SortedPairs<'_>) -> Result<LoadReport> {
        let scratch = self.ingest_dir();
        let result = self
            .write_tables(pairs, &scratch)
            .and_then(|tables| self.ingest(&tables).map(|()| tables.len() as u64));
        let removed = match std::fs::remove_dir_all(&scratch) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&scratch, e)),
            _ => Ok(()),
        };
        let tables = result?;
        removed?;
        let method = format!("{tables} tables written by SstFileWriter, then IngestExternalFile");
        Ok(pairs.report(tables, method))
    }

    fn figures(&self) -> PeerFigures {
        let wal = self.options.get_ticker_count(Ticker::WalFileBytes);
        let flush = self.options.get_ticker_count(Ticker::FlushWriteBytes);
        let compaction = self.options.get_ticker_count(Ticker::CompactWriteBytes);
        let ingested = self.ingested_bytes.load(Relaxed);
        let mut extra = vec![
            ("wal_bytes", wal),
            ("flush_bytes", flush),
            ("compaction_bytes", compaction),
            ("ingested_bytes", ingested),
        ];
        if let Ok(Some(keys)) = self.db.property_int_value("rocksdb.estimate-num-keys") {
            extra.push(("estimated_keys", keys));
        }
        if self.blob_files {
            let blob = self
                .options
                .get_ticker_count(Ticker::BlobDbBlobFileBytesWritten);
            extra.push(("blob_bytes_written", blob));
            extra.push(("blob_reads", self.blob_reads()));
            for (name, property) in [
                ("blob_files", "rocksdb.num-blob-files"),
                ("blob_garbage_bytes", "rocksdb.live-blob-file-garbage-size"),
            ] {
                if let Ok(Some(value)) = self.db.property_int_value(property) {
                    extra.push((name, value));
                }
            }
        }
        PeerFigures {
            written: WriteCounting::Peer(wal + flush + compaction + ingested),
            extra,
        }
    }
}

/// RocksDB's raw iterator as the course's [`Cursor`]: the two have the same moves.
struct RocksCursor<'a> {
    iter: DBRawIteratorWithThreadMode<'a, DB>,
    files: &'a Path,
}

impl RocksCursor<'_> {
    /// The error the last move met, if any (the iterator is then not valid).
    fn status(&self) -> Result<()> {
        self.iter.status().map_err(|e| rocks_error(self.files, e))
    }
}

impl Cursor for RocksCursor<'_> {
    fn valid(&self) -> bool {
        self.iter.valid()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.iter.seek_to_first();
        self.status()
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.iter.seek_to_last();
        self.status()
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.iter.seek(target);
        self.status()
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.iter.seek_for_prev(target);
        self.status()
    }

    fn next(&mut self) -> Result<()> {
        if !self.iter.valid() {
            return Ok(());
        }
        self.iter.next();
        self.status()
    }

    fn prev(&mut self) -> Result<()> {
        if !self.iter.valid() {
            return Ok(());
        }
        self.iter.prev();
        self.status()
    }

    fn key(&self) -> &[u8] {
        self.iter
            .key()
            .expect("key() of a cursor that is not valid")
    }

    fn value(&self) -> &[u8] {
        self.iter
            .value()
            .expect("value() of a cursor that is not valid")
    }
}
