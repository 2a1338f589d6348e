//! The value log: where WiscKey keeps its values, in stage 2's segments.
//!
//! The value log (vlog) is a directory of **segments** (`vlog/00000007.seg`), each a
//! bitcask segment byte for byte ([`bitcask::record`]): a 16-byte header (magic
//! `BITCASKS`, version 1, segment id), then records back to back, and, once the segment is
//! full, a **seal** record. Nothing about the bytes is new; only their use is:
//!
//! | bitcask record field | what WiscKey puts there |
//! |---|---|
//! | CRC32 | as bitcask: over everything after it |
//! | sequence number | the number of the **write batch** the record belongs to: 1, 2, 3... in the order of the appends (0 for the seal) |
//! | expiry | always 0: never expires |
//! | kind | 0 (put) for a value, 1 (tombstone) for a delete, 2 for the seal |
//! | key, value | the key and the value, whole |
//!
//! So the record of `put("apple", "a red fruit")`, the first write batch after the
//! store was made, is 43 bytes at offset 16 of segment 1: `crc(4) | 01 00 00 00 00 00 00 00
//! | 00 00 00 00 00 00 00 00 | 00 | 05 00 | 0b 00 00 00 | apple | a red fruit`, and the tree's
//! pointer to it is `01 | 01 00 00 00 | 10 00 00 00 00 00 00 00 | 2b 00 00 00`
//! (`tests/snapshots.rs` pins both).
//!
//! The record keeps its **key** so that the garbage collector, reading a segment front to
//! back, can ask the tree whether the key still points at it ([`crate::gc`]). Its **CRC** lets
//! every read check that the bytes a pointer names are whole, and the key that they are
//! the value of the key asked for.
//!
//! ## Every write goes to the log
//!
//! Every op of every write is appended here, in the order the writes are made: a value at
//! or over `value_threshold` (the tree gets a pointer to it), a smaller value too (the tree
//! gets the value itself, and the log's copy is dead from the start) and a delete, as a
//! tombstone (dead from the start). The small values and the deletes cost a few bytes
//! each, and they make the log a complete record of the writes in their order, which is
//! what recovery needs to decide, after a power loss, which of the tree's last writes may
//! stay ([`crate::recovery`]). (The WiscKey paper goes further and drops the tree's own
//! write-ahead log, using this log instead; this stage keeps stage 4 unchanged.)
//!
//! ## Write batches
//!
//! A write batch's records are appended together, in one append, and **never split
//! between two segments**: a batch that would take the active segment past
//! `vlog_segment_bytes` seals it first (a batch larger than a segment fills a fresh one
//! alone). They all carry the batch's number, so a reader of a segment (a dump,
//! [`mod@crate::inspect`]) sees which records stand or fall together: the tree takes a batch
//! whole or not at all, and recovery drops a whole batch when any of its values is lost
//! ([`crate::recovery`]). After an open the numbers go on from the newest segment's last
//! one (from 1 in an empty segment): only neighbours within one segment are compared.
//!
//! ## Appending, sealing, syncing
//!
//! One segment, the **active** one (the highest id), takes appends. [`ValueLog::append`]
//! writes a batch's records with one append call and returns a pointer to each. When the
//! active segment holds `vlog_segment_bytes`, it is
//! **sealed** as bitcask seals: a seal record appended, the file fsynced, and only then the
//! next segment created and its directory entry synced. So every segment but the active
//! one is durable and whole, and after a power loss only the active segment can have lost
//! its tail, which recovery finds and cuts.
//!
//! [`ValueLog::sync_to_end`] fsyncs the active segment: everything appended so far is then
//! durable (older segments were synced when sealed). It does not take the writer's lock,
//! so the tree may call it (as its WAL barrier) from inside a write.
//!
//! A failed fsync is final, as in every stage: after it (or an append that failed and could
//! not be cut back off) every append and sync fails until the store is reopened.
//!
//! ## Reading by pointer
//!
//! [`Segment::read`] reads the whole record a [`ValuePointer`] names in one positioned read
//! and checks, in this order, that it lies inside the segment, that its CRC matches, that
//! it is a put, and that its key is the key asked for. Any failure is
//! [`kv_shared::Error::Corruption`] naming the segment file and the offset: a read never
//! returns bytes that are not the value written for that key.
//!
//! ## Deleting segments that readers hold
//!
//! A segment is held in an `Arc` by the table of segments, by every cursor (which copies
//! the table when it is made) and by every read in flight. The garbage collector
//! **retires** a segment: it drops it from the table and marks it obsolete
//! ([`kv_shared::RemoveWhenObsolete`]); the file is removed when the last holder lets go.
//! So a cursor opened before a collection reads its values after it, on any file system
//! (on Unix an unlinked file that is still open stays readable, but the simulated disks of
//! the tests make no such promise, and this way nothing relies on it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bitcask::file_names::FileName;
use bitcask::record::{self, Kind, RecordRef, SEGMENT_HEADER_LEN};

