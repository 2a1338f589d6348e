//! [`WisckeyCursor`]: the tree's cursor, with each value fetched from the value log, and
//! fetched **ahead**.
//!
//! The tree gives the keys in order, each with its tree value; an inline value is the value,
//! a pointer must be read from the value log. So a scan of `n` keys is `n` random reads of
//! the log: the keys are sorted in the tree, but their values lie in the log in the order
//! they were *written*. That is the price WiscKey pays for small trees and cheap
//! compactions, and the paper pays it back with parallel reads ahead (SSDs serve many at
//! once).
//!
//! ## Reading ahead
//!
//! The cursor keeps a **window** of entries around its position: keys and values, read
//! from the tree and the log together. When a move leaves the window, the next window is
//! read in the direction of the move, and each window (up to `scan_prefetch` entries) is
//! twice as large as the one before, starting at one entry after a seek: a seek followed by
//! a single read costs one value read, a long scan fetches many at once. The values of a
//! window are fetched in **segment and offset order**, and records lying close together in
//! one segment (a gap of at most [`MAX_GAP`] bytes, at most [`MAX_READ`] bytes in all) are
//! fetched by **one** positioned read and cut apart: values written in key order, as a bulk
//! load or a sequential fill writes them, are read back in a few large reads, and values
//! written at random are at least read in the order of the file. Each record is checked as
//! a `get` checks it ([`crate::value_log::Segment::value_in`]).
//!
//! An entry read ahead whose value fails its read keeps its error, and the cursor reports it
//! only when it moves to that entry: reading ahead never reports damage the caller would
//! not have met.
//!
//! ## A snapshot
//!
//! The cursor takes the tree's cursor (a snapshot of the tree) and a copy of the table of
//! segments at the same time, with the table held for reading; the garbage collector
//! retires a segment only with the table held for writing, after the tree stopped pointing
//! into it. So every pointer the cursor's snapshot holds names a segment in its copy, and
//! the copy's `Arc`s keep those files on disk until the cursor is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use kv_shared::{BoxCursor, Cursor, Engine as _, Result};

use crate::engine::{Counters, Inner};
use crate::value_log::Segment;
use crate::value_pointer::{self, TreeValue, ValuePointer};

/// Largest gap between two records of one segment that one read still spans.
pub const MAX_GAP: u64 = 4 << 10;
/// Largest single read of a window.
pub const MAX_READ: u64 = 1 << 20;

/// Where the tree's cursor is, relative to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TreeAt {
    /// Just after the window's last entry (a window read forwards).
    After,
    /// Just before the window's first entry (a window read backwards).
    Before,
}

/// A cursor over a snapshot of the store (see the module documentation).
pub struct WisckeyCursor<'a> {
    inner: &'a Inner,
    tree: BoxCursor<'a>,
    segments: BTreeMap<u32, Arc<Segment>>,
    /// Entries around the position, ascending by key; a value that failed keeps its error.
    window: Vec<(Vec<u8>, Result<Vec<u8>>)>,
    /// The position in `window`; `window.len()` when not valid.
    at: usize,
    tree_at: TreeAt,
    /// How many entries the next window reads.
    next_size: usize,
}

