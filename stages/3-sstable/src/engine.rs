//! [`SstableStore`]: the engine of stage 3, a memtable, a WAL and one level of tables.
//!
//! ## The write path
//!
//! `put`, `delete` and `write` (a batch) append **one** [`crate::wal_entry`] record to the
//! current [`Wal`], then apply it to the [`Memtable`]: a batch under one hold of the
//! memtable's lock, so a reader sees all of it or none, and after a crash its one record is
//! replayed whole or dropped whole. When the memtable's key and value bytes reach
//! `memtable_bytes`, the same call **flushes** it:
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
//! Which WALs a table replaces, and how an open puts the directory back together, is in
//! [`crate::recovery`].
//!
//! With the option `sync_writes`, the record is also fsynced before it reaches the memtable,
//! so an acknowledged write survives a power loss and not only a kill of the process. Every
//! WAL's directory entry is durable from its creation ([`Wal::create`] syncs the directory),
//! so the fsync of the file is all a write needs. A failed fsync fails the [`Wal`]: every
//! later write and `sync` fails until the store is reopened.
//!
//! ## Reads
//!
//! `get` looks in the memtable, then the frozen one, then the tables newest to oldest; the
//! first entry found wins and a tombstone means "absent". Each table whose key range covers
//! the key costs one block read (binary search), so a missing key costs up to one read per
//! table: the read amplification this stage leaves to stage 4.
//!
//! `cursor` merges a snapshot of all of them ([`crate::cursor`]): the memtables' maps as
//! they are at that moment and the tables, held by `Arc`, so later writes, flushes and
//! compactions change nothing it shows. `scan` and `scan_rev` walk that cursor.
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
//! ## Bulk loads
//!
//! `load` writes its pairs straight into new tables and adds them, newest of all, in one
//! atomic step: [`crate::ingest`].
//!
//! ## Concurrency
//!
//! * `writer` (a mutex) serializes puts, deletes, batches, flushes and loads, so WAL order is
//!   memtable order.
//! * `state` (a read-write lock around an `Arc<State>`) is the snapshot readers use: the
//!   memtable, the frozen memtable and the tables. A reader clones the `Arc` and lets go of
//!   the lock at once; a change builds a new `State` and swaps it in.
//! * `compaction` (a mutex) lets one compaction run at a time, alongside writers and readers.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use kv_shared::bulk::{LoadInput, LoadOrder, LoadReport};
use kv_shared::cursor::BoxCursor;
use kv_shared::{
    Engine, Fs, OptionDoc, Options, Result, Stats, StoreDir, WriteBatch, check_key, check_key_value,
};

use crate::cursor::{BoxEntryCursor, EntryCursor, LiveCursor, entries};
use crate::entry::Entry;
use crate::file_names::{self, FileKind, table_path, wal_path};
use crate::memtable::Memtable;
use crate::merging_cursor::MergingCursor;
use crate::options::{OPTIONS, SstableOptions};
use crate::recovery::recover;
use crate::table::Table;
use crate::table_builder::write_table;
use crate::wal::{WAL_KIND, Wal};
use crate::{unpoisoned, wal_entry};

/// What only the writer touches.
#[derive(Debug)]
pub(crate) struct Writer {
    /// The current WAL.
    pub(crate) wal: Wal,
    /// The memtable the writes go to.
    pub(crate) mem: Arc<Memtable>,
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

impl State {
    /// The merge of everything, as it is now, tombstones included.
    fn merge(&self) -> MergingCursor {
        let mut sources: Vec<BoxEntryCursor> = vec![Box::new(self.mem.cursor())];
        if let Some(frozen) = &self.frozen {
            sources.push(Box::new(frozen.cursor()));
        }
        for table in &self.tables {
            sources.push(Box::new(table.cursor()));
        }
        MergingCursor::new(sources)
    }
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
    loads: AtomicU64,
    load_bytes_written: AtomicU64,
    wal_records_replayed: AtomicU64,
    wal_torn_tail_bytes: AtomicU64,
}

/// Stage 3: a WAL, a sorted memtable, and a pile of SSTables merged by `compact`.
#[derive(Debug)]
pub struct SstableStore {
    pub(crate) fs: Fs,
    pub(crate) dir: StoreDir,
    pub(crate) options: SstableOptions,
    pub(crate) writer: Mutex<Writer>,
    state: RwLock<Arc<State>>,
    compaction: Mutex<()>,
    next_number: AtomicU64,
    counters: Counters,
}

impl SstableStore {
    fn snapshot(&self) -> Arc<State> {
        unpoisoned(self.state.read()).clone()
    }