use kv_shared::{Error, FileRef, Fs, RemoveWhenObsolete, Result};

use crate::value_pointer::ValuePointer;

/// The length of the seal record that ends every sealed segment.
pub fn seal_len() -> u64 {
    record::seal_record().len() as u64
}

/// `mutex`, locked, whether or not a thread panicked holding it (the state it guards is
/// left whole by every change: a length, a flag, an `Arc`).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One segment of the value log.
#[derive(Debug)]
pub struct Segment {
    id: u32,
    file: FileRef,
    /// The file's length as of the last append (what readers may read).
    len: AtomicU64,
    /// Bytes of records known to be dead: small values and tombstones (dead when written),
    /// and what the garbage collector found dead or moved away.
    dead_bytes: AtomicU64,
    /// Bytes of records dead when written (small values and tombstones): no pointer ever
    /// named them, whatever the tree holds.
    born_dead: AtomicU64,
    removal: RemoveWhenObsolete,
}

impl Segment {
    /// The segment `id` over `file` (in `fs`), `len` bytes long.
    pub fn new(fs: &Fs, id: u32, file: FileRef, len: u64) -> Segment {
        let removal = RemoveWhenObsolete::new(fs, file.path());
        Segment {
            id,
            file,
            len: AtomicU64::new(len),
            dead_bytes: AtomicU64::new(0),
            born_dead: AtomicU64::new(0),
            removal,
        }
    }

    /// Creates segment `id` in `dir` and writes its header (the directory is not synced).
    ///
    /// # Errors
    /// [`Error::Io`]; no file is left behind.
    pub fn create(fs: &Fs, dir: &Path, id: u32) -> Result<Segment> {
        let path = FileName::Segment(id).path(dir);
        let file = fs.create(&path)?;
        if let Err(e) = file.append(&record::encode_segment_header(id)) {
            let _ = fs.remove_if_exists(&path);
            return Err(e);
        }
        Ok(Segment::new(fs, id, file, SEGMENT_HEADER_LEN))
    }

    /// The segment's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The open file.
    pub fn file(&self) -> &FileRef {
        &self.file
    }

    /// The segment's length in bytes.
    pub fn len(&self) -> u64 {
        self.len.load(Relaxed)
    }

    /// True when the segment holds no record (only its header).
    pub fn is_empty(&self) -> bool {
        self.len() <= SEGMENT_HEADER_LEN
    }

    /// Bytes of records known to be dead.
    pub fn dead_bytes(&self) -> u64 {
        self.dead_bytes.load(Relaxed)
    }

    /// Bytes of records dead when written: small values and tombstones.
    pub fn born_dead(&self) -> u64 {
        self.born_dead.load(Relaxed)
    }

    /// Counts `bytes` more of records dead when written.
    pub fn add_born_dead(&self, bytes: u64) {
        self.born_dead.fetch_add(bytes, Relaxed);
        self.dead_bytes.fetch_add(bytes, Relaxed);
    }

