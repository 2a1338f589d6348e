//! [`Cursor`]: a position among an engine's keys that moves both ways, in the manner of
//! LevelDB's `Iterator`; and [`CursorIter`], the owned-pair iterator built on top of it.
//!
//! A cursor is what a range scan, a reverse scan and a seek all need. It is created by
//! [`crate::Engine::cursor`], starts *unpositioned* (not [`valid`](Cursor::valid)), and is
//! moved with [`seek`](Cursor::seek), [`seek_to_first`](Cursor::seek_to_first),
//! [`seek_to_last`](Cursor::seek_to_last), [`next`](Cursor::next) and [`prev`](Cursor::prev).
//! While it is valid, [`key`](Cursor::key) and [`value`](Cursor::value) borrow the entry it
//! is at from the cursor's own buffers: no allocation per entry is needed, and the borrow
//! ends at the next move (the borrow checker enforces it).
//!
//! ## Semantics every engine keeps
//!
//! * **A snapshot.** A cursor shows the store as it was when the cursor was created: writes,
//!   flushes, merges and compactions that happen while it lives change nothing it returns.
//! * Keys come in ascending byte order going forward, descending going back; deleted keys
//!   never appear; each live key appears once per pass.
//! * Moving past either end leaves the cursor not valid; a `seek` or `seek_to_*` places it
//!   again. `next` and `prev` on a cursor that is not valid do nothing.
//! * An error from a move (a checksum that fails, an I/O error) leaves the cursor not valid.
//!
//! ```
//! # use kv_shared::{Cursor, Result};
//! /// Every key from `from` on, backwards from the last: what `kv rscan` prints.
//! fn keys_down_to(cursor: &mut dyn Cursor, from: &[u8]) -> Result<Vec<Vec<u8>>> {
//!     let mut keys = Vec::new();
//!     cursor.seek_to_last()?;
//!     while cursor.valid() && cursor.key() >= from {
//!         keys.push(cursor.key().to_vec());
//!         cursor.prev()?;
//!     }
//!     Ok(keys)
//! }
//! ```

use std::ops::Bound;

use crate::{KeyRange, Result};

/// A movable position among a snapshot of an engine's live keys. See the
/// [module documentation](self) for the rules every implementation keeps.
pub trait Cursor {
    /// True when the cursor is at an entry, so [`key`](Cursor::key) and
    /// [`value`](Cursor::value) may be called.
    fn valid(&self) -> bool;

    /// Moves to the smallest key (not valid when the store is empty).
    ///
    /// # Errors
    /// [`crate::Error::Corruption`], [`crate::Error::Io`].
    fn seek_to_first(&mut self) -> Result<()>;

    /// Moves to the largest key (not valid when the store is empty).
    ///
    /// # Errors
    /// [`crate::Error::Corruption`], [`crate::Error::Io`].
    fn seek_to_last(&mut self) -> Result<()>;

    /// Moves to the smallest key at or after `target` (not valid when there is none).
    ///
    /// # Errors
    /// [`crate::Error::Corruption`], [`crate::Error::Io`].
    fn seek(&mut self, target: &[u8]) -> Result<()>;

    /// Moves to the next larger key; does nothing when not valid.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`], [`crate::Error::Io`].
    fn next(&mut self) -> Result<()>;

    /// Moves to the next smaller key; does nothing when not valid.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`], [`crate::Error::Io`].
    fn prev(&mut self) -> Result<()>;

    /// The key the cursor is at, borrowed until the next move.
    ///
    /// # Panics
    /// When the cursor is not [`valid`](Cursor::valid): asking is a bug in the caller.
    fn key(&self) -> &[u8];

    /// The value the cursor is at, borrowed until the next move.
    ///
    /// # Panics
    /// When the cursor is not [`valid`](Cursor::valid).
    fn value(&self) -> &[u8];

