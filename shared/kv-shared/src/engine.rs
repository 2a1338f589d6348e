//! The [`Engine`] contract every stage implements, and its object-safe twin [`DynEngine`].
//!
//! ## Semantics every engine keeps
//!
//! * Methods take `&self`: an engine is shared between threads (`Send + Sync`), readers run
//!   concurrently with the writer and with any background work.
//! * **Durability.** When `put` or `delete` returns `Ok`, the change has been handed to the
//!   operating system and survives a kill of the process. When `sync` returns `Ok`, every
//!   change before it survives a power loss: data files and new directory entries are synced.
//! * Keys and values are arbitrary bytes within [`crate::limits`]; over a limit, the call
//!   fails with a typed error and nothing is written.
//! * **Batches.** `write` applies a [`WriteBatch`] atomically: a reader, and a restart after
//!   a crash, sees all of it or none of it. Once it returns `Ok` it is as durable as a `put`.
//! * **Cursors.** `cursor` hands out a [`Cursor`] over a snapshot of the store, which seeks
//!   and moves both ways (see [`crate::cursor`]). `scan` and `scan_rev` are the convenient
//!   forms built on it: owned `(key, value)` pairs of a [`KeyRange`] (whose bounds may each
//!   be inclusive, exclusive or open), in ascending or descending byte order. An empty or
//!   inverted range yields nothing.
//! * **Bulk loads.** `load` puts many pairs at once and returns once they are durable
//!   against power loss ([`crate::bulk`]).
//! * `compact` runs the stage's compaction to completion; a stage without one documents that
//!   and returns `Ok`.
//! * A directory is opened by one engine at a time ([`crate::Error::Locked`] otherwise) and
//!   only by the engine that created it ([`crate::Error::WrongEngine`]).

use std::ops::{Bound, RangeBounds};
use std::path::Path;

use crate::batch::WriteBatch;
use crate::bulk::{LoadInput, LoadOrder, LoadReport};
use crate::cursor::{BoxCursor, CursorIter, Direction};
use crate::options::OptionDoc;
use crate::{Options, Result, Stats};

