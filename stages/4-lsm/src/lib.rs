//! # Stage 4: `lsm`, a leveled LSM tree
//!
//! Stage 3 kept one level of tables: every table was a place a read had to look, and its
//! compaction rewrote everything. This stage is the leveled design of LevelDB and RocksDB:
//! tables live on levels L0 to L6, each level about `level_ratio` times larger than the one
//! above, and compaction merges one small piece of a level into the overlapping piece of the
//! next, in the background, while reads and writes go on. Size-tiered compaction, which
//! rewrites less and pays in space and reads, is an option beside it (`compaction=tiered`,
//! [`tiered`]).
//!
//! | file | concept |
//! |---|---|
//! | [`key`] | internal keys: user key + sequence number + kind; newest first |
//! | [`wal`], [`wal_payload`] | the write-ahead log and what one record (a write batch) looks like in it |
//! | [`write_batch`], [`group_commit`] | atomic batches of writes; concurrent writers sharing one WAL append |
//! | [`memtable`], [`memtable_filter`] | the lock-free sorted in-memory table of recent writes, and its in-memory Bloom filter |
//! | [`block`], [`block_builder`], [`block_dump`], [`compression`], [`bloom`], [`table`], [`table_builder`] | the table format: prefix-compressed blocks, lz4, filter, index, footer |
//! | [`block_cache`] | recently read data blocks in memory, within a byte budget |
//! | [`flush`] | memtable → L0 table |
//! | [`merge_iter`], [`concat_iter`], [`snapshot_iter`] | merging streams; a level as one stream; what a snapshot sees |
//! | [`version`] | the set of tables per level at one moment, and reads through it |
//! | [`compaction`], [`leveled`], [`tiered`] | compaction: merging and dropping tombstones; the leveled and size-tiered policies that choose what to merge |
//! | [`record_log`], [`manifest`], [`filename`] | the log of version edits, `CURRENT`, file names |
//! | [`recovery`] | opening a store: manifest, tables, WAL replay, orphan cleanup |
//! | [`lsm_tree`] | [`LsmTree`], the engine: write path, readers, background threads |
//! | [`options`], [`counters`] | the `--set` options and the statistics counters |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod block_cache;
pub mod bloom;
pub mod compaction;
pub mod counters;
pub mod cursor;
pub mod engine;
pub mod file_names;
pub mod flush;
pub mod group_commit;
pub mod key;
pub mod manifest;
pub mod memtable;
pub mod memtable_filter;
pub mod options;
pub mod record_log;
pub mod recovery;
pub mod table;
pub mod version;
pub mod wal;
pub mod wal_payload;
pub mod write_batch;

pub use engine::LsmTree;
pub use version::{LevelSummary, SortedRun};
pub use write_batch::WriteBatch;

/// The annotated dump of any file this engine writes (a table with its filter, a manifest,
/// `CURRENT`, a WAL), or `None` when `bytes` is none of them. Never panics.
pub fn inspect(bytes: &[u8]) -> Option<String> {
    table::dump(bytes)
        .or_else(|| manifest::dump_manifest(bytes))
        .or_else(|| manifest::dump_current(bytes))
        .or_else(|| wal::inspect_wal(bytes))
}
