//! What a compaction policy chooses: a [`Compaction`], tables to merge and where the result
//! goes. Both policies ([`crate::compaction::leveled`], [`crate::compaction::tiered`])
//! describe their choice with it, and [`crate::compaction::merge`] carries it out.

use std::sync::Arc;

use crate::version::TableFile;

/// One compaction: tables to merge, taken from `level` and deeper levels, and the level the
/// result goes to.
#[derive(Debug, Clone)]
pub struct Compaction {
    /// The shallowest level compacted (for leveled, the level whose round-robin pointer
    /// advances).
    pub level: usize,
    /// The chosen tables of `level` (L0: newest first).
    pub inputs: Vec<Arc<TableFile>>,
    /// The chosen tables of deeper levels, each with its level, shallowest level first
    /// (leveled: the tables of `level + 1` that overlap `inputs`).
    pub lower_inputs: Vec<(usize, Arc<TableFile>)>,
    /// The level the outputs go to: `level + 1` for leveled; for tiered, the deepest
    /// input's level, or an empty level for a move.
    pub output_level: usize,
    /// The level's score when it was chosen (tiered: the run count over its limit).
    pub score: f64,
    /// True for a step of a manual full compaction: the inputs are rewritten even when they
    /// could move, so that every tombstone and old version goes (as LevelDB's manual
    /// compactions never move a table).
    pub manual: bool,
    /// True when chosen because reads spent a table's allowed seeks, not for a level's size
    /// ([`crate::seek_compaction`]).
    pub seek: bool,
}

impl Compaction {
    /// Every input table with its level, shallowest (newest) level first.
    pub fn all_inputs(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.inputs
            .iter()
            .map(|t| (self.level, t))
            .chain(self.lower_inputs.iter().map(|(l, t)| (*l, t)))
    }

    /// True when the inputs can move to the output level without being rewritten: not a
    /// manual compaction, and no two of them overlap (always so for one table; for L0
    /// tables, so after a sequential fill).
    pub fn is_trivial_move(&self) -> bool {
        if self.manual {
            return false;
        }
        let mut sorted: Vec<&Arc<TableFile>> = self.all_inputs().map(|(_, t)| t).collect();
        sorted.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
        sorted
            .windows(2)
            .all(|w| w[0].meta.largest < w[1].meta.smallest)
    }

    /// Smallest and largest user keys over the chosen tables of `level`.
    pub fn input_range(&self) -> (Vec<u8>, Vec<u8>) {
        key_range(&self.inputs)
    }
}

/// Smallest and largest user keys over `tables` (empty keys for no tables).
pub fn key_range(tables: &[Arc<TableFile>]) -> (Vec<u8>, Vec<u8>) {
    let keys = |key: fn(&Arc<TableFile>) -> &Vec<u8>| tables.iter().map(key);
    let smallest = keys(|t| &t.meta.smallest).min().cloned();
    let largest = keys(|t| &t.meta.largest).max().cloned();
    (smallest.unwrap_or_default(), largest.unwrap_or_default())
}