/// A lazy stream of `(key, value)` pairs in key order.
pub type ScanIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// A key-value storage engine: one stage of the course.
pub trait Engine: Send + Sync + Sized + 'static {
    /// The engine's name, as `kv --engine` takes it and the marker file records it.
    const NAME: &'static str;
    /// Version of the engine's on-disk format, recorded in the marker file.
    const FORMAT_VERSION: u32;
    /// The options this engine accepts (`kv --set NAME=VALUE`); any other name is an error.
    const OPTIONS: &'static [OptionDoc];

    /// Opens (creating if needed) the store in `dir`, recovering whatever a crash left.
    ///
    /// # Errors
    /// [`crate::Error::Locked`], [`crate::Error::WrongEngine`], [`crate::Error::FormatVersion`],
    /// [`crate::Error::Corruption`], [`crate::Error::InvalidArgument`] for a bad option,
    /// [`crate::Error::Io`].
    fn open(dir: &Path, options: &Options) -> Result<Self>;

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// [`crate::Error::KeyTooLarge`], [`crate::Error::ValueTooLarge`] (nothing written),
    /// [`crate::Error::Io`].
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// The value of `key`, or `None` when it is absent or deleted.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`] when the bytes read fail their checksum, [`crate::Error::Io`].
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Removes `key` (a no-op when absent).
    ///
    /// # Errors
    /// [`crate::Error::KeyTooLarge`], [`crate::Error::Io`].
    fn delete(&self, key: &[u8]) -> Result<()>;

    /// Applies every op of `batch`, in order, atomically (see the module documentation).
    ///
    /// # Errors
    /// [`crate::Error::Io`]; nothing of the batch is applied.
    fn write(&self, batch: &WriteBatch) -> Result<()>;

    /// A [`Cursor`](crate::Cursor) over a snapshot of the store as it is now, not yet
    /// positioned.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`], [`crate::Error::Io`].
    fn cursor(&self) -> Result<BoxCursor<'_>>;

    /// A [`Cursor`](crate::Cursor) for a walk that stays inside `range` (a scan's): as
    /// [`cursor`](Engine::cursor), except that the engine may take its snapshot of `range`
    /// alone and stop reading at its bounds, so what the cursor shows outside `range` is
    /// unspecified. The default is [`cursor`](Engine::cursor). An engine that sorts its keys
    /// for each snapshot sorts only those of `range`; a production engine behind the
    /// contract hands the bounds to its own iterator.
    ///
    /// # Errors
    /// As [`Engine::cursor`].
    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        let _ = range;
        self.cursor()
    }

    /// The live pairs in `range`, in ascending key order, each copied out. The default
    /// walks a [`range_cursor`](Engine::range_cursor); an engine may give a faster path
    /// that returns the same.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`], [`crate::Error::Io`], at the call or from the iterator.
    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        let cursor = self.range_cursor(&range)?;
        Ok(Box::new(CursorIter::new(cursor, range, Direction::Forward)))
    }

    /// The live pairs in `range`, in descending key order.
    ///
    /// # Errors
    /// As [`Engine::scan`].
    fn scan_rev(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        let cursor = self.range_cursor(&range)?;
        Ok(Box::new(CursorIter::new(cursor, range, Direction::Reverse)))
    }

    /// Loads many pairs at once (see [`crate::bulk`]): when it returns `Ok`, every pair is
    /// durable against power loss. The default writes batches of
    /// [`crate::bulk::LOAD_BATCH`] pairs, then syncs ([`crate::bulk::load_in_batches`]); an
    /// engine with sorted tables may sort the input and ingest tables instead.
    ///
    /// # Errors
    /// [`crate::Error::KeyTooLarge`], [`crate::Error::ValueTooLarge`],
    /// [`crate::Error::InvalidArgument`] for a key out of order in input promised
    /// [`LoadOrder::Sorted`] (by an engine that relies on it), an error of the input,
    /// [`crate::Error::Io`].
    fn load(&self, input: LoadInput<'_>, order: LoadOrder) -> Result<LoadReport> {
        let _ = order;
        crate::bulk::load_in_batches(self, input)
    }

    /// Makes every change so far durable against power loss.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn sync(&self) -> Result<()>;

    /// Runs the stage's compaction to completion (or does nothing, for a stage without one).
    ///
    /// # Errors
    /// [`crate::Error::Corruption`], [`crate::Error::Io`].
    fn compact(&self) -> Result<()>;

    /// Writes the engine's memtable out as a sorted file now, whatever its size, and
    /// returns `true`; an engine without a memtable does nothing and returns `false` (the
    /// default). Its writes are as durable before as after: the memtable is also in a log.
    ///
    /// # Errors
    /// [`crate::Error::Io`], an earlier background failure.
    fn flush(&self) -> Result<bool> {
        Ok(false)
    }

    /// Counters and sizes, see [`Stats`].
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn stats(&self) -> Result<Stats>;

    /// Stops background work, syncs, and releases the directory.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    fn close(self) -> Result<()>;
}