    /// Sets the dead bytes to `bytes` (what a collection measured).
    pub fn set_dead(&self, bytes: u64) {
        self.dead_bytes.store(bytes, Relaxed);
    }

    /// The value of `key` in the record `pointer` names, read in one positioned read and
    /// checked (see the module documentation).
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset when a check fails; [`Error::Io`].
    pub fn read(&self, pointer: &ValuePointer, key: &[u8]) -> Result<Vec<u8>> {
        self.check_bounds(pointer)?;
        let bytes = self
            .file
            .read_vec_at(pointer.offset, pointer.len as usize)?;
        self.value_in(bytes, pointer, key)
    }

    /// Refuses a pointer whose record does not lie inside the segment, naming the offset
    /// it names, or the segment's end when that is before it.
    ///
    /// # Errors
    /// [`Error::Corruption`].
    pub fn check_bounds(&self, pointer: &ValuePointer) -> Result<()> {
        let len = self.len();
        if pointer.segment == self.id && pointer.end() <= len {
            return Ok(());
        }
        Err(Error::corruption(
            self.file.path(),
            pointer.offset.min(len),
            format!(
                "a value pointer names bytes {}..{} of segment {}, which is {len} bytes long",
                pointer.offset,
                pointer.end(),
                pointer.segment
            ),
        ))
    }

    /// The value of `key` in `bytes`, the record `pointer` names, checked: CRC, kind, key.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset when a check fails.
    pub fn value_in(
        &self,
        mut bytes: Vec<u8>,
        pointer: &ValuePointer,
        key: &[u8],
    ) -> Result<Vec<u8>> {
        let path = self.file.path();
        let r = record::decode_record(&bytes).map_err(|e| {
            let mut e = e;
            e.detail = format!("the value record a pointer names: {}", e.detail);
            e.into_corruption(path, pointer.offset)
        })?;
        if r.kind != Kind::Put || r.key != key {
            return Err(Error::corruption(
                path,
                pointer.offset,
                format!(
                    "the record here is a {} of key {}, not the value of key {}",
                    r.kind.name(),
                    kv_shared::dump::quoted(r.key, 24),
                    kv_shared::dump::quoted(key, 24)
                ),
            ));
        }
        let start = record::RECORD_HEADER_LEN + key.len();
        bytes.drain(..start);
        Ok(bytes)
    }

    /// Marks the segment obsolete: its file is removed when the last holder drops it.
    pub fn retire(&self) {
        self.removal.mark_obsolete();
    }
}

/// One record to append: a value (`Kind::Put`) or a delete (`Kind::Tombstone`).
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// Put or tombstone.
    pub kind: Kind,
    /// The key.
    pub key: &'a [u8],
    /// The value (empty for a tombstone).
    pub value: &'a [u8],
    /// True when no pointer will name the record (a small value, a tombstone): it is
    /// counted as dead at once.
    pub dead: bool,
}

impl NewRecord<'_> {
    /// The record's bytes, as a record of write batch number `batch`.
    pub fn encode(&self, batch: u64) -> Vec<u8> {
        RecordRef {
            seq: batch,
            expiry: 0,
            kind: self.kind,
            key: self.key,
            value: self.value,
        }
        .encode()
    }
}

/// The append side: the active segment and what may be appended.
#[derive(Debug)]
struct Head {
    active: Arc<Segment>,
    next_id: u32,
    /// The active segment got its seal, but the next one could not be created yet.
    sealed: bool,
    /// Recovery left the active segment with an unsynced tail from this length on: it is
    /// cut before anything else is appended ([`ValueLog::finish_recovery`]).
    cut: Option<u64>,
    /// The number the next write batch's records carry.
    next_batch: u64,
    /// Why appends and syncs are refused (a failed fsync, an append not cut back off).
    failed: Option<String>,
}

