//! The level cursor: one level of disjoint, sorted tables read as one sequence.
//!
//! On L1 and deeper, tables do not overlap and are kept in key order, so the level's entries
//! in order are simply the first table's, then the second's, and so on. [`LevelCursor`]
//! holds a cursor on one table at a time: a seek binary-searches the tables for the first
//! whose largest key reaches the target, and a move past either end of a table goes on in
//! the next or previous one. So a level costs one table cursor however many tables it holds,
//! and a scan that stops early never touches the tables after it.
//!
//! [`tables_cursors`] builds the cursors over a set of tables on their levels, as a
//! reader's snapshot and a compaction's inputs both need them: one per L0 table (L0 tables
//! overlap), one level cursor per deeper level.

use std::collections::BTreeMap;
use std::sync::Arc;

use kv_shared::Result;

use crate::cursor::{BoxEntryCursor, EntryCursor};
use crate::key::compare;
use crate::table::TableCursor;
use crate::version::TableFile;

/// A cursor over a level's tables (sorted, disjoint) as one sequence.
pub struct LevelCursor {
    tables: Vec<Arc<TableFile>>,
    fill_cache: bool,
    /// The table it is in, and the cursor over it; `None` when not valid.
    at: Option<(usize, TableCursor)>,
}

impl LevelCursor {
    /// A cursor over `tables`, sorted by key and disjoint, not yet positioned. `fill_cache`
    /// is the tables' cursors' ([`crate::table::Table::cursor`]).
    pub fn new(tables: Vec<Arc<TableFile>>, fill_cache: bool) -> LevelCursor {
        LevelCursor {
            tables,
            fill_cache,
            at: None,
        }
    }

    /// Positions the cursor in table `i` with `place`, then, while that leaves it past the
    /// table's end, at the first entry of the tables after it (`forward`) or the last of
    /// those before it.
    fn settle(
        &mut self,
        mut i: usize,
        forward: bool,
        place: impl FnOnce(&mut TableCursor) -> Result<()>,
    ) -> Result<()> {
        self.at = None;
        let mut place = Some(place);
        while let Some(table) = self.tables.get(i) {
            let mut cursor = table.table.cursor(self.fill_cache);
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

    /// Moves the table cursor, going on to the next or previous table when it leaves this
    /// one.
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
        if moved.is_err() || cursor.valid() {
            if moved.is_err() {
                self.at = None;
            }
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

    fn current(&self) -> &TableCursor {
        match &self.at {
            Some((_, cursor)) => cursor,
            None => panic!("a level cursor read while not valid"),
        }
    }
}

impl EntryCursor for LevelCursor {
    fn valid(&self) -> bool {
        self.at.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.settle(0, true, |c| c.seek_to_first())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        // No tables: table 0 does not exist, and the cursor is left not valid.
        let last = self.tables.len().saturating_sub(1);
        self.settle(last, false, |c| c.seek_to_last())
    }

    fn seek(&mut self, key: &[u8], seq: u64) -> Result<()> {
        // The first table whose largest internal key is at or after (key, seq).
        let i = self
            .tables
            .partition_point(|t| compare(&t.meta.largest, t.meta.largest_seq, key, seq).is_lt());
        self.settle(i, true, |c| c.seek(key, seq))
    }

    fn next(&mut self) -> Result<()> {
        self.step(true)
    }

    fn prev(&mut self) -> Result<()> {
        self.step(false)
    }

    fn key(&self) -> &[u8] {
        self.current().key()
    }

    fn seq(&self) -> u64 {
        self.current().seq()
    }

    fn value(&self) -> Option<&[u8]> {
        self.current().value()
    }
}

/// Cursors over `tables`, each given with its level: one table cursor per L0 table, one
/// [`LevelCursor`] per deeper level (whose tables must be sorted by key and disjoint, as
/// a version's are). `fill_cache` is the tables' cursors'.
pub fn tables_cursors<'a>(
    tables: impl IntoIterator<Item = (usize, &'a Arc<TableFile>)>,
    fill_cache: bool,
) -> Vec<BoxEntryCursor> {
    let mut cursors: Vec<BoxEntryCursor> = Vec::new();
    let mut levels: BTreeMap<usize, Vec<Arc<TableFile>>> = BTreeMap::new();
    for (level, table) in tables {
        if level == 0 {
            cursors.push(Box::new(table.table.cursor(fill_cache)));
        } else {
            levels.entry(level).or_default().push(table.clone());
        }
    }
    for mut tables in levels.into_values() {
        tables.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
        cursors.push(Box::new(LevelCursor::new(tables, fill_cache)));
    }
    cursors
}