    /// Swaps in a new reader state, made by `change` from a copy of the current one.
    fn install(&self, change: impl FnOnce(&mut State)) {
        let mut guard = unpoisoned(self.state.write());
        let mut next = State::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }

    pub(crate) fn take_number(&self) -> u64 {
        self.next_number.fetch_add(1, Relaxed)
    }

    /// Appends one WAL record whose payload is `parts`, applies the change to the memtable
    /// with `apply`, and flushes when the memtable is full. `user_bytes` are the key and
    /// value bytes the change carries.
    fn commit(
        &self,
        parts: &[&[u8]],
        user_bytes: u64,
        apply: impl FnOnce(&Memtable),
    ) -> Result<()> {
        let mut w = unpoisoned(self.writer.lock());
        w.wal.append_parts(parts)?;
        if self.options.sync_writes {
            w.wal.sync()?;
        }
        apply(&w.mem);
        self.counters
            .user_bytes_written
            .fetch_add(user_bytes, Relaxed);
        if w.frozen.is_some() || w.mem.bytes() >= self.options.memtable_bytes {
            self.flush_locked(&mut w)?;
        }
        Ok(())
    }

    /// Writes the memtable out as a table now (if it holds anything), whatever its size.
    /// Used by tests and benchmarks to build a given number of tables.
    ///
    /// # Errors
    /// [`kv_shared::Error::Io`]; the data stays in the WAL and memtable, and the next write
    /// retries.
    pub fn flush(&self) -> Result<()> {
        let mut w = unpoisoned(self.writer.lock());
        self.flush_locked(&mut w)
    }

    // Exercise 3.5: write the frozen memtable as a table. Read: chapter 3, "Design".
    // Tests: recovery::a_failed_flush_is_retried_by_the_next_write
    // Tests: recovery::crash_between_table_rename_and_wal_deletion
    /// The flush, steps 1 to 4 of the module documentation. A failure leaves the frozen
    /// memtable in place (readers still see it) and the next write tries again.
    fn flush_locked(&self, w: &mut Writer) -> Result<()> {
        if w.frozen.is_none() {
            if w.mem.is_empty() {
                return Ok(());
            }
            self.freeze(w)?;
        }
        let frozen = w.frozen.as_ref().expect("frozen above");
        let number = self.take_number();
        let path = table_path(self.dir.path(), number);
        let snapshot = frozen.mem.snapshot();
        let source = snapshot.iter().map(|(k, e)| Ok((k.clone(), e.clone())));
        let (first_wal, last_wal) = (frozen.mem.first_wal(), frozen.last_wal);
        let summary = write_table(
            &self.fs,
            &path,
            self.options.block_bytes,
            first_wal,
            last_wal,
            source,
        )?;
        let table = Arc::new(Table::open(&self.fs, &path, number)?);
        self.install(|s| {
            s.tables.insert(0, table);
            s.frozen = None;
        });
        w.frozen = None;
        self.counters.flushes.fetch_add(1, Relaxed);
        self.counters
            .flush_bytes_written
            .fetch_add(summary.file_bytes, Relaxed);
        self.remove_wals(first_wal, last_wal)
    }

    /// Flushes until nothing is left in memory: the frozen memtable of a failed flush, then
    /// the memtable. True when there was anything to flush. (A bulk load starts with this,
    /// [`crate::ingest`].)
    pub(crate) fn flush_all_locked(&self, w: &mut Writer) -> Result<bool> {
        let held = w.frozen.is_some() || !w.mem.is_empty();
        while w.frozen.is_some() || !w.mem.is_empty() {
            self.flush_locked(w)?;
        }
        Ok(held)
    }

