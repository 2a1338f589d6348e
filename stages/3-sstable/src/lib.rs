//! # Stage 3: a memtable, a write-ahead log and one level of SSTables
//!
//! Stage 2 (Bitcask) keeps every key in memory and can only answer a range scan by sorting
//! its whole keydir. This stage keeps the data **sorted on disk** instead: writes collect in
//! a sorted in-memory **memtable** (made durable by a **write-ahead log**), and a full
//! memtable is written out as an immutable, sorted **SSTable** of blocks with a sparse
//! index. Memory now holds one key per 4 KiB block, not one per key, and a scan is a merge
//! of sorted streams.
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
//! | [`store`] | [`SstableStore`], the engine: write path, flush, reads, compaction, recovery |
//! | [`wal`] | the record log: this stage's write-ahead log (stage 4 reuses it for its WAL and manifest) |
//! | [`wal_entry`] | this stage's WAL payload: one put or delete |
//! | [`memtable`] | the sorted in-memory table |
//! | [`entry`] | a value or a tombstone |
//! | [`frame`] | the CRC32 + length frame around WAL records and table blocks |
//! | [`block`], [`block_builder`] | data blocks: reading and building |
//! | [`index`] | the sparse index block |
//! | [`footer`] | the fixed-size end of a table |
//! | [`table_builder`] | writing a table, crash-safely |
//! | [`table`] | reading a table: binary or linear search, range iteration |
//! | [`merge_iter`] | the k-way merge behind scans and compaction |
//! | [`file_names`] | the files in a store directory |
//! | [`standalone`] | a table on its own, for `kv sstable build|get|scan` |
//! | [`table_dump`] | the annotated dump of a table, for `kv inspect` |
//!
//! Options (`kv --set NAME=VALUE`): `memtable_bytes` (default `4M`), `block_bytes`
//! (default `4096`), `search` (`binary` or `linear`, default `binary`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod block;
pub mod block_builder;
pub mod entry;
pub mod file_names;
pub mod footer;
pub mod frame;
pub mod index;
pub mod memtable;
pub mod merge_iter;
pub mod standalone;
pub mod store;
pub mod table;
pub mod table_builder;
pub mod table_dump;
pub mod wal;
pub mod wal_entry;

pub use store::SstableStore;
pub use table::Search;
pub use table_dump::inspect_table;
pub use wal::{Wal, WalReplay, inspect_wal};

/// The guard of a lock, even when another thread panicked while holding it. Every lock in
/// this crate guards data that a panic cannot leave half changed (each change is one
/// assignment or one map operation), so the data is still good to use.
pub(crate) fn unpoisoned<G>(result: std::sync::LockResult<G>) -> G {
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The annotated dump of one of this stage's files, recognised by its magic: a WAL
/// (`KVSSTWAL` at the start, payloads decoded as puts and deletes) or a table (`KVSSTABL`
/// at the end). `None` for any other bytes; never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(wal::WAL_MAGIC) {
        return wal::inspect_wal_with(bytes, wal_entry::dump);
    }
    table_dump::inspect_table(bytes)
}
