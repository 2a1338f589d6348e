//! [`HashLog`]: the engine. One data file, one in-memory index, two locks.
//!
//! ## Operations
//!
//! * `put` and `delete` encode one [record](crate::record), append it to the data file with
//!   one write call, then point the [index](crate::index) at it (or remove the key). They
//!   return once the write call has handed the bytes to the operating system, so an
//!   acknowledged write survives a kill of the process. Deleting a key that is not live
//!   writes nothing: the index knows every live key, so there is nothing to hide.
//! * `get` looks the key up in the index and reads exactly its latest record with **one
//!   positioned read**, then decodes it, which verifies the checksum and that the record is
//!   for this key. Damage is [`Error::Corruption`], never a wrong value.
//! * `scan` copies the locations of the keys in range out of the index, sorts them, and
//!   reads the values one by one as the caller iterates (see [`Index::sorted_range`] for
//!   why this is the weak spot).
//! * `sync` fsyncs the data file. (Its directory entry was synced when it was created.)
//! * `compact` does nothing: stage 1 has no compaction. Every overwrite and every delete
//!   leaves dead bytes in the file forever; `stats` reports them as `dead_bytes`.
//!
//! ## Statistics
//!
//! Besides the shared [`Stats`] fields, `stats().extra` holds:
//!
//! * `dead_bytes`: bytes of the data file that no live key needs (overwritten values,
//!   tombstones, deleted values): what a compaction would reclaim, if stage 1 had one;
//! * `replayed_records`: records the last open read to rebuild the index, dead ones
//!   included: what start-up costs;
//! * `torn_tail_bytes`: bytes the last open cut off the end of the file as a torn tail.
//!
//! ## Concurrency
//!
//! The index sits behind a `RwLock`; appends are serialized by a `Mutex` around the
//! writer's state (the offset where the next record goes). A writer holds the mutex while
//! it appends and while it updates the index, so the index changes in the same order as the
//! file. Readers take the index's read lock only long enough to copy a [`Location`] out,
//! then read the file without any lock: records are never moved or changed once written,
//! so a location stays valid forever.
//!
//! That also makes scans consistent for free: a scan reads the records whose locations it
//! copied at its start, even if keys are overwritten or deleted while it runs. It shows the
//! store exactly as it was when `scan` was called.
//!
//! ## Failed writes and syncs
//!
//! If an append fails, part of the record may have reached the file. The writer cuts the
//! file back to where the record started and reports the error; the store goes on. If even
//! the cut fails, the end of the file is unknown, so the writer stops taking writes until
//! the store is reopened, whose recovery deals with whatever the file holds.
//!
//! If an fsync fails, the operating system may already have dropped the data it could not
//! write, and a later fsync that succeeds would not say so. So after a failed `sync`, every
//! later `sync`, `put` and `delete` fails too, until the store is reopened: the engine
//! never reports as durable what it cannot vouch for. Reads go on in both cases.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, RwLock};

use kv_shared::dump::quoted;
use kv_shared::{
    Engine, Error, FileRef, Fs, KeyRange, OptionDoc, Options, Result, ScanIter, Stats, StoreDir,
    check_key, check_key_value,
};

use crate::data_file::{self, FILE_HEADER_LEN};
use crate::index::{Index, Location};
use crate::record::Record;
use crate::recovery::recover;

/// A lock is poisoned only if a thread panicked while holding it, which no input can cause.
const POISONED: &str = "a thread panicked while holding a hashlog lock";

/// Stage 1: one append-only log file with an in-memory hash index. See the
/// [module documentation](self) and the [crate documentation](crate).
#[derive(Debug)]
pub struct HashLog {
    /// The locked store directory; held for the engine's lifetime.
    dir: StoreDir,
    /// The file layer, which counts every byte written.
    fs: Fs,
    /// `data.log`, opened for appends and positioned reads.
    file: FileRef,
    /// Live key → location of its latest record.
    index: RwLock<Index>,
    /// The writer's state; its lock serializes appends.
    writer: Mutex<Writer>,
    /// Key and value bytes of accepted puts and deletes since open.
    user_bytes_written: AtomicU64,
    /// Calls to `get` since open.
    gets: AtomicU64,
    /// Positioned reads done by those calls.
    get_disk_reads: AtomicU64,
    /// Records the last open replayed.
    replayed_records: u64,
    /// Bytes of torn tail the last open cut off.
    torn_tail_bytes: u64,
}

/// What the single writer at a time needs to know.
#[derive(Debug)]
struct Writer {
    /// Where the next record goes: the end of the last whole record.
    end: u64,
    /// Why the writer stopped taking writes and syncs until the store is reopened: an
    /// append that could not be undone, or a failed fsync. `None` while all is well.
    stopped: Option<&'static str>,
}

impl HashLog {
    /// The path of the data file.
    pub fn data_path(&self) -> &Path {
        self.file.path()
    }

    /// Appends `record` and updates the index, holding the writer's lock for both. A delete
    /// of a key that is not live appends nothing.
    fn append(&self, record: Record<'_>) -> Result<()> {
        let mut writer = self.writer.lock().expect(POISONED);
        self.check_not_stopped(&writer)?;
        // Only the writer changes the index, and we are the writer: a key found absent here
        // stays absent until we are done.
        let is_delete = record.value.is_none();
        if is_delete && self.index.read().expect(POISONED).get(record.key).is_none() {
            return Ok(());
        }
        let bytes = record.encode();
        let offset = writer.end;
        if let Err(err) = self.file.append(&bytes) {
            // Cut off whatever part of the record reached the file, so that the next record
            // starts where the index will say it does.
            if self.file.truncate(offset).is_err() {
                writer.stopped =
                    Some("an append failed and its partial record could not be cut off");
            }
            return Err(err);
        }
        writer.end = offset + bytes.len() as u64;
        let mut index = self.index.write().expect(POISONED);
        if is_delete {
            index.remove(record.key);
        } else {
            let len = bytes.len() as u32;
            index.insert(record.key, Location { offset, len });
        }
        Ok(())
    }