/// The object-safe form of [`Engine`], so tools can choose an engine by name at run time.
/// Every [`Engine`] is a `DynEngine`; open one with [`open_dyn`].
pub trait DynEngine: Send + Sync {
    /// The engine's name.
    fn name(&self) -> &'static str;
    /// See [`Engine::put`].
    ///
    /// # Errors
    /// As [`Engine::put`].
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// See [`Engine::get`].
    ///
    /// # Errors
    /// As [`Engine::get`].
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// See [`Engine::delete`].
    ///
    /// # Errors
    /// As [`Engine::delete`].
    fn delete(&self, key: &[u8]) -> Result<()>;
    /// See [`Engine::write`].
    ///
    /// # Errors
    /// As [`Engine::write`].
    fn write(&self, batch: &WriteBatch) -> Result<()>;
    /// See [`Engine::cursor`].
    ///
    /// # Errors
    /// As [`Engine::cursor`].
    fn cursor(&self) -> Result<BoxCursor<'_>>;
    /// See [`Engine::range_cursor`].
    ///
    /// # Errors
    /// As [`Engine::range_cursor`].
    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>>;
    /// See [`Engine::scan`].
    ///
    /// # Errors
    /// As [`Engine::scan`].
    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>>;
    /// See [`Engine::scan_rev`].
    ///
    /// # Errors
    /// As [`Engine::scan_rev`].
    fn scan_rev(&self, range: KeyRange) -> Result<ScanIter<'_>>;
    /// See [`Engine::load`].
    ///
    /// # Errors
    /// As [`Engine::load`].
    fn load(&self, input: LoadInput<'_>, order: LoadOrder) -> Result<LoadReport>;
    /// See [`Engine::sync`].
    ///
    /// # Errors
    /// As [`Engine::sync`].
    fn sync(&self) -> Result<()>;
    /// See [`Engine::compact`].
    ///
    /// # Errors
    /// As [`Engine::compact`].
    fn compact(&self) -> Result<()>;
    /// See [`Engine::flush`].
    ///
    /// # Errors
    /// As [`Engine::flush`].
    fn flush(&self) -> Result<bool>;
    /// See [`Engine::stats`].
    ///
    /// # Errors
    /// As [`Engine::stats`].
    fn stats(&self) -> Result<Stats>;
    /// See [`Engine::close`].
    ///
    /// # Errors
    /// As [`Engine::close`].
    fn close(self: Box<Self>) -> Result<()>;
}

impl<E: Engine> DynEngine for E {
    fn name(&self) -> &'static str {
        E::NAME
    }
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Engine::put(self, key, value)
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Engine::get(self, key)
    }
    fn delete(&self, key: &[u8]) -> Result<()> {
        Engine::delete(self, key)
    }
    fn write(&self, batch: &WriteBatch) -> Result<()> {
        Engine::write(self, batch)
    }
    fn cursor(&self) -> Result<BoxCursor<'_>> {
        Engine::cursor(self)
    }
    fn range_cursor(&self, range: &KeyRange) -> Result<BoxCursor<'_>> {
        Engine::range_cursor(self, range)
    }
    fn scan(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        Engine::scan(self, range)
    }
    fn scan_rev(&self, range: KeyRange) -> Result<ScanIter<'_>> {
        Engine::scan_rev(self, range)
    }
    fn load(&self, input: LoadInput<'_>, order: LoadOrder) -> Result<LoadReport> {
        Engine::load(self, input, order)
    }
    fn sync(&self) -> Result<()> {
        Engine::sync(self)
    }
    fn compact(&self) -> Result<()> {
        Engine::compact(self)
    }
    fn flush(&self) -> Result<bool> {
        Engine::flush(self)
    }
    fn stats(&self) -> Result<Stats> {
        Engine::stats(self)
    }
    fn close(self: Box<Self>) -> Result<()> {
        Engine::close(*self)
    }
}

/// Opens `dir` as engine `E`, boxed as a [`DynEngine`].
///
/// # Errors
/// As [`Engine::open`].
pub fn open_dyn<E: Engine>(dir: &Path, options: &Options) -> Result<Box<dyn DynEngine>> {
    Ok(Box::new(E::open(dir, options)?))
}

/// A range of keys: each end inclusive, exclusive or open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange::new(Bound::Unbounded, Bound::Unbounded)
    }

    /// A range from explicit bounds.
    pub fn new(start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Self {
        KeyRange { start, end }
    }

    /// `[start, end)`, the form the shell's `scan FROM TO` uses.
    pub fn half_open(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange::new(Bound::Included(start.into()), Bound::Excluded(end.into()))
    }

    /// Keys at or after `start`.
    pub fn from(start: impl Into<Vec<u8>>) -> Self {
        KeyRange::new(Bound::Included(start.into()), Bound::Unbounded)
    }

    /// True when `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        after_start && !self.is_past_end(key)
    }

    /// True when `key` lies after the end of the range: a sorted scan can stop there.
    pub fn is_past_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(e) => key > e.as_slice(),
            Bound::Excluded(e) => key >= e.as_slice(),
            Bound::Unbounded => false,
        }
    }

    /// True when no key can lie in the range (an inverted range, or `(k, k)` with an
    /// exclusive end). Safe to pass to `BTreeMap::range` only when this is false.
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e))
            | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        }
    }
}

impl RangeBounds<[u8]> for KeyRange {
    fn start_bound(&self) -> Bound<&[u8]> {
        self.start.as_ref().map(Vec::as_slice)
    }
    fn end_bound(&self) -> Bound<&[u8]> {
        self.end.as_ref().map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_and_empty() {
        let r = KeyRange::half_open(b"b".to_vec(), b"d".to_vec());
        assert!(!r.contains(b"a") && r.contains(b"b") && r.contains(b"c") && !r.contains(b"d"));
        assert!(r.is_past_end(b"d") && !r.is_past_end(b"c"));
        assert!(KeyRange::half_open(b"b".to_vec(), b"b".to_vec()).is_empty());
        assert!(KeyRange::half_open(b"c".to_vec(), b"b".to_vec()).is_empty());
        let inclusive = KeyRange::new(
            Bound::Included(b"b".to_vec()),
            Bound::Included(b"b".to_vec()),
        );
        assert!(!inclusive.is_empty() && inclusive.contains(b"b"));
        assert!(!KeyRange::all().is_empty() && KeyRange::all().contains(b""));
    }
}
