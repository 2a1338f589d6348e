//! [`LsmTree`]: the engine, its write path, its readers and its two background threads.
//!
//! ## Write path
//!
//! Every write is a batch ([`WriteBatch`]; `put` and `delete` are batches of one), and
//! concurrent writers commit together ([`crate::group_commit`]): the leader of a write group
//! takes the writer lock, makes room once (`make_room`: slow down or stop while L0 has too
//! many tables, freeze a full memtable), gives the group's ops the next sequence numbers,
//! appends the whole group to the WAL as one record (one write call: it now survives a
//! kill; with `sync_writes`, one fsync), inserts every op into the active memtable, and only
//! then publishes the last sequence number, which makes the whole group visible to readers
//! at once.
//!
//! A tree opened with [`LsmTree::open_with_barrier`] runs its owner's [`WalBarrier`] before
//! every sync of the WAL (`sync_log`: the `sync_writes` fsync, `sync`, the freeze, the
//! background syncer), so that stage 5 can make its value log durable before any pointer
//! into it is ([`crate::barrier`]).
//!
//! ## Readers
//!
//! A read takes, under a short lock, a consistent [`Snapshot`]: the last published sequence
//! number, and a [`ReadView`] of the active and immutable memtables and the current
//! [`Version`]. The view is rebuilt whenever one of them changes and shared by every reader
//! until then, so taking a snapshot allocates nothing. A `get` asks the memtables newest
//! first, then the tables (their blocks through the tree's [`BlockCache`]); a cursor merges
//! all of them ([`crate::cursor`]). Every table in the version holds only sequence numbers at
//! or below the snapshot (tables are made from frozen memtables, whose writes were published
//! before they froze), so nothing a flush or compaction does later can change what the
//! snapshot sees, and the `Arc`s it holds keep its tables on disk.
//!
//! ## Background work
//!
//! Two threads flush memtables and run compactions (`engine/background.rs`); both install
//! what they make through the manifest.
//!
//! **When background work fails.** A flush or a compaction that fails (an I/O error while
//! writing a table, a manifest append that fails) or panics, a failed background WAL sync,
//! and a failed WAL barrier set the tree's *background error*, as LevelDB's `bg_error_`
//! and RocksDB's read-only mode do. The first failure is kept; from then on:
//!
//! * every write (`put`, `delete`, `write`, `flush`, `compact`, `full_compaction`) returns
//!   [`Error::Background`] naming the job (`"flush"` or `"compaction"`) and what happened;
//!   a writer already waiting for background progress (a full memtable whose predecessor
//!   is not flushed yet, L0 at `l0_stop`) is woken and gets it too;
//! * `sync` still makes the WAL durable, then reports the error, so a caller can make its
//!   acknowledged writes survive a power loss before it reopens;
//! * reads keep working: they use the memtables and the version they already had;
//! * both background threads stop; `stats` counts the failure (`background_failures`),
//!   and [`LsmTree::background_error`] returns it.
//!
//! Stopping writes is the safe answer even to an error that might be transient. A failed
//! job installed nothing: its partial tables are not in the manifest, the tables it read
//! stay valid, and a memtable whose flush failed keeps its WAL. But carrying on would mean
//! retrying against a disk that just failed, and appending to a manifest whose last append
//! may be half written. Reopening the store is the way back: recovery replays every WAL
//! that is not in a table yet and deletes the tables no manifest names, so every write
//! acknowledged before the failure is there.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kv_shared::{
    BoxCursor, Cursor, Engine, Error, Fs, OptionDoc, Options, Result, Stats, StoreDir, WriteBatch,
};
use sstable::wal::MAX_PAYLOAD;

use crate::barrier::{self, WalBarrier};
use crate::block_cache::{BlockCache, BlockCacheStats};
use crate::compaction;
use crate::counters::Counters;
use crate::cursor::snapshot::{ReadView, Snapshot};
use crate::file_names;
use crate::group_commit::{Group, WriteQueue};
use crate::lock::{lock, wait_timeout};
use crate::manifest::Manifest;
use crate::memtable::Memtable;
use crate::options::{LsmOptions, OPTIONS};
use crate::recovery::{self, Recovered};
use crate::seek_compaction::SeekAlarm;
use crate::version::{LevelSummary, NUM_LEVELS, Version};
use crate::wal::{self, Wal};
use crate::wal_syncer::{SyncMark, WalSyncer};

