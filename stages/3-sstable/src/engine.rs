//! [`SstableStore`]: the engine of stage 3, a memtable, a WAL and one level of tables.
//!
//! ## The write path
//!
//! `put` and `delete` append one [`crate::wal_entry`] to the current [`Wal`], then apply it
//! to the [`Memtable`]. When the memtable's key and value bytes reach `memtable_bytes`, the
//! same call **flushes** it:
//!
//! 1. the current WAL is synced; a new WAL is created (synced) and a new, empty memtable
//!    takes the writes from now on; the full one is **frozen** (readers still see it). The
//!    first sync is what lets `sync` look at the current WAL only: any older WAL whose data
//!    is not in a table yet was synced when it was replaced, or when it was replayed;
//! 2. the frozen memtable is written as a new table under a temporary name, synced,
//!    renamed, and the directory synced ([`crate::table_builder::write_table`]);
//! 3. the table joins the list readers use, and the frozen memtable leaves it;
//! 4. only then are the WALs that fed the memtable deleted.
//!
//! The flush runs in the writer's thread, holding the write lock: other writers wait for
//! it (readers do not). Stage 4 moves flushing off the write path. If the flush fails (a
//! full disk), the write that started it has still been logged and applied; it returns the
//! flush's error so the caller learns the disk is in trouble, the frozen memtable stays
//! where readers see it, and the next write tries the flush again.
//!
//! ## Which WALs a table replaces: the recovery rule
//!
//! Files are numbered from one counter ([`crate::file_names`]). A memtable starts with the
//! WAL it was created with; when it is frozen, a new WAL numbered `n` takes over, and the
//! memtable's range ends at `n - 1`. The table it becomes records that range,
//! `first_wal ..= last_wal`, in its [`crate::footer`]: every WAL numbered in it is redundant
//! once the table exists. The range covers *every* number up to the next WAL, not only the
//! WALs that held records (the WAL an open started, replaced before it took a write, holds
//! none). A failed `Wal::create` leaves its number for the next flush to create again, so
//! what it left behind is replaced, never stranded before a WAL that holds writes. A
//! compaction output records the union of its inputs' ranges. On open:
//!
//! * `*.tmp` files are unfinished tables: removed.
//! * A table whose WAL range lies inside the range of a table with a **higher file number**
//!   is an input of a compaction that finished: removed. (The output was renamed into place
//!   before any input was deleted.)
//! * The remaining tables must have disjoint ranges (else `Corruption`); ordered by range,
//!   they go from oldest to newest.
//! * A WAL whose number lies inside a table's range was flushed: removed, **not replayed**
//!   (a crash between step 2 and step 4 of a flush leaves exactly this). Replaying it would
//!   put its old values in the memtable, above any newer table that overwrote them.
//! * The other WALs are all newer than every table (else `Corruption`). They are replayed,
//!   in number order, into one memtable. Only the **last one written** (the newest holding
//!   a record) can end in a torn write, which is cut off: each older one was synced before a
//!   newer one took a write, so damage at its end is `Corruption`, not a torn tail
//!   ([`Wal::replay_sealed`]; taken for one, it would lose an older write and keep the newer
//!   ones). A WAL that held no record is removed. A new WAL takes the writes after open.
//!
//! A crash at any point of a flush or compaction therefore loses nothing the durability
//! contract promises (a write that returned, after a kill; a write before a `sync` that
//! returned, after a power loss) and shows no key twice (the tests reproduce each state).
//!
//! ## Reads
//!
//! `get` looks in the memtable, then the frozen one, then the tables newest to oldest; the
//! first entry found wins and a tombstone means "absent". Each table whose key range covers
//! the key costs one block read (binary search), so a missing key costs up to one read per
//! table: the read amplification this stage leaves to stage 4. `scan` is a lazy
//! [`MergeIter`] over all of them, newest version winning, tombstones dropped.
//!
//! ## Compaction
//!
//! One level only: tables pile up, one per flush. `compact` merges **every** table into
//! one (streaming through the merge, so memory stays bounded), dropping shadowed versions
//! and tombstones; that is safe because no older table is left for a tombstone to hide.
//! The output is installed in place of its inputs at once; flushes that finished during
//! the compaction stay in front of it, as they are newer. The inputs' files are removed
//! when the last reader holding them lets go ([`Table::mark_obsolete`]).
//!
//! ## Concurrency
//!
//! * `writer` (a mutex) serializes puts, deletes and flushes, so WAL order is memtable order.
//! * `state` (a read-write lock around an `Arc<State>`) is the snapshot readers use: the
//!   memtable, the frozen memtable and the tables. A reader clones the `Arc` and lets go of
//!   the lock at once; a change builds a new `State` and swaps it in.
//! * `compaction` (a mutex) lets one compaction run at a time, alongside writers and readers.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use kv_shared::{
    Engine, Error, Fs, KeyRange, OptionDoc, Options, Result, ScanIter, Stats, StoreDir, check_key,
    check_key_value,
};

