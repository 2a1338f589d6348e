//! One open segment file, shared between the writer, readers and the merge.
//!
//! A [`Segment`] is held in an `Arc`: the engine's segment table holds one reference, and so
//! does every `get` in flight, every open cursor (a scan walks one) and a running merge.
//! That reference count is what makes deleting old segments after a merge safe. The merge
//! does not delete its inputs; it **retires** them ([`Segment::retire`]) and drops the
//! table's reference. The files are removed in [`Drop`], when the last reference goes, so a
//! reader that picked up a segment just before the switch can still read it to the end.
//!
//! A retired segment also holds a share of its merge's [`CommitGuard`]; when the last input
//! of a merge is gone, the guard removes the merge's commit record (see
//! [`crate::merge_commit`]), because only then is there nothing left for recovery to finish.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use kv_shared::{Error, FileRef, Fs, Result};

use crate::engine::unpoisoned;
use crate::file_names::FileName;
use crate::keydir::Entry;
use crate::record::{self, Kind, RecordRef};

/// The error for a keydir entry that names a segment the table does not hold.
pub fn missing_segment(dir: &Path, id: u32) -> Error {
    Error::corruption(dir, 0, format!("keydir points at missing segment {id}"))
}

/// One segment file and what the engine tracks about it.
#[derive(Debug)]
pub struct Segment {
    id: u32,
    file: FileRef,
    fs: Fs,
    dir: PathBuf,
    /// Length of the file (for the active segment: as of its last append).
    len: AtomicU64,
    /// Bytes of records that are not the newest of their key: overwritten or deleted values,
    /// and tombstones. Every record that is not its key's newest is counted here, so a
    /// segment with no dead bytes holds only the newest records of its keys.
    dead_bytes: AtomicU64,
    /// True when the segment has a hint file.
    has_hint: AtomicBool,
    /// Smallest sequence number in the segment (`u64::MAX` while it has none).
    min_seq: AtomicU64,
    /// Set by a merge that replaced this segment: delete the files on drop.
    retired: Mutex<Option<Arc<CommitGuard>>>,
}

impl Segment {
    /// A segment over an open file.
    pub fn new(fs: &Fs, dir: PathBuf, id: u32, file: FileRef) -> Segment {
        Segment {
            id,
            file,
            fs: fs.clone(),
            dir,
            len: AtomicU64::new(0),
            dead_bytes: AtomicU64::new(0),
            has_hint: AtomicBool::new(false),
            min_seq: AtomicU64::new(u64::MAX),
            retired: Mutex::new(None),
        }
    }

    /// Creates segment `id` in `dir` and writes its header.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn create(fs: &Fs, dir: PathBuf, id: u32) -> Result<Segment> {
        let file = fs.create(&FileName::Segment(id).path(&dir))?;
        let path = file.path().to_path_buf();
        if let Err(e) = file.append(&record::encode_segment_header(id)) {
            // A segment without its header would confuse recovery; leave no such file.
            let _ = fs.remove_if_exists(&path);
            return Err(e);
        }
        let segment = Segment::new(fs, dir, id, file);
        segment.set_file_len(record::SEGMENT_HEADER_LEN);
        Ok(segment)
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
    pub fn file_len(&self) -> u64 {
        self.len.load(Relaxed)
    }

    /// Records the segment's length.
    pub fn set_file_len(&self, len: u64) {
        self.len.store(len, Relaxed);
    }

    /// True when the segment has a hint file.
    pub fn has_hint(&self) -> bool {
        self.has_hint.load(Relaxed)
    }

    /// Records that the segment has a hint file.
    pub fn set_has_hint(&self) {
        self.has_hint.store(true, Relaxed);
    }

    /// Bytes of records that are not the newest of their key.
    pub fn dead_bytes(&self) -> u64 {
        self.dead_bytes.load(Relaxed)
    }

    /// Counts `bytes` more as dead.
    pub fn add_dead(&self, bytes: u64) {
        self.dead_bytes.fetch_add(bytes, Relaxed);
    }

    /// Smallest sequence number written to the segment (`u64::MAX` for none).
    pub fn min_seq(&self) -> u64 {
        self.min_seq.load(Relaxed)
    }

    /// Notes that a record with sequence number `seq` is in the segment.
    pub fn saw_seq(&self, seq: u64) {
        self.min_seq.fetch_min(seq, Relaxed);
    }

    /// Reads the value of `key`, whose keydir entry is `entry`: see
    /// [`Segment::read_value_into`].
    ///
    /// # Errors
    /// As [`Segment::read_value_into`].
    pub fn read_value(&self, key: &[u8], entry: &Entry) -> Result<Vec<u8>> {
        let mut value = Vec::new();
        self.read_value_into(key, entry, &mut value)?;
        Ok(value)
    }