mod background;
mod load;

/// Immutable memtables allowed to wait for their flush before writers wait.
const MAX_IMMUTABLE: usize = 1;
/// How long a stopped writer sleeps between checks (it is also woken by progress).
const STALL_WAIT: Duration = Duration::from_millis(100);

/// The stage 4 engine: a leveled LSM tree.
pub struct LsmTree {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What the engine's threads share.
struct Inner {
    dir: PathBuf,
    fs: Fs,
    options: LsmOptions,
    counters: Counters,
    /// Data blocks recently read, shared by every table.
    cache: Arc<BlockCache>,
    next_file: AtomicU64,
    /// Last sequence number whose write is in a memtable: what new readers see.
    visible_seq: AtomicU64,
    state: Mutex<State>,
    /// Wakes the background threads (new immutable memtable, new version, shutdown).
    work: Condvar,
    /// Wakes waiting writers and `compact` (a flush or compaction finished).
    progress: Condvar,
    /// Writers waiting to commit, gathered into groups.
    queue: WriteQueue,
    writer: Mutex<Writer>,
    /// Held while appending an edit to the manifest and installing its version.
    manifest: Mutex<Manifest>,
    /// The background WAL syncer's mailbox ([`crate::wal_syncer`]).
    wal_syncer: WalSyncer,
    /// The WAL the next freeze starts, made ahead by the syncer thread.
    next_wal: Mutex<NextWal>,
    /// The owner's call before every WAL sync ([`crate::barrier`]); `None` from
    /// [`Engine::open`].
    barrier: Option<WalBarrier>,
    /// Held for the whole of a bulk load: loads share the scratch directory
    /// ([`crate::ingest`]).
    loading: Mutex<()>,
    stop: AtomicBool,
    /// What the last open found: `(WAL records replayed, orphan tables deleted, obsolete
    /// WALs deleted)`.
    recovery: (u64, u64, u64),
    _store: StoreDir,
}

/// The tree's in-memory shape, swapped under one short lock.
struct State {
    mem: Arc<Memtable>,
    /// Frozen memtables waiting to be flushed, oldest first.
    imm: Vec<Arc<Memtable>>,
    version: Arc<Version>,
    compacting: bool,
    /// Per level, the largest key of its last compaction (round-robin start).
    pointers: Vec<Vec<u8>>,
    /// The first background failure, `(job, what happened)`; writes and `compact` report it
    /// from then on.
    bg_error: Option<(&'static str, String)>,
    /// Background jobs that failed since open (the first one is `bg_error`).
    bg_failures: u64,
    /// `mem`, `imm` and `version` as readers take them (see [`Inner::snapshot`]).
    view: Arc<ReadView>,
    /// Rung by readers when a table's allowed seeks are spent; `None` without seek
    /// compaction ([`crate::seek_compaction`]).
    seek_alarm: Option<Arc<SeekAlarm>>,
}

impl State {
    /// Rebuilds the readers' view after `mem`, `imm` or `version` changed, so that it does
    /// not keep a replaced memtable or version (and its obsolete tables) alive.
    fn refresh_view(&mut self) {
        self.view = Arc::new(ReadView::new(
            &self.mem,
            &self.imm,
            &self.version,
            self.seek_alarm.as_ref(),
        ));
    }

    /// The first background failure, as the error every later write reports.
    fn background_error(&self) -> Option<Error> {
        let (task, detail) = self.bg_error.as_ref()?;
        Some(Error::background(task, detail.clone()))
    }