use crate::entry::Entry;
use crate::file_names::{self, FileKind, table_path, wal_path};
use crate::memtable::Memtable;
use crate::merge_iter::{MergeIter, Source};
use crate::table::{Search, Table};
use crate::table_builder::write_table;
use crate::wal::{Record, WAL_KIND, Wal, WalReplay};
use crate::wal_entry;

/// Default for `memtable_bytes`.
pub const DEFAULT_MEMTABLE_BYTES: u64 = 4 << 20;
/// Default for `block_bytes`.
pub const DEFAULT_BLOCK_BYTES: usize = 4096;

/// The engine's settings, parsed from [`Options`].
#[derive(Debug, Clone, Copy)]
struct Config {
    memtable_bytes: u64,
    block_bytes: usize,
    search: Search,
}

/// What only the writer touches.
#[derive(Debug)]
struct Writer {
    wal: Wal,
    wal_number: u64,
    mem: Arc<Memtable>,
    /// A memtable frozen by a flush that has not finished (it failed, or is running).
    frozen: Option<Frozen>,
    /// The number of a WAL whose creation failed, for the next flush to use again.
    spare_wal: Option<u64>,
}

#[derive(Debug)]
struct Frozen {
    mem: Arc<Memtable>,
    last_wal: u64,
}

/// What readers see: everything a read must look at, newest first.
#[derive(Debug, Clone)]
struct State {
    mem: Arc<Memtable>,
    frozen: Option<Arc<Memtable>>,
    /// Newest first.
    tables: Vec<Arc<Table>>,
}

#[derive(Debug, Default)]
struct Counters {
    user_bytes_written: AtomicU64,
    gets: AtomicU64,
    get_disk_reads: AtomicU64,
    flushes: AtomicU64,
    flush_bytes_written: AtomicU64,
    compactions: AtomicU64,
    compaction_bytes_written: AtomicU64,
    wal_records_replayed: AtomicU64,
    wal_torn_tail_bytes: AtomicU64,
}

