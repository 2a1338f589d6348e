//! A level's tables as one sequence, and the cursors over a set of tables.
//!
//! On L1 and deeper, tables do not overlap and are kept in key order, so the level's entries
//! in order are simply the first table's, then the second's, and so on: a
//! [`ConcatCursor`] over the level's tables ([`LevelTables`]), with one table cursor open at
//! a time. L0 tables overlap, so each one is a cursor of its own.
//!
//! [`tables_cursors`] builds the cursors over a set of tables on their levels, as a
//! reader's snapshot and a compaction's inputs both need them.

use std::collections::BTreeMap;
use std::sync::Arc;

use kv_shared::Result;

use crate::cursor::BoxEntryCursor;
use crate::cursor::concat::{ConcatCursor, Pieces};
use crate::key::compare;
use crate::table::TableCursor;
use crate::version::TableFile;

/// A cursor over a level's tables (sorted, disjoint) as one sequence.
pub type LevelCursor = ConcatCursor<LevelTables>;

/// A level's tables, sorted by key and disjoint, as the pieces of a [`LevelCursor`].
pub struct LevelTables {
    tables: Vec<Arc<TableFile>>,
    /// Whether the tables' cursors put the blocks they read in the block cache.
    fill_cache: bool,
}

impl LevelTables {
    /// The pieces of a cursor over `tables`, which must be sorted by key and disjoint.
    /// `fill_cache` is the tables' cursors' ([`crate::table::Table::cursor`]).
    pub fn new(tables: Vec<Arc<TableFile>>, fill_cache: bool) -> LevelTables {
        LevelTables { tables, fill_cache }
    }
}

impl Pieces for LevelTables {
    type Cursor = TableCursor;

    fn count(&self) -> usize {
        self.tables.len()
    }

    fn find(&self, key: &[u8], seq: u64) -> usize {
        self.tables
            .partition_point(|t| compare(&t.meta.largest, t.meta.largest_seq, key, seq).is_lt())
    }

    fn open(&self, i: usize) -> Result<TableCursor> {
        Ok(self.tables[i].table.cursor(self.fill_cache))
    }
}

/// Cursors over `tables`, each given with its level: one table cursor per L0 table, one
/// [`LevelCursor`] per deeper level (whose tables must be disjoint, as a version's are).
/// `fill_cache` is the tables' cursors'.
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
        let level = LevelTables::new(tables, fill_cache);
        cursors.push(Box::new(LevelCursor::new(level)));
    }
    cursors
}
