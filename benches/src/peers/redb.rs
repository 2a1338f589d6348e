//! [`Redb`]: the [redb] embedded database (version 4) as a [`kv_shared::Engine`].
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
//! | `sync` | an empty write transaction committed with `Durability::Immediate`, which makes every earlier commit durable | |
//! | `compact` | a durable commit, then `Database::compact` (moves pages down and shrinks the file); waits up to 10 s for open scans to end | a non-durable commit keeps its last durable ancestor alive, so compaction needs a durable commit first |
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
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use kv_shared::{
    Engine, Error, KeyRange, MAX_KEY_LEN, OptionDoc, Options, Result, ScanIter, Stats, StoreDir,
    check_key, check_key_value,
};
use redb::{CompactionError, Database, Durability, ReadableDatabase, TableDefinition};

use super::counters::{PeerCounters, ReadCounting, WriteCounting};
use super::scan_bounds::{borrowed, empty_scan};
use super::{open_store, peer_error};

/// Converts any of redb's errors, keeping corruption apart from I/O.
fn redb_error(path: &Path, error: impl Into<redb::Error>) -> Error {
    match error.into() {
        redb::Error::Corrupted(detail) => Error::corruption(path, 0, detail),
        other => peer_error(path, other),
    }
}

/// The one table the adapter stores everything in.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// How long `compact` waits for open scans (read transactions) to finish.
const COMPACT_WAIT: Duration = Duration::from_secs(10);

/// A redb database with one table behind the course's [`Engine`] contract.
pub struct Redb {
    // Every operation takes the lock shared; `compact` takes it exclusively, because redb
    // compacts through `&mut Database`. Field order is drop order: the database before the
    // store directory's lock.
    db: RwLock<Database>,
    /// How each `put` and `delete` commits.
    durability: Durability,
    counters: PeerCounters,
    file: PathBuf,
    store: StoreDir,
}

impl Redb {
    /// Runs `change` on the table in one write transaction committed with `durability`.
    fn write(
        &self,
        durability: Durability,
        change: impl FnOnce(&mut redb::Table<'_, &'static [u8], &'static [u8]>) -> Result<()>,
    ) -> Result<()> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let mut txn = db.begin_write().map_err(|e| redb_error(&self.file, e))?;
        txn.set_durability(durability)
            .map_err(|e| redb_error(&self.file, e))?;
        {
            let mut table = txn
                .open_table(TABLE)
                .map_err(|e| redb_error(&self.file, e))?;
            change(&mut table)?;
        }
        txn.commit().map_err(|e| redb_error(&self.file, e))
    }
}

impl Engine for Redb {
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

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let cache_bytes: usize = options.get_or("cache_bytes", 1 << 30)?;
        let durability = match options.get_raw("durability").unwrap_or("none") {
            "none" => Durability::None,
            "immediate" => Durability::Immediate,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "redb: durability must be `none` or `immediate`, got `{other}`"
                )));
            }
        };
        let (store, folder) = open_store::<Self>(dir, options)?;
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        let file = folder.join("data.redb");
        let counters = PeerCounters::start();
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&file)
            .map_err(|e| redb_error(&file, e))?;
        let redb = Redb {
            db: RwLock::new(db),
            durability,
            counters,
            file,
            store,
        };
        // Creates the table on a new store, durably, so readers always find it.
        redb.write(Durability::Immediate, |_| Ok(()))?;
        Ok(redb)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        self.write(self.durability, |table| {
            table
                .insert(key, value)
                .map_err(|e| redb_error(&self.file, e))?;
            Ok(())
        })?;
        self.counters.count_put(key, value);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.counters.count_get(0);
        if key.len() > MAX_KEY_LEN {
            return Ok(None);
        }
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let txn = db.begin_read().map_err(|e| redb_error(&self.file, e))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| redb_error(&self.file, e))?;
        let value = table.get(key).map_err(|e| redb_error(&self.file, e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.write(self.durability, |table| {
            table.remove(key).map_err(|e| redb_error(&self.file, e))?;
            Ok(())
        })?;
        self.counters.count_delete(key);
        Ok(())
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        if range.is_empty() {
            return Ok(empty_scan());
        }
        let bounds = borrowed(&range);
        // The range keeps its read transaction's snapshot alive by itself, so the lock is
        // released here and a `compact` waits only for the scan, not for this call.
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        let txn = db.begin_read().map_err(|e| redb_error(&self.file, e))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| redb_error(&self.file, e))?;
        let pairs = table
            .range::<&[u8]>(bounds)
            .map_err(|e| redb_error(&self.file, e))?;
        let file = &self.file;
        Ok(Box::new(pairs.map(move |pair| {
            let (key, value) = pair.map_err(|e| redb_error(file, e))?;
            Ok((key.value().to_vec(), value.value().to_vec()))
        })))
    }

    fn sync(&self) -> Result<()> {
        self.write(Durability::Immediate, |_| Ok(()))
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

    fn stats(&self) -> Result<Stats> {
        self.counters.stats(
            self.store.path(),
            self.scan(KeyRange::all())?,
            WriteCounting::ProcessIo,
            ReadCounting::Unknown,
        )
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}
