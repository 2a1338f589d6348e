//! [`HashLog`]: the engine. One data file, one in-memory index, two locks.
//!
//! ## Operations
//!
//! * `put` and `delete` encode one [record], append it to the data file with
//!   one write call, then point the [index](crate::index) at it (or remove the key). They
//!   return once the write call has handed the bytes to the operating system, so an
//!   acknowledged write survives a kill of the process. Deleting a key that is not live
//!   writes nothing: the index knows every live key, so there is nothing to hide.
//! * `write` does the same for a whole [`WriteBatch`]: its ops become **one** batch record,
//!   appended with one write call, and the index takes all of its ops in one hold of its
//!   write lock. So a reader sees all of the batch or none of it, and so does recovery,
//!   which keeps or drops a record whole. An empty batch writes nothing.
//! * `get` looks the key up in the index and reads exactly its latest record with **one
//!   positioned read**, then decodes it, which verifies the checksum and that the record is
//!   for this key. Damage is [`Error::Corruption`], never a wrong value. A value that a
//!   batch wrote is read with its whole batch record, which its checksum covers.
//! * `cursor` copies every live key and its location out of the index and sorts them, then
//!   reads each value as it gets to it ([`crate::cursor`]). `scan` and `scan_rev` do the
//!   same with only the keys in their range (see [`Index::sorted_range`] for why the sort
//!   is the weak spot).
//! * `sync` fsyncs the data file. (Its directory entry was synced when it was created.)
//! * With the option `sync_writes=true` (the stage's only option, off by default), every
//!   put, delete and batch also fsyncs the data file before it returns, still holding the
//!   writer's lock: an acknowledged write then survives a power loss, not only a kill of the
//!   process, at the price of one fsync per write.
//! * `compact` does nothing: stage 1 has no compaction. Every overwrite and every delete
//!   leaves dead bytes in the file forever; `stats` reports them as `dead_bytes`.
//!
//! ## Statistics
//!
//! Besides the shared [`Stats`] fields, `stats().extra` holds:
//!
//! * `dead_bytes`: bytes of the data file that no live key needs (overwritten values,
//!   tombstones, deleted values, the headers of batch records): what a compaction would
//!   reclaim, if stage 1 had one;
//! * `replayed_records`: records the last open read to rebuild the index, dead ones
//!   included: what start-up costs;
//! * `torn_tail_bytes`: bytes the last open cut off the end of the file as a torn tail.
//!
//! ## Concurrency
//!
//! The index sits behind a `RwLock`; appends are serialized by a `Mutex` around the
//! writer's state (the offset where the next record goes). A writer holds the mutex while
//! it appends and while it updates the index, so the index changes in the same order as the
//! file. Readers take the index's read lock only long enough to copy a [`Location`] out (or,
//! for a cursor or a scan, every location they will visit), then read the file without any
//! lock: records are never moved or changed once written, so a location stays valid forever.
//!
//! That also makes cursors and scans snapshots for free: they read the records whose
//! locations they copied at their start, even if keys are overwritten or deleted while they
//! run. They show the store exactly as it was when they were created.
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
//! later `sync`, `put`, `delete` and `write` fails too, until the store is reopened: the
//! engine never reports as durable what it cannot vouch for. Reads go on in both cases.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{LockResult, Mutex, RwLock};

use kv_shared::dump::quoted;
use kv_shared::{
    BoxCursor, Engine, Error, FileRef, Fs, KeyRange, OptionDoc, Options, Result, Stats, StoreDir,
    WriteBatch, check_key, check_key_value,
};

use crate::cursor::HashLogCursor;
use crate::data_file::{self, FILE_HEADER_LEN};
use crate::file_names;
use crate::index::{Index, Location};
use crate::record::{self, BatchRecord, Decoded, Record};
use crate::recovery::recover;

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
    /// Live key → location of its latest value.
    index: RwLock<Index>,
    /// The writer's state; its lock serializes appends.
    writer: Mutex<Writer>,
    /// Key and value bytes of accepted puts, deletes and batches since open.
    user_bytes_written: AtomicU64,
    /// Calls to `get` since open.
    gets: AtomicU64,
    /// Positioned reads done by those calls.
    get_disk_reads: AtomicU64,
    /// Records the last open replayed.
    replayed_records: u64,
    /// Bytes of torn tail the last open cut off.
    torn_tail_bytes: u64,
    /// The option `sync_writes`: fsync every write before it returns.
    sync_writes: bool,
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

