//! The write-ahead log: every write is appended here before it enters the memtable.
//!
//! Stage 3's WAL carries opaque payloads; this module keeps that contract (create, append,
//! sync, replay, inspect) on top of [`crate::record_log`], with its own magic. What a payload
//! means in stage 4 (a sequence number, a kind, a key and a value) is
//! [`crate::wal_payload`]'s business.
//!
//! One WAL file belongs to one memtable: when the memtable fills, the engine syncs the WAL,
//! starts a new one, and deletes the old file only once the memtable's flush is recorded in
//! the manifest. A WAL is named `NNNNNN.wal` after a file number from the manifest's counter.
//!
//! ## Format
//!
//! A [`crate::record_log`] with magic `KVLSMWAL`, version [`VERSION`]: the 16-byte header,
//! then one record per write.

use std::path::Path;

use kv_shared::{Fs, Result};

use crate::record_log::{self, RecordLog};

/// The WAL's magic number.
pub const MAGIC: &[u8; 8] = b"KVLSMWAL";
/// The WAL's format version.
pub const VERSION: u32 = 1;

/// An open write-ahead log.
#[derive(Debug)]
pub struct Wal {
    log: RecordLog,
}

/// What replaying a WAL found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalReplay {
    /// Records replayed.
    pub records: u64,
    /// Bytes of torn tail after the last whole record (writes that were never acknowledged).
    pub torn_tail_bytes: u64,
}

impl Wal {
    /// Creates a new, empty WAL at `path`.
    ///
    /// # Errors
    /// [`kv_shared::Error::Io`].
    pub fn create(fs: &Fs, path: &Path) -> Result<Wal> {
        Ok(Wal {
            log: RecordLog::create(fs, path, MAGIC, VERSION)?,
        })
    }

    /// Appends one payload with one write call: once this returns, the record survives a
    /// kill of the process.
    ///
    /// # Errors
    /// [`kv_shared::Error::Io`].
    pub fn append(&self, payload: &[u8]) -> Result<()> {
        self.log.append(payload)
    }

    /// Makes every appended record durable against power loss.
    ///
    /// # Errors
    /// [`kv_shared::Error::Io`].
    pub fn sync(&self) -> Result<()> {
        self.log.sync()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// Bytes in the file so far.
    pub fn size(&self) -> u64 {
        self.log.size()
    }

    /// Calls `each` with every whole payload of the WAL at `path`, in order. A torn tail is
    /// expected after a crash and is reported, not an error.
    ///
    /// # Errors
    /// [`kv_shared::Error::Corruption`] for damage followed by a valid record, or a bad
    /// header; whatever `each` returns; [`kv_shared::Error::Io`].
    pub fn replay(
        fs: &Fs,
        path: &Path,
        mut each: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<WalReplay> {
        let summary = record_log::read_records(fs, path, MAGIC, VERSION, |_, p| each(p))?;
        Ok(WalReplay {
            records: summary.records,
            torn_tail_bytes: summary.torn_tail_bytes,
        })
    }
}

/// The annotated dump of a WAL, or `None` when `bytes` is not one.
pub fn inspect_wal(bytes: &[u8]) -> Option<String> {
    record_log::dump(
        bytes,
        MAGIC,
        "lsm write-ahead log",
        crate::wal_payload::describe,
    )
}