/// Stage 3: a WAL, a sorted memtable, and a pile of SSTables merged by `compact`.
#[derive(Debug)]
pub struct SstableStore {
    fs: Fs,
    dir: StoreDir,
    config: Config,
    writer: Mutex<Writer>,
    state: RwLock<Arc<State>>,
    compaction: Mutex<()>,
    next_number: AtomicU64,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What [`recover`] rebuilt from the directory.
struct Recovered {
    tables: Vec<Arc<Table>>,
    mem: Memtable,
    next_number: u64,
    records: u64,
    torn_bytes: u64,
}

/// Reads the directory back: the recovery rule in the module documentation.
fn recover(fs: &Fs, dir: &Path) -> Result<Recovered> {
    let mut tables = Vec::new();
    let mut wals = Vec::new();
    let mut max_number = 0;
    for name in fs.list(dir)? {
        match file_names::parse(&name) {
            FileKind::Temp => fs.remove(&dir.join(&name))?,
            FileKind::Table(n) => {
                tables.push(Table::open(fs, &table_path(dir, n), n)?);
                max_number = max_number.max(n);
            }
            FileKind::Wal(n) => {
                wals.push(n);
                max_number = max_number.max(n);
            }
            FileKind::Other => {}
        }
    }

    // Inputs of a finished compaction: their WAL range lies inside a newer file's.
    let ranges: Vec<(u64, u64, u64)> = tables
        .iter()
        .map(|t| (t.number(), t.footer().first_wal, t.footer().last_wal))
        .collect();
    let (replaced, mut live): (Vec<Table>, Vec<Table>) = tables.into_iter().partition(|t| {
        let (first, last) = (t.footer().first_wal, t.footer().last_wal);
        ranges
            .iter()
            .any(|&(number, f, l)| number > t.number() && f <= first && last <= l)
    });
    for table in replaced {
        let path = table.path().to_path_buf();
        drop(table);
        fs.remove(&path)?;
    }
    live.sort_by_key(|t| t.footer().last_wal);
    for pair in live.windows(2) {
        let (older, newer) = (pair[0].footer(), pair[1].footer());
        if older.last_wal >= newer.first_wal {
            return Err(Error::corruption(
                pair[1].path(),
                0,
                format!(
                    "holds WALs {}..={}, overlapping {} (WALs {}..={})",
                    newer.first_wal,
                    newer.last_wal,
                    pair[0].path().display(),
                    older.first_wal,
                    older.last_wal
                ),
            ));
        }
    }
    let newest_flushed = live.last().map(|t| t.footer().last_wal);
    max_number = max_number.max(newest_flushed.unwrap_or(0));

    wals.sort_unstable();
    let mut to_replay = Vec::new();
    for n in wals {
        let path = wal_path(dir, n);
        let flushed = live
            .iter()
            .any(|t| t.footer().first_wal <= n && n <= t.footer().last_wal);
        if flushed {
            fs.remove(&path)?;
        } else if let Some(last) = newest_flushed.filter(|&last| n < last) {
            return Err(Error::corruption(
                &path,
                0,
                format!("WAL {n} is in no table, yet older than the tables' WALs (up to {last})"),
            ));
        } else {
            to_replay.push(n);
        }
    }

    let next_number = max_number + 1;
    let mem = Memtable::new(to_replay.first().copied().unwrap_or(next_number));
    // Only the last WAL written can end in a torn write: each older one was synced before
    // a newer one took its first write. Find it, newest first, one record each.
    let mut last_written = None;
    for (i, &n) in to_replay.iter().enumerate().rev() {
        if Wal::holds_records(fs, &wal_path(dir, n), WAL_KIND)? {
            last_written = Some(i);
            break;
        }
    }
    let (mut records, mut torn_bytes) = (0, 0);
    for (i, &n) in to_replay.iter().enumerate() {
        let path = wal_path(dir, n);
        let mut apply = |record: Record<'_>| {
            let (key, entry) = wal_entry::decode(record.payload)
                .map_err(|e| e.into_corruption(&path, record.payload_offset()))?;
            mem.insert(key, entry);
            Ok(())
        };
        let replay = if last_written.is_some_and(|last| i < last) {
            // Sealed: damage anywhere, its end included, is corruption; the file is kept
            // as it is. (It may hold no record: the WAL an open started, replaced by a
            // `flush` before any write.)
            WalReplay {
                records: Wal::replay_sealed(fs, &path, WAL_KIND, &mut apply)?,
                torn_tail_bytes: 0,
            }
        } else {
            Wal::replay(fs, &path, WAL_KIND, &mut apply)?
        };
        records += replay.records;
        torn_bytes += replay.torn_tail_bytes;
        if replay.records == 0 {
            fs.remove(&path)?;
        }
    }
    Ok(Recovered {
        tables: live.into_iter().rev().map(Arc::new).collect(), // newest first
        mem,
        next_number,
        records,
        torn_bytes,
    })
}

