//! [`BitcaskCursor`]: a cursor over a sorted copy of the keydir.
//!
//! The keydir is a hash map: it answers "where is this key?" in one probe, but it has no
//! order. So a cursor (and a scan, which walks one) starts by copying the keydir's entries
//! and **sorting** them: `n log n` work and a copy of every key before the first one comes
//! out. That is the price of a hash index; the sorted files of stage 3 remove it.
//!
//! ## A snapshot
//!
//! The copy is taken under the keydir's read lock, together with an `Arc` of every segment
//! (see [`crate::segment`]). Later writes change the keydir, not the copy; a merge that
//! finishes meanwhile retires its inputs, but their files stay until the cursor drops its
//! `Arc`s. So the cursor shows the store exactly as it was when it was made. Keys whose
//! expiry has passed by then are left out of the copy, as a `get` would answer `None` for
//! them.
//!
//! ## Moving
//!
//! `seek` is a binary search in the sorted copy; `next` and `prev` step through it. Each
//! move to an entry reads its value from disk into the cursor's own buffer (one positioned
//! read, checksum checked, as a `get` does), so `value()` borrows it without a copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kv_shared::{Cursor, KeyRange, Result};

use crate::engine::State;
use crate::expiry;
use crate::keydir::Entry;
use crate::segment::{Segment, missing_segment};

/// A cursor over a snapshot of the live keys (of a range), sorted when it was made.
#[derive(Debug)]
pub struct BitcaskCursor {
    /// The snapshot: every live key of the range and its keydir entry, sorted by key.
    entries: Vec<(Box<[u8]>, Entry)>,
    /// The segments the entries point into, held so that no merge deletes them meanwhile.
    segments: BTreeMap<u32, Arc<Segment>>,
    /// The store directory, to name in an error.
    dir: PathBuf,
    /// The position; `entries.len()` when the cursor is not valid.
    at: usize,
    /// The value of the entry at the position.
    value: Vec<u8>,
}

impl BitcaskCursor {
    /// A cursor over the live keys of `range` in `state`, not yet positioned.
    pub(crate) fn new(state: &State, dir: &Path, range: &KeyRange) -> BitcaskCursor {
        let entries = state.keydir.sorted_range(range, expiry::now_millis());
        BitcaskCursor {
            at: entries.len(),
            entries,
            segments: state.segments.clone(),
            dir: dir.to_path_buf(),
            value: Vec::new(),
        }
    }

    /// Moves to entry `at` (not valid when out of range) and reads its value.
    fn go(&mut self, at: usize) -> Result<()> {
        self.at = at.min(self.entries.len());
        let Some((key, entry)) = self.entries.get(self.at) else {
            return Ok(());
        };
        let read = match self.segments.get(&entry.segment) {
            Some(segment) => segment.read_value_into(key, entry, &mut self.value),
            None => Err(missing_segment(&self.dir, entry.segment)),
        };
        if read.is_err() {
            self.at = self.entries.len();
        }
        read
    }
}

impl Cursor for BitcaskCursor {
    fn valid(&self) -> bool {
        self.at < self.entries.len()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.go(0)
    }

    fn seek_to_last(&mut self) -> Result<()> {
        let last = self.entries.len().checked_sub(1);
        self.go(last.unwrap_or(self.entries.len()))
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let at = self.entries.partition_point(|(key, _)| **key < *target);
        self.go(at)
    }

    /// A binary search too, so that only the entry it lands on is read.
    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        let after = self.entries.partition_point(|(key, _)| **key <= *target);
        self.go(after.checked_sub(1).unwrap_or(self.entries.len()))
    }

    fn next(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.go(self.at + 1)
    }

    fn prev(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.go(self.at.checked_sub(1).unwrap_or(self.entries.len()))
    }

    fn key(&self) -> &[u8] {
        &self.entries[self.at].0
    }

    fn value(&self) -> &[u8] {
        &self.value
    }
}
