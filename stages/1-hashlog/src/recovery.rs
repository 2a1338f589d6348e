//! Rebuilding the index on open, by reading the whole data file.
//!
//! The index is memory only, so every open replays the log from the first record to the
//! last: a put points its key at the record, a delete removes its key, and a write batch
//! does the same for each of its ops, in order. Records are replayed in file order, which is
//! the order they were written in, so the last record of a key wins.
//!
//! Reading uses [`kv_shared::log_reader::read_newest_log`], which verifies every record's
//! checksum. The data file is the store's only log, so it is always the *newest* log, the
//! one a power loss may cut in the middle of its unsynced writes; and a disk writes those
//! back page by page, in any order. So the rule is: **everything from the first bad record
//! on is an unsynced tail** (what RocksDB calls point-in-time recovery):
//!
//! * **A torn tail.** The file ends with bytes that are not a whole valid record, and no
//!   valid record follows them. This is what a crash in the middle of an append leaves, and
//!   that append was never acknowledged as synced. Recovery cuts the file back to the end of
//!   the last valid record (and syncs the cut, so new records never land after garbage),
//!   then reports how many bytes it dropped. The store opens.
//! * **A tail with holes.** A bad record with valid records after it: a later page of the
//!   unsynced tail reached the disk while an earlier one did not. Keeping the records after
//!   the hole would bring back later writes without earlier ones, so recovery keeps the
//!   valid prefix and cuts the rest, as for a torn tail. But the bad bytes could also be a
//!   flipped bit in data synced long ago, which no reader can tell apart; so before the cut,
//!   the whole file is copied into the store's `lost/` directory
//!   ([`kv_shared::repair::copy_to_lost`]): nothing once written is destroyed, and `kv
//!   repair` or a person can still read it.
//!
//! A damaged last record looks the same as a torn one: the reader drops both. A write batch
//! is one record, so these rules keep or drop a batch whole: recovery never applies part of
//! one. Start-up time grows with the whole file, dead records included.

use std::path::Path;

use kv_shared::Result;
use kv_shared::batch::BatchOps;
use kv_shared::fs::{FileRef, Fs};
use kv_shared::log_reader::{LogEnd, LogRecord, LogTail, read_newest_log};
use kv_shared::repair::copy_to_lost;

use crate::data_file::FILE_HEADER_LEN;
use crate::file_names::DATA_FILE;
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
    /// Bytes of unsynced tail cut off the end of the file (0 for a clean end).
    pub torn_tail_bytes: u64,
}

/// Replays the records of `file`, the data file of the store in `dir` (its header checked),
/// into a new index, and cuts off its unsynced tail: everything from the first bad record
/// on, copied first into `lost/` when valid records follow the damage.
///
/// # Errors
/// [`kv_shared::Error::Io`].
pub fn recover(fs: &Fs, dir: &Path, file: &FileRef) -> Result<Recovered> {
    let mut index = Index::new();
    let mut records = 0;
    let end = read_newest_log::<RecordFormat>(file, FILE_HEADER_LEN, |entry| {
        records += 1;
        replay(&mut index, entry);
        Ok(())
    })?;
    let torn_tail_bytes = cut_torn_tail(fs, dir, file, &end)?;
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
/// Cuts the unsynced tail of `file` (the data file of the store in `dir`) off at
/// `end.valid_len` and syncs the cut; when valid records followed the damage, first copies
/// the whole file into `lost/`. Returns how many bytes the tail held.
fn cut_torn_tail(fs: &Fs, dir: &Path, file: &FileRef, end: &LogEnd) -> Result<u64> {
    match &end.tail {
        LogTail::Clean => Ok(0),
        LogTail::Torn {
            bytes, valid_after, ..
        } => {
            if valid_after.is_some() {
                copy_to_lost(fs, dir, DATA_FILE)?;
            }
            file.truncate(end.valid_len)?;
            file.sync()?;
            Ok(*bytes)
        }
    }
}
