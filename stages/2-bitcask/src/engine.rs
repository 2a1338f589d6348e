//! [`Bitcask`]: the engine, its write path, its read path, and its background merge thread.
//!
//! ## Writes
//!
//! A put or a delete appends one record to the active segment; a write batch appends one
//! batch record holding all its ops ([`crate::record`]). The keydir is then updated for
//! every key the record changes, under one write lock of `state`, so a reader sees the
//! whole batch or none of it. A batch's header and its deletes are dead bytes from the
//! start, as a tombstone is: a segment holding a batch always has dead bytes, so the next
//! merge takes it and rewrites the batch's live puts as records of their own.
//!
//! A write returns once its record is handed to the operating system: it survives a kill
//! of the process. With the option `sync_writes`, it also fsyncs the active segment before
//! the keydir learns of the record, and, the first time it writes to a segment whose
//! directory entry is not known to be durable (the one recovery created), the directory:
//! an acknowledged write then survives a power loss. A segment started by a rotation needs
//! no such directory sync, as the rotation already made its entry durable. A failed fsync
//! is final, as in `sync`: no more writes until the store is reopened.
//!
//! ## Threads and locks
//!
//! * `writer` (a mutex) serialises appends: it owns the active segment's length and the next
//!   sequence number. A put appends its record, then updates the keydir, then returns; the
//!   keydir is updated under the writer lock, so it always reflects appends in order.
//! * `state` (a read-write lock) holds the keydir and the table of segments. Readers take it
//!   briefly to copy one entry and one `Arc<Segment>` (a cursor: every entry, sorted, and
//!   every segment), then read the file without any lock.
//! * `merge_lock` lets one merge run at a time (the background thread's or `compact`'s).
//!   A merge holds no other lock while it copies; it takes `state` for reading to ask
//!   "is this record still live?" and for writing once, to switch the keydir.
//!
//! ## When the merge thread fails
//!
//! A background merge that returns an error leaves the segments as they were: writes go
//! on, `stats` counts it (`merge_errors`) and [`Bitcask::last_merge_error`] tells what it
//! was; `compact` runs a merge itself and returns its error. A **panic** of the merge
//! thread is caught, and from then on every `put`, `delete`, `write` and `compact` returns
//! [`Error::Background`] naming the merge (`sync` too, after syncing), until the store is
//! reopened; reads go on, `stats` counts it (`background_failures`) and
//! [`Bitcask::background_error`] returns it. Why the two differ: [`crate::merge`], "When a
//! merge fails".
//!
//! Locks are always taken in the order `merge_lock`, writer, state (a merge takes the writer
//! only to fsync the active segment before its commit point). Every lock is taken through
//! `unpoisoned`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, LockResult, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::sync::{PoisonError, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use kv_shared::cursor::BoxCursor;
use kv_shared::{
    Engine, Error, Fs, KeyRange, OptionDoc, Options, Result, Stats, StoreDir, WriteBatch,
    check_key, check_key_value,
};

use crate::cursor::BitcaskCursor;
use crate::expiry::{self, NEVER};
use crate::keydir::{Entry, KeyDir};
use crate::merge::MergeFailures;
use crate::options::{self, BitcaskOptions};
use crate::record::{self, BATCH_HEADER_LEN, Kind, RecordRef, SEGMENT_HEADER_LEN, seal_record};
use crate::recovery;
use crate::segment::{Segment, missing_segment};

/// Stage 2: Bitcask. Segment files, an in-memory keydir, background merge, hint files,
/// tombstones and optional per-key expiry. See the crate documentation.
#[derive(Debug)]
pub struct Bitcask {
    inner: Arc<Inner>,
    merger: Option<JoinHandle<()>>,
}

/// Everything the engine and its merge thread share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) fs: Fs,
    pub(crate) dir: PathBuf,
    _store: StoreDir,
    pub(crate) options: BitcaskOptions,
    pub(crate) state: RwLock<State>,
    writer: Mutex<Writer>,
    pub(crate) merge_lock: Mutex<MergeStatus>,
    signal: Mutex<Signal>,
    wake: Condvar,
    /// Set when the engine closes: a running merge gives up.
    pub(crate) stopping: AtomicBool,
    /// The next file id (segments, merge outputs and merges share it).
    pub(crate) next_id: AtomicU32,
    pub(crate) counters: Counters,
    /// How the background merges failed, if they did.
    pub(crate) merge_failures: MergeFailures,
}

