//! [`RocksDb`]: RocksDB (the `rocksdb` crate, 0.24, over RocksDB 10) as a
//! [`kv_shared::Engine`].
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
//! | `sync` | `flush_wal(true)`: writes and fsyncs the WAL | tables are synced when RocksDB writes them |
//! | `compact` | `compact_range` over every key with the bottommost level forced (`BottommostLevelCompaction::Force`): flushes the memtable and rewrites every level | RocksDB's manual full compaction |
//! | bloom filters | full filters, `bloom_bits_per_key` (10) bits per key | RocksDB has none by default |
//! | compression | none (`DBCompressionType::None`; the crate is built without compression libraries) | RocksDB's default is Snappy |
//! | block cache | an LRU cache of `cache_bytes`, default 32 MiB (RocksDB's default size) | |
//! | memtable | `memtable_bytes`, default 64 MiB (RocksDB's `write_buffer_size` default) | |
//! | data blocks | `block_bytes`, default 4 KiB (RocksDB's default) | |
//! | everything else | RocksDB's defaults (leveled compaction, 2 background jobs, level sizes) | |
//! | statistics | on (`enable_statistics`), to count the bytes written | costs a few per cent |
//!
//! ## Files
//!
//! `DIR/ENGINE` and `DIR/LOCK` (the course's marker and lock), and RocksDB's own files under
//! `DIR/rocksdb/`: `*.log` (WAL), `*.sst`, `MANIFEST-*`, `CURRENT`, `OPTIONS-*`, its `LOCK`
//! and its info `LOG`.
//!
//! ## Statistics
//!
//! `disk_bytes_written` is RocksDB's own count: WAL bytes + flush bytes + compaction bytes
//! (tickers `rocksdb.wal.bytes`, `rocksdb.flush.write.bytes`, `rocksdb.compact.write.bytes`);
//! it leaves out the MANIFEST, the OPTIONS files and the info LOG. Those are small but not
//! nothing: at `kvbench --num 100000` they were about 5 % of the bytes the process wrote,
//! enough for the report's check against `/proc/self/io` to flag the difference. `get_disk_reads` is the
//! number of blocks RocksDB read from table files during each `get` (`block_read_count` of
//! its per-thread perf context, at `PerfStatsLevel::EnableCount`), so it is exact per call.
//! `extra` adds the three byte counts and RocksDB's estimate of live keys.
//!
//! ## Limits
//!
//! RocksDB takes keys and values up to 4 GiB; the course's limits are checked before calling
//! it.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use kv_shared::{
    Engine, Error, KeyRange, MAX_KEY_LEN, OptionDoc, Options, Result, ScanIter, Stats, StoreDir,
    check_key, check_key_value,
};
use rocksdb::perf::{PerfContext, PerfMetric, PerfStatsLevel, set_perf_stats};
use rocksdb::statistics::Ticker;
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, CompactOptions, DB, DBCompressionType,
    Direction, IteratorMode, ReadOptions,
};

use super::counters::{PeerCounters, ReadCounting, WriteCounting};
use super::scan_bounds::empty_scan;
use super::{check_bloom_bits, open_store};

thread_local! {
    /// This thread's RocksDB perf context, with counting switched on for the thread the
    /// first time it is used.
    static PERF: PerfContext = {
        set_perf_stats(PerfStatsLevel::EnableCount);
        PerfContext::default()
    };
}

/// A RocksDB database behind the course's [`Engine`] contract.
pub struct RocksDb {
    // Field order is drop order: the database (closed on drop) before the store directory's
    // lock. `options` holds the statistics object the byte counts come from.
    db: DB,
    options: rocksdb::Options,
    counters: PeerCounters,
    files: PathBuf,
    store: StoreDir,
}

/// Converts a RocksDB error, keeping corruption apart from I/O.
fn rocks_error(path: &Path, error: rocksdb::Error) -> Error {
    match error.kind() {
        rocksdb::ErrorKind::Corruption => Error::corruption(path, 0, error.into_string()),
        _ => Error::io(path, std::io::Error::other(error)),
    }
}