    /// Step 1 of a flush: syncs the current WAL, starts a new one with a new memtable, and
    /// freezes the full memtable where readers still see it.
    fn freeze(&self, w: &mut Writer) -> Result<()> {
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
        let mem = w.mem.clone();
        self.install(|s| {
            s.mem = mem;
            s.frozen = Some(full);
        });
        Ok(())
    }

    /// Removes the WALs numbered `first ..= last`: their data is in a table now.
    pub(crate) fn remove_wals(&self, first: u64, last: u64) -> Result<()> {
        for name in self.fs.list(self.dir.path())? {
            if let FileKind::Wal(n) = file_names::parse(&name)
                && (first..=last).contains(&n)
            {
                self.fs.remove_if_exists(&self.dir.join(&name))?;
            }
        }
        Ok(())
    }

    /// The last step of a bulk load ([`crate::ingest`]): makes `wal` the current WAL,
    /// with a new, empty memtable whose data starts at WAL `first_wal`, and puts `tables`
    /// (newest first) in front of every other table, all at once for readers. A WAL number
    /// left over by a failed creation lies below `wal`'s, inside the load's numbers: it is
    /// no longer of use.
    pub(crate) fn switch_after_load(
        &self,
        w: &mut Writer,
        wal: Wal,
        first_wal: u64,
        tables: Vec<Arc<Table>>,
    ) {
        let mem = Arc::new(Memtable::new(first_wal));
        w.wal = wal;
        w.mem = mem.clone();
        w.spare_wal = None;
        self.install(|s| {
            s.mem = mem;
            s.tables.splice(0..0, tables);
        });
    }

    /// Counts a finished bulk load: `user_bytes` of keys and values, in tables of
    /// `file_bytes`.
    pub(crate) fn count_load(&self, user_bytes: u64, file_bytes: u64) {
        let c = &self.counters;
        c.user_bytes_written.fetch_add(user_bytes, Relaxed);
        c.loads.fetch_add(1, Relaxed);
        c.load_bytes_written.fetch_add(file_bytes, Relaxed);
    }

    /// Number of tables a read may have to look at.
    pub fn table_count(&self) -> usize {
        self.snapshot().tables.len()
    }

    /// Merges every table into one, without their shadowed versions and tombstones, and
    /// installs it in their place. Returns the output's file size, or `None` when there
    /// was nothing worth doing.
    fn compact_tables(&self, inputs: &[Arc<Table>]) -> Result<Option<u64>> {
        let worth_it =
            inputs.len() > 1 || inputs.first().is_some_and(|t| t.footer().tombstones > 0);
        if !worth_it {
            return Ok(None);
        }
        let first_wal = inputs.iter().map(|t| t.footer().first_wal).min();
        let last_wal = inputs.iter().map(|t| t.footer().last_wal).max();
        let sources: Vec<BoxEntryCursor> = inputs
            .iter()
            .map(|t| Box::new(t.cursor()) as BoxEntryCursor)
            .collect();
        let live = entries(MergingCursor::new(sources))
            .filter(|item| !matches!(item, Ok((_, Entry::Tombstone))));
        let number = self.take_number();
        let path = table_path(self.dir.path(), number);
        let summary = write_table(
            &self.fs,
            &path,
            self.options.block_bytes,
            first_wal.unwrap_or(0),
            last_wal.unwrap_or(0),
            live,
        )?;
        let output = Arc::new(Table::open(&self.fs, &path, number)?);
        self.install(|s| {
            s.tables
                .retain(|t| !inputs.iter().any(|i| Arc::ptr_eq(i, t)));
            s.tables.push(output);
        });
        for input in inputs {
            input.mark_obsolete();
        }
        Ok(Some(summary.file_bytes))
    }