/// The keydir and the segments it points into.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) keydir: KeyDir,
    pub(crate) segments: BTreeMap<u32, Arc<Segment>>,
    pub(crate) active: u32,
}

/// The append side.
#[derive(Debug)]
struct Writer {
    active: Arc<Segment>,
    /// Length of the active segment.
    len: u64,
    next_seq: u64,
    /// The active segment got its seal but no new segment could be created yet.
    sealed: bool,
    /// An append failed and could not be undone: refuse further writes.
    broken: bool,
    /// The active segment's directory entry is known to be durable (a rotation or a
    /// `sync` synced the directory since the segment was created).
    dir_synced: bool,
}

/// Whether merging may go on.
#[derive(Debug, Default)]
pub(crate) struct MergeStatus {
    /// Set when a merge failed after its commit point; merges stop until the store is
    /// reopened (recovery finishes that merge).
    pub(crate) broken: Option<String>,
}

#[derive(Debug, Default)]
struct Signal {
    requested: bool,
    shutdown: bool,
}

/// Engine-specific counters, reported in [`Stats::extra`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    user_bytes_written: AtomicU64,
    gets: AtomicU64,
    get_disk_reads: AtomicU64,
    pub(crate) merges: AtomicU64,
    pub(crate) merge_bytes_written: AtomicU64,
    pub(crate) merge_errors: AtomicU64,
    pub(crate) tombstones_dropped: AtomicU64,
    pub(crate) tombstones_kept: AtomicU64,
    pub(crate) expired_dropped: AtomicU64,
    hint_files_read: AtomicU64,
    hint_files_rejected: AtomicU64,
    torn_bytes_truncated: AtomicU64,
}

/// The guard of a lock, whether or not a thread panicked while holding it. Nothing here
/// panics on purpose with a lock held; if a bug made one do so, the other threads go on
/// with the data as it was left rather than failing every later call.
pub(crate) fn unpoisoned<G>(result: LockResult<G>) -> G {
    result.unwrap_or_else(PoisonError::into_inner)
}

/// `lock`, shared.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    unpoisoned(lock.read())
}

/// `lock`, exclusive.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    unpoisoned(lock.write())
}

/// `mutex`, locked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    unpoisoned(mutex.lock())
}

impl State {
    /// Points `key` at `entry`; what its old entry kept alive turns into dead bytes.
    fn put(&mut self, key: &[u8], entry: Entry) {
        let old = self.keydir.insert(key, entry);
        self.bury(key, old);
    }

    /// Removes `key`; what its entry kept alive turns into dead bytes.
    fn delete(&mut self, key: &[u8]) {
        let old = self.keydir.remove(key);
        self.bury(key, old);
    }

    /// Counts the bytes `old`, the entry `key` had, kept alive as dead bytes of its segment.
    fn bury(&self, key: &[u8], old: Option<Entry>) {
        if let Some(old) = old
            && let Some(segment) = self.segments.get(&old.segment)
        {
            segment.add_dead(old.live_bytes(key.len()));
        }
    }
}

