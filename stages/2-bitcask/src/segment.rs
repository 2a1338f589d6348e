//! One open segment file, shared between the writer, readers and the merge.
//!
//! A [`Segment`] is held in an `Arc`: the engine's segment table holds one reference, and so
//! does every `get` in flight, every open scan iterator and a running merge. That reference
//! count is what makes deleting old segments after a merge safe. The merge does not delete
//! its inputs; it **retires** them ([`Segment::retire`]) and drops the table's reference. The
//! files are removed in [`Drop`], when the last reference goes, so a reader that picked up a
//! segment just before the switch can still read it to the end.
//!
//! A retired segment also holds a share of its merge's [`CommitGuard`]; when the last input
//! of a merge is gone, the guard removes the merge's commit record (see
//! [`crate::merge_commit`]), because only then is there nothing left for recovery to finish.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use kv_shared::{Error, FileRef, Fs, Result};

use crate::files::FileName;
use crate::keydir::Entry;
use crate::record::{self, Kind};

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

    /// Reads the record `entry` points at and returns its value, checking the checksum, the
    /// kind and that the record is `key`'s. One positioned read.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the file and offset when any check fails; [`Error::Io`].
    pub fn read_value(&self, key: &[u8], entry: &Entry) -> Result<Vec<u8>> {
        let mut buf = self.file.read_vec_at(entry.offset, entry.len as usize)?;
        let header = {
            let r = record::decode_record(&buf)
                .map_err(|e| e.into_corruption(self.file.path(), entry.offset))?;
            if r.kind != Kind::Put || r.key != key || r.seq != entry.seq {
                return Err(Error::corruption(
                    self.file.path(),
                    entry.offset,
                    "record is not the one the keydir points at",
                ));
            }
            record::RECORD_HEADER_LEN + r.key.len()
        };
        buf.drain(..header);
        Ok(buf)
    }

    /// Marks the segment as replaced by a merge: its files are removed when the last
    /// reference is dropped, and `guard` is released after that.
    pub fn retire(&self, guard: Arc<CommitGuard>) {
        *self.retired.lock().unwrap_or_else(|p| p.into_inner()) = Some(guard);
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let retired = self.retired.get_mut().unwrap_or_else(|p| p.into_inner());
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
