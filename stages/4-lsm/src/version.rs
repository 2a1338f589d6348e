//! A version: the set of tables that make up the tree at one moment, level by level.
//!
//! A [`Version`] never changes once built. A flush or a compaction makes a *new* version
//! from the current one and an edit ([`Version::apply`] of a
//! [`crate::version_edit::VersionEdit`]), and the engine swaps it in under a
//! short lock, so every reader sees either the whole old shape or the whole new one. Readers
//! and scans hold an `Arc<Version>`: while a scan runs, the tables of its version stay open
//! and on disk, even if a compaction has replaced them since.
//!
//! That last point is [`TableFile`]'s job. A compaction *marks* the tables it replaced as
//! obsolete (after the manifest records the change); the file is deleted when the last
//! `Arc<TableFile>` goes, that is, when no version references it any more.
//!
//! ## The levels
//!
//! * **L0** holds flushed memtables as they come: its tables may overlap, so a read must try
//!   each one whose key range holds the key, newest first. Kept newest first (by file number,
//!   since flushes take increasing numbers).
//! * **L1 to L6** ([`NUM_LEVELS`] levels in all) each hold tables with disjoint key ranges, sorted: a read tries at most one
//!   table per level, found by binary search. Each level's target size is `level_ratio` times
//!   the one above it, starting from `level1_bytes` ([`crate::compaction`] keeps them there).

use std::sync::Arc;

use kv_shared::{Fs, RemoveWhenObsolete, Result};

use crate::counters::Counters;
use crate::key::{Lookup, LookupKey, key_head};
use crate::seek_compaction::SeekBudget;
use crate::table::Table;
use crate::version_edit::{TableMeta, VersionEdit};

/// Number of levels: L0 to L6.
pub const NUM_LEVELS: usize = 7;

/// A table that belongs (or belonged) to the tree: its manifest record and its open reader.
#[derive(Debug)]
pub struct TableFile {
    /// What the manifest records about it.
    pub meta: TableMeta,
    /// The open table.
    pub table: Arc<Table>,
    /// Reads it may still pass through before it asks for a seek compaction
    /// ([`crate::seek_compaction`]).
    pub seeks: SeekBudget,
    removal: RemoveWhenObsolete,
}

impl TableFile {
    /// Wraps an opened table.
    pub fn new(meta: TableMeta, table: Table, fs: Fs) -> TableFile {
        let removal = RemoveWhenObsolete::new(&fs, table.path());
        TableFile {
            seeks: SeekBudget::for_size(meta.size),
            meta,
            table: Arc::new(table),
            removal,
        }
    }

    /// Marks the table as no longer part of the tree: its file is deleted once the last
    /// version holding it is dropped. Call only after the manifest records its removal.
    pub fn mark_obsolete(&self) {
        self.removal.mark_obsolete();
    }
}

/// One level's shape, for [`Version::summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelSummary {
    /// The level.
    pub level: usize,
    /// Its tables.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Their total number of entries (versions and tombstones included).
    pub entries: u64,
}

/// One sorted run of the tree, for [`Version::runs`]: tables that do not overlap, each key
/// at most once.
#[derive(Debug, Clone)]
pub struct SortedRun {
    /// The level it is on (L0: one run per table).
    pub level: usize,
    /// Its tables, in key order.
    pub tables: Vec<Arc<TableFile>>,
    /// Their total size.
    pub bytes: u64,
}

/// The tables of the tree at one moment.
#[derive(Debug, Clone)]
pub struct Version {
    levels: Vec<Vec<Arc<TableFile>>>,
    /// Per level, the [`key_head`] of each table's largest key, in the level's order: a
    /// `get`'s binary search over a level reads these, side by side in one array, rather
    /// than each table's metadata, and compares whole keys only where heads are equal.
    largest_heads: Vec<Vec<u128>>,
}

impl Default for Version {
    fn default() -> Self {
        Version::from_levels(Vec::new())
    }
}

