//! [`Wisckey`]: the engine, its write path and its read path.
//!
//! ## Writes
//!
//! Every write is a batch (`put` and `delete` are batches of one), applied under **one
//! writer mutex**, in three steps:
//!
//! 1. every op becomes one record of the value log, all appended at once
//!    ([`ValueLog::append`]): handed to the operating system, and a pointer back for each;
//! 2. the tree gets a batch of its own ([`lsm::LsmTree`]'s `write`, atomic): for a value at
//!    or over `value_threshold` the key and its 17-byte pointer, for a smaller one the key
//!    and the value itself ([`crate::value_pointer`]), for a delete a delete;
//! 3. the write returns. Both logs have it in the OS's hands: it survives a kill.
//!
//! The mutex keeps the two logs in the same order (a pointer enters the tree after its
//! record, and the records of two writes are in the order of their tree batches), which is
//! what recovery's trimming relies on ([`crate::recovery`]). Stage 4's group commit still
//! runs inside the tree, with groups of one.
//!
//! ## Durability
//!
//! The tree is opened with a **WAL barrier** ([`lsm::barrier`]): before every fsync of its
//! WAL (a `sync`, a memtable freeze, its background syncer, `sync_writes`) it calls
//! [`ValueLog::sync_to_end`]. So a pointer is never durable before the value it points at:
//! not in a synced WAL, nor in a table (tables are made from frozen memtables, whose WAL
//! the freeze synced). `sync` syncs the value log, then the tree (whose barrier finds
//! nothing left to do). With `sync_writes` the tree is opened with its own `sync_writes`:
//! each write's WAL fsync runs the barrier first, so the value log is synced, then the
//! WAL. A failed fsync, of either log, is final: every later write fails until the store
//! is reopened.
//!
//! What the barrier cannot order is the operating system writing the WAL's newest pages
//! back on its own, before any sync (and the background syncer's fsync, which may cover a
//! record appended after its barrier ran): after a power loss the newest WAL may hold
//! records whose values the log lost. Recovery cuts them off ([`crate::recovery`]).
//!
//! ## Reads
//!
//! A `get` asks the tree; an inline value is the answer, a pointer is read from the value
//! log and checked (its CRC, and that its key is the key asked for: [`crate::value_log`]).
//! The tree is asked while the table of segments is held for reading, so that the garbage
//! collector, which retires a segment only with the table held for writing and after the
//! tree stopped pointing into it, cannot retire the segment a pointer just read names.
//! Cursors are in [`crate::cursor`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bitcask::record::Kind;
use kv_shared::{
    BoxCursor, Engine, Error, Fs, MAX_VALUE_LEN, OptionDoc, Options, Result, Stats, StoreDir,
    WriteBatch,
};
use lsm::{LsmTree, WalBarrier};

use crate::cursor::WisckeyCursor;
use crate::file_names;
use crate::options::{self, WisckeyOptions};
use crate::recovery::{self, VlogFound};
use crate::value_log::{NewRecord, ValueLog, lock};
use crate::value_pointer::{self, TreeValue};

/// Stage 5: WiscKey. An LSM tree of keys and value pointers, a value log of values, and
/// a garbage collector for the log. See the crate documentation.
pub struct Wisckey {
    pub(crate) inner: Arc<Inner>,
    gc_thread: Option<JoinHandle<()>>,
}