    /// Moves to the largest key at or before `target` (RocksDB's `SeekForPrev`): where a
    /// reverse scan with an upper bound starts.
    ///
    /// # Errors
    /// As [`seek`](Cursor::seek) and [`prev`](Cursor::prev).
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.seek(target)?;
        if !self.valid() {
            self.seek_to_last()
        } else if self.key() != target {
            self.prev()
        } else {
            Ok(())
        }
    }
}

/// A boxed cursor, as [`crate::Engine::cursor`] hands it out.
pub type BoxCursor<'a> = Box<dyn Cursor + 'a>;

/// Which way a [`CursorIter`] walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Reverse,
}

/// The owned-pair iterator over a cursor: the `(key, value)` pairs of a [`KeyRange`], in
/// either direction, each pair copied out of the cursor. This is the convenient form
/// ([`crate::Engine::scan`] returns it); loops that care for speed use the cursor itself,
/// or walk the same pairs borrowed with [`CursorIter::next_borrowed`] (as `kvbench` does:
/// two allocations and copies per pair would weigh more than the engine's own step).
pub struct CursorIter<'a> {
    cursor: BoxCursor<'a>,
    range: KeyRange,
    direction: Direction,
    /// Whether the first positioning has been done (it happens on the first `next`, so
    /// that its error is returned like any other).
    started: bool,
    done: bool,
}

impl<'a> CursorIter<'a> {
    /// Walks `range` of `cursor` in `direction`. The cursor is positioned on the first call
    /// to `next`.
    pub fn new(cursor: BoxCursor<'a>, range: KeyRange, direction: Direction) -> CursorIter<'a> {
        let done = range.is_empty();
        CursorIter {
            cursor,
            range,
            direction,
            started: false,
            done,
        }
    }

    /// The next pair of the walk, borrowed from the cursor until the next call: what
    /// [`Iterator::next`] copies out. `None` once the walk is over (or after an error).
    pub fn next_borrowed(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if self.done {
            return None;
        }
        if let Err(err) = self.step() {
            self.done = true;
            return Some(Err(err));
        }
        if !self.cursor.valid() || self.is_past_far_end(self.cursor.key()) {
            self.done = true;
            return None;
        }
        Some(Ok((self.cursor.key(), self.cursor.value())))
    }

    /// Places the cursor at the first entry of the walk.
    fn position(&mut self) -> Result<()> {
        match (self.direction, &self.range.start, &self.range.end) {
            (Direction::Forward, Bound::Unbounded, _) => self.cursor.seek_to_first(),
            (Direction::Forward, Bound::Included(s), _) => self.cursor.seek(s),
            (Direction::Forward, Bound::Excluded(s), _) => {
                self.cursor.seek(s)?;
                if self.cursor.valid() && self.cursor.key() == s.as_slice() {
                    self.cursor.next()?;
                }
                Ok(())
            }
            (Direction::Reverse, _, Bound::Unbounded) => self.cursor.seek_to_last(),
            (Direction::Reverse, _, Bound::Included(e)) => self.cursor.seek_for_prev(e),
            (Direction::Reverse, _, Bound::Excluded(e)) => {
                self.cursor.seek_for_prev(e)?;
                if self.cursor.valid() && self.cursor.key() == e.as_slice() {
                    self.cursor.prev()?;
                }
                Ok(())
            }
        }
    }

    /// True when the cursor's key lies beyond the far end of the walk.
    fn is_past_far_end(&self, key: &[u8]) -> bool {
        match self.direction {
            Direction::Forward => self.range.is_past_end(key),
            Direction::Reverse => match &self.range.start {
                Bound::Included(s) => key < s.as_slice(),
                Bound::Excluded(s) => key <= s.as_slice(),
                Bound::Unbounded => false,
            },
        }
    }

    /// One step of the walk: positions or moves the cursor.
    fn step(&mut self) -> Result<()> {
        if !self.started {
            self.started = true;
            return self.position();
        }
        match self.direction {
            Direction::Forward => self.cursor.next(),
            Direction::Reverse => self.cursor.prev(),
        }
    }
}

impl Iterator for CursorIter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_borrowed()
            .map(|pair| pair.map(|(key, value)| (key.to_vec(), value.to_vec())))
    }
}

