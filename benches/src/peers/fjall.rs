//! [`Fjall`]: the [fjall] LSM tree (version 3) as a [`kv_shared::Engine`].
//!
//! fjall is a log-structured merge tree written in Rust: a journal (its write-ahead log), a
//! memtable per keyspace, and leveled block-based tables with bloom filters and a block
//! cache, compacted in background threads. It is the closest peer to stage 4, `lsm`.
//!
//! ## Settings
//!
//! | setting | value | why |
//! |---|---|---|
//! | durability of `put`/`delete` | the journal's buffer is handed to the OS on every write (`manual_journal_persist = false`, fjall's default), no fsync | a write survives a kill of the process, not a power loss: the course's contract |
//! | `sync` | `Database::persist(PersistMode::SyncAll)`: fsyncs the journal | tables are synced when fjall writes them |
//! | `compact` | rotate the memtable and wait for its flush, then `major_compact` (every table into the last level) | fjall's manual full compaction |
//! | bloom filters | `bloom_bits_per_key` (10) bits per key on every level | fjall's default is a 0.01 % false-positive rate on L0 and 10 bits elsewhere; the stages use one figure |
//! | compression | none, for data blocks, index blocks and the journal | fjall is built without its `lz4` feature |
//! | block cache | `cache_bytes`, default 32 MiB (fjall's default) | |
//! | memtable | `memtable_bytes`, default 64 MiB (fjall's default) | |
//! | data blocks | `block_bytes`, default 4 KiB (fjall's default), 1 KiB to 1 MiB | |
//!
//! Block size, bloom and compression are fixed when the keyspace is created: fjall stores
//! them with it, so reopening with other values keeps the first ones.
//!
//! ## Files
//!
//! `DIR/ENGINE` and `DIR/LOCK` (the course's marker and lock), and fjall's own files under
//! `DIR/fjall/`: its journals, its lock and version files, and one folder per keyspace. The
//! adapter uses two keyspaces: `kv` for every key but the empty one, and `empty_key` (see
//! Limits).
//!
//! ## Statistics
//!
//! `disk_bytes_written` is the process's `wchar` growth since open (see [`super`]).
//! `get_disk_reads` is the number of blocks (data, index, filter) that fjall's `get`s
//! loaded from table files rather than from its block cache, from lsm-tree's metrics (the
//! `metrics` feature): the count's growth across each `get`, so a scan or compaction running
//! in another thread at that instant is counted too.
//!
//! ## Limits
//!
//! fjall (its lsm-tree) takes keys of 1 to 65535 bytes and values up to 2^32 bytes: the
//! course's limits (65535 and 16 MiB) fit, and the adapter checks them before calling fjall.
//! **fjall refuses the empty key** (lsm-tree panics on it), which the course allows. The
//! adapter keeps the empty key's value apart, under a fixed key in a second keyspace,
//! `empty_key`, and puts it first in any scan whose range holds the empty key. (Prefixing
//! every key with a byte would not do: a 65535-byte key would become one byte too long.)
//! The second keyspace shares the journal, so its writes are exactly as durable.
//!
//! [fjall]: https://docs.rs/fjall

use std::ops::Bound;
use std::path::{Path, PathBuf};

use fjall::config::{
    BlockSizePolicy, BloomConstructionPolicy, CompressionPolicy, FilterPolicy, FilterPolicyEntry,
};
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use kv_shared::{
    Engine, Error, KeyRange, MAX_KEY_LEN, OptionDoc, Options, Result, ScanIter, Stats, StoreDir,
    check_key, check_key_value,
};

use super::counters::{PeerCounters, ReadCounting, WriteCounting};
use super::scan_bounds::empty_scan;
use super::{check_bloom_bits, open_store, peer_error};

/// The keyspace holding every key but the empty one.
const KEYSPACE: &str = "kv";
/// The keyspace holding the empty key's value, under [`EMPTY_KEY_SLOT`].
const EMPTY_KEYSPACE: &str = "empty_key";
/// Where the empty key's value lives in [`EMPTY_KEYSPACE`].
const EMPTY_KEY_SLOT: &[u8] = b"empty";

/// A fjall database behind the course's [`Engine`] contract.
pub struct Fjall {
    // Field order is drop order: the keyspace handles, then the database (whose drop stops
    // fjall's threads and releases its lock), then the store directory's lock.
    keyspace: Keyspace,
    empty_key: Keyspace,
    db: Database,
    counters: PeerCounters,
    files: PathBuf,
    store: StoreDir,
}

impl Fjall {
    /// Where `key` lives: the empty key in its own keyspace (fjall refuses it), every other
    /// key as itself in the main one.
    fn slot<'k>(&self, key: &'k [u8]) -> (&Keyspace, &'k [u8]) {
        if key.is_empty() {
            (&self.empty_key, EMPTY_KEY_SLOT)
        } else {
            (&self.keyspace, key)
        }
    }
}