impl SstableStore {
    fn snapshot(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps in a new reader state, made by `change` from a copy of the current one.
    fn install(&self, change: impl FnOnce(&mut State)) {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut next = State::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }

    fn take_number(&self) -> u64 {
        self.next_number.fetch_add(1, Relaxed)
    }

    /// Appends to the WAL, applies to the memtable, flushes when it is full.
    fn write(&self, key: &[u8], entry: Entry, payload: &[u8]) -> Result<()> {
        let mut w = lock(&self.writer);
        w.wal.append(payload)?;
        let user_bytes = (key.len() + entry.value_len()) as u64;
        w.mem.insert(key.to_vec(), entry);
        self.counters
            .user_bytes_written
            .fetch_add(user_bytes, Relaxed);
        if w.frozen.is_some() || w.mem.bytes() >= self.config.memtable_bytes {
            self.flush_locked(&mut w)?;
        }
        Ok(())
    }

    /// Writes the memtable out as a table now (if it holds anything), whatever its size.
    /// Used by tests and benchmarks to build a given number of tables.
    ///
    /// # Errors
    /// [`Error::Io`]; the data stays in the WAL and memtable, and the next write retries.
    pub fn flush(&self) -> Result<()> {
        let mut w = lock(&self.writer);
        self.flush_locked(&mut w)
    }

    /// The flush, steps 1 to 4 of the module documentation. A failure leaves the frozen
    /// memtable in place (readers still see it) and the next write tries again.
    fn flush_locked(&self, w: &mut Writer) -> Result<()> {
        if w.frozen.is_none() {
            if w.mem.is_empty() {
                return Ok(());
            }
            // The frozen memtable's records must stay durable-on-`sync` while its table is
            // being written: `sync` only syncs the current WAL, so sync this one now.
            w.wal.sync()?;
            // A number whose `Wal::create` failed is used again, replacing what the failed
            // attempt left, so a record-less WAL never sits before one that holds writes
            // (recovery would take it for a sealed WAL cut short).
            let number = w.spare_wal.take().unwrap_or_else(|| self.take_number());
            let wal = Wal::create(&self.fs, &wal_path(self.dir.path(), number), WAL_KIND)
                .inspect_err(|_| w.spare_wal = Some(number))?;
            let full = std::mem::replace(&mut w.mem, Arc::new(Memtable::new(number)));
            w.frozen = Some(Frozen {
                mem: full.clone(),
                // Everything numbered before the new WAL.
                last_wal: number - 1,
            });
            w.wal = wal;
            w.wal_number = number;
            let mem = w.mem.clone();
            self.install(|s| {
                s.mem = mem;
                s.frozen = Some(full);
            });
        }
        let frozen = w.frozen.as_ref().expect("frozen above");
        let number = self.take_number();
        let path = table_path(self.dir.path(), number);
        let summary = write_table(
            &self.fs,
            &path,
            self.config.block_bytes,
            frozen.mem.first_wal(),
            frozen.last_wal,
            frozen.mem.iter(&KeyRange::all()),
        )?;
        let table = Arc::new(Table::open(&self.fs, &path, number)?);
        self.install(|s| {
            s.tables.insert(0, table);
            s.frozen = None;
        });
        let frozen = w.frozen.take().expect("frozen above");
        self.counters.flushes.fetch_add(1, Relaxed);
        self.counters
            .flush_bytes_written
            .fetch_add(summary.file_bytes, Relaxed);
        self.remove_wals(frozen.mem.first_wal(), frozen.last_wal)
    }

    /// Removes the WALs numbered `first ..= last`: their data is in a table now.
    fn remove_wals(&self, first: u64, last: u64) -> Result<()> {
        for name in self.fs.list(self.dir.path())? {
            if let FileKind::Wal(n) = file_names::parse(&name)
                && (first..=last).contains(&n)
            {
                self.fs.remove_if_exists(&self.dir.join(&name))?;
            }
        }
        Ok(())
    }

    /// The merge of everything in `state` over `range`, tombstones included.
    fn merge(&self, state: &State, range: &KeyRange) -> MergeIter<'static> {
        let mut sources: Vec<Source<'static>> = vec![Box::new(state.mem.iter(range))];
        if let Some(frozen) = &state.frozen {
            sources.push(Box::new(frozen.iter(range)));
        }
        for table in &state.tables {
            sources.push(Box::new(table.iter(range, self.config.search)));
        }
        MergeIter::new(sources)
    }