    /// Reads the value of `key`, whose keydir entry is `entry`, into `buf` (replacing what it
    /// held), checking the checksum, the kind and that the record is `key`'s. A record of
    /// its own is one positioned read. A put of a batch is two (the batch's header, which
    /// gives its length, then the rest), because its checksum covers the whole batch.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset when any check fails; [`Error::Io`].
    pub fn read_value_into(&self, key: &[u8], entry: &Entry, buf: &mut Vec<u8>) -> Result<()> {
        let value = if entry.in_batch() {
            self.read_batch(entry.offset, buf)?;
            let r = self.decode(buf, entry.offset)?;
            let index = entry.seq.checked_sub(r.seq);
            index.and_then(|i| r.batch_value(i, key).filter(|_| r.kind == Kind::Batch))
        } else {
            buf.resize(entry.record_len() as usize, 0);
            self.file.read_at(buf, entry.offset)?;
            let r = self.decode(buf, entry.offset)?;
            let wanted = r.kind == Kind::Put && r.key == key && r.seq == entry.seq;
            wanted.then(|| record::RECORD_HEADER_LEN + key.len()..buf.len())
        };
        let Some(value) = value else {
            return Err(Error::corruption(
                self.file.path(),
                entry.offset,
                "record is not the one the keydir points at",
            ));
        };
        buf.truncate(value.end);
        buf.drain(..value.start);
        Ok(())
    }

    /// Reads the batch record at `offset` into `buf`: its header, for its length, then the
    /// rest, once the length is known to lie inside the segment.
    fn read_batch(&self, offset: u64, buf: &mut Vec<u8>) -> Result<()> {
        let header = record::RECORD_HEADER_LEN;
        buf.resize(header, 0);
        self.file.read_at(buf, offset)?;
        let len =
            record::record_len(buf).map_err(|e| e.into_corruption(self.file.path(), offset))?;
        if offset + len as u64 > self.file_len() {
            return Err(Error::corruption(
                self.file.path(),
                offset,
                "batch record runs past the end of the segment",
            ));
        }
        buf.resize(len, 0);
        self.file
            .read_at(&mut buf[header..], offset + header as u64)
    }

    /// Decodes the whole record in `bytes`, read at `offset`.
    fn decode<'a>(&self, bytes: &'a [u8], offset: u64) -> Result<RecordRef<'a>> {
        record::decode_record(bytes).map_err(|e| e.into_corruption(self.file.path(), offset))
    }

    /// Marks the segment as replaced by a merge: its files are removed when the last
    /// reference is dropped, and `guard` is released after that.
    pub fn retire(&self, guard: Arc<CommitGuard>) {
        *unpoisoned(self.retired.lock()) = Some(guard);
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let retired = unpoisoned(self.retired.get_mut());
        if retired.is_some() {
            // Errors are left for recovery: the commit record stays while any input does.
            let _ = self
                .fs
                .remove_if_exists(&FileName::Hint(self.id).path(&self.dir));
            if self
                .fs
                .remove_if_exists(&FileName::Segment(self.id).path(&self.dir))
                .is_err()
            {
                // Keep the commit record: the next open finishes the deletion.
                if let Some(guard) = retired.take() {
                    guard.keep();
                }
            }
        }
        // The guard (if any) is dropped after this, once the files are gone.
    }
}

/// Removes a merge's commit record once every input segment of the merge is deleted.
#[derive(Debug)]
pub struct CommitGuard {
    fs: Fs,
    dir: PathBuf,
    commit: FileName,
    keep: AtomicBool,
}

impl CommitGuard {
    /// A guard for the commit record `commit` in `dir`.
    pub fn new(fs: &Fs, dir: PathBuf, commit: FileName) -> CommitGuard {
        CommitGuard {
            fs: fs.clone(),
            dir,
            commit,
            keep: AtomicBool::new(false),
        }
    }

    /// Leaves the commit record in place (an input could not be removed).
    pub fn keep(&self) {
        self.keep.store(true, Relaxed);
    }
}

impl Drop for CommitGuard {
    fn drop(&mut self) {
        if self.keep.load(Relaxed) {
            return;
        }
        // The removals of the inputs must be durable before the record that orders them
        // goes; if either step fails, recovery redoes the (idempotent) work.
        if self.fs.sync_dir(&self.dir).is_ok() {
            let _ = self.fs.remove_if_exists(&self.commit.path(&self.dir));
        }
    }
}