impl Head {
    /// `Err` once a failure stopped the log.
    fn check(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(Error::io(
                self.active.file().path(),
                std::io::Error::other(format!(
                    "the value log stopped after a failure ({why}); reopen the store"
                )),
            )),
        }
    }

    /// Stops the log after `e`, and returns it.
    fn fail(&mut self, e: Error) -> Error {
        self.failed.get_or_insert_with(|| e.to_string());
        e
    }
}

/// What recovery hands to [`ValueLog::new`].
#[derive(Debug)]
pub struct Opened {
    /// Every segment, by id, the active one included.
    pub segments: BTreeMap<u32, Arc<Segment>>,
    /// The segment appends go to (the highest id).
    pub active: Arc<Segment>,
    /// True when the active segment is sealed already: the first append starts a new one.
    pub sealed: bool,
    /// The active segment's unsynced tail starts here: cut before the first append.
    pub cut: Option<u64>,
    /// The number of the first write batch to append: one more than the last in the
    /// active segment.
    pub next_batch: u64,
}

/// The value log: its segments, and the append head.
#[derive(Debug)]
pub struct ValueLog {
    fs: Fs,
    dir: PathBuf,
    segment_bytes: u64,
    segments: RwLock<BTreeMap<u32, Arc<Segment>>>,
    head: Mutex<Head>,
    /// Segments started since open (each one seals the one before).
    started: AtomicU64,
}

impl ValueLog {
    /// The value log in `dir` (on `fs`) as recovery found it, sealing segments at
    /// `segment_bytes`.
    pub fn new(fs: &Fs, dir: &Path, segment_bytes: u64, opened: Opened) -> ValueLog {
        let next_id = opened.active.id() + 1;
        ValueLog {
            fs: fs.clone(),
            dir: dir.to_path_buf(),
            segment_bytes,
            segments: RwLock::new(opened.segments),
            head: Mutex::new(Head {
                active: opened.active,
                next_id,
                sealed: opened.sealed,
                cut: opened.cut,
                next_batch: opened.next_batch,
                failed: None,
            }),
            started: AtomicU64::new(0),
        }
    }