    /// Fails when the writer has stopped (see [`Writer::stopped`]).
    fn check_not_stopped(&self, writer: &Writer) -> Result<()> {
        match writer.stopped {
            None => Ok(()),
            Some(why) => Err(Error::io(
                self.file.path(),
                std::io::Error::other(format!("{why}; reopen the store")),
            )),
        }
    }

    /// Reads and decodes the record at `location`, checking that it is a put of `key`.
    fn read_value(&self, key: &[u8], location: Location) -> Result<Vec<u8>> {
        let bytes = self
            .file
            .read_vec_at(location.offset, location.len as usize)?;
        let corrupt = |detail: String| Error::corruption(self.file.path(), location.offset, detail);
        let record = Record::decode(&bytes).map_err(|e| corrupt(e.detail))?;
        match record.value {
            Some(value) if record.key == key => Ok(value.to_vec()),
            _ => Err(corrupt(format!(
                "the index points here for key {}, but the record is {} of key {}",
                quoted(key, 32),
                if record.value.is_some() {
                    "a put"
                } else {
                    "a delete"
                },
                quoted(record.key, 32),
            ))),
        }
    }
}

impl Engine for HashLog {
    const NAME: &'static str = "hashlog";
    const FORMAT_VERSION: u32 = data_file::VERSION;
    /// Stage 1 has nothing to tune.
    const OPTIONS: &'static [OptionDoc] = &[];

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let fs = Fs::new(options.file_system());
        let dir = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let file = data_file::open_or_create(&fs, dir.path())?;
        let recovered = recover(&file)?;
        Ok(HashLog {
            dir,
            fs,
            file,
            index: RwLock::new(recovered.index),
            writer: Mutex::new(Writer {
                end: recovered.end,
                stopped: None,
            }),
            user_bytes_written: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            get_disk_reads: AtomicU64::new(0),
            replayed_records: recovered.records,
            torn_tail_bytes: recovered.torn_tail_bytes,
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key_value(key, value)?;
        self.append(Record::put(key, value))?;
        self.user_bytes_written
            .fetch_add((key.len() + value.len()) as u64, Relaxed);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.gets.fetch_add(1, Relaxed);
        let Some(location) = self.index.read().expect(POISONED).get(key) else {
            return Ok(None);
        };
        self.get_disk_reads.fetch_add(1, Relaxed);
        self.read_value(key, location).map(Some)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.append(Record::delete(key))?;
        self.user_bytes_written.fetch_add(key.len() as u64, Relaxed);
        Ok(())
    }

    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        let entries = self.index.read().expect(POISONED).sorted_range(&range);
        let mut failed = false;
        Ok(Box::new(entries.into_iter().map_while(
            move |(key, location)| {
                if failed {
                    return None;
                }
                let item = self.read_value(&key, location).map(|value| (key, value));
                failed = item.is_err();
                Some(item)
            },
        )))
    }

    fn sync(&self) -> Result<()> {
        // The writer's lock is held only to look at the flag: appends go on during the fsync,
        // which covers at least everything appended before it began.
        self.check_not_stopped(&self.writer.lock().expect(POISONED))?;
        if let Err(err) = self.file.sync() {
            self.writer.lock().expect(POISONED).stopped =
                Some("an fsync failed, so data it covered may be lost");
            return Err(err);
        }
        Ok(())
    }

    /// Stage 1 has no compaction: this does nothing and returns `Ok`.
    fn compact(&self) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Result<Stats> {
        // Both locks, in the writers' order, so the file's end and the index agree.
        let (end, live_keys, live_data_bytes, live_record_bytes) = {
            let writer = self.writer.lock().expect(POISONED);
            let index = self.index.read().expect(POISONED);
            (
                writer.end,
                index.live_keys(),
                index.live_data_bytes(),
                index.live_record_bytes(),
            )
        };
        let (disk_bytes, file_count) = self.fs.dir_usage(self.dir.path())?;
        let mut stats = Stats {
            user_bytes_written: self.user_bytes_written.load(Relaxed),
            disk_bytes_written: self.fs.counters().bytes_written(),
            live_keys,
            live_data_bytes,
            disk_bytes,
            file_count,
            gets: self.gets.load(Relaxed),
            get_disk_reads: self.get_disk_reads.load(Relaxed),
            ..Stats::default()
        };
        let dead_bytes = end.saturating_sub(FILE_HEADER_LEN + live_record_bytes);
        stats.extra.insert("dead_bytes".into(), dead_bytes);
        stats
            .extra
            .insert("replayed_records".into(), self.replayed_records);
        stats
            .extra
            .insert("torn_tail_bytes".into(), self.torn_tail_bytes);
        Ok(stats)
    }

    fn close(self) -> Result<()> {
        self.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_file::DATA_FILE;

    #[test]
    fn data_file_lives_in_the_store_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let store = HashLog::open(tmp.path(), &Options::new()).unwrap();
        assert_eq!(store.data_path(), tmp.path().join(DATA_FILE));
        store.close().unwrap();
    }
}