    /// Number of tables a read may have to look at.
    pub fn table_count(&self) -> usize {
        self.snapshot().tables.len()
    }
}

impl Engine for SstableStore {
    const NAME: &'static str = "sstable";
    const FORMAT_VERSION: u32 = 1;
    const OPTIONS: &'static [OptionDoc] = &[
        OptionDoc {
            name: "memtable_bytes",
            default: "4M",
            doc: "flush the memtable to a new table once its keys and values reach this size",
        },
        OptionDoc {
            name: "block_bytes",
            default: "4096",
            doc: "close a table's data block once its entries reach this size",
        },
        OptionDoc {
            name: "search",
            default: "binary",
            doc: "how a lookup finds its block: `binary` (sparse index) or `linear` (walk the blocks from the start)",
        },
    ];

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let config = Config {
            memtable_bytes: options.get_or("memtable_bytes", DEFAULT_MEMTABLE_BYTES)?,
            block_bytes: options.get_or("block_bytes", DEFAULT_BLOCK_BYTES)?,
            search: options.get_or("search", Search::Binary)?,
        };
        if config.memtable_bytes == 0 || config.block_bytes == 0 {
            return Err(Error::InvalidArgument(
                "memtable_bytes and block_bytes must be at least 1".to_string(),
            ));
        }
        let fs = Fs::new(options.file_system());
        let dir = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let recovered = recover(&fs, dir.path())?;
        let wal_number = recovered.next_number;
        let wal = Wal::create(&fs, &wal_path(dir.path(), wal_number), WAL_KIND)?;
        let mem = Arc::new(recovered.mem);
        let state = State {
            mem: mem.clone(),
            frozen: None,
            tables: recovered.tables,
        };
        let counters = Counters::default();
        counters
            .wal_records_replayed
            .store(recovered.records, Relaxed);
        counters
            .wal_torn_tail_bytes
            .store(recovered.torn_bytes, Relaxed);
        Ok(SstableStore {
            fs,
            dir,
            config,
            writer: Mutex::new(Writer {
                wal,
                wal_number,
                mem,
                frozen: None,
                spare_wal: None,
            }),
            state: RwLock::new(Arc::new(state)),
            compaction: Mutex::new(()),
            next_number: AtomicU64::new(wal_number + 1),
            counters,
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        self.write(
            key,
            Entry::Value(value.to_vec()),
            &wal_entry::encode_put(key, value),
        )
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.counters.gets.fetch_add(1, Relaxed);
        let state = self.snapshot();
        for mem in std::iter::once(&state.mem).chain(state.frozen.as_ref()) {
            if let Some(entry) = mem.get(key) {
                return Ok(entry.into_value());
            }
        }
        let mut reads = 0;
        let mut found = Ok(None);
        for table in &state.tables {
            found = table.get(key, self.config.search, &mut reads);
            if !matches!(found, Ok(None)) {
                break;
            }
        }
        self.counters.get_disk_reads.fetch_add(reads, Relaxed);
        Ok(found?.and_then(Entry::into_value))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.write(key, Entry::Tombstone, &wal_entry::encode_delete(key))
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        if range.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let merge = self.merge(&self.snapshot(), &range);
        Ok(Box::new(merge.filter_map(|item| match item {
            Ok((key, Entry::Value(value))) => Some(Ok((key, value))),
            Ok((_, Entry::Tombstone)) => None,
            Err(e) => Some(Err(e)),
        })))
    }

    fn sync(&self) -> Result<()> {
        lock(&self.writer).wal.sync()
    }

    fn compact(&self) -> Result<()> {
        let _one_at_a_time = lock(&self.compaction);
        let inputs = self.snapshot().tables.clone();
        let worth_it =
            inputs.len() > 1 || inputs.first().is_some_and(|t| t.footer().tombstones > 0);
        if !worth_it {
            return Ok(());
        }
        let first_wal = inputs
            .iter()
            .map(|t| t.footer().first_wal)
            .min()
            .unwrap_or(0);
        let last_wal = inputs
            .iter()
            .map(|t| t.footer().last_wal)
            .max()
            .unwrap_or(0);
        let sources: Vec<Source<'static>> = inputs
            .iter()
            .map(|t| Box::new(t.iter(&KeyRange::all(), Search::Binary)) as Source<'static>)
            .collect();
        let live =
            MergeIter::new(sources).filter(|item| !matches!(item, Ok((_, Entry::Tombstone))));
        let number = self.take_number();
        let path = table_path(self.dir.path(), number);
        let summary = write_table(
            &self.fs,
            &path,
            self.config.block_bytes,
            first_wal,
            last_wal,
            live,
        )?;
        let output = Arc::new(Table::open(&self.fs, &path, number)?);
        self.install(|s| {
            s.tables
                .retain(|t| !inputs.iter().any(|i| Arc::ptr_eq(i, t)));
            s.tables.push(output);
        });
        for input in &inputs {
            input.mark_obsolete();
        }
        self.counters.compactions.fetch_add(1, Relaxed);
        self.counters
            .compaction_bytes_written
            .fetch_add(summary.file_bytes, Relaxed);
        Ok(())
    }

    /// Counts live keys and bytes by merging everything: this costs a full scan.
    fn stats(&self) -> Result<Stats> {
        let state = self.snapshot();
        let (mut live_keys, mut live_data_bytes) = (0, 0);
        for item in self.merge(&state, &KeyRange::all()) {
            if let (key, Entry::Value(value)) = item? {
                live_keys += 1;
                live_data_bytes += (key.len() + value.len()) as u64;
            }
        }
        let (disk_bytes, file_count) = self.fs.dir_usage(self.dir.path())?;
        let c = &self.counters;
        let memtable_bytes = state.mem.bytes() + state.frozen.as_ref().map_or(0, |m| m.bytes());
        let extra = [
            ("tables", state.tables.len() as u64),
            (
                "table_entries",
                state.tables.iter().map(|t| t.footer().entries).sum(),
            ),
            (
                "table_tombstones",
                state.tables.iter().map(|t| t.footer().tombstones).sum(),
            ),
            ("memtable_bytes", memtable_bytes),
            ("flushes", c.flushes.load(Relaxed)),
            ("flush_bytes_written", c.flush_bytes_written.load(Relaxed)),
            ("compactions", c.compactions.load(Relaxed)),
            (
                "compaction_bytes_written",
                c.compaction_bytes_written.load(Relaxed),
            ),
            ("wal_bytes", lock(&self.writer).wal.size()),
            ("wal_records_replayed", c.wal_records_replayed.load(Relaxed)),
            ("wal_torn_tail_bytes", c.wal_torn_tail_bytes.load(Relaxed)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(Stats {
            user_bytes_written: c.user_bytes_written.load(Relaxed),
            disk_bytes_written: self.fs.counters().bytes_written(),
            live_keys,
            live_data_bytes,
            disk_bytes,
            file_count,
            gets: c.gets.load(Relaxed),
            get_disk_reads: c.get_disk_reads.load(Relaxed),
            extra,
        })
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}