/// The guard of a lock just taken. A lock is poisoned only if a thread panicked while
/// holding it, which no input can cause: that is a bug, so this panics too, rather than go
/// on with an index the panic may have left half changed.
fn unpoisoned<G>(result: LockResult<G>) -> G {
    result.expect("a thread panicked while holding a hashlog lock")
}

impl HashLog {
    /// The path of the data file.
    pub fn data_path(&self) -> &Path {
        self.file.path()
    }

    // Exercise 1.4: append a record and point the index at it. Read: chapter 1, "Design".
    // Tests: engine::deleting_a_missing_key_writes_nothing, engine::a_failed_append_is_undone
    /// Appends a put or delete `record` and updates the index, holding the writer's lock
    /// for both. A delete of a key that is not live appends nothing.
    fn append(&self, record: Record<'_>) -> Result<()> {
        let mut writer = unpoisoned(self.writer.lock());
        self.check_not_stopped(&writer)?;
        // Only the writer changes the index, and we are the writer: a key found absent here
        // stays absent until we are done.
        let absent = || unpoisoned(self.index.read()).get(record.key).is_none();
        if record.value.is_none() && absent() {
            return Ok(());
        }
        let bytes = record.encode();
        let offset = self.append_locked(&mut writer, &bytes)?;
        let mut index = unpoisoned(self.index.write());
        match record.value {
            Some(value) => {
                let location = Location {
                    offset,
                    len: bytes.len() as u32,
                    value_len: value.len() as u32,
                };
                index.insert(record.key, location);
            }
            None => {
                index.remove(record.key);
            }
        }
        Ok(())
    }

    /// Appends the encoded record `bytes`, the caller holding the writer's lock (`writer`),
    /// and returns the offset it went to. A failed append is cut back off the file, so
    /// that the next record starts where the index will say it does. With `sync_writes`,
    /// the file is fsynced too; a failed fsync stops the writer, as a failed `sync` does.
    fn append_locked(&self, writer: &mut Writer, bytes: &[u8]) -> Result<u64> {
        let offset = writer.end;
        if let Err(err) = self.file.append(bytes) {
            if self.file.truncate(offset).is_err() {
                writer.stopped =
                    Some("an append failed and its partial record could not be cut off");
            }
            return Err(err);
        }
        writer.end = offset + bytes.len() as u64;
        if self.sync_writes
            && let Err(err) = self.file.sync()
        {
            // The record is in the file but maybe not on the disk: not acknowledged, and
            // nothing more is written until a reopen decides what the file holds.
            writer.stopped = Some("an fsync failed, so data it covered may be lost");
            return Err(err);
        }
        Ok(offset)
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

    /// A cursor over the keys in `range` only, so that a short range does not copy and sort
    /// every key, as a cursor over the whole store must.
    fn cursor_over(&self, range: &KeyRange) -> HashLogCursor<'_> {
        let entries = unpoisoned(self.index.read()).sorted_range(range);
        HashLogCursor::new(&self.file, entries)
    }
}

// Exercise 1.5: read a value where the index points. Read: chapter 1, "Design".
// Tests: engine::a_get_is_one_positioned_read_and_a_miss_is_none
// Tests: conformance::conformance::put_get_overwrite
// Tests: recovery::a_flipped_byte_under_an_open_store_is_never_a_wrong_value
/// Reads the record at `location` into `buf` and returns the value it holds for `key`: the
/// value of a put record of `key`, or of the last op on `key` in a batch record, which must
/// be a put. The decode verifies the record's checksum.
///
/// # Errors
/// [`Error::Corruption`] when the record fails its checks or holds no such value;
/// [`Error::Io`].
pub(crate) fn read_value<'b>(
    file: &FileRef,
    key: &[u8],
    location: Location,
    buf: &'b mut Vec<u8>,
) -> Result<&'b [u8]> {
    buf.resize(location.len as usize, 0);
    file.read_at(buf, location.offset)?;
    let bytes: &'b [u8] = buf;
    let corrupt = |detail: String| Error::corruption(file.path(), location.offset, detail);
    let record = record::decode(bytes).map_err(|e| corrupt(e.detail))?;
    let value = match record {
        Decoded::Single(single) if single.key == key => single.value,
        Decoded::Single(_) => None,
        Decoded::Batch(batch) => batch
            .ops()
            .filter(|op| op.key == key)
            .last()
            .and_then(|op| op.value),
    };
    value.ok_or_else(|| {
        corrupt(format!(
            "the index points here for key {}, but the record is {}",
            quoted(key, 32),
            describe(record)
        ))
    })
}