/// What the engine and its garbage-collection thread share.
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Fs,
    pub(crate) options: WisckeyOptions,
    /// The tree of keys and pointers (an `lsm` store in `tree/`).
    pub(crate) tree: LsmTree,
    /// The value log (in `vlog/`); the tree's barrier holds it too.
    pub(crate) vlog: Arc<ValueLog>,
    /// Serialises writes: value-log appends and tree writes in the same order.
    pub(crate) writer: Mutex<()>,
    /// One collection at a time (the background one or `compact`'s).
    pub(crate) gc_lock: Mutex<()>,
    /// Wakes the garbage-collection thread (a segment was sealed, or shutdown).
    pub(crate) gc_signal: Mutex<GcSignal>,
    pub(crate) gc_wake: Condvar,
    /// Set when the engine closes: a running collection gives up.
    pub(crate) stopping: AtomicBool,
    /// The value log's count of segments started, when a write last looked.
    seen_segments: AtomicU64,
    pub(crate) counters: Counters,
    /// What the last open found: `(torn bytes cut, WAL records trimmed, lost values)`.
    recovery: (u64, u64, u64),
    _store: StoreDir,
}

/// What the garbage-collection thread is asked.
#[derive(Debug, Default)]
pub(crate) struct GcSignal {
    /// Segments were sealed since the thread last looked.
    pub(crate) requested: bool,
    /// The engine is closing.
    pub(crate) shutdown: bool,
}

/// The engine's own counters, reported in [`Stats::extra`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) user_bytes_written: AtomicU64,
    pub(crate) gets: AtomicU64,
    pub(crate) vlog_reads: AtomicU64,
    pub(crate) values_inline: AtomicU64,
    pub(crate) values_in_log: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) gc_runs: AtomicU64,
    pub(crate) gc_segments_deleted: AtomicU64,
    pub(crate) gc_values_relocated: AtomicU64,
    pub(crate) gc_bytes_relocated: AtomicU64,
    pub(crate) gc_errors: AtomicU64,
    pub(crate) prefetch_reads: AtomicU64,
    pub(crate) prefetch_values: AtomicU64,
}

impl Counters {
    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// Opens the tree in `dir` with `options`, its WAL barrier syncing `vlog` to its end.
/// (The one place the tree is opened.)
fn open_tree(dir: &Path, options: &Options, vlog: &Arc<ValueLog>) -> Result<LsmTree> {
    let vlog = vlog.clone();
    let barrier: WalBarrier = Arc::new(move || vlog.sync_to_end());
    LsmTree::open_with_barrier(dir, options, barrier)
}

impl Inner {
    /// True when a value of `len` bytes is kept in the tree rather than the value log.
    /// (A value at the size limit always goes to the log: its tag would take it over.)
    pub(crate) fn is_inline(&self, len: usize) -> bool {
        len < self.options.value_threshold.min(MAX_VALUE_LEN)
    }

    /// Applies `batch` (not empty): its records to the value log, then its tree batch to
    /// the tree, under the writer mutex (see the module documentation).
    fn write_batch(&self, batch: &WriteBatch) -> Result<()> {
        self.check_tree_batch_len(batch)?;
        let records: Vec<NewRecord<'_>> = batch
            .iter()
            .map(|op| match op.value {
                Some(value) => NewRecord {
                    kind: Kind::Put,
                    key: op.key,
                    value,
                    dead: self.is_inline(value.len()),
                },
                None => NewRecord {
                    kind: Kind::Tombstone,
                    key: op.key,
                    value: b"",
                    dead: true,
                },
            })
            .collect();
        let _writer = lock(&self.writer);
        let pointers = self.vlog.append(&records)?;
        let sealed = self.vlog.segments_started();
        if self.seen_segments.swap(sealed, Relaxed) != sealed {
            self.request_collection();
        }
        let mut tree_batch = WriteBatch::new();
        for (op, pointer) in batch.iter().zip(&pointers) {
            match op.value {
                Some(value) if self.is_inline(value.len()) => {
                    tree_batch.put(op.key, &value_pointer::encode_inline(value))?;
                }
                Some(_) => tree_batch.put(op.key, &pointer.encode())?,
                None => tree_batch.delete(op.key)?,
            }
        }
        // With `sync_writes` the tree fsyncs its WAL before returning, and its barrier
        // fsyncs the value log first: the log, then the tree.
        self.tree.write(&tree_batch)?;
        drop(_writer);
        self.count_write(batch);
        Ok(())
    }

