//! Cursors: how this stage reads in key order, both ways, from a snapshot.
//!
//! A read that walks keys (a scan, a reverse scan, a seek, a compaction, the count behind
//! `stats`) needs every source at once: the memtable, the frozen memtable, every table. Each
//! source has its own cursor over its entries, tombstones included, and all of them share
//! one small interface, [`EntryCursor`]:
//!
//! | cursor | over | steps back by |
//! |---|---|---|
//! | [`crate::block::BlockCursor`] | one data block | the list of entry starts it records on loading the block |
//! | [`crate::table::TableCursor`] | one table, block by block | the block before, found in the index |
//! | [`crate::memtable::MemCursor`] | a memtable as it was when the cursor was made | a range lookup below the current key |
//! | [`crate::merging_cursor::MergingCursor`] | all of the above, newest source winning | re-positioning every source on a change of direction |
//!
//! [`LiveCursor`] puts the last touch: it hides tombstones, and is the [`kv_shared::Cursor`]
//! that [`kv_shared::Engine::cursor`] hands out. A cursor holds its sources by `Arc` (the
//! tables, and a memtable's map as it was), so what it shows is a snapshot: later writes,
//! flushes and compactions change nothing it returns.

use kv_shared::{Cursor, Direction, Result};

use crate::entry::Entry;

/// A cursor over one source's entries in key order, tombstones included: what a merge
/// needs from each source. The rules are [`kv_shared::Cursor`]'s: it starts not valid, a
/// move off either end leaves it not valid, `next` and `prev` on a cursor that is not valid
/// do nothing, and an error leaves it not valid.
pub trait EntryCursor {
    /// True when the cursor is at an entry.
    fn valid(&self) -> bool;
    /// Moves to the smallest key.
    ///
    /// # Errors
    /// [`kv_shared::Error::Corruption`], [`kv_shared::Error::Io`].
    fn seek_to_first(&mut self) -> Result<()>;
    /// Moves to the largest key.
    ///
    /// # Errors
    /// As [`EntryCursor::seek_to_first`].
    fn seek_to_last(&mut self) -> Result<()>;
    /// Moves to the smallest key at or after `target`.
    ///
    /// # Errors
    /// As [`EntryCursor::seek_to_first`].
    fn seek(&mut self, target: &[u8]) -> Result<()>;
    /// Moves to the next larger key.
    ///
    /// # Errors
    /// As [`EntryCursor::seek_to_first`].
    fn next(&mut self) -> Result<()>;
    /// Moves to the next smaller key.
    ///
    /// # Errors
    /// As [`EntryCursor::seek_to_first`].
    fn prev(&mut self) -> Result<()>;
    /// The key the cursor is at (only while [`valid`](EntryCursor::valid)).
    fn key(&self) -> &[u8];
    /// The value the cursor is at, `None` for a tombstone (only while valid).
    fn value(&self) -> Option<&[u8]>;
}

/// Moves `cursor` one entry `direction`: [`EntryCursor::next`] or [`EntryCursor::prev`].
///
/// # Errors
/// As the move.
pub fn step(cursor: &mut (impl EntryCursor + ?Sized), direction: Direction) -> Result<()> {
    match direction {
        Direction::Forward => cursor.next(),
        Direction::Reverse => cursor.prev(),
    }
}

/// A boxed source cursor, as a merge holds them.
pub type BoxEntryCursor = Box<dyn EntryCursor>;

/// The entries of `cursor` from its first key on, owned: the stream a table is written
/// from ([`crate::table_builder::write_table`]). The cursor moves on as soon as an entry is
/// copied out, before the entry is handed over, as a k-way merge pulls the next entry of
/// the source it just took one from; an error of that move ends the stream.
pub fn entries(mut cursor: impl EntryCursor) -> impl Iterator<Item = Result<(Vec<u8>, Entry)>> {
    let mut started = false;
    let mut failed = false;
    let mut step = move || -> Result<Option<(Vec<u8>, Entry)>> {
        if !started {
            started = true;
            cursor.seek_to_first()?;
        }
        if !cursor.valid() {
            return Ok(None);
        }
        let entry = cursor
            .value()
            .map_or(Entry::Tombstone, |v| Entry::Value(v.to_vec()));
        let item = (cursor.key().to_vec(), entry);
        cursor.next()?;
        Ok(Some(item))
    };
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let item = step().transpose();
        failed = matches!(item, Some(Err(_)));
        item
    })
}

/// The store's [`Cursor`]: a source cursor (the merge of every source) with its tombstones
/// hidden. Whenever a move lands on a tombstone it keeps going the same way.
pub struct LiveCursor<C> {
    inner: C,
}

impl<C: EntryCursor> LiveCursor<C> {
    /// The live entries of `inner`.
    pub fn new(inner: C) -> LiveCursor<C> {
        LiveCursor { inner }
    }

    /// Makes the move `mv`, which goes `direction`, then keeps going that way while the
    /// cursor is at a tombstone.
    fn live(&mut self, direction: Direction, mv: impl FnOnce(&mut C) -> Result<()>) -> Result<()> {
        mv(&mut self.inner)?;
        while self.inner.valid() && self.inner.value().is_none() {
            step(&mut self.inner, direction)?;
        }
        Ok(())
    }
}

impl<C: EntryCursor> Cursor for LiveCursor<C> {
    fn valid(&self) -> bool {
        self.inner.valid()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.live(Direction::Forward, C::seek_to_first)
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.live(Direction::Reverse, C::seek_to_last)
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.live(Direction::Forward, |c| c.seek(target))
    }
    fn next(&mut self) -> Result<()> {
        self.live(Direction::Forward, C::next)
    }
    fn prev(&mut self) -> Result<()> {
        self.live(Direction::Reverse, C::prev)
    }
    fn key(&self) -> &[u8] {
        self.inner.key()
    }
    fn value(&self) -> &[u8] {
        self.inner
            .value()
            .expect("a live cursor never rests on a tombstone")
    }
}