/// What a record that does not hold the value the index expects holds instead.
fn describe(record: Decoded<'_>) -> String {
    match record {
        Decoded::Single(Record { key, value }) => format!(
            "{} of key {}",
            if value.is_some() { "a put" } else { "a delete" },
            quoted(key, 32)
        ),
        Decoded::Batch(batch) => format!(
            "a batch of {} ops whose last op on that key is not a put",
            batch.count
        ),
    }
}

impl Engine for HashLog {
    const NAME: &'static str = "hashlog";
    const FORMAT_VERSION: u32 = data_file::VERSION;
    /// Stage 1 has one option: whether every write is fsynced.
    const OPTIONS: &'static [OptionDoc] = &[OptionDoc {
        name: "sync_writes",
        default: "false",
        doc: "fsync the data file before each put, delete and batch returns",
    }];

    fn open(dir: &Path, options: &Options) -> Result<Self> {
        options.check_known(Self::NAME, Self::OPTIONS)?;
        let sync_writes = options.get_or("sync_writes", false)?;
        let fs = Fs::new(options.file_system());
        let dir = StoreDir::open(&fs, dir, Self::NAME, Self::FORMAT_VERSION)?;
        let file = file_names::open_or_create(&fs, dir.path())?;
        let recovered = recover(&fs, dir.path(), &file)?;
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
            sync_writes,
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
        let Some(location) = unpoisoned(self.index.read()).get(key) else {
            return Ok(None);
        };
        self.get_disk_reads.fetch_add(1, Relaxed);
        let mut buf = Vec::new();
        Ok(Some(
            read_value(&self.file, key, location, &mut buf)?.to_vec(),
        ))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.append(Record::delete(key))?;
        self.user_bytes_written.fetch_add(key.len() as u64, Relaxed);
        Ok(())
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let record = BatchRecord::of(batch)?;
        let bytes = record.encode();
        {
            let mut writer = unpoisoned(self.writer.lock());
            self.check_not_stopped(&writer)?;
            let offset = self.append_locked(&mut writer, &bytes)?;
            // Every op in one hold of the index's write lock: no reader sees part of them.
            let len = bytes.len() as u32;
            unpoisoned(self.index.write()).apply_batch(record.ops(), offset, len);
        }
        let user_bytes: usize = batch
            .iter()
            .map(|op| op.key.len() + op.value.map_or(0, <[u8]>::len))
            .sum();
        self.user_bytes_written
            .fetch_add(user_bytes as u64, Relaxed);
        Ok(())
    }

    fn cursor(&self) -> Result<BoxCursor<'_>> {
        Ok(Box::new(self.cursor_over(&KeyRange::all())))
    }

    /// A cursor that sorts the keys of `range` alone (scans walk it).
    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        Ok(Box::new(self.cursor_over(range)))
    }

    fn sync(&self) -> Result<()> {
        // The writer's lock is held only to look at the flag: appends go on during the fsync,
        // which covers at least everything appended before it began.
        let writer = unpoisoned(self.writer.lock());
        self.check_not_stopped(&writer)?;
        drop(writer);
        if let Err(err) = self.file.sync() {
            unpoisoned(self.writer.lock()).stopped =
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
            let writer = unpoisoned(self.writer.lock());
            let index = unpoisoned(self.index.read());
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
    use crate::file_names::DATA_FILE;

    #[test]
    fn data_file_lives_in_the_store_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let store = HashLog::open(tmp.path(), &Options::new()).unwrap();
        assert_eq!(store.data_path(), tmp.path().join(DATA_FILE));
        store.close().unwrap();
    }
}
