//! Rebuilding the index on open, by reading the whole data file.
//!
//! The index is memory only, so every open replays the log from the first record to the
//! last: a put points its key at the record, a delete removes its key. Records are replayed
//! in file order, which is the order they were written in, so the last record of a key wins.
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
//! and drops both. Start-up time grows with the whole file, dead records included.

use kv_shared::Result;
use kv_shared::fs::FileRef;
use kv_shared::log_reader::{LogTail, read_log};

use crate::data_file::FILE_HEADER_LEN;
use crate::index::{Index, Location};
use crate::record::RecordFormat;

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// The index of the live keys.
    pub index: Index,
    /// Where the next record goes: the end of the last valid record.
    pub end: u64,
    /// Records replayed (puts and deletes, live or dead).
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
        if entry.record.is_delete {
            index.remove(&entry.record.key);
        } else {
            let location = Location {
                offset: entry.offset,
                len: entry.len as u32,
            };
            index.insert(entry.record.key, location);
        }
        Ok(())
    })?;
    let torn_tail_bytes = match end.tail {
        LogTail::Clean => 0,
        LogTail::Torn { bytes, .. } => {
            file.truncate(end.valid_len)?;
            file.sync()?;
            bytes
        }
    };
    Ok(Recovered {
        index,
        end: end.valid_len,
        records,
        torn_tail_bytes,
    })
}