impl Version {
    /// A version from tables given per level, in any order (they are sorted here).
    pub fn from_levels(mut levels: Vec<Vec<Arc<TableFile>>>) -> Version {
        levels.resize(NUM_LEVELS, Vec::new());
        for (level, tables) in levels.iter_mut().enumerate() {
            if level == 0 {
                tables.sort_by_key(|t| std::cmp::Reverse(t.meta.number));
            } else {
                tables.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
            }
        }
        let largest_heads = levels
            .iter()
            .map(|tables| tables.iter().map(|t| key_head(&t.meta.largest)).collect())
            .collect();
        Version {
            levels,
            largest_heads,
        }
    }

    /// The tables of `level` (L0 newest first, deeper levels in key order).
    pub fn level(&self, level: usize) -> &[Arc<TableFile>] {
        &self.levels[level]
    }

    /// Total bytes of the tables of `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.meta.size).sum()
    }

    /// Every table, every level.
    pub fn all_tables(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(level, tables)| tables.iter().map(move |t| (level, t)))
    }

    /// The version after `edit`: its removed tables gone, its added tables placed. An added
    /// table is taken from `new` or, for a table moved between levels, from this version.
    ///
    /// # Errors
    /// A description of the mismatch (an edit that does not fit this version): a bug.
    pub fn apply(&self, edit: &VersionEdit, new: &[Arc<TableFile>]) -> Result<Version, String> {
        let mut levels = self.levels.clone();
        for &(level, number) in &edit.removed {
            let tables = levels
                .get_mut(level as usize)
                .ok_or_else(|| format!("level {level} out of range"))?;
            let before = tables.len();
            tables.retain(|t| t.meta.number != number);
            if tables.len() == before {
                return Err(format!("edit removes table {number}, not in level {level}"));
            }
        }
        for (level, meta) in &edit.added {
            let table = new
                .iter()
                .chain(self.levels.iter().flatten())
                .find(|t| t.meta.number == meta.number)
                .ok_or_else(|| format!("edit adds table {} that is not open", meta.number))?;
            levels
                .get_mut(*level as usize)
                .ok_or_else(|| format!("level {level} out of range"))?
                .push(table.clone());
        }
        Ok(Version::from_levels(levels))
    }

    // Exercise 4.3: find a key through the levels. Read: chapter 4b, "A snapshot, and `get`".
    // Tests: levels::keys_sharing_their_first_sixteen_bytes_are_found_on_every_level
    // Tests: levels::tombstones_never_resurrect, conformance::conformance::put_get_overwrite
    /// The newest version of the looked-up key at or below its snapshot in the tables: L0
    /// newest first, then at most one table per deeper level.
    ///
    /// # Errors
    /// [`kv_shared::Error::Corruption`], [`kv_shared::Error::Io`].
    pub fn get(&self, lookup: &LookupKey<'_>, counters: &Counters) -> Result<Lookup> {
        let key = lookup.key;
        for t in &self.levels[0] {
            if t.meta.contains(key) {
                let found = t.table.get(lookup, counters)?;
                if found != Lookup::Absent {
                    return Ok(found);
                }
            }
        }
        let head = key_head(key);
        for level in 1..NUM_LEVELS {
            if let Some(t) = self.table_holding(level, key, head) {
                let found = t.table.get(lookup, counters)?;
                if found != Lookup::Absent {
                    return Ok(found);
                }
            }
        }
        Ok(Lookup::Absent)
    }

    /// The table of `level` (L1 or deeper) whose key range holds `key`, if any, found by a
    /// binary search over the tables' largest keys; `head` is `key`'s [`key_head`].
    fn table_holding(&self, level: usize, key: &[u8], head: u128) -> Option<&Arc<TableFile>> {
        let (tables, heads) = (&self.levels[level], &self.largest_heads[level]);
        // The first table whose largest key is at or after `key`.
        let i = heads.partition_point(|&h| h < head);
        let i = i + tables[i..]
            .iter()
            .zip(&heads[i..])
            .take_while(|(t, h)| **h == head && t.meta.largest.as_slice() < key)
            .count();
        tables.get(i).filter(|t| t.meta.contains(key))
    }

    /// Charges one seek to the first (newest) table whose key range holds `key`, when two or
    /// more tables' ranges hold it: a read of `key` passes through that table on its way to
    /// an older version ([`crate::seek_compaction`]). True when this charge spent the
    /// table's last allowed seek.
    pub fn charge_read(&self, key: &[u8]) -> bool {
        let head = key_head(key);
        let l0 = self.levels[0].iter().filter(|t| t.meta.contains(key));
        let deeper = (1..NUM_LEVELS).filter_map(|level| self.table_holding(level, key, head));
        let mut holding = l0.chain(deeper);
        match (holding.next(), holding.next()) {
            (Some(first), Some(_)) => first.seeks.charge(),
            _ => false,
        }
    }

    /// A table of a level above the last whose allowed seeks are spent, shallowest level
    /// first, with its level: the next seek compaction's input ([`crate::seek_compaction`]).
    pub fn seek_compaction_candidate(&self) -> Option<(usize, &Arc<TableFile>)> {
        self.all_tables()
            .find(|(level, t)| *level < NUM_LEVELS - 1 && t.seeks.exhausted())
    }

    /// The tables of `level` whose key range overlaps `[smallest, largest]`.
    pub fn overlapping(
        &self,
        level: usize,
        smallest: &[u8],
        largest: &[u8],
    ) -> Vec<Arc<TableFile>> {
        self.levels[level]
            .iter()
            .filter(|t| t.meta.overlaps(smallest, largest))
            .cloned()
            .collect()
    }

    /// Files and bytes per level.
    pub fn summary(&self) -> Vec<LevelSummary> {
        (0..NUM_LEVELS)
            .map(|level| LevelSummary {
                level,
                files: self.levels[level].len(),
                bytes: self.level_bytes(level),
                entries: self.levels[level].iter().map(|t| t.meta.entries).sum(),
            })
            .collect()
    }

    /// The sorted runs, newest first: each L0 table (newest first), then each non-empty level
    /// from L1 down. Reads depend on this order being the order of age: for any key, a run
    /// earlier in the list holds only newer versions of it than a later one.
    pub fn runs(&self) -> Vec<SortedRun> {
        let l0 = self.levels[0].iter().map(|t| SortedRun {
            level: 0,
            tables: vec![t.clone()],
            bytes: t.meta.size,
        });
        let deeper = (1..NUM_LEVELS)
            .filter(|&level| !self.levels[level].is_empty())
            .map(|level| SortedRun {
                level,
                tables: self.levels[level].clone(),
                bytes: self.level_bytes(level),
            });
        l0.chain(deeper).collect()
    }

    /// Checks the shape every version must have, in both compaction styles: each table's
    /// smallest key at or before its largest, no table in two places, L0 newest first (by
    /// file number: flushes take increasing numbers), and on L1 and deeper, tables sorted by
    /// key with disjoint ranges, so that each deeper level is one sorted run.
    ///
    /// # Errors
    /// A description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut numbers = std::collections::HashSet::new();
        for (level, t) in self.all_tables() {
            if t.meta.smallest > t.meta.largest {
                return Err(format!(
                    "L{level} table {} has smallest > largest",
                    t.meta.number
                ));
            }
            if !numbers.insert(t.meta.number) {
                return Err(format!("table {} appears twice", t.meta.number));
            }
        }
        for pair in self.levels[0].windows(2) {
            if pair[0].meta.number <= pair[1].meta.number {
                return Err(format!(
                    "L0 tables {} and {} are not newest first",
                    pair[0].meta.number, pair[1].meta.number
                ));
            }
        }
        for (level, tables) in self.levels.iter().enumerate().skip(1) {
            for pair in tables.windows(2) {
                if pair[0].meta.largest >= pair[1].meta.smallest {
                    return Err(format!(
                        "L{level} tables {} and {} overlap or are out of order",
                        pair[0].meta.number, pair[1].meta.number
                    ));
                }
            }
        }
        Ok(())
    }
}