impl Inner {
    /// The writer, locked; refused after a write or sync that failed and could not be undone.
    fn writer(&self) -> Result<MutexGuard<'_, Writer>> {
        let w = lock(&self.writer);
        if w.broken {
            return Err(Error::io(
                w.active.file().path(),
                std::io::Error::other("an earlier write or sync failed; reopen the store"),
            ));
        }
        Ok(w)
    }

    // Exercise 2.1: append a put or tombstone, update the keydir. Read: chapter 2, "Design".
    // Tests: reads::a_get_is_one_read_and_a_miss_is_none
    // Tests: conformance::conformance::put_get_overwrite
    /// Appends one put or tombstone and points the keydir at it.
    fn append(&self, key: &[u8], value: &[u8], kind: Kind, expiry: u64) -> Result<()> {
        self.merge_failures.check()?;
        let mut w = self.writer()?;
        let seq = w.next_seq;
        let bytes = RecordRef {
            seq,
            expiry,
            kind,
            key,
            value,
        }
        .encode();
        let offset = self.append_record(&mut w, &bytes, 1, false)?;
        self.sync_if_asked(&mut w)?;
        let entry = Entry::record(w.active.id(), offset, bytes.len() as u32, seq, expiry);
        let mut st = write(&self.state);
        if kind == Kind::Put {
            st.put(key, entry);
        } else {
            w.active.add_dead(bytes.len() as u64);
            st.delete(key);
        }
        Ok(())
    }

    /// Appends `batch` (not empty) as one batch record and applies its ops to the keydir,
    /// all under one lock; returns the key and value bytes the batch holds.
    fn append_batch(&self, batch: &WriteBatch) -> Result<u64> {
        self.merge_failures.check()?;
        let mut w = self.writer()?;
        let first = w.next_seq;
        let bytes = record::encode_batch(first, batch)?;
        let offset = self.append_record(&mut w, &bytes, batch.count().into(), true)?;
        self.sync_if_asked(&mut w)?;
        let id = w.active.id();
        let (mut dead, mut user_bytes) = (BATCH_HEADER_LEN as u64, 0);
        let mut st = write(&self.state);
        for (seq, op) in (first..).zip(batch.iter()) {
            if let Some(value) = op.value {
                st.put(
                    op.key,
                    Entry::batch_put(id, offset, value.len() as u32, seq),
                );
                user_bytes += value.len() as u64;
            } else {
                dead += record::op_len(op.key.len(), None);
                st.delete(op.key);
            }
            user_bytes += op.key.len() as u64;
        }
        w.active.add_dead(dead);
        Ok(user_bytes)
    }

    /// Appends one encoded record, which takes `seqs` sequence numbers, to the active
    /// segment; returns its offset. The segment is sealed first when it is full, or, for a
    /// record to `keep_whole` (a batch), when it holds records and this one would take it
    /// past `segment_bytes`.
    fn append_record(
        &self,
        w: &mut Writer,
        bytes: &[u8],
        seqs: u64,
        keep_whole: bool,
    ) -> Result<u64> {
        let limit = self.options.segment_bytes;
        let overflows = w.len > SEGMENT_HEADER_LEN && w.len + bytes.len() as u64 > limit;
        if w.sealed || w.len >= limit || (keep_whole && overflows) {
            self.rotate(w)?;
        }
        if let Err(e) = w.active.file().append(bytes) {
            Self::undo_append(w);
            return Err(e);
        }
        let offset = w.len;
        w.active.saw_seq(w.next_seq);
        w.next_seq += seqs;
        w.len += bytes.len() as u64;
        w.active.set_file_len(w.len);
        Ok(offset)
    }

    /// With `sync_writes`, makes the record just appended durable before the write is
    /// acknowledged: fsyncs the active segment and, if its directory entry may not be
    /// durable yet, the directory. After a failure every later write and sync fails until
    /// the store is reopened.
    fn sync_if_asked(&self, w: &mut Writer) -> Result<()> {
        if !self.options.sync_writes {
            return Ok(());
        }
        let mut synced = w.active.file().sync();
        if synced.is_ok() && !w.dir_synced {
            synced = self.fs.sync_dir(&self.dir);
        }
        match synced {
            Ok(()) => w.dir_synced = true,
            Err(_) => w.broken = true,
        }
        synced
    }

    /// Cuts a partly written record off the active segment, or stops all writes if that fails.
    fn undo_append(w: &mut Writer) {
        if w.active.file().truncate(w.len).is_err() {
            w.broken = true;
        }
    }

    // Exercise 2.2: seal the full segment and start the next. Read: chapter 2, "Design".
    // Tests: batch::a_batch_never_straddles_segments_and_may_outgrow_one
    // Tests: reliability::power_loss_right_after_a_rotation
    /// Seals the active segment (seal record, fsync) and starts a new one.
    fn rotate(&self, w: &mut Writer) -> Result<()> {
        if !w.sealed {
            let seal = seal_record();
            if let Err(e) = w.active.file().append(&seal) {
                Self::undo_append(w);
                return Err(e);
            }
            // From here on nothing more is appended to this segment, whatever fails next.
            w.sealed = true;
            w.len += seal.len() as u64;
            w.active.set_file_len(w.len);
            if let Err(e) = w.active.file().sync() {
                // A failed fsync may have dropped the data; a later one could not vouch for it.
                w.broken = true;
                return Err(e);
            }
        }
        let id = self.next_id.fetch_add(1, SeqCst);
        let segment = Arc::new(Segment::create(&self.fs, self.dir.clone(), id)?);
        {
            let mut st = write(&self.state);
            st.segments.insert(id, segment.clone());
            st.active = id;
        }
        w.active = segment;
        w.len = SEGMENT_HEADER_LEN;
        w.sealed = false;
        // Both segments' directory entries must be durable before the new one gets data:
        // otherwise a power loss could keep the newer writes and lose the older segment.
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            w.broken = true;
            return Err(e);
        }
        w.dir_synced = true;
        if self.merge_wanted() {
            self.request_merge();
        }
        Ok(())
    }

    /// True when the immutable segments' dead bytes reach `merge_dead_ratio` of their size.
    fn merge_wanted(&self) -> bool {
        let st = read(&self.state);
        let (mut dead, mut total) = (0u64, 0u64);
        for (id, segment) in &st.segments {
            if *id != st.active {
                dead += segment.dead_bytes();
                total += segment.file_len().saturating_sub(SEGMENT_HEADER_LEN);
            }
        }
        total > 0 && dead as f64 >= self.options.merge_dead_ratio * total as f64
    }

    fn request_merge(&self) {
        if self.options.background_merge {
            lock(&self.signal).requested = true;
            self.wake.notify_all();
        }
    }

    /// The background merge thread: waits for a request, merges, repeats until shutdown,
    /// or until a merge panics ([`Inner::background_merge`]).
    fn merge_loop(self: Arc<Self>) {
        loop {
            {
                let mut signal = lock(&self.signal);
                while !signal.requested && !signal.shutdown {
                    signal = unpoisoned(self.wake.wait(signal));
                }
                if signal.shutdown {
                    return;
                }
                signal.requested = false;
            }
            if !self.background_merge() {
                return;
            }
        }
    }

    /// Makes every acknowledged write durable: fsyncs the active segment and the directory
    /// (sealed segments were fsynced when sealed).
    ///
    /// # Errors
    /// [`Error::Io`]; after a failed fsync, every later write and sync fails until reopen.
    pub(crate) fn sync_writes(&self) -> Result<()> {
        let mut w = self.writer()?;
        let synced = w
            .active
            .file()
            .sync()
            .and_then(|()| self.fs.sync_dir(&self.dir));
        match synced {
            Ok(()) => w.dir_synced = true,
            // After a failed fsync the kernel may have dropped the pages, and a later fsync
            // would succeed without them: no more writes or syncs until the store is reopened.
            Err(_) => w.broken = true,
        }
        synced
    }

    /// Seals the active segment if it holds any record, so a merge can take everything;
    /// refused, like a write, after a failed fsync.
    fn rotate_if_used(&self) -> Result<()> {
        let mut w = self.writer()?;
        if w.sealed || w.len > SEGMENT_HEADER_LEN {
            self.rotate(&mut w)?;
        }
        Ok(())
    }

    /// A cursor over the live keys of `range` as they are now.
    fn cursor(&self, range: &KeyRange) -> BitcaskCursor {
        BitcaskCursor::new(&read(&self.state), &self.dir, range)
    }
}

