//! [`Fjall`]: the [fjall] LSM tree (version 3) as a [`kv_shared::Engine`] (a
//! [`PeerEngine`] over [`FjallStore`]).
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
//! | `write` (a batch) | one fjall `WriteBatch` over both keyspaces, committed with the same durability: one journal entry, one sequence number | fjall gives every item of a batch the same sequence number, so the adapter passes only the last op on each key; see below for what readers see |
//! | cursors and scans | a fjall `Snapshot` (across both keyspaces), walked by a [`RangeCursor`]: a range of the snapshot opened at each seek and change of direction | a scan walks one range bounded by its own |
//! | `sync` | `Database::persist(PersistMode::SyncAll)`: fsyncs the journal | tables are synced when fjall writes them |
//! | `compact` | rotate the memtable and wait for its flush, then `major_compact` (every table into the last level) | fjall's manual full compaction |
//! | `flush` | rotate the memtable and wait for its flush (`rotate_memtable_and_wait`) | |
//! | `load`, input sorted | fjall's ingestion (`Keyspace::start_ingestion`): tables written straight from the pairs, added in one step; see below | fjall's bulk load |
//! | `load`, input unsorted | batches of 1,000 pairs, then `sync` (the course's default) | fjall's ingestion needs sorted input |
//! | bloom filters | `bloom_bits_per_key` (10) bits per key on every level | fjall's default is a 0.01 % false-positive rate on L0 and 10 bits elsewhere; the stages use one figure |
//! | compression | none, for data blocks, index blocks and the journal | fjall is built without its `lz4` feature |
//! | block cache | `cache_bytes`, default 32 MiB (fjall's default) | |
//! | memtable | `memtable_bytes`, default 64 MiB (fjall's default) | |
//! | data blocks | `block_bytes`, default 4 KiB (fjall's default), 1 KiB to 1 MiB | |
//! | key-value separation | `kv_separation`, default false: the `kv` keyspace is a plain LSM tree. `true` creates it as fjall's blob tree (`KeyspaceCreateOptions::with_kv_separation`): a value of at least `min_blob_size` bytes goes to a blob file, and the tables hold its key and a pointer | WiscKey's idea, as fjall ships it; see below |
//! | separation threshold | `min_blob_size`, default 0: every value is separated, as in WiscKey | fjall's own default (lsm-tree 3.1's `KvSeparationOptions::default()`) is 1 KiB; `min_blob_size=1K` runs that |
//! | blob files | `blob_file_bytes`, default 64 MiB (fjall's default): a blob file is closed at about this size; no compression; garbage collection with fjall's defaults | |
//!
//! Block size, bloom, compression and the three key-value separation settings are fixed
//! when the keyspace is created: fjall stores them with it, so reopening with other values
//! keeps the first ones.
//!
//! ## Key-value separation
//!
//! With `kv_separation=true`, a flush writes each value of at least `min_blob_size` bytes
//! into a blob file (under the keyspace's folder, `DIR/fjall/keyspaces/<id>/blobs/`) and
//! puts the key with a small pointer (the blob file, the offset, the size) into the table;
//! smaller values stay in the table. Compactions then move keys and pointers, not the values:
//! that is where the write amplification goes down. A `get` reads the pointer from the tree,
//! then the value from its blob file: that is the second read it pays. Overwritten and
//! deleted values stay in their blob files as garbage until a compaction rewrites the live
//! values of a blob file that is at least 25 % garbage (among the oldest 25 % of the blob
//! files a compaction's tables point into), and drops a blob file no table points into.
//! A bulk load (fjall's ingestion) separates its values the same way. The blob files are
//! counted like every other file: in `disk_bytes_written` (the process's `wchar`), in
//! `disk_bytes` and `file_count`; `extra["blob_files"]` counts them, and
//! `extra["fragmented_blob_bytes"]` is the garbage fjall knows of in them. Read
//! amplification is then unknown (see Statistics).
//!
//! ## Files
//!
//! `DIR/ENGINE` and `DIR/LOCK` (the course's marker and lock), and fjall's own files under
//! `DIR/fjall/`: its journals, its lock and version files, and one folder per keyspace. The
//! adapter uses two keyspaces: `kv` for every key but the empty one, and `empty_key` (see
//! Limits).
//!
//! ## Batches and readers
//!
//! A fjall batch takes one sequence number, inserts its items into the memtable one by one,
//! then publishes the number, and readers (gets, snapshots) read below the published
//! number. But fjall 3.1 also publishes a new number each time a flush or a compaction
//! installs a new version of its tables, and that can happen while a batch is inserting
//! its items: a reader that begins then sees part of the batch. So the adapter commits
//! each batch holding a lock exclusively, which `get` and the creation of a snapshot hold
//! shared: no read begins while a batch is half applied. (A snapshot taken before the batch
//! reads below the batch's number whatever is published later, so it need not wait.)
//!
//! ## Bulk loads
//!
//! fjall 3 ingests sorted pairs: `Keyspace::start_ingestion` returns an `Ingestion` whose
//! `write` takes each pair in strictly ascending key order and streams it into new tables
//! (fjall's table writer, the one its flushes use, cutting a table every 64 MiB), bypassing
//! the journal and the memtable; `finish` flushes the memtable, then adds every new table to
//! the tree as one new run in level 0, under one new sequence number, and wakes the
//! compaction. Tables and the tree's version file are fsynced as fjall writes them, so the
//! ingested pairs are durable when `finish` returns; a failure before that adds nothing.
//!
//! fjall panics on a key out of order or equal to the one before it; the adapter's
//! [`SortedPairs`] refuses the first and collapses the second to the last value before
//! fjall sees them. The empty key, which fjall refuses, goes to its own keyspace by a normal
//! `insert` after the ingestion (so a load holding it is not atomic), and the load ends
//! with `sync` (the journal fsynced) for it. The report's `files_added` is the growth of the
//! keyspace's table count just after `finish`: exact unless the compaction it wakes has
//! already merged some. An input in any order goes in by batches of 1,000 pairs, then
//! `sync`.
//!
//! ## Statistics
//!
//! `disk_bytes_written` is the process's `wchar` growth since open (see [`super`]).
//! `get_disk_reads` is the number of blocks (data, index, filter) that fjall's `get`s
//! loaded from table files rather than from its block cache, from lsm-tree's metrics (the
//! `metrics` feature): the count's growth across each `get`, so a scan or compaction running
//! in another thread at that instant is counted too. With `kv_separation` those metrics
//! still count the table blocks a `get` loads but not the read of the value from its blob
//! file, the very read key-value separation adds; rather than a read amplification that
//! leaves it out, the adapter then says it is unknown (`extra["read_amp_unknown"] = 1`, the
//! report's `n/a`).
//!
//! ## Limits
//!
//! fjall (its lsm-tree) takes keys of 1 to 65535 bytes and values up to 2^32 bytes: the
//! course's limits (65535 and 16 MiB) fit, and the adapter checks them before calling fjall.
//! **fjall refuses the empty key** (lsm-tree panics on it), which the course allows. The
//! adapter keeps the empty key's value apart, under a fixed key in a second keyspace,
//! `empty_key`, and puts it first in any walk whose range holds the empty key. (Prefixing
//! every key with a byte would not do: a 65535-byte key would become one byte too long.)
//! The second keyspace shares the journal, so its writes are exactly as durable.
//!
//! [fjall]: https://docs.rs/fjall

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use fjall::config::{
    BlockSizePolicy, BloomConstructionPolicy, CompressionPolicy, FilterPolicy, FilterPolicyEntry,
};
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode,
    Readable, Slice, Snapshot,
};
use kv_shared::{
    BoxCursor, Direction, Error, KeyRange, LoadReport, OptionDoc, Options, Result, WriteBatch,
};