    /// Refuses, before anything is written, a batch whose tree batch one WAL record of the
    /// tree cannot hold ([`sstable::wal::MAX_PAYLOAD`]).
    fn check_tree_batch_len(&self, batch: &WriteBatch) -> Result<()> {
        let ops: u64 = batch
            .iter()
            .map(|op| {
                let value = op.value.map(|v| {
                    if self.is_inline(v.len()) {
                        v.len() + 1
                    } else {
                        value_pointer::POINTER_LEN
                    }
                });
                bitcask::record::op_len(op.key.len(), value)
            })
            .sum();
        let len = lsm::wal::HEADER_LEN as u64 + ops;
        if len > sstable::wal::MAX_PAYLOAD as u64 {
            return Err(Error::InvalidArgument(format!(
                "a write batch whose tree batch takes {len} bytes is over the tree's WAL \
                 record limit of {} bytes: split it",
                sstable::wal::MAX_PAYLOAD
            )));
        }
        Ok(())
    }

    /// Counts a write's user bytes and its kinds of values.
    fn count_write(&self, batch: &WriteBatch) {
        let c = &self.counters;
        let (mut user, mut inline, mut logged, mut deletes) = (0, 0, 0, 0);
        for op in batch.iter() {
            user += op.key.len() + op.value.map_or(0, <[u8]>::len);
            match op.value {
                Some(v) if self.is_inline(v.len()) => inline += 1,
                Some(_) => logged += 1,
                None => deletes += 1,
            }
        }
        Counters::add(&c.user_bytes_written, user as u64);
        Counters::add(&c.values_inline, inline);
        Counters::add(&c.values_in_log, logged);
        Counters::add(&c.deletes, deletes);
    }

    /// The value of `key`: see the module documentation.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Counters::add(&self.counters.gets, 1);
        let (pointer, segment) = {
            let segments = self.vlog.segments();
            let Some(mut value) = self.tree.get(key)? else {
                return Ok(None);
            };
            match value_pointer::decode(&value).map_err(|e| self.bad_tree_value(e))? {
                TreeValue::Inline(_) => {
                    value.remove(0);
                    return Ok(Some(value));
                }
                TreeValue::Pointer(p) => (p, segments.get(&p.segment).cloned()),
            }
        };
        let segment = segment.ok_or_else(|| self.missing_segment(pointer.segment))?;
        Counters::add(&self.counters.vlog_reads, 1);
        segment.read(&pointer, key).map(Some)
    }

    /// The error for a tree value that does not decode (its checksums passed, so this is a
    /// bug or damage the tree could not see).
    pub(crate) fn bad_tree_value(&self, e: kv_shared::DecodeError) -> Error {
        let tree = file_names::tree_dir(&self.dir);
        Error::corruption(tree, 0, format!("a tree value that does not decode: {e}"))
    }

    /// The error for a pointer into a segment that is not in the value log.
    pub(crate) fn missing_segment(&self, id: u32) -> Error {
        let path = file_names::segment(self.vlog.dir(), id);
        Error::corruption(
            path,
            0,
            format!("the tree points into segment {id}, which the value log does not hold"),
        )
    }

    /// Syncs the value log, then the tree.
    fn sync(&self) -> Result<()> {
        self.vlog.sync_to_end()?;
        self.tree.sync()
    }

    /// The live keys and their bytes, the values' lengths read from the tree (pointers
    /// give them without a value-log read); and how many values are inline.
    fn live_data(&self) -> Result<(u64, u64, u64)> {
        let mut cursor = self.tree.cursor()?;
        let (mut keys, mut bytes, mut inline) = (0, 0, 0);
        cursor.seek_to_first()?;
        while cursor.valid() {
            let key = cursor.key();
            keys += 1;
            bytes += key.len() as u64;
            match value_pointer::decode(cursor.value()).map_err(|e| self.bad_tree_value(e))? {
                TreeValue::Inline(v) => {
                    bytes += v.len() as u64;
                    inline += 1;
                }
                TreeValue::Pointer(p) => bytes += p.value_len(key.len()),
            }
            cursor.next()?;
        }
        Ok((keys, bytes, inline))
    }
}