    /// The counters beside the standard ones in [`Stats`], for `stats`.
    fn extra_stats(&self, state: &State) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let memtable_bytes = state.mem.bytes() + state.frozen.as_ref().map_or(0, |m| m.bytes());
        let footers = || state.tables.iter().map(|t| t.footer());
        vec![
            ("tables", state.tables.len() as u64),
            ("table_entries", footers().map(|f| f.entries).sum()),
            ("table_tombstones", footers().map(|f| f.tombstones).sum()),
            ("memtable_bytes", memtable_bytes),
            ("flushes", c.flushes.load(Relaxed)),
            ("flush_bytes_written", c.flush_bytes_written.load(Relaxed)),
            ("compactions", c.compactions.load(Relaxed)),
            (
                "compaction_bytes_written",
                c.compaction_bytes_written.load(Relaxed),
            ),
            ("loads", c.loads.load(Relaxed)),
            ("load_bytes_written", c.load_bytes_written.load(Relaxed)),
            ("wal_bytes", unpoisoned(self.writer.lock()).wal.size()),
            ("wal_records_replayed", c.wal_records_replayed.load(Relaxed)),
            ("wal_torn_tail_bytes", c.wal_torn_tail_bytes.load(Relaxed)),
        ]
    }
}

impl Engine for SstableStore {
    const NAME: &'static str = "sstable";
    const FORMAT_VERSION: u32 = 1;
    const OPTIONS: &'static [OptionDoc] = OPTIONS;

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        let parsed = SstableOptions::parse(options)?;
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
            options: parsed,
            writer: Mutex::new(Writer {
                wal,
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
        let header = wal_entry::single_header(wal_entry::KIND_PUT, key);
        let user_bytes = (key.len() + value.len()) as u64;
        self.commit(&[&header, key, value], user_bytes, |mem| {
            mem.insert(key, Some(value));
        })
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
            found = table.get(key, self.options.search, &mut reads);
            if !matches!(found, Ok(None)) {
                break;
            }
        }
        self.counters.get_disk_reads.fetch_add(reads, Relaxed);
        Ok(found?.and_then(Entry::into_value))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        let header = wal_entry::single_header(wal_entry::KIND_DELETE, key);
        self.commit(&[&header, key], key.len() as u64, |mem| {
            mem.insert(key, None);
        })
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let header = wal_entry::batch_header(batch)?;
        let user_bytes = batch
            .iter()
            .map(|op| (op.key.len() + op.value.map_or(0, <[u8]>::len)) as u64)
            .sum();
        self.commit(&[&header, batch.encoded_ops()], user_bytes, |mem| {
            mem.apply(batch.iter());
        })
    }

    fn cursor(&self) -> Result<BoxCursor<'_>> {
        Ok(Box::new(LiveCursor::new(self.snapshot().merge())))
    }

    /// Writes the pairs straight into new tables and adds them to the store, newer than
    /// everything in it, in one atomic step ([`crate::ingest`]).
    fn load(&self, input: LoadInput<'_>, order: LoadOrder) -> Result<LoadReport> {
        self.ingest(input, order)
    }

    fn sync(&self) -> Result<()> {
        unpoisoned(self.writer.lock()).wal.sync()
    }

    fn compact(&self) -> Result<()> {
        let _one_at_a_time = unpoisoned(self.compaction.lock());
        let inputs = self.snapshot().tables.clone();
        if let Some(file_bytes) = self.compact_tables(&inputs)? {
            self.counters.compactions.fetch_add(1, Relaxed);
            self.counters
                .compaction_bytes_written
                .fetch_add(file_bytes, Relaxed);
        }
        Ok(())
    }

    /// The inherent [`SstableStore::flush`]: the memtable becomes a table now.
    fn flush(&self) -> Result<bool> {
        SstableStore::flush(self)?;
        Ok(true)
    }

    /// Counts live keys and bytes by walking a cursor over everything: this costs a full
    /// scan.
    fn stats(&self) -> Result<Stats> {
        let state = self.snapshot();
        let (mut live_keys, mut live_data_bytes) = (0, 0);
        let mut cursor = state.merge();
        cursor.seek_to_first()?;
        while cursor.valid() {
            if let Some(value) = cursor.value() {
                live_keys += 1;
                live_data_bytes += (cursor.key().len() + value.len()) as u64;
            }
            cursor.next()?;
        }
        let (disk_bytes, file_count) = self.fs.dir_usage(self.dir.path())?;
        let c = &self.counters;
        let extra = self
            .extra_stats(&state)
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
