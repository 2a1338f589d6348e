//! # Stage 4: `lsm`, a leveled LSM tree
//!
//! Stage 3 kept one level of tables: every table was a place a read had to look, and its
//! compaction rewrote everything. This stage is the leveled design of LevelDB and RocksDB:
//! tables live on levels L0 to L6, each level about `level_ratio` times larger than the one
//! above, and compaction merges one small piece of a level into the overlapping piece of the
//! next, in the background, while reads and writes go on. Size-tiered compaction, which
//! rewrites less and pays in space and reads, is an option beside it (`compaction=tiered`,
//! [`compaction::tiered`]).
//!
//! A write goes to the write-ahead log, then to the memtable; a full memtable is flushed to
//! a table on L0; compaction moves the data down the levels. A read looks in the memtables,
//! then the tables, newest first, and stops at the first version it may see; a cursor merges
//! them all. Every file's bytes are documented in the module that writes it, and
//! [`inspect()`] prints any of them, annotated.
//!
//! | file | concept |
//! |---|---|
//! | [`engine`] | [`LsmTree`], the engine: write path, readers; its flush and compaction threads in `engine/background.rs` |
//! | [`options`] | the `--set` options ([`LsmOptions`]) |
//! | [`recovery`] | opening a store: manifest, tables, WAL replay, orphan cleanup |
//! | [`repair`](mod@repair) | bringing back a damaged store: salvaged tables and WALs, a new manifest, damaged files into `lost/` |
//! | [`file_names`] | the names of the files in a store directory |
//! | [`mod@inspect`] | the annotated dumps `kv inspect` prints; the store's structure, for `kv draw` |
//! | [`key`] | internal keys: user key + sequence number + kind; newest first |
//! | [`wal`], [`group_commit`] | the write-ahead log, whose records are write batches; concurrent writers sharing one WAL append |
//! | [`wal_syncer`], [`barrier`] | syncing the WAL in the background; the owner's call before every WAL sync ([`WalBarrier`], for stage 5's value log) |
//! | [`memtable`], [`memtable_filter`] | the sorted in-memory table of recent writes, and its in-memory Bloom filter |
//! | [`skiplist`] | the memtable's sorted list: one writer, readers without locks, nodes in an append-only arena, an insert hint for keys in order |
//! | [`table`] | the table format: prefix-compressed blocks, lz4, filter, index, footer; its reader, writer and dump |
//! | [`bloom`] | Bloom filters, for the tables and the memtables |
//! | [`block_cache`] | recently read data blocks in memory, within a byte budget |
//! | [`flush`] | memtable → L0 table |
//! | [`ingest`] | bulk loads by table ingestion: sorted pairs written straight into tables, added in one manifest edit on the deepest level free of their key range (the commit under the engine's locks in `engine/load.rs`) |
//! | [`cursor`] | walking the entries both ways: a level as one sequence; merging; what a snapshot sees |
//! | [`version`], [`version_edit`] | the set of tables per level at one moment, and one change to it |
//! | [`manifest`] | the log of version edits, and `CURRENT` |
//! | [`compaction`] | merging tables and dropping tombstones; the leveled and size-tiered policies that choose what to merge |
//! | [`seek_compaction`] | tables that reads keep passing through ask to be merged into the level below |
//! | [`counters`], [`lock`] | the statistics counters; locks that survive a panicking holder |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod barrier;
pub mod block_cache;
pub mod bloom;
pub mod compaction;
pub mod counters;
pub mod cursor;
pub mod engine;
pub mod file_names;
pub mod flush;
pub mod group_commit;
pub mod ingest;
pub mod inspect;
pub mod key;
pub mod lock;
pub mod manifest;
pub mod memtable;
pub mod memtable_filter;
pub mod options;
pub mod recovery;
pub mod repair;
pub mod seek_compaction;
pub mod skiplist;
pub mod table;
pub mod version;
pub mod version_edit;
pub mod wal;
pub mod wal_syncer;

pub use barrier::WalBarrier;
pub use engine::LsmTree;
pub use inspect::inspect;
pub use options::LsmOptions;
pub use repair::repair;
pub use version::{LevelSummary, SortedRun};