impl Bitcask {
    /// Sets `key` to `value` for `ttl`: after that the key reads as missing and the next
    /// merge drops it.
    ///
    /// # Errors
    /// As [`Engine::put`].
    pub fn put_with_ttl(&self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        self.put_with_expiry(key, value, expiry::expiry_after(ttl))
    }

    /// Sets `key` to `value` until the wall-clock time `at` (a time in the past writes a
    /// key that is already expired). The deterministic form of [`Bitcask::put_with_ttl`].
    ///
    /// # Errors
    /// As [`Engine::put`].
    pub fn put_expiring_at(&self, key: &[u8], value: &[u8], at: SystemTime) -> Result<()> {
        self.put_with_expiry(key, value, expiry::millis_since_epoch(at))
    }

    fn put_with_expiry(&self, key: &[u8], value: &[u8], expiry: u64) -> Result<()> {
        check_key_value(key, value)?;
        self.inner.append(key, value, Kind::Put, expiry)?;
        self.count_user_bytes((key.len() + value.len()) as u64);
        Ok(())
    }

    fn count_user_bytes(&self, bytes: u64) {
        let counter = &self.inner.counters.user_bytes_written;
        counter.fetch_add(bytes, Relaxed);
    }

    /// The panic of the merge thread, as the [`Error::Background`] every write now returns;
    /// `None` while it has not panicked. Only reopening the store clears it (see the module
    /// documentation).
    pub fn background_error(&self) -> Option<Error> {
        self.inner.merge_failures.check().err()
    }

