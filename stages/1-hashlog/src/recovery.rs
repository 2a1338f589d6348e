//! Rebuilding the index on open, by reading the whole data file.
//!
//! The index is memory only, so every open replays the log from the first record to the
//! last: a put points its key at the record, a delete removes its key, and a write batch
//! does the same for each of its ops, in order. Records are replayed in file order, which is
//! the order they were written in, so the last record of a key wins.
//!
//! Reading uses [`kv_shared::log_reader::read_log`], which verifies every record's checksum
//! and tells two kinds of damage apart:
//!
//! * **A torn tail.** The file ends with bytes that are not a whole valid record, and no
//!   valid record follows them. This is what a crash in the middle of an append leaves, and
//!   that append was never acknowledged as synced. Recovery cuts the file back to the end of
//!   the last valid record (and syncs the cut, so new records never land after garbage),
//!   then reports how many bytes it dropped. The store opens.
//! * **Corruption.** A bad record with a valid record somewhere after it. Bytes that were
//!   once written whole have changed; dropping them would silently lose acknowledged data.
//!   Recovery fails with [`kv_shared::Error::Corruption`] naming the file and the offset of
//!   the bad record, and changes nothing on disk, so whoever repairs the store has every
//!   byte the damage left.
//!
//! A torn tail and a damaged last record look the same: the reader cannot tell them apart,
//! and drops both. A write batch is one record, so these rules keep or drop a batch whole:
//! recovery never applies part of one. Start-up time grows with the whole file, dead
//! records included.

use kv_shared::Result;
use kv_shared::batch::BatchOps;
use kv_shared::fs::FileRef;
use kv_shared::log_reader::{LogRecord, LogTail, read_log};

use crate::data_file::FILE_HEADER_LEN;
use crate::index::{Index, Location};
use crate::record::{RecordFormat, Replayed};

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// The index of the live keys.
    pub index: Index,
    /// Where the next record goes: the end of the last valid record.
    pub end: u64,
    /// Records replayed (puts, deletes and batches, live or dead).
    pub records: u64,
    /// Bytes of torn tail cut off the end of the file (0 for a clean end).
    pub torn_tail_bytes: u64,
}

/// Replays the records of `file` (whose header has been checked) into a new index, and cuts
/// off a torn tail.
///
/// # Errors
/// [`kv_shared::Error::Corruption`] for a bad record followed by a valid one (the file is
/// left untouched); [`kv_shared::Error::Io`].
pub fn recover(file: &FileRef) -> Result<Recovered> {
    let mut index = Index::new();
    let mut records = 0;
    let end = read_log::<RecordFormat>(file, FILE_HEADER_LEN, |entry| {
        records += 1;
        replay(&mut index, entry);
        Ok(())
    })?;
    let torn_tail_bytes = cut_torn_tail(file, &end.tail, end.valid_len)?;
    Ok(Recovered {
        index,
        end: end.valid_len,
        records,
        torn_tail_bytes,
    })
}

// Exercise 1.6: replay one record into the index. Read: chapter 1, "Recovery".
// Tests: conformance::conformance::reopen_keeps_everything
// Tests: batch::a_log_cut_inside_a_batch_recovers_none_or_all_of_it
/// Applies one record to the index (also how [`crate::inspect::structure`] rebuilds it).
pub(crate) fn replay(index: &mut Index, entry: LogRecord<Replayed>) {
    // A record is at most 14 + 256 MiB long (a batch), so its length fits a `u32`.
    let (offset, len) = (entry.offset, entry.len as u32);
    match entry.record {
        Replayed::Put { key, value_len } => {
            let location = Location {
                offset,
                len,
                value_len,
            };
            index.insert(key, location);
        }
        Replayed::Delete { key } => {
            index.remove(&key);
        }
        Replayed::Batch { count, ops } => {
            index.apply_batch(BatchOps::new(&ops, count), offset, len)
        }
    }
}

// Exercise 1.3: cut a torn tail off the log. Read: chapter 1, "Recovery".
// Tests: lib::engine::tests::data_file_lives_in_the_store_directory
// Tests: recovery::truncation_at_every_offset_of_the_tail_keeps_the_whole_records
/// Cuts a torn tail off at `valid_len` and syncs the cut; returns how many bytes it held.
fn cut_torn_tail(file: &FileRef, tail: &LogTail, valid_len: u64) -> Result<u64> {
    match tail {
        LogTail::Clean => Ok(0),
        LogTail::Torn { bytes, .. } => {
            file.truncate(valid_len)?;
            file.sync()?;
            Ok(*bytes)
        }
    }
}
