//! [`Redb`]: the [redb] embedded database (version 4) as a [`kv_shared::Engine`] (a
//! [`PeerEngine`] over [`RedbStore`]).
//!
//! redb is a copy-on-write B-tree in a single file, with ACID transactions: a commit writes
//! new copies of the pages it changed and then switches the root. It has no write-ahead
//! log, so the cheapest write it offers is a transaction whose commit is not made durable.
//!
//! ## Settings
//!
//! | setting | value | why |
//! |---|---|---|
//! | durability of `put`/`delete` | one write transaction per call, committed with `Durability::None` (`durability=none`, the default): visible at once; its pages may reach the file, but redb reopens at its last durable commit | **a kill of the process loses every write since the last `sync`**: redb has no way to make a commit survive a kill short of a durable (fsynced) commit, which is what the comparison avoids. `durability=immediate` commits every write durably (an fsync each) |
//! | `write` (a batch) | one write transaction holding every op, committed as a `put` is | a transaction is redb's unit of atomicity |
//! | cursors and scans | a read transaction (a snapshot: the B-tree's root when it began), whose ranges a [`RangeCursor`] opens as it needs them | |
//! | `sync` | an empty write transaction committed with `Durability::Immediate`, which makes every earlier commit durable | |
//! | `compact` | a durable commit, then `Database::compact` (moves pages down and shrinks the file), retried for up to 10 s while redb reports a transaction in progress; while a cursor or scan is open, the durable commit only | a non-durable commit keeps its last durable ancestor alive, so compaction needs a durable commit first; an open cursor's read transaction holds pages compaction would move |
//! | bloom filters | none (a B-tree has no use for them) | |
//! | compression | none (redb does not compress) | |
//! | cache | `cache_bytes`, default 1 GiB (redb's default) | |
//!
//! ## Files
//!
//! `DIR/ENGINE` and `DIR/LOCK` (the course's marker and lock), and redb's single file
//! `DIR/redb/data.redb` with one table, `kv`.
//!
//! ## Statistics
//!
//! `disk_bytes_written` is the process's `wchar` growth since open (see [`super`]).
//! `get_disk_reads` is not known: redb does not count its cache misses, so it is 0 with
//! `extra["read_amp_unknown"] = 1`.
//!
//! ## Limits
//!
//! redb takes keys and values up to 3 GiB; the course's limits are checked before calling it.
//!
//! [redb]: https://docs.rs/redb

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use kv_shared::{BoxCursor, Direction, Error, KeyRange, OptionDoc, Options, Result, WriteBatch};
use redb::{
    AccessGuard, CompactionError, Database, Durability, ReadOnlyTable, ReadableDatabase,
    TableDefinition,
};

use super::adapter::{PeerEngine, PeerStore, peer_error};
use super::counters::ReadCounting;
use super::range_cursor::{Bounds, RangeCursor, RangeSource, Walk, directed};

/// redb as a course [`kv_shared::Engine`].
pub type Redb = PeerEngine<RedbStore>;

/// Converts any of redb's errors, keeping corruption apart from I/O.
fn redb_error(path: &Path, error: impl Into<redb::Error>) -> Error {
    match error.into() {
        redb::Error::Corrupted(detail) => Error::corruption(path, 0, detail),
        other => peer_error(path, other),
    }
}

/// The one table the adapter stores everything in.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// A table of byte strings, as a write transaction opens it.
type Table<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

/// How long `compact` retries while redb reports a transaction in progress.
const COMPACT_WAIT: Duration = Duration::from_secs(10);

/// A redb database with one table: the calls [`Redb`] makes.
pub struct RedbStore {
    // Every operation takes the lock shared; `compact` takes it exclusively, because redb
    // compacts through `&mut Database`.
    db: RwLock<Database>,
    /// How each `put`, `delete` and batch commits.
    durability: Durability,
    /// How many cursors (and scans) are open: each holds a read transaction.
    open_snapshots: Arc<AtomicUsize>,
    file: PathBuf,
}

/// The settings redb takes.
pub struct RedbSettings {
    /// `cache_bytes`: the page cache's capacity.
    cache_bytes: usize,
    /// `durability`: how each write commits.
    durability: Durability,
}

impl RedbStore {
    /// Runs `change` on the table in one write transaction committed with `durability`.
    fn transaction(
        &self,
        durability: Durability,
        change: impl FnOnce(&mut Table<'_>) -> std::result::Result<(), redb::StorageError>,
    ) -> Result<()> {
        let error = |e: redb::Error| redb_error(&self.file, e);
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let mut txn = db.begin_write().map_err(|e| error(e.into()))?;
        txn.set_durability(durability)
            .map_err(|e| error(e.into()))?;
        {
            let mut table = txn.open_table(TABLE).map_err(|e| error(e.into()))?;
            change(&mut table).map_err(|e| error(e.into()))?;
        }
        txn.commit().map_err(|e| error(e.into()))
    }

    /// The table as a new read transaction sees it: a snapshot that lives as long as the
    /// table handle, after the lock is released (a cursor's: `compact` leaves the file alone
    /// while one is open).
    fn snapshot(&self) -> Result<ReadOnlyTable<&'static [u8], &'static [u8]>> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let txn = db.begin_read().map_err(|e| redb_error(&self.file, e))?;
        txn.open_table(TABLE).map_err(|e| redb_error(&self.file, e))
    }
}