/// A cursor over a sorted, owned list of pairs: the simplest correct cursor, for engines
/// whose snapshot is a list they build anyway (and for tests of cursor users).
#[derive(Debug, Clone, Default)]
pub struct VecCursor {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// The position; `entries.len()` means not valid.
    at: usize,
}

impl VecCursor {
    /// A cursor over `entries`, which must be sorted by key with no key twice.
    pub fn new(entries: Vec<(Vec<u8>, Vec<u8>)>) -> VecCursor {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        let at = entries.len();
        VecCursor { entries, at }
    }
}

impl Cursor for VecCursor {
    fn valid(&self) -> bool {
        self.at < self.entries.len()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.at = 0;
        Ok(())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.at = self
            .entries
            .len()
            .checked_sub(1)
            .unwrap_or(self.entries.len());
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.at = self.entries.partition_point(|(k, _)| k.as_slice() < target);
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        if self.valid() {
            self.at += 1;
        }
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        if self.valid() {
            self.at = self.at.checked_sub(1).unwrap_or(self.entries.len());
        }
        Ok(())
    }
    fn key(&self) -> &[u8] {
        &self.entries[self.at].0
    }
    fn value(&self) -> &[u8] {
        &self.entries[self.at].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> BoxCursor<'static> {
        let pairs = [b"b", b"d", b"f"].map(|k| (k.to_vec(), k.to_ascii_uppercase()));
        Box::new(VecCursor::new(pairs.to_vec()))
    }

    fn keys(range: KeyRange, direction: Direction) -> Vec<u8> {
        CursorIter::new(cursor(), range, direction)
            .map(|pair| pair.unwrap().0[0])
            .collect()
    }

    #[test]
    fn walks_ranges_both_ways() {
        use Bound::*;
        use Direction::*;
        let r = |s: Bound<&[u8]>, e: Bound<&[u8]>| {
            KeyRange::new(s.map(<[u8]>::to_vec), e.map(<[u8]>::to_vec))
        };
        let cases: [(KeyRange, Direction, &[u8]); 11] = [
            (KeyRange::all(), Forward, b"bdf"),
            (KeyRange::all(), Reverse, b"fdb"),
            (r(Excluded(b"b"), Included(b"f")), Forward, b"df"),
            (r(Excluded(b"b"), Included(b"f")), Reverse, b"fd"),
            (r(Included(b"c"), Excluded(b"f")), Reverse, b"d"),
            (r(Included(b"a"), Included(b"e")), Reverse, b"db"),
            (r(Included(b"g"), Unbounded), Forward, b""),
            (r(Unbounded, Excluded(b"b")), Reverse, b""),
            (r(Included(b"e"), Included(b"c")), Forward, b""),
            (r(Included(b"b"), Excluded(b"b")), Forward, b""),
            (r(Excluded(b"b"), Excluded(b"d")), Reverse, b""),
        ];
        for (range, direction, want) in cases {
            let case = format!("{range:?} {direction:?}");
            assert_eq!(keys(range, direction), want, "{case}");
        }
    }

    #[test]
    fn seek_for_prev_lands_at_or_before() {
        let mut c = cursor();
        let landings = [
            (b"e", Some(b"d")),
            (b"d", Some(b"d")),
            (b"z", Some(b"f")),
            (b"a", None),
        ];
        for (target, lands_at) in landings {
            c.seek_for_prev(target).unwrap();
            assert_eq!(c.valid().then(|| c.key()), lands_at.map(|k| &k[..]));
        }
        c.next().unwrap();
        assert!(!c.valid(), "next on an invalid cursor does nothing");
    }
}
