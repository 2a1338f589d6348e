//! Version edits: one change to the set of tables, as the manifest records it.
//!
//! A flush adds an L0 table; a compaction removes its inputs and adds its outputs; a trivial
//! move removes a table from one level and adds it to another. Each is one [`VersionEdit`],
//! which also carries the counters that must survive a restart. The manifest
//! ([`crate::manifest`]) is the log of these edits, and a [`crate::version::Version`] is
//! what applying them gives, with every table open.
//!
//! On disk an edit is encoded with `postcard` (metadata, not data: a serde format is fine
//! here, and it is not what the course teaches).

use serde::{Deserialize, Serialize};

/// What the manifest records about one table. (The default is an empty table numbered 0,
/// with empty keys: a start for a test's tables, never a real one.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMeta {
    /// The table's file number (`NNNNNN.sst`).
    pub number: u64,
    /// File size in bytes.
    pub size: u64,
    /// Number of entries.
    pub entries: u64,
    /// Smallest user key.
    pub smallest: Vec<u8>,
    /// Sequence number of the smallest internal key.
    pub smallest_seq: u64,
    /// Largest user key.
    pub largest: Vec<u8>,
    /// Sequence number of the largest internal key.
    pub largest_seq: u64,
}

impl TableMeta {
    /// True when the table's user-key range `[smallest, largest]` contains `key`.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.smallest.as_slice() <= key && key <= self.largest.as_slice()
    }

    /// True when the table's user-key range overlaps `[smallest, largest]`.
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        !(self.largest.as_slice() < smallest || largest < self.smallest.as_slice())
    }
}

/// One change to the tree, as one manifest record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionEdit {
    /// WALs numbered below this are flushed and obsolete.
    pub log_number: Option<u64>,
    /// The next unused file number.
    pub next_file: Option<u64>,
    /// The highest sequence number written to a table.
    pub last_seq: Option<u64>,
    /// Tables removed: `(level, file number)`.
    pub removed: Vec<(u8, u64)>,
    /// Tables added: `(level, table)`.
    pub added: Vec<(u8, TableMeta)>,
}
