//! A level's tables as one sequence, and the cursors over a set of tables.
//!
//! On L1 and deeper, tables do not overlap and are kept in key order, so the level's entries
//! in order are simply the first table's, then the second's, and so on: a
//! [`ConcatCursor`] over the level's tables ([`LevelTables`]), with one table cursor open at
//! a time. L0 tables overlap, so each one is a cursor of its own.
//!
//! [`version_cursors`] builds the cursors over every table of a version, as a reader's
//! snapshot needs them; [`tables_cursors`] over any set of tables on their levels, as a
//! compaction's inputs need them.

use std::collections::BTreeMap;
use std::sync::Arc;

use kv_shared::Result;

use crate::cursor::Source;
use crate::cursor::concat::{ConcatCursor, Pieces};
use crate::key::compare;
use crate::table::TableCursor;
use crate::version::{NUM_LEVELS, TableFile, Version};

/// A cursor over a level's tables (sorted, disjoint) as one sequence.
pub type LevelCursor = ConcatCursor<LevelTables>;

/// A level's tables, sorted by key and disjoint, as the pieces of a [`LevelCursor`].
pub struct LevelTables {
    tables: Tables,
    /// Whether the tables' cursors put the blocks they read in the block cache.
    fill_cache: bool,
}

/// Where a [`LevelTables`] finds its tables.
enum Tables {
    /// A list of its own (a compaction's inputs on one level).
    Listed(Vec<Arc<TableFile>>),
    /// A level of a version, already sorted: a reader's cursor takes it as it is, without
    /// copying the list or sorting it again.
    Level(Arc<Version>, usize),
}

impl LevelTables {
    /// The pieces of a cursor over `tables`, which must be sorted by key and disjoint.
    /// `fill_cache` is the tables' cursors' ([`crate::table::Table::cursor`]).
    pub fn new(tables: Vec<Arc<TableFile>>, fill_cache: bool) -> LevelTables {
        LevelTables {
            tables: Tables::Listed(tables),
            fill_cache,
        }
    }

    /// The pieces of a cursor over level `level` (1 or deeper) of `version`.
    pub fn of_version(version: &Arc<Version>, level: usize, fill_cache: bool) -> LevelTables {
        LevelTables {
            tables: Tables::Level(version.clone(), level),
            fill_cache,
        }
    }

    /// The tables, in key order.
    fn tables(&self) -> &[Arc<TableFile>] {
        match &self.tables {
            Tables::Listed(tables) => tables,
            Tables::Level(version, level) => version.level(*level),
        }
    }
}

impl Pieces for LevelTables {
    type Cursor = TableCursor;

    fn count(&self) -> usize {
        self.tables().len()
    }

    fn find(&self, key: &[u8], seq: u64) -> usize {
        self.tables()
            .partition_point(|t| compare(&t.meta.largest, t.meta.largest_seq, key, seq).is_lt())
    }

    fn open(&self, i: usize) -> Result<TableCursor> {
        Ok(self.tables()[i].table.cursor(self.fill_cache))
    }
}

/// Cursors over every table of `version`: one per L0 table, newest first, then one
/// [`LevelCursor`] per non-empty deeper level, each reading the version's own (sorted)
/// list of the level's tables. What a reader's snapshot merges.
pub fn version_cursors(version: &Arc<Version>, fill_cache: bool) -> Vec<Source> {
    let mut cursors: Vec<Source> = version
        .level(0)
        .iter()
        .map(|t| Source::Table(t.table.cursor(fill_cache)))
        .collect();
    for level in 1..NUM_LEVELS {
        if !version.level(level).is_empty() {
            let tables = LevelTables::of_version(version, level, fill_cache);
            cursors.push(Source::Level(LevelCursor::new(tables)));
        }
    }
    cursors
}

/// Cursors over `tables`, each given with its level: one table cursor per L0 table, one
/// [`LevelCursor`] per deeper level (whose tables must be disjoint, as a version's are).
/// `fill_cache` is the tables' cursors'.
pub fn tables_cursors<'a>(
    tables: impl IntoIterator<Item = (usize, &'a Arc<TableFile>)>,
    fill_cache: bool,
) -> Vec<Source> {
    let mut cursors: Vec<Source> = Vec::new();
    let mut levels: BTreeMap<usize, Vec<Arc<TableFile>>> = BTreeMap::new();
    for (level, table) in tables {
        if level == 0 {
            cursors.push(Source::Table(table.table.cursor(fill_cache)));
        } else {
            levels.entry(level).or_default().push(table.clone());
        }
    }
    for mut tables in levels.into_values() {
        tables.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
        let level = LevelTables::new(tables, fill_cache);
        cursors.push(Source::Level(LevelCursor::new(level)));
    }
    cursors
}