impl PeerStore for RedbStore {
    const NAME: &'static str = "redb";
    const FORMAT_VERSION: u32 = 4;
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc {
            name: "cache_bytes",
            default: "1G",
            doc: "page cache capacity (redb's cache_size)",
        },
        OptionDoc {
            name: "durability",
            default: "none",
            doc: "commit of each put/delete: `none` (lost on a kill until `sync`) or `immediate` (fsynced)",
        },
    ];
    const READS: ReadCounting = ReadCounting::Unknown;

    type Settings = RedbSettings;

    fn settings(options: &Options) -> Result<RedbSettings> {
        let durability = match options.get_raw("durability").unwrap_or("none") {
            "none" => Durability::None,
            "immediate" => Durability::Immediate,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "redb: durability must be `none` or `immediate`, got `{other}`"
                )));
            }
        };
        Ok(RedbSettings {
            cache_bytes: options.get_or("cache_bytes", 1 << 30)?,
            durability,
        })
    }

    fn open(folder: &Path, settings: RedbSettings) -> Result<Self> {
        std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
        let file = folder.join("data.redb");
        let db = Database::builder()
            .set_cache_size(settings.cache_bytes)
            .create(&file)
            .map_err(|e| redb_error(&file, e))?;
        let redb = RedbStore {
            db: RwLock::new(db),
            durability: settings.durability,
            open_snapshots: Arc::default(),
            file,
        };
        // Creates the table on a new store, durably, so readers always find it.
        redb.transaction(Durability::Immediate, |_| Ok(()))?;
        Ok(redb)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.transaction(self.durability, |table| table.insert(key, value).map(drop))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.transaction(self.durability, |table| table.remove(key).map(drop))
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.transaction(self.durability, |table| {
            for op in batch.iter() {
                match op.value {
                    Some(value) => table.insert(op.key, value).map(drop)?,
                    None => table.remove(op.key).map(drop)?,
                }
            }
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, u64)> {
        // The lock is held until the value is copied out of the transaction's page, so that
        // no compaction runs while the transaction lives.
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let txn = db.begin_read().map_err(|e| redb_error(&self.file, e))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| redb_error(&self.file, e))?;
        let value = table.get(key).map_err(|e| redb_error(&self.file, e))?;
        Ok((value.map(|v| v.value().to_vec()), 0))
    }

    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        // Counted before the transaction begins, so that a `compact` holding the lock
        // either sees it or finishes before it begins.
        let open = OpenSnapshot::count(&self.open_snapshots);
        let view = RedbView {
            table: self.snapshot()?,
            file: self.file.clone(),
            _open: open,
        };
        Ok(Box::new(RangeCursor::within(view, range.clone())))
    }

    fn sync(&self) -> Result<()> {
        self.transaction(Durability::Immediate, |_| Ok(()))
    }

    fn compact(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
            // Each non-durable commit pins its last durable ancestor as a live read
            // transaction until the next durable commit; compaction refuses to run past one.
            let mut txn = db.begin_write().map_err(|e| redb_error(&self.file, e))?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| redb_error(&self.file, e))?;
            txn.commit().map_err(|e| redb_error(&self.file, e))?;
            if self.open_snapshots.load(SeqCst) > 0 {
                // An open cursor reads pages compaction would move, and may stay open as
                // long as its owner likes: the file is compacted by a later call.
                return Ok(());
            }
            match db.compact() {
                Ok(_) => return Ok(()),
                Err(CompactionError::TransactionInProgress) if started.elapsed() < COMPACT_WAIT => {
                    drop(db);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(redb_error(&self.file, e)),
            }
        }
    }
}

/// One open cursor, counted in [`RedbStore`]'s `open_snapshots` while it lives.
struct OpenSnapshot(Arc<AtomicUsize>);

impl OpenSnapshot {
    /// Counts one more open cursor in `open`.
    fn count(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, SeqCst);
        OpenSnapshot(Arc::clone(open))
    }
}

impl Drop for OpenSnapshot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// What a redb cursor reads: the table in one read transaction.
struct RedbView {
    // Field order is drop order: the transaction ends before the cursor stops counting.
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    file: PathBuf,
    _open: OpenSnapshot,
}

/// A key or value redb hands out, borrowed as bytes.
pub struct RedbBytes(AccessGuard<'static, &'static [u8]>);

impl AsRef<[u8]> for RedbBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.value()
    }
}

impl RangeSource for RedbView {
    type Key = RedbBytes;
    type Value = RedbBytes;

    fn walk(&self, bounds: Bounds<'_>, direction: Direction) -> Result<Walk<RedbBytes, RedbBytes>> {
        let range = self
            .table
            .range::<&[u8]>(bounds)
            .map_err(|e| redb_error(&self.file, e))?;
        let file = self.file.clone();
        let pairs = range.map(move |pair| match pair {
            Ok((key, value)) => Ok((RedbBytes(key), RedbBytes(value))),
            Err(e) => Err(redb_error(&file, e)),
        });
        Ok(directed(pairs, direction))
    }
}