    /// `Err` with the first background failure, if there was one.
    fn check_background(&self) -> Result<()> {
        self.background_error().map_or(Ok(()), Err)
    }
}

/// The writer's side: the WAL and the sequence counter.
struct Writer {
    /// Shared with the background WAL syncer ([`crate::wal_syncer`]).
    wal: Arc<Wal>,
    /// When to ask the syncer for the next background sync of `wal`.
    sync_mark: SyncMark,
    mem: Arc<Memtable>,
    last_seq: u64,
}

/// The WAL the next freeze starts ([`crate::wal_syncer`] tells why it is made ahead).
#[derive(Debug, Default)]
enum NextWal {
    /// None made yet: the freeze takes a new number and creates it.
    #[default]
    Missing,
    /// Created, header and directory entry synced, no record yet.
    Ready(u64, Wal),
    /// A number taken for it, the file not created yet: by the freeze before the syncer
    /// thread makes it, so that file numbers follow the writer's order, not the threads'
    /// timing (a flush started by the same freeze numbers its table after it); or after a
    /// failed creation, so that whoever creates it next uses the number again, replacing
    /// what the failed attempt left, and a record-less WAL is never followed by one that
    /// holds writes.
    Numbered(u64),
}

impl Inner {
    /// The engine's shared state, from what recovery found.
    fn new(
        dir: &Path,
        fs: Fs,
        options: LsmOptions,
        cache: Arc<BlockCache>,
        store: StoreDir,
        r: Recovered,
        barrier: Option<WalBarrier>,
    ) -> Inner {
        let mem = Arc::new(Memtable::new(r.wal_number, options.memtable_bytes));
        let sync_mark = SyncMark::new(r.wal.size(), options.wal_bytes_per_sync);
        let version = Arc::new(r.version);
        let seek_alarm = options
            .seek_compaction
            .then(|| Arc::new(SeekAlarm::default()));
        let view = Arc::new(ReadView::new(&mem, &[], &version, seek_alarm.as_ref()));
        Inner {
            dir: dir.to_path_buf(),
            fs,
            options,
            counters: Counters::default(),
            cache,
            next_file: AtomicU64::new(r.next_file),
            visible_seq: AtomicU64::new(r.last_seq),
            state: Mutex::new(State {
                mem: mem.clone(),
                imm: Vec::new(),
                version,
                compacting: false,
                pointers: vec![Vec::new(); NUM_LEVELS],
                bg_error: None,
                bg_failures: 0,
                view,
                seek_alarm,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
            queue: WriteQueue::new(),
            writer: Mutex::new(Writer {
                sync_mark,
                wal: Arc::new(r.wal),
                mem,
                last_seq: r.last_seq,
            }),
            manifest: Mutex::new(r.manifest),
            wal_syncer: WalSyncer::default(),
            next_wal: Mutex::new(NextWal::Missing),
            barrier,
            loading: Mutex::new(()),
            stop: AtomicBool::new(false),
            recovery: (r.replayed, r.orphans_deleted, r.stale_wals_deleted),
            _store: store,
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Waits until woken by progress, or for [`STALL_WAIT`].
    fn wait_for_progress<'a>(&self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        wait_timeout(&self.progress, st, STALL_WAIT)
    }

    /// The sequence number and view a read uses: one `Arc` clone, no allocation. Whoever
    /// changes `mem`, `imm` or `version` calls [`State::refresh_view`]; should a change
    /// forget to, the view is rebuilt here, so a read never sees a stale one.
    fn snapshot(&self) -> Snapshot {
        let mut st = self.lock_state();
        if !st.view.shows(&st.mem, &st.imm, &st.version) {
            st.refresh_view();
        }
        // A table ran out of allowed seeks: the compaction thread waits under this lock, so
        // the wake-up cannot slip in between its check and its wait.
        if st.seek_alarm.as_ref().is_some_and(|alarm| alarm.take()) {
            self.work.notify_all();
        }
        Snapshot {
            seq: self.visible_seq.load(SeqCst),
            view: st.view.clone(),
        }
    }

    /// Before a write: slows down once past `l0_slowdown`, waits while the memtable is full
    /// and cannot be frozen yet (a flush pending, or L0 at `l0_stop`), and freezes a full
    /// memtable. Counts the time spent as stall time.
    fn make_room(&self, w: &mut Writer, force: bool) -> Result<()> {
        let began = Instant::now();
        let mut stalled = false;
        let mut slowed = false;
        let mut st = self.lock_state();
        loop {
            st.check_background()?;
            let l0 = st.version.level(0).len();
            let full = w.mem.approximate_bytes() >= self.options.memtable_bytes
                || (force && !w.mem.is_empty());
            if !force && !slowed && l0 >= self.options.l0_slowdown {
                drop(st);
                std::thread::sleep(Duration::from_millis(1));
                slowed = true;
                stalled = true;
                st = self.lock_state();
            } else if !full {
                break;
            } else if st.imm.len() >= MAX_IMMUTABLE || l0 >= self.options.l0_stop {
                stalled = true;
                self.work.notify_all();
                st = self.wait_for_progress(st);
            } else {
                drop(st);
                self.freeze(w)?;
                break;
            }
        }
        if stalled && !force {
            Counters::add(
                &self.counters.stall_micros,
                began.elapsed().as_micros() as u64,
            );
            Counters::add(&self.counters.stalled_writes, 1);
        }
        Ok(())
    }

    /// Freezes the active memtable: syncs its WAL, starts the next WAL and a new memtable,
    /// and hands the old one to the flush thread.
    ///
    /// The sync comes first, so every WAL but the last one written is whole: recovery calls
    /// damage at the end of an older WAL corruption, not a torn write. If the new WAL cannot
    /// be created, writes go on in the old one ([`NextWal::Numbered`]).
    fn freeze(&self, w: &mut Writer) -> Result<()> {
        self.sync_log(&w.wal)?;
        let (number, wal) = self.take_next_wal()?;
        let mem = Arc::new(Memtable::new(number, self.options.memtable_bytes));
        w.sync_mark = SyncMark::new(wal.size(), self.options.wal_bytes_per_sync);
        w.wal = Arc::new(wal);
        let old = std::mem::replace(&mut w.mem, mem.clone());
        self.number_next_wal();
        let mut st = self.lock_state();
        st.imm.push(old);
        st.mem = mem;
        st.refresh_view();
        self.work.notify_all();
        drop(st);
        self.wal_syncer.request_next_wal();
        Ok(())
    }

    /// The next WAL: the one made ahead, or one created now.
    fn take_next_wal(&self) -> Result<(u64, Wal)> {
        let mut next = lock(&self.next_wal);
        match std::mem::take(&mut *next) {
            NextWal::Ready(number, wal) => Ok((number, wal)),
            NextWal::Numbered(number) => self.create_wal(&mut next, number),
            NextWal::Missing => self.create_wal(&mut next, self.next_file.fetch_add(1, SeqCst)),
        }
    }

    /// Creates WAL `number`; on failure leaves [`NextWal::Numbered`] in `next`.
    fn create_wal(&self, next: &mut NextWal, number: u64) -> Result<(u64, Wal)> {
        let path = self.dir.join(file_names::wal(number));
        match Wal::create(&self.fs, &path, wal::KIND) {
            Ok(wal) => Ok((number, wal)),
            Err(e) => {
                *next = NextWal::Numbered(number);
                Err(e)
            }
        }
    }

    /// Takes the next WAL's number now, in the writer's order, unless it has one.
    fn number_next_wal(&self) {
        let mut next = lock(&self.next_wal);
        if let NextWal::Missing = *next {
            *next = NextWal::Numbered(self.next_file.fetch_add(1, SeqCst));
        }
    }

    /// The syncer thread's answer to [`WalSyncer::request_next_wal`]: makes the next WAL
    /// unless one is ready. A failure is left for the freeze to meet again.
    fn prepare_next_wal(&self) {
        let mut next = lock(&self.next_wal);
        let number = match &*next {
            NextWal::Ready(..) => return,
            NextWal::Numbered(number) => *number,
            NextWal::Missing => self.next_file.fetch_add(1, SeqCst),
        };
        if let Ok((number, wal)) = self.create_wal(&mut next, number) {
            *next = NextWal::Ready(number, wal);
        }
    }

    /// Removes the WAL made ahead, if there is one: an empty file no freeze will take.
    fn discard_next_wal(&self) -> Result<()> {
        let next = std::mem::take(&mut *lock(&self.next_wal));
        match next {
            NextWal::Ready(number, wal) => {
                drop(wal);
                self.fs.remove(&self.dir.join(file_names::wal(number)))
            }
            NextWal::Missing | NextWal::Numbered(_) => Ok(()),
        }
    }

    /// Writes one group, as its leader: one WAL record, then the memtable, then visibility.
    fn write_group(&self, group: &mut Group) -> Result<()> {
        let mut w = lock(&self.writer);
        self.make_room(&mut w, false)?;
        let first = w.last_seq + 1;
        let count = u32::try_from(group.ops)
            .map_err(|_| Error::InvalidArgument(format!("a write group of {} ops", group.ops)))?;
        // The record is framed in place and handed to the OS as it is; its ops were checked
        // when their batches were built.
        wal::seal_group(&mut group.record, first, count);
        w.wal.append_framed(&mut group.record)?;
        if self.options.sync_writes {
            self.sync_log(&w.wal)?;
        } else {
            let size = w.wal.size();
            if w.sync_mark.due(size) {
                self.wal_syncer.request(&w.wal);
            }
        }
        let mut user = 0;
        let ops = (first..).zip(wal::group_ops(&group.record, count));
        w.mem.insert_all(ops.map(|(seq, op)| {
            user += op.key.len() + op.value.map_or(0, <[u8]>::len);
            (op.key, seq, op.value)
        }));
        w.last_seq = first + u64::from(count) - 1;
        self.visible_seq.store(w.last_seq, SeqCst);
        Counters::add(&self.counters.user_bytes_written, user as u64);
        Counters::add(&self.counters.write_groups, 1);
        Counters::add(&self.counters.grouped_writes, group.writers);
        Ok(())
    }

    /// Syncs the WAL and the directory: every write so far survives a power loss.
    fn sync_wal(&self) -> Result<()> {
        let w = lock(&self.writer);
        self.sync_log(&w.wal)?;
        self.fs.sync_dir(&self.dir)
    }

    /// Syncs `wal` from a writer's path, the owner's barrier first ([`crate::barrier`]).
    fn sync_log(&self, wal: &Wal) -> Result<()> {
        self.barrier_or_stop()?;
        wal.sync()
    }

    /// Runs the owner's barrier, if there is one. A failure is final, as a failed fsync
    /// is: it becomes the background error, and every later write reports it.
    fn barrier_or_stop(&self) -> Result<()> {
        barrier::run(self.barrier.as_ref()).inspect_err(|e| self.fail(barrier::TASK, e.to_string()))
    }

    /// The statistics beside the counters: the tree's shape, its memory, the block cache,
    /// and what the last open found.
    fn figures(&self, cache: BlockCacheStats, disk_bytes_written: u64) -> Vec<(String, u64)> {
        let (version, mem_bytes, imm, failures) = {
            let st = self.lock_state();
            let mem_bytes = st.mem.approximate_bytes();
            (st.version.clone(), mem_bytes, st.imm.len(), st.bg_failures)
        };
        let mut out = Vec::new();
        for s in version.summary() {
            out.push((format!("level_{}_bytes", s.level), s.bytes));
            out.push((format!("level_{}_files", s.level), s.files as u64));
        }
        let theory = compaction::write_amp_theory(
            &version,
            &self.options,
            &self.counters,
            disk_bytes_written,
        );
        if let Some(theory) = theory {
            let milli = (theory * 1000.0).round() as u64;
            out.push(("write_amp_theory_milli".into(), milli));
        }
        let (index_bytes, filter_bytes) =
            version
                .all_tables()
                .fold((0, 0), |(index, filter), (_, t)| {
                    (
                        index + t.table.index_bytes(),
                        filter + t.table.filter_bytes(),
                    )
                });
        let (replayed, orphans, stale_wals) = self.recovery;
        let named = [
            ("l0_files", version.level(0).len() as u64),
            ("sorted_runs", version.runs().len() as u64),
            ("memtable_bytes", mem_bytes as u64),
            ("immutable_memtables", imm as u64),
            ("block_cache_hits", cache.hits),
            ("block_cache_misses", cache.misses),
            ("block_cache_inserted_bytes", cache.inserted_bytes),
            ("block_cache_bytes", cache.used_bytes),
            ("block_cache_charged_bytes", cache.charged_bytes),
            ("block_cache_capacity", cache.capacity),
            ("table_index_bytes", index_bytes),
            ("table_filter_bytes", filter_bytes),
            ("last_sequence", self.visible_seq.load(SeqCst)),
            ("recovery_wal_records", replayed),
            ("recovery_orphan_tables", orphans),
            ("recovery_stale_wals", stale_wals),
            ("background_failures", failures),
        ];
        out.extend(named.map(|(name, value)| (name.to_string(), value)));
        out
    }
}

impl LsmTree {
    /// Files and bytes per level of the current version.
    pub fn levels_summary(&self) -> Vec<LevelSummary> {
        self.inner.lock_state().version.summary()
    }

    /// The target size of each level 1..=5 for the current version, as leveled compaction
    /// aims for it ([`compaction::leveled::targets`]: 0 for a level above the base level,
    /// which should be empty); tiered compaction has no level targets.
    pub fn level_targets(&self) -> Vec<u64> {
        let version = self.inner.lock_state().version.clone();
        let targets = compaction::leveled::targets(&version, &self.inner.options);
        targets.bytes[1..NUM_LEVELS - 1].to_vec()
    }

    /// The first flush or compaction that failed since open, as the [`Error::Background`]
    /// every write now returns; `None` while background work is healthy. See the module
    /// documentation: only reopening the store clears it.
    pub fn background_error(&self) -> Option<Error> {
        self.inner.lock_state().background_error()
    }

    /// Checks the current version's invariants (L1+ sorted and disjoint, no table twice).
    ///
    /// # Errors
    /// [`Error::Corruption`] describing the first violation.
    pub fn debug_check_invariants(&self) -> Result<()> {
        let version = self.inner.lock_state().version.clone();
        version
            .check_invariants()
            .map_err(|detail| Error::corruption(&self.inner.dir, 0, detail))
    }

    /// [`Engine::stats`] without its full scan: every counter and size, with `live_keys`
    /// and `live_data_bytes` left 0. Cheap to read; stage 5 reads its tree's figures with
    /// it and counts the live data itself, in its own scan.
    ///
    /// # Errors
    /// [`Error::Io`] listing the directory.
    pub fn stats_without_live_data(&self) -> Result<Stats> {
        let inner = &self.inner;
        let c = &inner.counters;
        // Bytes written and the counters are read first, before `Engine::stats`'s scan:
        // background compactions go on while it runs, the scan itself goes through the
        // block cache, and the figures should describe the moment `stats` was called.
        let disk_bytes_written = inner.fs.counters().bytes_written();
        let cache = inner.cache.stats();
        let counters = c.extra();
        let (disk_bytes, file_count) = inner.fs.dir_usage(&inner.dir)?;
        let mut stats = Stats {
            user_bytes_written: Counters::get(&c.user_bytes_written),
            disk_bytes_written,
            disk_bytes,
            file_count,
            gets: Counters::get(&c.gets),
            get_disk_reads: Counters::get(&c.get_disk_reads),
            ..Stats::default()
        };
        let counters = counters.map(|(name, value)| (name.to_string(), value));
        stats.extra.extend(counters);
        stats.extra.extend(inner.figures(cache, disk_bytes_written));
        Ok(stats)
    }

    /// Freezes the active memtable (if it holds anything) and waits until it is flushed.
    ///
    /// # Errors
    /// An earlier background failure, [`Error::Io`].
    pub fn flush(&self) -> Result<()> {
        self.inner.make_room(&mut lock(&self.inner.writer), true)?;
        let mut st = self.inner.lock_state();
        while !st.imm.is_empty() {
            st.check_background()?;
            st = self.inner.wait_for_progress(st);
        }
        Ok(())
    }

    /// Compacts everything into the last level, with every tombstone and every overwritten
    /// version gone: leveled compacts every level, top to bottom, into the one below it
    /// (LevelDB's `CompactRange` over all keys); tiered merges every run into one (see
    /// [`compaction::full`]). The background thread's own compactions are held off while
    /// each step runs. A step that fails stops writes as a failed background compaction
    /// does (see the module documentation): it may have failed while appending to the
    /// manifest.
    ///
    /// # Errors
    /// An earlier background failure, [`Error::Corruption`], [`Error::Io`].
    pub fn full_compaction(&self) -> Result<()> {
        self.flush()?;
        for step in 0..NUM_LEVELS - 1 {
            let picked = {
                let mut st = self.inner.lock_state();
                // A compaction thread that panicked never releases `compacting`: the
                // background error it set ends the wait.
                st.check_background()?;
                while st.compacting {
                    st = self.inner.wait_for_progress(st);
                    st.check_background()?;
                }
                let task = compaction::full(&st.version, &self.inner.options, step);
                st.compacting = task.is_some();
                task.map(|t| (t, st.version.clone()))
            };
            if let Some((task, version)) = picked {
                self.inner
                    .compact_and_release(&task, &version)
                    .inspect_err(|e| self.inner.fail("compaction", e.to_string()))?;
            }
        }
        Ok(())
    }

    /// A put (`Some(value)`) or a delete: a write batch of one op.
    fn write_one(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        match value {
            Some(value) => batch.put(key, value)?,
            None => batch.delete(key)?,
        }
        self.write(&batch)
    }

    /// The live keys and their bytes, counted by a full scan.
    fn live_data(&self) -> Result<(u64, u64)> {
        let mut cursor = self.inner.snapshot().cursor();
        let (mut keys, mut bytes) = (0, 0);
        cursor.seek_to_first()?;
        while cursor.valid() {
            keys += 1;
            bytes += (cursor.key().len() + cursor.value().len()) as u64;
            cursor.next()?;
        }
        Ok((keys, bytes))
    }

    /// Opens like [`Engine::open`], with `barrier` run before every sync of the WAL, and
    /// once before recovery: the owner of the tree makes its own log durable there, so no
    /// entry of the tree reaches the disk, in a synced WAL or a table, before the bytes it
    /// points at (see [`crate::barrier`] for where it runs, and its rules).
    ///
    /// # Errors
    /// As [`Engine::open`]; the barrier's error, when it fails before recovery.
    pub fn open_with_barrier(
        dir: &Path,
        options: &Options,
        barrier: WalBarrier,
    ) -> Result<LsmTree> {
        LsmTree::open_with(dir, options, Some(barrier))
    }

    /// [`Engine::open`], with or without a barrier.
    fn open_with(dir: &Path, options: &Options, barrier: Option<WalBarrier>) -> Result<LsmTree> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let parsed = LsmOptions::parse(options)?;
        let fs = Fs::new(options.file_system());
        let store = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let cache = Arc::new(BlockCache::new(parsed.block_cache_bytes));
        // Recovery makes the last process's WAL records durable (a synced WAL, L0 tables).
        barrier::run(barrier.as_ref())?;
        let recovered = recovery::recover(&fs, dir, &parsed, &cache)?;
        let inner = Arc::new(Inner::new(
            dir, fs, parsed, cache, store, recovered, barrier,
        ));
        let tree = LsmTree {
            threads: Mutex::new(Vec::new()),
            inner: inner.clone(),
        };
        // Pushed one by one: should the second fail to start, dropping `tree` stops the first.
        for (name, body) in [
            ("flush", Inner::flush_loop as fn(&Inner) -> Result<()>),
            ("compaction", Inner::compaction_loop),
            ("wal-sync", |inner: &Inner| {
                // A failed barrier ends the thread as a failed fsync does.
                let barrier = inner.barrier.as_ref();
                inner.wal_syncer.run(
                    |wal| barrier::run(barrier).and_then(|()| wal.sync()),
                    || inner.prepare_next_wal(),
                )
            }),
        ] {
            let thread = inner.run_background(name, body)?;
            lock(&tree.threads).push(thread);
        }
        Ok(tree)
    }

    fn shutdown(&self) {
        self.inner.stop.store(true, SeqCst);
        self.inner.wal_syncer.stop();
        {
            let _st = self.inner.lock_state();
            self.inner.work.notify_all();
            self.inner.progress.notify_all();
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
        // Nothing will take it now; left behind, it would only be replayed empty.
        let _ = self.inner.discard_next_wal();
    }
}

impl Engine for LsmTree {
    const NAME: &'static str = "lsm";
    /// 2: every WAL record is a write batch ([`crate::wal`]).
    const FORMAT_VERSION: u32 = 2;
    const OPTIONS: &'static [OptionDoc] = OPTIONS;

    /// Opens the store in `dir`, recovering it ([`crate::recovery`]), with no WAL barrier.
    fn open(dir: &Path, options: &Options) -> Result<Self> {
        LsmTree::open_with(dir, options, None)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write_one(key, Some(value))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Counters::add(&self.inner.counters.gets, 1);
        self.inner.snapshot().get(key, &self.inner.counters)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.write_one(key, None)
    }

    /// Applies every put and delete of `batch` atomically: readers see all of them or none,
    /// and after a crash the store holds all of them or none. The ops take consecutive
    /// sequence numbers, in order, so a later op on a key wins over an earlier one. An empty
    /// batch does nothing. Concurrent writers share WAL records ([`crate::group_commit`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a batch larger than one WAL record holds
    /// ([`sstable::wal::MAX_PAYLOAD`]), nothing written; an earlier background failure,
    /// [`Error::Io`].
    fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let payload_len = wal::HEADER_LEN + batch.encoded_ops().len();
        if payload_len > MAX_PAYLOAD {
            return Err(Error::InvalidArgument(format!(
                "a write batch of {} ops and {payload_len} bytes is over the WAL record \
                 limit of {MAX_PAYLOAD} bytes: split it",
                batch.len(),
            )));
        }
        let inner = &self.inner;
        inner.queue.commit(batch, |group| inner.write_group(group))
    }

    /// A cursor over a snapshot of the store ([`crate::cursor::snapshot`]).
    fn cursor(&self) -> Result<BoxCursor<'_>> {
        Ok(Box::new(self.inner.snapshot().cursor()))
    }

    /// Loads `input` by table ingestion ([`crate::ingest`]): sorted (an unsorted input by an
    /// external sort within `memtable_bytes`), written into tables, added in one manifest
    /// edit on the deepest level free of the load's key range. All or nothing, also across a
    /// crash; durable when it returns.
    fn load(
        &self,
        input: kv_shared::LoadInput<'_>,
        order: kv_shared::LoadOrder,
    ) -> Result<kv_shared::LoadReport> {
        self.inner.load(input, order)
    }

    /// Makes every acknowledged write durable (the WAL, then the directory). After a
    /// background failure it still does, then returns the failure.
    ///
    /// # Errors
    /// [`Error::Io`]; an earlier background failure.
    fn sync(&self) -> Result<()> {
        self.inner.sync_wal()?;
        self.inner.lock_state().check_background()
    }

    /// Flushes the memtable, then lets compaction run until no level is over its target
    /// (L0 under `l0_trigger` tables, every other level under its size).
    fn compact(&self) -> Result<()> {
        self.flush()?;
        self.inner.wait_until_settled()
    }

    /// The inherent [`LsmTree::flush`]: the memtable becomes a table now.
    fn flush(&self) -> Result<bool> {
        LsmTree::flush(self)?;
        Ok(true)
    }

    /// Counters since open, and sizes now. `live_keys` and `live_data_bytes` must be exact,
    /// and an LSM tree does not know them without reading: they come from a full scan.
    fn stats(&self) -> Result<Stats> {
        let mut stats = self.stats_without_live_data()?;
        (stats.live_keys, stats.live_data_bytes) = self.live_data()?;
        Ok(stats)
    }

    fn close(self) -> Result<()> {
        self.shutdown();
        self.sync()
    }
}

impl Drop for LsmTree {
    fn drop(&mut self) {
        self.shutdown();
    }
}