    /// The error of the last background merge that failed (writes went on; `stats` counts
    /// these failures in `merge_errors`).
    pub fn last_merge_error(&self) -> Option<String> {
        self.inner.merge_failures.last_error()
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The shared state of a store just recovered, and its merge thread if it has one.
    fn start(fs: Fs, dir: &Path, store: StoreDir, options: BitcaskOptions) -> Result<Bitcask> {
        let r = recovery::recover(&fs, dir, options.hint_files)?;
        let counters = Counters::default();
        let c = &counters;
        c.hint_files_read.store(r.hint_files_read, Relaxed);
        c.hint_files_rejected.store(r.hint_files_rejected, Relaxed);
        c.torn_bytes_truncated.store(r.torn_bytes, Relaxed);
        let background = options.background_merge;
        let inner = Arc::new(Inner {
            fs,
            dir: dir.to_path_buf(),
            _store: store,
            writer: Mutex::new(Writer {
                len: r.active.file_len(),
                active: r.active.clone(),
                next_seq: r.next_seq,
                sealed: false,
                broken: false,
                dir_synced: false,
            }),
            state: RwLock::new(State {
                keydir: r.keydir,
                segments: r.segments,
                active: r.active.id(),
            }),
            options,
            merge_lock: Mutex::new(MergeStatus::default()),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            next_id: AtomicU32::new(r.next_id),
            counters,
            merge_failures: MergeFailures::default(),
        });
        let merger = if background {
            let worker = inner.clone();
            let handle = std::thread::Builder::new()
                .name("bitcask-merge".into())
                .spawn(move || worker.merge_loop())
                .map_err(|e| Error::io(dir, e))?;
            Some(handle)
        } else {
            None
        };
        Ok(Bitcask { inner, merger })
    }

    fn stop_merger(&mut self) {
        self.inner.stopping.store(true, SeqCst);
        lock(&self.inner.signal).shutdown = true;
        self.inner.wake.notify_all();
        // The thread catches a merge's panic itself; should it panic anywhere else, that
        // does not vanish either.
        if let Some(handle) = self.merger.take()
            && handle.join().is_err()
        {
            self.inner.merge_thread_panicked("outside a merge");
        }
    }
}

impl Drop for Bitcask {
    fn drop(&mut self) {
        self.stop_merger();
    }
}

impl Engine for Bitcask {
    const NAME: &'static str = "bitcask";
    /// 2 since batch records (see [`crate::record`]: an older build would take one for a
    /// torn tail).
    const FORMAT_VERSION: u32 = 2;
    const OPTIONS: &'static [OptionDoc] = options::OPTIONS;

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        let parsed = BitcaskOptions::parse(options)?;
        let fs = Fs::new(options.file_system());
        let store = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let engine = Bitcask::start(fs, dir, store, parsed)?;
        if engine.inner.merge_wanted() {
            engine.inner.request_merge();
        }
        Ok(engine)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_with_expiry(key, value, NEVER)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let inner = &self.inner;
        inner.counters.gets.fetch_add(1, Relaxed);
        let (entry, segment) = {
            let st = read(&inner.state);
            match st.keydir.get(key) {
                None => return Ok(None),
                Some(e) => (*e, st.segments.get(&e.segment).cloned()),
            }
        };
        if entry.expiry != NEVER && entry.is_expired(expiry::now_millis()) {
            return Ok(None);
        }
        let segment = segment.ok_or_else(|| missing_segment(&inner.dir, entry.segment))?;
        inner.counters.get_disk_reads.fetch_add(1, Relaxed);
        segment.read_value(key, &entry).map(Some)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        let present = read(&self.inner.state).keydir.get(key).is_some();
        if present {
            self.inner.append(key, b"", Kind::Tombstone, NEVER)?;
        } else {
            // Nothing to write, but after a failed fsync even this delete is refused: the
            // key may look absent only because a tombstone the disk lost says so.
            drop(self.inner.writer()?);
        }
        self.count_user_bytes(key.len() as u64);
        Ok(())
    }