use super::adapter::{LsmSettings, PeerEngine, PeerFigures, PeerStore, SortedPairs, peer_error};
use super::counters::ReadCounting;
use super::range_cursor::{Bounds, RangeCursor, RangeSource, Walk, directed};

/// fjall as a course [`kv_shared::Engine`].
pub type Fjall = PeerEngine<FjallStore>;

/// The keyspace holding every key but the empty one.
const KEYSPACE: &str = "kv";
/// The keyspace holding the empty key's value, under [`EMPTY_KEY_SLOT`].
const EMPTY_KEYSPACE: &str = "empty_key";
/// Where the empty key's value lives in [`EMPTY_KEYSPACE`].
const EMPTY_KEY_SLOT: &[u8] = b"empty";

/// A fjall database: the calls [`Fjall`] makes.
pub struct FjallStore {
    // Field order is drop order: the keyspace handles, then the database (whose drop stops
    // fjall's threads and releases its lock).
    keyspace: Keyspace,
    empty_key: Keyspace,
    db: Database,
    /// Held exclusively while a batch commits, shared by `get`s and by new snapshots, so
    /// that no read begins while a batch is half applied (see the module documentation).
    batch_gate: RwLock<()>,
    files: Arc<Path>,
}

impl FjallStore {
    /// Where `key` lives: the empty key in its own keyspace (fjall refuses it), every other
    /// key as itself in the main one.
    fn slot<'k>(&self, key: &'k [u8]) -> (&Keyspace, &'k [u8]) {
        if key.is_empty() {
            (&self.empty_key, EMPTY_KEY_SLOT)
        } else {
            (&self.keyspace, key)
        }
    }

    /// Converts one of fjall's errors.
    fn error(&self, error: fjall::Error) -> Error {
        peer_error(&self.files, error)
    }
}

