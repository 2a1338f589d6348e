//! # Stage 3: a memtable, a write-ahead log and one level of SSTables
//!
//! Stage 2 (Bitcask) keeps every key in memory and can only answer a range scan by sorting
//! its whole keydir. This stage keeps the data **sorted on disk** instead: writes collect in
//! a sorted in-memory **memtable** (made durable by a **write-ahead log**), and a full
//! memtable is written out as an immutable, sorted **SSTable** of blocks with a sparse
//! index. Memory now holds one key per 4 KiB block, not one per key, and a scan is a merge
//! of sorted streams: a **cursor** over the memtables and every table at once, which seeks
//! and walks both ways over a snapshot. A **write batch** is one WAL record, so it lands
//! whole or not at all.
//!
//! What it still gets wrong, and stage 4 fixes: the tables pile up, one per flush, and a
//! read must look at every one of them (a missing key costs one block read per table whose
//! key range covers it, and with random keys that is every table); `compact` merges them
//! all into one, rewriting every byte each time.
//!
//! ## Where to find each piece
//!
//! | module | what it is |
//! |---|---|
//! | [`engine`] | [`SstableStore`], the engine: write path and batches, flush, reads, cursors, compaction |
//! | [`options`] | the options (`kv --set NAME=VALUE`), documented once, parsed and checked |
//! | [`recovery`] | opening a store: which files a crash left and what to replay |
//! | [`ingest`] | bulk loads: sorted pairs straight into new tables, added newest of all in one atomic step |
//! | [`repair`](mod@repair) | bringing back a damaged store: salvaging tables and WALs, damaged files into `lost/` |
//! | [`file_names`] | the files in a store directory |
//! | [`inspect`](mod@inspect) | the annotated dumps of a WAL and a table, for `kv inspect`; the store's structure, for `kv draw` |
//! | [`wal`] | the record log: this stage's write-ahead log (stage 4 reuses it for its WAL and manifest) |
//! | [`wal_entry`] | this stage's WAL payload: one put, one delete, or a write batch |
//! | [`memtable`] | the sorted in-memory table, its copy-on-write snapshots and their cursor |
//! | [`entry`] | a value or a tombstone |
//! | [`frame`] | the CRC32 + length frame around WAL records and table blocks |
//! | [`block`], [`block_builder`] | data blocks: reading (and a cursor over one), building |
//! | [`index`] | the sparse index block |
//! | [`footer`] | the fixed-size end of a table |
//! | [`table_builder`] | writing a table, crash-safely |
//! | [`table`] | reading a table: binary or linear search, its cursor |
//! | [`cursor`] | the cursors: one interface for every source, tombstones hidden at the end |
//! | [`merging_cursor`] | the merge of every source, newest version winning, both ways |
//! | [`standalone`] | a table on its own, for `kv sstable build|get|scan` |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod block;
pub mod block_builder;
pub mod cursor;
pub mod engine;
pub mod entry;
pub mod file_names;
pub mod footer;
pub mod frame;
pub mod index;
pub mod ingest;
pub mod inspect;
pub mod memtable;
pub mod merging_cursor;
pub mod options;
pub mod recovery;
pub mod repair;
pub mod standalone;
pub mod table;
pub mod table_builder;
pub mod wal;
pub mod wal_entry;

pub use engine::SstableStore;
pub use inspect::{inspect, inspect_table, inspect_wal};
pub use repair::repair;
pub use table::Search;
pub use wal::{Wal, WalReplay};

/// The guard of a lock, even when another thread panicked while holding it (the lock is
/// then "poisoned"). No code of this crate can panic halfway through a change it makes under
/// a lock (the changes are map inserts and assignments), so the data behind a poisoned lock
/// is still whole and good to use. Every lock of the crate is taken through this.
pub(crate) fn unpoisoned<G>(result: std::sync::LockResult<G>) -> G {
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}
