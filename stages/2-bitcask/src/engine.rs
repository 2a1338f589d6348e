//! [`Bitcask`]: the engine, its write path, its read path, and its background merge thread.
//!
//! ## Threads and locks
//!
//! * `writer` (a mutex) serialises appends: it owns the active segment's length and the next
//!   sequence number. A put appends its record, then updates the keydir, then returns; the
//!   keydir is updated under the writer lock, so it always reflects appends in order.
//! * `state` (a read-write lock) holds the keydir and the table of segments. Readers take it
//!   briefly to copy one entry and one `Arc<Segment>`, then read the file without any lock.
//! * `merge_lock` lets one merge run at a time (the background thread's or `compact`'s).
//!   A merge holds no other lock while it copies; it takes `state` for reading to ask
//!   "is this record still live?" and for writing once, to switch the keydir.
//!
//! Locks are always taken in the order `merge_lock`, writer, state (a merge takes the writer
//! only to fsync the active segment before its commit point).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use kv_shared::{
    Engine, Error, Fs, KeyRange, OptionDoc, Options, Result, ScanIter, Stats, StoreDir, check_key,
    check_key_value,
};

use crate::config::{self, Config};
use crate::expiry::{self, NEVER};
use crate::keydir::{Entry, KeyDir};
use crate::record::{Kind, RecordRef, SEGMENT_HEADER_LEN, seal_record};
use crate::recovery;
use crate::segment::Segment;

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
    pub(crate) config: Config,
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

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// Appends one put or tombstone and points the keydir at it.
    fn append(&self, key: &[u8], value: &[u8], kind: Kind, expiry: u64) -> Result<()> {
        let mut w = lock(&self.writer);
        if w.broken {
            return Err(Error::io(
                w.active.file().path(),
                std::io::Error::other("an earlier write or sync failed; reopen the store"),
            ));
        }
        if w.sealed || w.len >= self.config.segment_bytes {
            self.rotate(&mut w)?;
        }
        let seq = w.next_seq;
        let bytes = RecordRef {
            seq,
            expiry,
            kind,
            key,
            value,
        }
        .encode();
        if let Err(e) = w.active.file().append(&bytes) {
            Self::undo_append(&mut w);
            return Err(e);
        }
        let entry = Entry {
            seq,
            expiry,
            offset: w.len,
            len: bytes.len() as u32,
            segment: w.active.id(),
        };
        w.next_seq += 1;
        w.len += bytes.len() as u64;
        w.active.set_file_len(w.len);
        w.active.saw_seq(seq);
        let mut st = write(&self.state);
        let old = match kind {
            Kind::Put => st.keydir.insert(key, entry),
            _ => {
                w.active.add_dead(entry.len as u64);
                st.keydir.remove(key)
            }
        };
        if let Some(old) = old
            && let Some(segment) = st.segments.get(&old.segment)
        {
            segment.add_dead(old.len as u64);
        }
        Ok(())
    }

    /// Cuts a partly written record off the active segment, or stops all writes if that fails.
    fn undo_append(w: &mut Writer) {
        if w.active.file().truncate(w.len).is_err() {
            w.broken = true;
        }
    }

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
        total > 0 && dead as f64 >= self.config.merge_dead_ratio * total as f64
    }

    fn request_merge(&self) {
        if self.config.background_merge {
            lock(&self.signal).requested = true;
            self.wake.notify_all();
        }
    }

    /// The background merge thread: waits for a request, merges, repeats until shutdown.
    fn merge_loop(self: Arc<Self>) {
        loop {
            {
                let mut signal = lock(&self.signal);
                while !signal.requested && !signal.shutdown {
                    signal = self.wake.wait(signal).unwrap_or_else(|p| p.into_inner());
                }
                if signal.shutdown {
                    return;
                }
                signal.requested = false;
            }
            if self.merge(false).is_err() {
                self.counters.merge_errors.fetch_add(1, Relaxed);
            }
        }
    }

    /// Makes every acknowledged write durable: fsyncs the active segment and the directory
    /// (sealed segments were fsynced when sealed).
    ///
    /// # Errors
    /// [`Error::Io`]; after a failed fsync, every later write and sync fails until reopen.
    pub(crate) fn sync_writes(&self) -> Result<()> {
        let mut w = lock(&self.writer);
        if w.broken {
            return Err(Error::io(
                w.active.file().path(),
                std::io::Error::other("an earlier write or sync failed; reopen the store"),
            ));
        }
        let synced = w
            .active
            .file()
            .sync()
            .and_then(|()| self.fs.sync_dir(&self.dir));
        if synced.is_err() {
            // After a failed fsync the kernel may have dropped the pages, and a later fsync
            // would succeed without them: no more writes or syncs until the store is reopened.
            w.broken = true;
        }
        synced
    }

    /// Seals the active segment if it holds any record, so a merge can take everything.
    fn rotate_if_used(&self) -> Result<()> {
        let mut w = lock(&self.writer);
        if w.sealed || w.len > SEGMENT_HEADER_LEN {
            self.rotate(&mut w)?;
        }
        Ok(())
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
        self.inner
            .counters
            .user_bytes_written
            .fetch_add((key.len() + value.len()) as u64, Relaxed);
        Ok(())
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn stop_merger(&mut self) {
        self.inner.stopping.store(true, SeqCst);
        lock(&self.inner.signal).shutdown = true;
        self.inner.wake.notify_all();
        if let Some(handle) = self.merger.take() {
            let _ = handle.join();
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
    const FORMAT_VERSION: u32 = 1;
    const OPTIONS: &'static [OptionDoc] = config::OPTIONS;

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        let config = Config::from_options(options)?;
        let fs = Fs::new(options.file_system());
        let store = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let r = recovery::recover(&fs, dir, config.hint_files)?;
        let counters = Counters::default();
        counters.hint_files_read.store(r.hint_files_read, Relaxed);
        counters
            .hint_files_rejected
            .store(r.hint_files_rejected, Relaxed);
        counters.torn_bytes_truncated.store(r.torn_bytes, Relaxed);
        let background = config.background_merge;
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
            }),
            state: RwLock::new(State {
                keydir: r.keydir,
                segments: r.segments,
                active: r.active.id(),
            }),
            config,
            merge_lock: Mutex::new(MergeStatus::default()),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            next_id: AtomicU32::new(r.next_id),
            counters,
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
        let engine = Bitcask { inner, merger };
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
        let segment = segment.ok_or_else(|| {
            Error::corruption(
                &inner.dir,
                0,
                format!("keydir points at missing segment {}", entry.segment),
            )
        })?;
        inner.counters.get_disk_reads.fetch_add(1, Relaxed);
        segment.read_value(key, &entry).map(Some)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        let present = read(&self.inner.state).keydir.get(key).is_some();
        if present {
            self.inner.append(key, b"", Kind::Tombstone, NEVER)?;
        }
        self.inner
            .counters
            .user_bytes_written
            .fetch_add(key.len() as u64, Relaxed);
        Ok(())
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        let now = expiry::now_millis();
        let (entries, segments) = {
            let st = read(&self.inner.state);
            (st.keydir.sorted_range(&range, now), st.segments.clone())
        };
        // The iterator holds its own references to the segments, so a merge that finishes
        // meanwhile cannot delete a file it still has to read.
        let dir = self.inner.dir.clone();
        Ok(Box::new(entries.into_iter().map(move |(key, entry)| {
            let segment = segments.get(&entry.segment).ok_or_else(|| {
                Error::corruption(
                    &dir,
                    0,
                    format!("keydir points at missing segment {}", entry.segment),
                )
            })?;
            let value = segment.read_value(&key, &entry)?;
            Ok((key.into_vec(), value))
        })))
    }

    fn sync(&self) -> Result<()> {
        self.inner.sync_writes()
    }

    /// Seals the active segment, then merges every immutable segment that holds a dead
    /// record or lacks a hint file, waiting for the merge to finish.
    fn compact(&self) -> Result<()> {
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
        Ok(stats)
    }

    fn close(mut self) -> Result<()> {
        self.stop_merger();
        self.sync()
    }
}
