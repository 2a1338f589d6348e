//! The concatenating cursor: pieces laid end to end in key order, read as one sequence.
//!
//! A table is data blocks in key order; a level below L0 is tables in key order, none
//! overlapping the next. Both are read the same way (LevelDB's *two-level iterator*): an
//! index says where each piece's keys end, a seek binary-searches it for the one piece that
//! can hold the target and opens a cursor on that piece alone, and a move past either end
//! of a piece goes on at the start of the next piece or the end of the one before. So one
//! piece is open at a time however many there are, and a scan that stops early never
//! touches the pieces after it. A seek that lands in the piece already open seeks inside
//! it, without opening it again (a table's block is not looked up in the cache again, a
//! level's table cursor keeps its block and its readahead).
//!
//! What a piece is, and how to find and open one, is a [`Pieces`]: a table's blocks
//! ([`crate::table::table`]), a level's tables ([`crate::cursor::level`]).

use kv_shared::Result;

use crate::cursor::{EntryCursor, EntryRef};

/// Pieces in key order, none overlapping the next, each with a cursor of its own.
pub trait Pieces {
    /// The cursor over one piece.
    type Cursor: EntryCursor;

    /// The number of pieces.
    fn count(&self) -> usize;

    /// The first piece whose last internal key is at or after `(key, seq)`: the only one
    /// that can hold the first entry at or after it. [`Pieces::count`] when there is none.
    fn find(&self, key: &[u8], seq: u64) -> usize;

    /// A cursor over piece `i`, not yet positioned.
    ///
    /// # Errors
    /// [`kv_shared::Error::Corruption`], [`kv_shared::Error::Io`].
    fn open(&self, i: usize) -> Result<Self::Cursor>;
}

/// A cursor over [`Pieces`] as one sequence (see the module documentation).
pub struct ConcatCursor<P: Pieces> {
    pieces: P,
    /// The piece it is in, and the cursor over it; `None` when not valid.
    at: Option<(usize, P::Cursor)>,
}

impl<P: Pieces> ConcatCursor<P> {
    /// A cursor over `pieces`, not yet positioned.
    pub fn new(pieces: P) -> ConcatCursor<P> {
        ConcatCursor { pieces, at: None }
    }

    /// The pieces.
    pub fn pieces(&self) -> &P {
        &self.pieces
    }

    /// Opens piece `i` and positions its cursor with `place`; while that leaves it past the
    /// piece's end, goes on at the first entry of the pieces after it (`forward`) or the
    /// last entry of those before it.
    fn settle(
        &mut self,
        mut i: usize,
        forward: bool,
        place: impl FnOnce(&mut P::Cursor) -> Result<()>,
    ) -> Result<()> {
        self.at = None;
        let mut place = Some(place);
        while i < self.pieces.count() {
            let mut cursor = self.pieces.open(i)?;
            match place.take() {
                Some(place) => place(&mut cursor)?,
                None if forward => cursor.seek_to_first()?,
                None => cursor.seek_to_last()?,
            }
            if cursor.valid() {
                self.at = Some((i, cursor));
                return Ok(());
            }
            match (forward, i.checked_sub(1)) {
                (true, _) => i += 1,
                (false, Some(before)) => i = before,
                (false, None) => break,
            }
        }
        Ok(())
    }

    /// Moves within the current piece, and on to the next (`forward`) or previous piece
    /// when that leaves it.
    fn step(&mut self, forward: bool) -> Result<()> {
        let Some((i, cursor)) = &mut self.at else {
            return Ok(());
        };
        let i = *i;
        let moved = if forward {
            cursor.next()
        } else {
            cursor.prev()
        };
        if moved.is_ok() && cursor.valid() {
            return Ok(());
        }
        if moved.is_err() {
            self.at = None;
            return moved;
        }
        match (forward, i.checked_sub(1)) {
            (true, _) => self.settle(i + 1, true, |c| c.seek_to_first()),
            (false, Some(before)) => self.settle(before, false, |c| c.seek_to_last()),
            (false, None) => {
                self.at = None;
                Ok(())
            }
        }
    }
}

impl<P: Pieces> EntryCursor for ConcatCursor<P> {
    fn valid(&self) -> bool {
        self.at.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.settle(0, true, |c| c.seek_to_first())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        // No pieces: piece 0 does not exist, and the cursor is left not valid.
        let last = self.pieces.count().saturating_sub(1);
        self.settle(last, false, |c| c.seek_to_last())
    }

    fn seek(&mut self, key: &[u8], seq: u64) -> Result<()> {
        let i = self.pieces.find(key, seq);
        // Already in that piece (a seek near the last one, or a merge turning around): seek
        // inside the open piece rather than find and open it again.
        if let Some((at, cursor)) = &mut self.at
            && *at == i
        {
            match cursor.seek(key, seq) {
                Ok(()) if cursor.valid() => return Ok(()),
                Ok(()) => return self.settle(i + 1, true, |c| c.seek_to_first()),
                Err(e) => {
                    self.at = None;
                    return Err(e);
                }
            }
        }
        self.settle(i, true, |c| c.seek(key, seq))
    }

    fn next(&mut self) -> Result<()> {
        self.step(true)
    }

    fn prev(&mut self) -> Result<()> {
        self.step(false)
    }

    fn entry(&self) -> EntryRef<'_> {
        match &self.at {
            Some((_, cursor)) => cursor.entry(),
            None => panic!("a cursor read while not valid"),
        }
    }
}