    /// The directory of the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The table of segments, for reading (hold it to keep a collection from retiring a
    /// segment meanwhile).
    pub fn segments(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Arc<Segment>>> {
        self.segments.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of the active segment: every segment with a lower id is sealed.
    pub fn active_id(&self) -> u32 {
        lock(&self.head).active.id()
    }

    /// How many segments were started since open: a change means a segment was sealed.
    pub fn segments_started(&self) -> u64 {
        self.started.load(Relaxed)
    }

    // Exercise 5.1: append a write batch to the value log. Read: chapter 5, "Design".
    // Tests: lib::value_log::tests::a_batch_is_appended_whole_in_one_segment_under_one_number
    // Tests: snapshots::value_log_segment_dump
    /// Appends `records`, one write batch, in order and all in one segment, and returns a
    /// pointer to each. They are handed to the OS in one append before this returns. Each
    /// record carries the batch's number in its sequence-number field.
    ///
    /// # Errors
    /// [`Error::Io`]; a failed append is cut back off (or the log stops).
    pub fn append(&self, records: &[NewRecord<'_>]) -> Result<Vec<ValuePointer>> {
        let mut head = lock(&self.head);
        head.check()?;
        let batch = head.next_batch;
        let encoded: Vec<Vec<u8>> = records.iter().map(|r| r.encode(batch)).collect();
        let total: u64 = encoded.iter().map(|e| e.len() as u64).sum();
        let used = head.active.len();
        let full = used > SEGMENT_HEADER_LEN && used + total > self.segment_bytes;
        if head.sealed || head.cut.is_some() || full {
            self.rotate(&mut head)?;
        }
        let (segment, start) = (head.active.id(), head.active.len());
        let mut buf = Vec::with_capacity(total as usize);
        let (mut pointers, mut dead) = (Vec::with_capacity(records.len()), 0);
        for (r, bytes) in records.iter().zip(&encoded) {
            let len = bytes.len() as u32;
            let offset = start + buf.len() as u64;
            pointers.push(ValuePointer {
                segment,
                offset,
                len,
            });
            dead += if r.dead { u64::from(len) } else { 0 };
            buf.extend_from_slice(bytes);
        }
        self.flush(&mut head, &buf, dead)?;
        head.next_batch += 1;
        Ok(pointers)
    }

    /// Appends `buf` to the active segment; counts `dead` bytes of it dead.
    fn flush(&self, head: &mut Head, buf: &[u8], dead: u64) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let active = head.active.clone();
        if let Err(e) = active.file().append(buf) {
            if active.file().truncate(active.len()).is_err() {
                return Err(head.fail(e));
            }
            return Err(e);
        }
        active.len.fetch_add(buf.len() as u64, Relaxed);
        active.add_born_dead(dead);
        Ok(())
    }

    /// Seals the active segment (cutting recovery's unsynced tail first) and starts the
    /// next one: seal record, fsync, new segment, directory sync, in that order.
    fn rotate(&self, head: &mut Head) -> Result<()> {
        if let Some(valid_len) = head.cut {
            self.cut_tail(head, valid_len)?;
            head.cut = None;
        }
        if !head.sealed {
            let active = head.active.clone();
            let seal = record::seal_record();
            if let Err(e) = active.file().append(&seal) {
                if active.file().truncate(active.len()).is_err() {
                    return Err(head.fail(e));
                }
                return Err(e);
            }
            head.sealed = true;
            active.len.fetch_add(seal.len() as u64, Relaxed);
            active.file().sync().map_err(|e| head.fail(e))?;
        }
        let id = head.next_id;
        let segment = Arc::new(Segment::create(&self.fs, &self.dir, id)?);
        head.next_id += 1;
        // The new segment's entry must be durable before it holds a record that an older
        // segment's loss could otherwise outlive.
        self.fs.sync_dir(&self.dir).map_err(|e| head.fail(e))?;
        self.segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, segment.clone());
        head.active = segment;
        head.sealed = false;
        self.started.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Cuts the active segment to `valid_len` (rewriting its header when that is all that
    /// is left, or less), and syncs the cut.
    fn cut_tail(&self, head: &mut Head, valid_len: u64) -> Result<()> {
        let active = head.active.clone();
        let file = active.file();
        let cut = if valid_len < SEGMENT_HEADER_LEN {
            file.truncate(0)
                .and_then(|()| file.append(&record::encode_segment_header(active.id())))
        } else {
            file.truncate(valid_len)
        };
        cut.and_then(|()| file.sync()).map_err(|e| head.fail(e))?;
        active.len.store(valid_len.max(SEGMENT_HEADER_LEN), Relaxed);
        Ok(())
    }

    /// Ends recovery: cuts the unsynced tail recovery found and starts a new segment, when
    /// there was one (so no record is ever written where a lost one was), or a sealed
    /// active segment is found.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn finish_recovery(&self) -> Result<()> {
        let mut head = lock(&self.head);
        if head.cut.is_some() || head.sealed {
            self.rotate(&mut head)?;
        }
        Ok(())
    }

    /// Seals the active segment if it holds any record, so that a collection can take
    /// every record written so far.
    ///
    /// # Errors
    /// [`Error::Io`]; refused after a failure.
    pub fn seal_active(&self) -> Result<()> {
        let mut head = lock(&self.head);
        head.check()?;
        if head.sealed || head.cut.is_some() || !head.active.is_empty() {
            self.rotate(&mut head)?;
        }
        Ok(())
    }

    /// Makes every record appended so far durable: fsyncs the active segment (every other
    /// one was synced when it was sealed). Does not wait for appends in flight: it syncs
    /// what was appended before it was called.
    ///
    /// # Errors
    /// [`Error::Io`]; after a failure the log stops.
    pub fn sync_to_end(&self) -> Result<()> {
        let active = {
            let head = lock(&self.head);
            head.check()?;
            head.active.clone()
        };
        if let Err(e) = active.file().sync() {
            return Err(lock(&self.head).fail(e));
        }
        Ok(())
    }

    /// Drops `id` from the table of segments and marks it obsolete: its file goes when the
    /// last cursor or read holding it lets go.
    pub fn retire(&self, id: u32) {
        let removed = self
            .segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(segment) = removed {
            segment.retire();
        }
    }

    /// Bytes in every segment, and the dead bytes known.
    pub fn usage(&self) -> (u64, u64, usize) {
        let segments = self.segments();
        let bytes = segments.values().map(|s| s.len()).sum();
        let dead = segments.values().map(|s| s.dead_bytes()).sum();
        (bytes, dead, segments.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of key `key` and a value of `len` bytes, dead or not.
    fn put<'a>(key: &'a [u8], value: &'a [u8], dead: bool) -> NewRecord<'a> {
        NewRecord {
            kind: Kind::Put,
            key,
            value,
            dead,
        }
    }

    /// The record `p` names, decoded: its batch number, kind and key.
    fn record_at(log: &ValueLog, p: &ValuePointer) -> (u64, Kind, Vec<u8>) {
        let segment = log.segments()[&p.segment].clone();
        let bytes = segment
            .file()
            .read_vec_at(p.offset, p.len as usize)
            .unwrap();
        let r = record::decode_record(&bytes).unwrap();
        (r.seq, r.kind, r.key.to_vec())
    }

    #[test]
    fn a_batch_is_appended_whole_in_one_segment_under_one_number() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let found = crate::recovery::recover_vlog(&fs, tmp.path()).unwrap();
        let log = ValueLog::new(&fs, tmp.path(), 200, found.opened);
        let value = [b'v'; 50]; // a record of a 1-byte key and this value: 78 bytes
        let tombstone = NewRecord {
            kind: Kind::Tombstone,
            key: b"b",
            value: b"",
            dead: true,
        };
        let first = log.append(&[put(b"a", &value, false), tombstone]).unwrap();
        let at = |segment, offset, len| ValuePointer {
            segment,
            offset,
            len,
        };
        assert_eq!(first, [at(1, 16, 78), at(1, 94, 28)]);
        assert_eq!(record_at(&log, &first[0]), (1, Kind::Put, b"a".to_vec()));
        assert_eq!(
            record_at(&log, &first[1]),
            (1, Kind::Tombstone, b"b".to_vec())
        );
        let segment = log.segments()[&1].clone();
        assert_eq!(segment.read(&first[0], b"a").unwrap(), value);
        assert_eq!((segment.len(), segment.born_dead()), (122, 28));

        // 156 more bytes do not fit in segment 1's 200: the batch starts segment 2, whole.
        let second = log
            .append(&[put(b"c", &value, false), put(b"d", &value, true)])
            .unwrap();
        assert_eq!(second, [at(2, 16, 78), at(2, 94, 78)]);
        assert_eq!(record_at(&log, &second[1]), (2, Kind::Put, b"d".to_vec()));
        assert_eq!(log.segments_started(), 1);
        let sealed = fs.read_all(&tmp.path().join("00000001.seg")).unwrap();
        assert!(sealed.ends_with(&record::seal_record()), "segment 1 sealed");
        assert_eq!(log.segments()[&2].born_dead(), 78);

        // A batch larger than a segment fills a new one alone.
        let records = [put(b"e", &value, false); 3];
        let third = log.append(&records).unwrap();
        assert!(third.iter().all(|p| p.segment == 3), "{third:?}");
        assert_eq!(third[2], at(3, 172, 78));
        assert_eq!(record_at(&log, &third[2]).0, 3);
        assert_eq!(log.segments()[&3].len(), 250);
        assert_eq!(log.active_id(), 3);
    }
}