impl Wisckey {
    /// Opens the store, running recovery's steps ([`crate::recovery`]).
    fn start(dir: &Path, options: &Options) -> Result<Wisckey> {
        let parsed = WisckeyOptions::parse(options)?;
        let fs = Fs::new(options.file_system());
        let store = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let vlog_dir = file_names::vlog_dir(dir);
        file_names::create_dir_durably(&fs, dir, &vlog_dir)?;
        let VlogFound {
            opened,
            ends,
            torn,
            torn_bytes,
        } = recovery::recover_vlog(&fs, &vlog_dir)?;
        let tree_dir = file_names::tree_dir(dir);
        let trimmed = recovery::trim_tree_wal(&fs, &tree_dir, &ends)?;
        let segment_bytes = parsed.vlog_segment_bytes;
        let vlog = Arc::new(ValueLog::new(&fs, &vlog_dir, segment_bytes, opened));
        let tree = open_tree(&tree_dir, &parsed.tree, &vlog)?;
        let lost = if torn {
            recovery::forget_lost_values(&tree, &ends)?
        } else {
            0
        };
        vlog.finish_recovery()?;
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            fs,
            options: parsed,
            tree,
            vlog,
            writer: Mutex::new(()),
            gc_lock: Mutex::new(()),
            gc_signal: Mutex::new(GcSignal::default()),
            gc_wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            seen_segments: AtomicU64::new(0),
            counters: Counters::default(),
            recovery: (torn_bytes, trimmed, lost),
            _store: store,
        });
        let gc_thread = crate::gc::start_thread(&inner)?;
        Ok(Wisckey { inner, gc_thread })
    }

    /// Stops the garbage-collection thread, if there is one, and waits for it.
    fn stop_gc(&mut self) {
        self.inner.stopping.store(true, Relaxed);
        lock(&self.inner.gc_signal).shutdown = true;
        self.inner.gc_wake.notify_all();
        if let Some(handle) = self.gc_thread.take() {
            let _ = handle.join();
        }
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The tree of keys and pointers, for tests and tools that look inside.
    pub fn tree(&self) -> &LsmTree {
        &self.inner.tree
    }

    /// The value log, for tests and tools that look inside.
    pub fn value_log(&self) -> &ValueLog {
        &self.inner.vlog
    }

    /// Runs one garbage collection now: every sealed segment whose dead bytes reach
    /// `min_dead_ratio` of its bytes is collected ([`crate::gc`]); returns how many were.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged segment (it is left in place), [`Error::Io`].
    pub fn collect_garbage(&self, min_dead_ratio: f64) -> Result<u64> {
        self.inner.collect(min_dead_ratio)
    }
}

impl Drop for Wisckey {
    fn drop(&mut self) {
        self.stop_gc();
    }
}

