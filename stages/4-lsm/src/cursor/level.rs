//! The concatenating iterator: one level of disjoint, sorted tables read as one stream.
//!
//! On L1 and deeper, tables do not overlap and are kept in key order, so the level's entries
//! in order are simply the first table's, then the second's, and so on. [`ConcatIter`] opens
//! one table iterator at a time, starting with the first table whose range reaches the scan's
//! start, so a scan costs one open iterator per level however many tables the level holds,
//! and a scan that stops early never touches the tables after it.

use std::ops::Bound;
use std::sync::Arc;

use kv_shared::Result;

use crate::key::{Entry, EntryIter};
use crate::version::TableFile;

/// Iterates a level's tables one after another.
pub struct ConcatIter {
    tables: Vec<Arc<TableFile>>,
    next_table: usize,
    current: Option<EntryIter<'static>>,
    start: Bound<Vec<u8>>,
}

impl ConcatIter {
    /// Iterates `tables` (sorted, disjoint) from the user-key bound `start`.
    pub fn new(tables: Vec<Arc<TableFile>>, start: Bound<&[u8]>) -> ConcatIter {
        let next_table = match start {
            Bound::Unbounded => 0,
            Bound::Included(k) => tables.partition_point(|t| t.meta.largest.as_slice() < k),
            Bound::Excluded(k) => tables.partition_point(|t| t.meta.largest.as_slice() <= k),
        };
        ConcatIter {
            tables,
            next_table,
            current: None,
            start: start.map(<[u8]>::to_vec),
        }
    }
}

impl Iterator for ConcatIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            if let Some(it) = &mut self.current {
                if let Some(item) = it.next() {
                    return Some(item);
                }
                self.current = None;
            }
            let table = self.tables.get(self.next_table)?;
            // Only the first table opened can hold keys before the start bound.
            let start = std::mem::replace(&mut self.start, Bound::Unbounded);
            self.current = Some(table.table.iter(start.as_ref().map(Vec::as_slice)));
            self.next_table += 1;
        }
    }
}
