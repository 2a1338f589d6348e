//! Tables (SSTables): immutable sorted files of entries, with a filter and an index.
//!
//! Stage 3's tables are data blocks, an index and a footer. Stage 4 keeps that shape and adds
//! two things: every entry carries its sequence number and kind (so versions and tombstones
//! survive a flush and are settled by compaction), and every table carries a **filter block**,
//! a Bloom filter over its user keys ([`crate::bloom`]), which `get` asks before it reads any
//! data block. Its blocks are prefix-compressed, with restart points, and optionally lz4.
//!
//! | file | what |
//! |---|---|
//! | [`block`] | the block format, data and index blocks alike: prefix-compressed entries, restart points, the block trailer; reading a block and its cursor |
//! | [`block_builder`] | writing one block, entry by entry |
//! | [`compression`] | per-block lz4 |
//! | [`filter`] | the filter block: the Bloom filter's bytes and a checksum |
//! | [`index`] | the index block: each data block's last key and handle |
//! | [`footer`] | the fixed-size end of the file that says where the rest is |
//! | [`table`] | the reader: [`Table`] (open, `get`) and [`TableCursor`] |
//! | [`table_builder`] | the writer: entries in, a finished, synced file out |
//! | [`dump`] | the annotated dump `kv inspect` prints |
//!
//! ## Format (version [`footer::FORMAT_VERSION`])
//!
//! | part | contents |
//! |---|---|
//! | data blocks | entries in internal-key order, each block in the [`block`] format, about `block_bytes` each before compression |
//! | filter block | the [`filter`] block |
//! | index block | the [`index`] block: one entry per data block |
//! | footer | the 48-byte [`footer`] |
//!
//! Tables are named `NNNNNN.sst` after their file number ([`crate::file_names`]).

pub mod block;
pub mod block_builder;
pub mod compression;
pub mod dump;
pub mod filter;
pub mod footer;
pub mod index;
// Named as stage 3's reader is (`sstable::table`), so the two chapters compare file by file.
#[allow(clippy::module_inception)]
pub mod table;
pub mod table_builder;

pub use table::{Table, TableCursor};