impl<'a> WisckeyCursor<'a> {
    /// A cursor over the store of `inner` as it is now, not yet positioned.
    ///
    /// # Errors
    /// The tree's, when it cannot make its cursor.
    pub(crate) fn new(inner: &'a Inner) -> Result<WisckeyCursor<'a>> {
        let (tree, segments) = {
            let table = inner.vlog.segments();
            (inner.tree.cursor()?, table.clone())
        };
        Ok(WisckeyCursor {
            inner,
            tree,
            segments,
            window: Vec::new(),
            at: 0,
            tree_at: TreeAt::After,
            next_size: 1,
        })
    }

    /// The largest window.
    fn max_window(&self) -> usize {
        self.inner.options.scan_prefetch.max(1)
    }

    /// Reads the next window forwards from where the tree's cursor is, and moves to its
    /// first entry.
    fn fill_forward(&mut self) -> Result<()> {
        let mut raw = Vec::new();
        while self.tree.valid() && raw.len() < self.next_size {
            raw.push((self.tree.key().to_vec(), self.tree.value().to_vec()));
            self.tree.next()?;
        }
        self.tree_at = TreeAt::After;
        self.load(raw);
        self.at = 0;
        self.settle()
    }

    /// Reads the next window backwards from where the tree's cursor is, and moves to its
    /// last entry.
    fn fill_backward(&mut self) -> Result<()> {
        let mut raw = Vec::new();
        while self.tree.valid() && raw.len() < self.next_size {
            raw.push((self.tree.key().to_vec(), self.tree.value().to_vec()));
            self.tree.prev()?;
        }
        raw.reverse();
        self.tree_at = TreeAt::Before;
        self.load(raw);
        self.at = self.window.len().saturating_sub(1);
        self.settle()
    }

    /// Makes `raw` (keys and tree values, ascending) the window, its values fetched, and
    /// doubles the size of the next one.
    fn load(&mut self, raw: Vec<(Vec<u8>, Vec<u8>)>) {
        self.window = fetch_values(self.inner, &self.segments, raw);
        self.next_size = (self.next_size * 2).min(self.max_window());
    }

    /// At the current entry: reports its error, if its value failed, and leaves the cursor
    /// not valid.
    fn settle(&mut self) -> Result<()> {
        if let Some((_, Err(_))) = self.window.get(self.at) {
            let (_, failed) = self.window.swap_remove(self.at);
            self.invalidate();
            return failed.map(|_| ());
        }
        if self.window.is_empty() {
            self.invalidate();
        }
        Ok(())
    }

    /// Leaves the cursor not valid.
    fn invalidate(&mut self) {
        self.window.clear();
        self.at = 0;
    }

    /// Starts over after a seek: the next window is one entry.
    fn restart(&mut self) {
        self.invalidate();
        self.next_size = 1;
    }

    /// On any error of a tree move, leaves the cursor not valid.
    fn guard(&mut self, r: Result<()>) -> Result<()> {
        if r.is_err() {
            self.invalidate();
        }
        r
    }
}

impl Cursor for WisckeyCursor<'_> {
    fn valid(&self) -> bool {
        self.at < self.window.len()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.restart();
        let r = self.tree.seek_to_first().and_then(|()| self.fill_forward());
        self.guard(r)
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.restart();
        let r = self.tree.seek_to_last().and_then(|()| self.fill_backward());
        self.guard(r)
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.restart();
        let r = self.tree.seek(target).and_then(|()| self.fill_forward());
        self.guard(r)
    }

    fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.restart();
        let r = self
            .tree
            .seek_for_prev(target)
            .and_then(|()| self.fill_backward());
        self.guard(r)
    }

    fn next(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        if self.at + 1 < self.window.len() {
            self.at += 1;
            return self.settle();
        }
        let last = std::mem::take(&mut self.window[self.at].0);
        let r = step_past(&mut self.tree, self.tree_at, TreeAt::After, &last)
            .and_then(|()| self.fill_forward());
        self.guard(r)
    }

    fn prev(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        if self.at > 0 {
            self.at -= 1;
            return self.settle();
        }
        let first = std::mem::take(&mut self.window[0].0);
        let r = step_past(&mut self.tree, self.tree_at, TreeAt::Before, &first)
            .and_then(|()| self.fill_backward());
        self.guard(r)
    }

    fn key(&self) -> &[u8] {
        &self.window[self.at].0
    }

    fn value(&self) -> &[u8] {
        match &self.window[self.at].1 {
            Ok(value) => value,
            // `settle` never leaves the cursor at a failed entry.
            Err(_) => &[],
        }
    }
}