impl Engine for RocksDb {
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
    ];

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let memtable_bytes: usize = options.get_or("memtable_bytes", 64 << 20)?;
        let block_bytes: usize = options.get_or("block_bytes", 4 << 10)?;
        let bloom_bits: f64 = options.get_or("bloom_bits_per_key", 10.0)?;
        let cache_bytes: usize = options.get_or("cache_bytes", 32 << 20)?;
        if memtable_bytes == 0 || block_bytes == 0 {
            return Err(Error::InvalidArgument(
                "rocksdb: memtable_bytes and block_bytes must be positive".into(),
            ));
        }
        check_bloom_bits(Self::NAME, bloom_bits)?;

        let (store, files) = open_store::<Self>(dir, options)?;
        let counters = PeerCounters::start();

        let mut table = BlockBasedOptions::default();
        table.set_block_size(block_bytes);
        table.set_block_cache(&Cache::new_lru_cache(cache_bytes));
        if bloom_bits > 0.0 {
            table.set_bloom_filter(bloom_bits, false);
        }
        let mut rocks = rocksdb::Options::default();
        rocks.create_if_missing(true);
        rocks.set_write_buffer_size(memtable_bytes);
        rocks.set_compression_type(DBCompressionType::None);
        rocks.set_bottommost_compression_type(DBCompressionType::None);
        rocks.set_block_based_table_factory(&table);
        rocks.enable_statistics();
        let db = DB::open(&rocks, &files).map_err(|e| rocks_error(&files, e))?;
        Ok(RocksDb {
            db,
            options: rocks,
            counters,
            files,
            store,
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        self.db
            .put(key, value)
            .map_err(|e| rocks_error(&self.files, e))?;
        self.counters.count_put(key, value);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.len() > MAX_KEY_LEN {
            self.counters.count_get(0);
            return Ok(None);
        }
        let (value, reads) = PERF.with(|perf| {
            let before = perf.metric(PerfMetric::BlockReadCount);
            let value = self.db.get(key);
            let after = perf.metric(PerfMetric::BlockReadCount);
            (value, after.saturating_sub(before))
        });
        self.counters.count_get(reads);
        value.map_err(|e| rocks_error(&self.files, e))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.db
            .delete(key)
            .map_err(|e| rocks_error(&self.files, e))?;
        self.counters.count_delete(key);
        Ok(())
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        if range.is_empty() {
            return Ok(empty_scan());
        }
        let mut read = ReadOptions::default();
        if let Bound::Excluded(end) = &range.end {
            // RocksDB stops by itself before an exclusive upper bound.
            read.set_iterate_upper_bound(end.clone());
        }
        let mode = match &range.start {
            Bound::Unbounded => IteratorMode::Start,
            Bound::Included(start) | Bound::Excluded(start) => {
                IteratorMode::From(start, Direction::Forward)
            }
        };
        let files = &self.files;
        let pairs = self.db.iterator_opt(mode, read);
        Ok(Box::new(
            pairs
                .map(move |pair| {
                    let (key, value) = pair.map_err(|e| rocks_error(files, e))?;
                    Ok((key.into_vec(), value.into_vec()))
                })
                .skip_while(move |pair| match (pair, &range.start) {
                    (Ok((key, _)), Bound::Excluded(start)) => key == start,
                    _ => false,
                })
                .take_while({
                    let end = range.end.clone();
                    move |pair| match (pair, &end) {
                        (Ok((key, _)), Bound::Included(end)) => key <= end,
                        _ => true,
                    }
                }),
        ))
    }

    fn sync(&self) -> Result<()> {
        self.db
            .flush_wal(true)
            .map_err(|e| rocks_error(&self.files, e))
    }

    fn compact(&self) -> Result<()> {
        let mut compact = CompactOptions::default();
        compact.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        self.db
            .compact_range_opt(None::<&[u8]>, None::<&[u8]>, &compact);
        Ok(())
    }

    fn stats(&self) -> Result<Stats> {
        let wal = self.options.get_ticker_count(Ticker::WalFileBytes);
        let flush = self.options.get_ticker_count(Ticker::FlushWriteBytes);
        let compaction = self.options.get_ticker_count(Ticker::CompactWriteBytes);
        let mut stats = self.counters.stats(
            self.store.path(),
            self.scan(KeyRange::all())?,
            WriteCounting::Peer(wal + flush + compaction),
            ReadCounting::Counted,
        )?;
        stats.extra.insert("wal_bytes".into(), wal);
        stats.extra.insert("flush_bytes".into(), flush);
        stats.extra.insert("compaction_bytes".into(), compaction);
        if let Ok(Some(keys)) = self.db.property_int_value("rocksdb.estimate-num-keys") {
            stats.extra.insert("estimated_keys".into(), keys);
        }
        Ok(stats)
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}
