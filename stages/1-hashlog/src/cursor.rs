//! [`HashLogCursor`]: a cursor over a sorted copy of the index.
//!
//! The index is a hash map, which has no order, so a cursor cannot walk it. Instead, when
//! it is created, a cursor copies every live key and the [`Location`] of its value out of
//! the index and sorts them: O(n log n) for n live keys, however few of them the caller then
//! visits. That is this stage's lesson about range reads; stage 3's sorted tables remove the
//! sort. After that:
//!
//! * `seek` is a binary search of the sorted keys, `next` and `prev` are one step;
//! * at each position, the cursor reads the value from the data file and checks it as `get`
//!   does, into buffers it owns, so `key()` and `value()` borrow from the cursor and a walk
//!   allocates nothing once the buffers have grown. A value that a batch wrote costs a
//!   read of its whole batch record.
//!
//! The sorted copy is the snapshot: records are never moved or changed once written, so
//! the locations it holds stay valid, and writes after the copy change the index, not the
//! copy. A read that fails (an I/O error, a record that fails its checks) leaves the cursor
//! not valid, and is returned.

use kv_shared::{Cursor, FileRef, Result};

use crate::engine::read_value;
use crate::index::Location;

/// A cursor over the live keys of a [`crate::HashLog`] as they were when it was created.
/// See the [module documentation](self).
#[derive(Debug)]
pub struct HashLogCursor<'a> {
    /// The data file the values are read from.
    file: &'a FileRef,
    /// The snapshot: keys and the locations of their values, in ascending key order.
    entries: Vec<(Vec<u8>, Location)>,
    /// The position in `entries`; `entries.len()` when not valid.
    at: usize,
    /// The bytes of the record last read.
    record: Vec<u8>,
    /// The value at the position, copied out of `record`.
    value: Vec<u8>,
}

impl<'a> HashLogCursor<'a> {
    /// A cursor over `entries` (sorted by key, no key twice), reading values from `file`.
    /// It starts not valid.
    pub(crate) fn new(file: &'a FileRef, entries: Vec<(Vec<u8>, Location)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        HashLogCursor {
            file,
            at: entries.len(),
            entries,
            record: Vec::new(),
            value: Vec::new(),
        }
    }

    /// The position that means "not valid".
    fn end(&self) -> usize {
        self.entries.len()
    }

    /// Moves to `at` (not valid when it is [`end`](Self::end)) and reads the value there.
    fn move_to(&mut self, at: usize) -> Result<()> {
        self.at = at;
        let Some((key, location)) = self.entries.get(at) else {
            return Ok(());
        };
        match read_value(self.file, key, *location, &mut self.record) {
            Ok(value) => {
                self.value.clear();
                self.value.extend_from_slice(value);
                Ok(())
            }
            Err(err) => {
                self.at = self.end();
                Err(err)
            }
        }
    }
}

impl Cursor for HashLogCursor<'_> {
    fn valid(&self) -> bool {
        self.at < self.end()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.move_to(0)
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.move_to(self.end().checked_sub(1).unwrap_or(self.end()))
    }

    // Exercise 1.7: seek in the sorted copy. Read: chapter 1, "Batches and cursors".
    // Tests: cursor::a_cursor_walks_and_seeks_like_a_sorted_map
    // Tests: conformance::conformance::cursor_seeks_at_every_boundary
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let at = self
            .entries
            .partition_point(|(key, _)| key.as_slice() < target);
        self.move_to(at)
    }

    fn next(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.move_to(self.at + 1)
    }

    fn prev(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.move_to(self.at.checked_sub(1).unwrap_or(self.end()))
    }

    fn key(&self) -> &[u8] {
        assert!(self.valid(), "key() of a cursor that is not valid");
        &self.entries[self.at].0
    }

    fn value(&self) -> &[u8] {
        assert!(self.valid(), "value() of a cursor that is not valid");
        &self.value
    }
}