/// Puts the tree's cursor, now `now` relative to the window, just `want` it: after `edge`
/// (the window's last key) or before it (its first). Already there, it stays; otherwise it
/// seeks to `edge` and steps past it.
fn step_past(tree: &mut BoxCursor<'_>, now: TreeAt, want: TreeAt, edge: &[u8]) -> Result<()> {
    if now == want {
        return Ok(());
    }
    match want {
        TreeAt::After => {
            tree.seek(edge)?;
            if tree.valid() && tree.key() == edge {
                tree.next()?;
            }
        }
        TreeAt::Before => {
            tree.seek_for_prev(edge)?;
            if tree.valid() && tree.key() == edge {
                tree.prev()?;
            }
        }
    }
    Ok(())
}

/// The values of `raw` (keys and tree values): inline ones as they are, pointers read from
/// the value log in segment and offset order, close records in one read.
fn fetch_values(
    inner: &Inner,
    segments: &BTreeMap<u32, Arc<Segment>>,
    raw: Vec<(Vec<u8>, Vec<u8>)>,
) -> Vec<(Vec<u8>, Result<Vec<u8>>)> {
    let mut out: Vec<(Vec<u8>, Result<Vec<u8>>)> = Vec::with_capacity(raw.len());
    let mut wanted: Vec<(ValuePointer, usize)> = Vec::new();
    for (i, (key, mut value)) in raw.into_iter().enumerate() {
        let decoded = value_pointer::decode(&value).map_err(|e| inner.bad_tree_value(e));
        let result = match decoded {
            Ok(TreeValue::Inline(_)) => {
                value.remove(0);
                Ok(value)
            }
            Ok(TreeValue::Pointer(p)) => {
                wanted.push((p, i));
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        };
        out.push((key, result));
    }
    wanted.sort_unstable();
    for run in runs(&wanted) {
        read_run(inner, segments, run, &mut out);
    }
    out
}

/// `wanted` (sorted) cut into runs that one read each serves: one segment, gaps of at most
/// [`MAX_GAP`], at most [`MAX_READ`] bytes.
fn runs(wanted: &[(ValuePointer, usize)]) -> Vec<&[(ValuePointer, usize)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=wanted.len() {
        let joins = wanted.get(i).is_some_and(|(p, _)| {
            let first = &wanted[start].0;
            let last = &wanted[i - 1].0;
            p.segment == first.segment
                && p.offset <= last.end() + MAX_GAP
                && p.end().saturating_sub(first.offset) <= MAX_READ
        });
        if !joins {
            runs.push(&wanted[start..i]);
            start = i;
        }
    }
    runs
}

// Exercise 5.4: read a run of values ahead in one read. Read: chapter 5, "Scans".
// Tests: scans::values_written_in_key_order_are_read_in_few_reads
// Tests: scans::a_value_read_ahead_reports_its_damage_only_where_the_cursor_reaches_it
/// Reads one run of records with one read and puts each value (or its error) into `out`;
/// a failed read is retried record by record, so that each record gets its own error.
fn read_run(
    inner: &Inner,
    segments: &BTreeMap<u32, Arc<Segment>>,
    run: &[(ValuePointer, usize)],
    out: &mut [(Vec<u8>, Result<Vec<u8>>)],
) {
    let Some(segment) = segments.get(&run[0].0.segment) else {
        for &(p, i) in run {
            out[i].1 = Err(inner.missing_segment(p.segment));
        }
        return;
    };
    let c = &inner.counters;
    Counters::add(&c.prefetch_values, run.len() as u64);
    let start = run[0].0.offset;
    let end = run.iter().map(|(p, _)| p.end()).max().unwrap_or(start);
    let whole = run
        .iter()
        .try_for_each(|(p, _)| segment.check_bounds(p))
        .and_then(|()| segment.file().read_vec_at(start, (end - start) as usize));
    Counters::add(&c.prefetch_reads, 1);
    for &(p, i) in run {
        let key = &out[i].0;
        out[i].1 = match &whole {
            Ok(bytes) => {
                let from = (p.offset - start) as usize;
                let record = bytes[from..from + p.len as usize].to_vec();
                segment.value_in(record, &p, key)
            }
            Err(_) => segment.read(&p, key),
        };
    }
}