impl Engine for Wisckey {
    const NAME: &'static str = "wisckey";
    const FORMAT_VERSION: u32 = 1;
    const OPTIONS: &'static [OptionDoc] = options::OPTIONS;

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        Wisckey::start(dir, options)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value)?;
        self.inner.write_batch(&batch)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key)?;
        self.inner.write_batch(&batch)
    }

    /// Appends a record per op to the value log, then writes the tree's batch: atomic, as
    /// the tree's batch is (see the module documentation). An empty batch does nothing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a batch whose tree batch is over the tree's WAL
    /// record limit (nothing written); [`Error::Io`]; a tree's background failure.
    fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.inner.write_batch(batch)
    }

    /// A cursor over a snapshot: the tree's cursor, values read from the value log, read
    /// ahead in offset order ([`crate::cursor`]).
    fn cursor(&self) -> Result<BoxCursor<'_>> {
        Ok(Box::new(WisckeyCursor::new(&self.inner)?))
    }

    /// Syncs the value log, then the tree.
    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    /// Seals the active segment, collects every sealed segment holding a dead byte
    /// ([`crate::gc`]), then compacts the tree (stage 4's `compact`).
    fn compact(&self) -> Result<()> {
        self.inner.vlog.seal_active()?;
        self.inner.collect(f64::MIN_POSITIVE)?;
        self.inner.tree.compact()
    }

    /// Flushes the tree's memtable (the value log has none).
    fn flush(&self) -> Result<bool> {
        Engine::flush(&self.inner.tree)
    }

    fn stats(&self) -> Result<Stats> {
        self.inner.stats()
    }

    fn close(mut self) -> Result<()> {
        self.stop_gc();
        self.inner.sync()
    }
}

impl Inner {
    /// Counters and sizes: see [`Engine::stats`]. The tree's own figures are in `extra`
    /// under `tree_` names; write amplification counts both logs and the tree's tables.
    fn stats(&self) -> Result<Stats> {
        let vlog_written = self.fs.counters().bytes_written();
        // The tree's counters and sizes only: its live data is counted by the scan below.
        let tree = self.tree.stats_without_live_data()?;
        let (live_keys, live_data_bytes, inline) = self.live_data()?;
        let (vlog_bytes, vlog_files) = self.fs.dir_usage(self.vlog.dir())?;
        let (own_bytes, own_files) = self.fs.dir_usage(&self.dir)?;
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Relaxed);
        let mut stats = Stats {
            user_bytes_written: load(&c.user_bytes_written),
            disk_bytes_written: vlog_written + tree.disk_bytes_written,
            live_keys,
            live_data_bytes,
            disk_bytes: vlog_bytes + tree.disk_bytes + own_bytes,
            file_count: vlog_files + tree.file_count + own_files,
            gets: load(&c.gets),
            get_disk_reads: load(&c.vlog_reads) + tree.get_disk_reads,
            ..Stats::default()
        };
        for (name, value) in &tree.extra {
            stats.extra.insert(format!("tree_{name}"), *value);
        }
        let tree_figures = [
            ("tree_user_bytes_written", tree.user_bytes_written),
            ("tree_disk_bytes_written", tree.disk_bytes_written),
            ("tree_disk_bytes", tree.disk_bytes),
            ("tree_get_disk_reads", tree.get_disk_reads),
        ];
        let (_, dead, segments) = self.vlog.usage();
        let (torn, trimmed, lost) = self.recovery;
        let own = [
            ("vlog_bytes_written", vlog_written),
            ("vlog_bytes", vlog_bytes),
            ("vlog_segments", segments as u64),
            ("vlog_dead_bytes_known", dead),
            ("live_values_inline", inline),
            ("live_values_in_log", live_keys - inline),
            ("values_inline", load(&c.values_inline)),
            ("values_in_log", load(&c.values_in_log)),
            ("deletes", load(&c.deletes)),
            ("get_vlog_reads", load(&c.vlog_reads)),
            ("gc_runs", load(&c.gc_runs)),
            ("gc_segments_deleted", load(&c.gc_segments_deleted)),
            ("gc_values_relocated", load(&c.gc_values_relocated)),
            ("gc_bytes_relocated", load(&c.gc_bytes_relocated)),
            ("gc_errors", load(&c.gc_errors)),
            ("prefetch_reads", load(&c.prefetch_reads)),
            ("prefetch_values", load(&c.prefetch_values)),
            ("recovery_torn_bytes", torn),
            ("recovery_wal_records_trimmed", trimmed),
            ("recovery_lost_values", lost),
        ];
        for (name, value) in tree_figures.into_iter().chain(own) {
            stats.extra.insert(name.to_string(), value);
        }
        Ok(stats)
    }
}