impl PeerStore for FjallStore {
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
        OptionDoc {
            name: "kv_separation",
            default: "false",
            doc: "true: values of at least min_blob_size bytes go to blob files, the tables hold keys and pointers (fixed when the store is created)",
        },
        OptionDoc {
            name: "min_blob_size",
            default: "0",
            doc: "with kv_separation, the smallest value that is separated; 0: every value (fjall's own default is 1K; fixed when the store is created)",
        },
        OptionDoc {
            name: "blob_file_bytes",
            default: "64M",
            doc: "with kv_separation, the size at which a blob file is closed (fixed when the store is created)",
        },
    ];
    const READS: ReadCounting = ReadCounting::Counted;

    type Settings = FjallSettings;

    fn settings(options: &Options) -> Result<FjallSettings> {
        let lsm = LsmSettings::parse(Self::NAME, options)?;
        let block_bytes = lsm.block_bytes;
        if !(1024..=1 << 20).contains(&block_bytes) {
            return Err(Error::InvalidArgument(format!(
                "fjall: block_bytes must be between 1K and 1M, got {block_bytes}"
            )));
        }
        Ok(FjallSettings {
            lsm,
            kv_separation: options.get_or("kv_separation", false)?,
            min_blob_size: options.get_or("min_blob_size", 0)?,
            blob_file_bytes: options.get_at_least("blob_file_bytes", 64 << 20, 1)?,
        })
    }

    fn open(files: &Path, settings: FjallSettings) -> Result<Self> {
        let separation = settings.kv_separation.then(|| {
            KvSeparationOptions::default()
                .compression(CompressionType::None)
                .separation_threshold(settings.min_blob_size)
                .file_target_size(settings.blob_file_bytes)
        });
        let settings = settings.lsm;
        let filter = if settings.bloom_bits > 0.0 {
            let bits = settings.bloom_bits as f32;
            FilterPolicyEntry::Bloom(BloomConstructionPolicy::BitsPerKey(bits))
        } else {
            FilterPolicyEntry::None
        };
        let error = |e| peer_error(files, e);
        let db = Database::builder(files)
            .cache_size(settings.cache_bytes)
            .journal_compression(CompressionType::None)
            .open()
            .map_err(error)?;
        let keyspace = db
            .keyspace(KEYSPACE, || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(settings.memtable_bytes)
                    .data_block_size_policy(BlockSizePolicy::all(settings.block_bytes))
                    .filter_policy(FilterPolicy::all(filter))
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
                    .index_block_compression_policy(CompressionPolicy::all(CompressionType::None))
                    .with_kv_separation(separation)
            })
            .map_err(error)?;
        let empty_key = db
            .keyspace(EMPTY_KEYSPACE, KeyspaceCreateOptions::default)
            .map_err(error)?;
        Ok(FjallStore {
            keyspace,
            empty_key,
            db,
            batch_gate: RwLock::new(()),
            files: Arc::from(files),
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let (keyspace, key) = self.slot(key);
        keyspace.insert(key, value).map_err(|e| self.error(e))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        let (keyspace, key) = self.slot(key);
        keyspace.remove(key).map_err(|e| self.error(e))
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        // Every item of a fjall batch gets the batch's one sequence number, so two items on
        // one key would be two versions fjall cannot order: only the last op on a key goes in.
        let last: std::collections::BTreeMap<&[u8], Option<&[u8]>> =
            batch.iter().map(|op| (op.key, op.value)).collect();
        let mut fjall_batch = self.db.batch();
        for (key, value) in last {
            let (keyspace, key) = self.slot(key);
            match value {
                Some(value) => fjall_batch.insert(keyspace, key, value),
                None => fjall_batch.remove(keyspace, key),
            }
        }
        let _gate = self
            .batch_gate
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        fjall_batch.commit().map_err(|e| self.error(e))
    }

    fn get(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, u64)> {
        let (keyspace, key) = self.slot(key);
        let _gate = self
            .batch_gate
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let metrics = keyspace.metrics();
        let loads_before = metrics.block_load_io_count();
        let value = keyspace.get(key).map_err(|e| self.error(e))?;
        let loads = metrics.block_load_io_count().saturating_sub(loads_before);
        Ok((value.map(|v| v.to_vec()), loads as u64))
    }

    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        let gate = self
            .batch_gate
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let snapshot = self.db.snapshot();
        drop(gate);
        let empty_value = snapshot
            .get(&self.empty_key, EMPTY_KEY_SLOT)
            .map_err(|e| self.error(e))?;
        let view = FjallView {
            snapshot,
            keyspace: self.keyspace.clone(),
            empty_value,
            files: self.files.clone(),
        };
        Ok(Box::new(RangeCursor::within(view, range.clone())))
    }

    fn sync(&self) -> Result<()> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.error(e))
    }

    fn compact(&self) -> Result<()> {
        self.keyspace
            .rotate_memtable_and_wait()
            .map_err(|e| self.error(e))?;
        self.keyspace.major_compact().map_err(|e| self.error(e))
    }

    fn flush(&self) -> Result<bool> {
        self.keyspace
            .rotate_memtable_and_wait()
            .map_err(|e| self.error(e))?;
        Ok(true)
    }

    fn load_sorted(&self, pairs: &mut SortedPairs<'_>) -> Result<LoadReport> {
        let tables_before = self.keyspace.table_count();
        let mut ingestion = self.keyspace.start_ingestion().map_err(|e| self.error(e))?;
        let mut empty_key_value = None;
        for pair in pairs.by_ref() {
            let (key, value) = pair?;
            if key.is_empty() {
                // It sorts first, so it comes (at most once) before any other key.
                empty_key_value = Some(value);
            } else {
                ingestion.write(key, value).map_err(|e| self.error(e))?;
            }
        }
        ingestion.finish().map_err(|e| self.error(e))?;
        let tables = self.keyspace.table_count().saturating_sub(tables_before) as u64;
        if let Some(value) = empty_key_value {
            self.put(&[], &value)?;
        }
        self.sync()?;
        let method = format!("fjall ingestion: {tables} tables added to level 0, then sync");
        Ok(pairs.report(tables, method))
    }

    fn figures(&self) -> PeerFigures {
        let mut extra = vec![
            ("tables", self.keyspace.table_count() as u64),
            ("l0_tables", self.keyspace.l0_table_count() as u64),
        ];
        if self.keyspace.is_kv_separated() {
            extra.push(("blob_files", self.keyspace.blob_file_count() as u64));
            extra.push((
                "fragmented_blob_bytes",
                self.keyspace.fragmented_blob_bytes(),
            ));
            // Its metrics see the table blocks a get loads, not the blob it reads next.
            extra.push(("read_amp_unknown", 1));
        }
        PeerFigures {
            extra,
            ..PeerFigures::default()
        }
    }
}

