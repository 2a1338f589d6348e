//! Cursors: how a reader walks the tree's entries, in either direction.
//!
//! Every place that holds entries (a memtable, a table, a level of tables) offers an
//! [`EntryCursor`]: a position among its **internal** entries (every version of every key,
//! tombstones included, in internal-key order: user key ascending, sequence number
//! descending, see [`crate::key`]) that seeks and moves both ways. The read path stacks
//! them:
//!
//! | file | cursor |
//! |---|---|
//! | [`crate::memtable`] | [`crate::memtable::MemtableCursor`]: a memtable's skiplist |
//! | [`mod@concat`] | [`concat::ConcatCursor`]: pieces laid end to end in key order, one open at a time (LevelDB's two-level iterator) |
//! | [`crate::table::table`] | [`crate::table::TableCursor`]: a table's data blocks, concatenated ([`crate::table::block::BlockCursor`] inside one) |
//! | [`level`] | [`level::LevelCursor`]: a level's sorted, disjoint tables, concatenated |
//! | [`merging`] | [`merging::MergingCursor`]: many cursors as one, in internal-key order |
//! | [`snapshot`] | [`snapshot::SnapshotCursor`]: what a reader at one sequence number sees: the newest visible version of each key, tombstones hidden; the engine's [`kv_shared::Cursor`] |
//!
//! A scan, a reverse scan and a seek are the snapshot cursor over a merging cursor over
//! every memtable, every L0 table and one level cursor per deeper level. A compaction is a
//! merging cursor over its input tables, read forward once.

use kv_shared::Result;

use crate::cursor::level::LevelCursor;
use crate::memtable::MemtableCursor;
use crate::table::TableCursor;

pub mod concat;
pub mod level;
pub mod merging;
pub mod snapshot;

/// A position among internal entries that moves both ways (see the module documentation).
///
/// It starts not valid; a seek places it. Moving past either end leaves it not valid, and
/// `next` and `prev` then do nothing. An error leaves it not valid. `entry` may be called
/// only while it is valid, and borrows the cursor until it moves.
pub trait EntryCursor {
    /// True when the cursor is at an entry.
    fn valid(&self) -> bool;

    /// Moves to the first entry.
    ///
    /// # Errors
    /// [`kv_shared::Error::Corruption`], [`kv_shared::Error::Io`].
    fn seek_to_first(&mut self) -> Result<()>;

    /// Moves to the last entry.
    ///
    /// # Errors
    /// As [`EntryCursor::seek_to_first`].
    fn seek_to_last(&mut self) -> Result<()>;

    /// Moves to the first entry at or after the internal key `(key, seq)`. With `seq` a
    /// reader's snapshot, that is the newest version of `key` the reader may see (or a later
    /// key); with `u64::MAX`, the first version of `key` or of a later key.
    ///
    /// # Errors
    /// As [`EntryCursor::seek_to_first`].
    fn seek(&mut self, key: &[u8], seq: u64) -> Result<()>;

    /// Moves to the next entry.
    ///
    /// # Errors
    /// As [`EntryCursor::seek_to_first`].
    fn next(&mut self) -> Result<()>;

    /// Moves to the previous entry.
    ///
    /// # Errors
    /// As [`EntryCursor::seek_to_first`].
    fn prev(&mut self) -> Result<()>;

    /// The current entry, borrowed from the cursor until it moves.
    ///
    /// # Panics
    /// When the cursor is not [`valid`](EntryCursor::valid): asking is a bug in the caller.
    fn entry(&self) -> EntryRef<'_>;
}

/// One entry as a cursor shows it: every field borrowed from the cursor's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// The sequence number of the write that made it.
    pub seq: u64,
    /// The value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

/// One child of a merge: the three kinds of place that hold entries. An enum rather than a
/// boxed trait object: the merge calls `entry` several times per step, and through an
/// enum those calls are direct and inlined, where a `Box<dyn EntryCursor>` pays an
/// indirect call each time (the same reason RocksDB's merging iterator keeps its children's
/// keys at hand).
pub enum Source {
    /// A memtable.
    Memtable(MemtableCursor),
    /// One table (an L0 table, whose key range overlaps others).
    Table(TableCursor),
    /// A level of sorted, disjoint tables.
    Level(LevelCursor),
}

/// Runs `$body` with `$c` bound to the cursor inside a [`Source`].
macro_rules! each_source {
    ($source:expr, $c:ident => $body:expr) => {
        match $source {
            Source::Memtable($c) => $body,
            Source::Table($c) => $body,
            Source::Level($c) => $body,
        }
    };
}

impl EntryCursor for Source {
    #[inline]
    fn valid(&self) -> bool {
        each_source!(self, c => c.valid())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        each_source!(self, c => c.seek_to_first())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        each_source!(self, c => c.seek_to_last())
    }

    fn seek(&mut self, key: &[u8], seq: u64) -> Result<()> {
        each_source!(self, c => c.seek(key, seq))
    }

    #[inline]
    fn next(&mut self) -> Result<()> {
        each_source!(self, c => c.next())
    }

    fn prev(&mut self) -> Result<()> {
        each_source!(self, c => c.prev())
    }

    #[inline]
    fn entry(&self) -> EntryRef<'_> {
        each_source!(self, c => c.entry())
    }
}
