//! Leveled compaction: which piece of which level to merge into the level below.
//!
//! Each level gets a **score**: for L0, its number of tables over `l0_trigger` (L0 tables
//! overlap, so their *count* is what makes reads slow); for L1 to L5, its bytes over its
//! target (`level1_bytes · level_ratio^(n-1)`). L6, the last level, has no target. The level
//! with the highest score at or above 1 is compacted into the level below it:
//!
//! * from **L0**: every L0 table (taking them all means no older version of a key stays
//!   behind in L0), plus every L1 table overlapping their combined key range;
//! * from **Ln, n ≥ 1**: one table, taken round-robin through the key space (each level
//!   remembers where its last compaction ended, as LevelDB's *compact pointer* does), plus
//!   every table of level n+1 that overlaps it.
//!
//! The merge itself, trivial moves and tombstones are [`crate::compaction::merge`]'s.

use std::sync::Arc;

use crate::compaction::plan::{Compaction, key_range};
use crate::options::LsmOptions;
use crate::version::{NUM_LEVELS, TableFile, Version};

/// Each level's score (L0 to L5): at 1 or above, the level needs compacting.
pub fn scores(version: &Version, options: &LsmOptions) -> Vec<f64> {
    (0..NUM_LEVELS - 1)
        .map(|level| {
            if level == 0 {
                version.level(0).len() as f64 / options.l0_trigger as f64
            } else {
                version.level_bytes(level) as f64 / options.level_target(level) as f64
            }
        })
        .collect()
}

/// The compaction to run next, if any level's score is at or above 1. `pointers[n]` is the
/// largest key of the last compaction from level n (empty: start from the beginning).
pub fn pick(version: &Version, options: &LsmOptions, pointers: &[Vec<u8>]) -> Option<Compaction> {
    let scores = scores(version, options);
    let (level, &score) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if score < 1.0 {
        return None;
    }
    let inputs: Vec<Arc<TableFile>> = if level == 0 {
        version.level(0).to_vec()
    } else {
        let tables = version.level(level);
        let pointer = pointers.get(level).map_or(&[][..], Vec::as_slice);
        let chosen = tables
            .iter()
            .find(|t| pointer.is_empty() || t.meta.smallest.as_slice() > pointer)
            .or_else(|| tables.first())?;
        vec![chosen.clone()]
    };
    let (smallest, largest) = key_range(&inputs);
    let lower_inputs = version
        .overlapping(level + 1, &smallest, &largest)
        .into_iter()
        .map(|t| (level + 1, t))
        .collect();
    Some(Compaction {
        level,
        inputs,
        lower_inputs,
        output_level: level + 1,
        score,
        manual: false,
    })
}

/// A compaction of every table of `level` into `level + 1` (a manual, whole-level
/// compaction), or `None` when the level is empty.
pub fn whole_level(version: &Version, level: usize) -> Option<Compaction> {
    let inputs = version.level(level).to_vec();
    if inputs.is_empty() {
        return None;
    }
    let (smallest, largest) = key_range(&inputs);
    Some(Compaction {
        level,
        lower_inputs: version
            .overlapping(level + 1, &smallest, &largest)
            .into_iter()
            .map(|t| (level + 1, t))
            .collect(),
        inputs,
        output_level: level + 1,
        score: 0.0,
        manual: true,
    })
}

/// The theoretical number of times compaction rewrites each byte, for the tree's current
/// level sizes (the formula of notes chapter 4, "Write amplification: what theory
/// predicts"): take the chain of an L0 batch (`l0_trigger` tables of `flushed_table_bytes`)
/// and each non-empty level from L1 down; every step from one to the next costs
/// `1 + size(next) / size(this)`: the byte itself, plus the share of the next level it is
/// merged with. The sizes are the actual ones, so a partly filled last level costs what it
/// holds, and the fan-out is the levels' real ratio, not `level_ratio`.
pub fn rewrites_per_byte(version: &Version, options: &LsmOptions, flushed_table_bytes: f64) -> f64 {
    let l0_batch = options.l0_trigger as f64 * flushed_table_bytes;
    let sizes: Vec<f64> = std::iter::once(l0_batch)
        .chain(
            (1..NUM_LEVELS)
                .map(|level| version.level_bytes(level) as f64)
                .filter(|&bytes| bytes > 0.0),
        )
        .collect();
    sizes
        .windows(2)
        .filter(|w| w[0] > 0.0)
        .map(|w| 1.0 + w[1] / w[0])
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::testing::{TableDir, options};

    #[test]
    fn l0_takes_every_table_and_the_overlapping_l1_ones() {
        let dir = TableDir::new();
        let l0a = dir.table(10, &[("c", 5, Some("x")), ("f", 6, Some("x"))]);
        let l0b = dir.table(11, &[("e", 7, Some("x")), ("h", 8, Some("x"))]);
        let l1a = dir.table(3, &[("a", 1, Some("x")), ("b", 1, Some("x"))]);
        let l1b = dir.table(4, &[("d", 1, Some("x")), ("g", 1, Some("x"))]);
        let v = Version::from_levels(vec![vec![l0a, l0b], vec![l1a, l1b]]);
        assert_eq!(
            pick(&v, &options(3), &[]).map(|c| c.level),
            Some(1),
            "L1 is over 1 byte"
        );
        let c = pick(
            &v,
            &LsmOptions {
                level1_bytes: 1 << 30,
                ..options(2)
            },
            &[],
        )
        .unwrap();
        assert_eq!(c.level, 0);
        let numbers = |ts: &[Arc<TableFile>]| ts.iter().map(|t| t.meta.number).collect::<Vec<_>>();
        assert_eq!(numbers(&c.inputs), vec![11, 10], "newest first");
        let lower: Vec<Arc<TableFile>> = c.lower_inputs.iter().map(|(_, t)| t.clone()).collect();
        assert_eq!(numbers(&lower), vec![4], "only the L1 table inside [c, h]");
        assert!(!c.is_trivial_move());
    }

    #[test]
    fn deeper_levels_go_round_robin() {
        let dir = TableDir::new();
        let l1: Vec<Arc<TableFile>> = ["a", "c", "e"]
            .iter()
            .enumerate()
            .map(|(i, k)| dir.table(i as u64 + 1, &[(k, 1, Some("x"))]))
            .collect();
        let v = Version::from_levels(vec![vec![], l1]);
        let o = options(4);
        let mut pointers = vec![Vec::new(); NUM_LEVELS];
        let mut order = Vec::new();
        for _ in 0..4 {
            let c = pick(&v, &o, &pointers).unwrap();
            assert!(c.is_trivial_move(), "nothing below: a move");
            order.push(c.inputs[0].meta.smallest.clone());
            pointers[1] = c.inputs[0].meta.largest.clone();
        }
        assert_eq!(
            order,
            vec![b"a".to_vec(), b"c".to_vec(), b"e".to_vec(), b"a".to_vec()]
        );
    }
}