impl Engine for Fjall {
    const NAME: &'static str = "fjall";
    const FORMAT_VERSION: u32 = 3;
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc {
            name: "memtable_bytes",
            default: "64M",
            doc: "memtable size before fjall seals and flushes it (fjall's max_memtable_size)",
        },
        OptionDoc {
            name: "block_bytes",
            default: "4K",
            doc: "data block size, 1K to 1M (fixed when the store is created)",
        },
        OptionDoc {
            name: "bloom_bits_per_key",
            default: "10",
            doc: "bloom filter bits per key on every level, 0 for none (fixed when the store is created)",
        },
        OptionDoc {
            name: "cache_bytes",
            default: "32M",
            doc: "block cache capacity",
        },
    ];

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let memtable_bytes: u64 = options.get_or("memtable_bytes", 64 << 20)?;
        let block_bytes: u32 = options.get_or("block_bytes", 4 << 10)?;
        let bloom_bits: f32 = options.get_or("bloom_bits_per_key", 10.0)?;
        let cache_bytes: u64 = options.get_or("cache_bytes", 32 << 20)?;
        if !(1024..=1 << 20).contains(&block_bytes) {
            return Err(Error::InvalidArgument(format!(
                "fjall: block_bytes must be between 1K and 1M, got {block_bytes}"
            )));
        }
        if memtable_bytes == 0 {
            return Err(Error::InvalidArgument(
                "fjall: memtable_bytes must be positive".into(),
            ));
        }
        check_bloom_bits(Self::NAME, bloom_bits)?;
        let filter = if bloom_bits > 0.0 {
            FilterPolicyEntry::Bloom(BloomConstructionPolicy::BitsPerKey(bloom_bits))
        } else {
            FilterPolicyEntry::None
        };

        let (store, files) = open_store::<Self>(dir, options)?;
        let counters = PeerCounters::start();
        let db = Database::builder(&files)
            .cache_size(cache_bytes)
            .journal_compression(CompressionType::None)
            .open()
            .map_err(|e| peer_error(&files, e))?;
        let keyspace = db
            .keyspace(KEYSPACE, || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(memtable_bytes)
                    .data_block_size_policy(BlockSizePolicy::all(block_bytes))
                    .filter_policy(FilterPolicy::all(filter))
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
                    .index_block_compression_policy(CompressionPolicy::all(CompressionType::None))
            })
            .map_err(|e| peer_error(&files, e))?;
        let empty_key = db
            .keyspace(EMPTY_KEYSPACE, KeyspaceCreateOptions::default)
            .map_err(|e| peer_error(&files, e))?;
        Ok(Fjall {
            keyspace,
            empty_key,
            db,
            counters,
            files,
            store,
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        let (keyspace, key_there) = self.slot(key);
        keyspace
            .insert(key_there, value)
            .map_err(|e| peer_error(&self.files, e))?;
        self.counters.count_put(key, value);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.len() > MAX_KEY_LEN {
            // No such key can have been written.
            self.counters.count_get(0);
            return Ok(None);
        }
        let (keyspace, key_there) = self.slot(key);
        let metrics = keyspace.metrics();
        let loads_before = metrics.block_load_io_count();
        let value = keyspace
            .get(key_there)
            .map_err(|e| peer_error(&self.files, e))?;
        let loads = metrics.block_load_io_count().saturating_sub(loads_before);
        self.counters.count_get(loads as u64);
        Ok(value.map(|v| v.to_vec()))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        let (keyspace, key_there) = self.slot(key);
        keyspace
            .remove(key_there)
            .map_err(|e| peer_error(&self.files, e))?;
        self.counters.count_delete(key);
        Ok(())
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        if range.is_empty() {
            return Ok(empty_scan());
        }
        let files = &self.files;
        // The empty key comes first, when the range holds it.
        let empty_key = if range.contains(b"") {
            self.empty_key
                .get(EMPTY_KEY_SLOT)
                .map_err(|e| peer_error(files, e))?
                .map(|value| Ok((Vec::new(), value.to_vec())))
        } else {
            None
        };
        // Every other key sorts after the empty key: a start bound at the empty key bounds
        // nothing, and an end bound at it leaves nothing.
        let start = match &range.start {
            Bound::Included(k) | Bound::Excluded(k) if k.is_empty() => Bound::Unbounded,
            start => start.as_ref().map(Vec::as_slice),
        };
        let others: ScanIter<'_> = match &range.end {
            Bound::Included(k) | Bound::Excluded(k) if k.is_empty() => empty_scan(),
            end => {
                let bounds = (start, end.as_ref().map(Vec::as_slice));
                Box::new(self.keyspace.range::<&[u8], _>(bounds).map(move |guard| {
                    let (key, value) = guard.into_inner().map_err(|e| peer_error(files, e))?;
                    Ok((key.to_vec(), value.to_vec()))
                }))
            }
        };
        Ok(Box::new(empty_key.into_iter().chain(others)))
    }

    fn sync(&self) -> Result<()> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| peer_error(&self.files, e))
    }

    fn compact(&self) -> Result<()> {
        self.keyspace
            .rotate_memtable_and_wait()
            .map_err(|e| peer_error(&self.files, e))?;
        self.keyspace
            .major_compact()
            .map_err(|e| peer_error(&self.files, e))
    }

    fn stats(&self) -> Result<Stats> {
        let mut stats = self.counters.stats(
            self.store.path(),
            self.scan(KeyRange::all())?,
            WriteCounting::ProcessIo,
            ReadCounting::Counted,
        )?;
        stats
            .extra
            .insert("tables".into(), self.keyspace.table_count() as u64);
        stats
            .extra
            .insert("l0_tables".into(), self.keyspace.l0_table_count() as u64);
        Ok(stats)
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}