/// fjall's settings: the ones it shares with RocksDB, and its key-value separation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FjallSettings {
    /// Memtable, block, bloom filter and cache sizes.
    pub lsm: LsmSettings,
    /// `kv_separation`: the `kv` keyspace is a blob tree.
    pub kv_separation: bool,
    /// `min_blob_size`: the smallest value that goes to a blob file.
    pub min_blob_size: u32,
    /// `blob_file_bytes`: the target size of a blob file.
    pub blob_file_bytes: u64,
}

/// What a fjall cursor reads: one snapshot of both keyspaces, the empty key's value in it
/// read once.
struct FjallView {
    snapshot: Snapshot,
    keyspace: Keyspace,
    empty_value: Option<Slice>,
    files: Arc<Path>,
}

impl RangeSource for FjallView {
    type Key = Slice;
    type Value = Slice;

    fn walk(&self, (start, end): Bounds<'_>, direction: Direction) -> Result<Walk<Slice, Slice>> {
        // The empty key sorts before every other key: it is in the range when the start lets
        // it in and the end is past it.
        let start_lets_it_in = matches!(start, Bound::Unbounded | Bound::Included([]));
        let end_is_past_it = !matches!(end, Bound::Excluded([]));
        let empty = match &self.empty_value {
            Some(value) if start_lets_it_in && end_is_past_it => {
                Some(Ok((Slice::from(&b""[..]), value.clone())))
            }
            _ => None,
        };
        // Every other key lies after the empty key: a start bound at it bounds nothing, and
        // an end bound at it leaves nothing.
        let start = match start {
            Bound::Included([]) | Bound::Excluded([]) => Bound::Unbounded,
            start => start,
        };
        let others: Walk<Slice, Slice> = match end {
            Bound::Included([]) | Bound::Excluded([]) => Box::new(std::iter::empty()),
            end => {
                let files = self.files.clone();
                let range = self
                    .snapshot
                    .range::<&[u8], _>(&self.keyspace, (start, end));
                let pairs =
                    range.map(move |guard| guard.into_inner().map_err(|e| peer_error(&files, e)));
                directed(pairs, direction)
            }
        };
        Ok(match direction {
            Direction::Forward => Box::new(empty.into_iter().chain(others)),
            Direction::Reverse => Box::new(others.chain(empty)),
        })
    }
}