    /// Appends the whole batch as one batch record (see [`crate::record`]); an empty batch
    /// writes nothing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a batch over
    /// [`MAX_BATCH_OPS_LEN`](crate::record::MAX_BATCH_OPS_LEN); [`Error::Io`]. Nothing of
    /// the batch is applied then.
    fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let user_bytes = self.inner.append_batch(batch)?;
        self.count_user_bytes(user_bytes);
        Ok(())
    }

    /// A cursor over a sorted copy of the keydir, taken now ([`crate::cursor`]).
    fn cursor(&self) -> Result<BoxCursor<'_>> {
        Ok(Box::new(self.inner.cursor(&KeyRange::all())))
    }

    /// A cursor whose snapshot holds only `range`, so only its keys are sorted (scans walk
    /// it).
    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        Ok(Box::new(self.inner.cursor(range)))
    }

    /// Fsyncs the active segment and the directory. After the merge thread panicked it
    /// still does, then returns [`Error::Background`].
    fn sync(&self) -> Result<()> {
        self.inner.sync_writes()?;
        self.inner.merge_failures.check()
    }

    /// Seals the active segment, then merges every immutable segment that holds a dead
    /// record or lacks a hint file, waiting for the merge to finish.
    fn compact(&self) -> Result<()> {
        self.inner.merge_failures.check()?;
        self.inner.rotate_if_used()?;
        self.inner.merge(true)
    }

    fn stats(&self) -> Result<Stats> {
        let inner = &self.inner;
        let mut stats = Stats::default();
        let now = expiry::now_millis();
        {
            let st = read(&inner.state);
            (stats.live_keys, stats.live_data_bytes) = st.keydir.live(now);
            let dead: u64 = st.segments.values().map(|s| s.dead_bytes()).sum();
            let extra = &mut stats.extra;
            extra.insert("dead_bytes".into(), dead);
            extra.insert("segments".into(), st.segments.len() as u64);
            extra.insert("keydir_bytes".into(), st.keydir.estimated_bytes());
            extra.insert(
                "expired_keys".into(),
                st.keydir.len() as u64 - stats.live_keys,
            );
        }
        let c = &inner.counters;
        stats.user_bytes_written = c.user_bytes_written.load(Relaxed);
        stats.disk_bytes_written = inner.fs.counters().bytes_written();
        stats.gets = c.gets.load(Relaxed);
        stats.get_disk_reads = c.get_disk_reads.load(Relaxed);
        (stats.disk_bytes, stats.file_count) = inner.fs.dir_usage(&inner.dir)?;
        for (name, counter) in [
            ("merges", &c.merges),
            ("merge_bytes_written", &c.merge_bytes_written),
            ("merge_errors", &c.merge_errors),
            ("tombstones_dropped", &c.tombstones_dropped),
            ("tombstones_kept", &c.tombstones_kept),
            ("expired_dropped", &c.expired_dropped),
            ("hint_files_read", &c.hint_files_read),
            ("hint_files_rejected", &c.hint_files_rejected),
            ("torn_bytes_truncated", &c.torn_bytes_truncated),
        ] {
            stats.extra.insert(name.into(), counter.load(Relaxed));
        }
        let failures = inner.merge_failures.stopping_writes();
        stats.extra.insert("background_failures".into(), failures);
        Ok(stats)
    }

    fn close(mut self) -> Result<()> {
        self.stop_merger();
        self.sync()
    }
}
