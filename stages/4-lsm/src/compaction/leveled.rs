//! Leveled compaction: which piece of which level to merge into the level below.
//!
//! ## Targets: from the last level up
//!
//! Each level from L1 to L5 has a **target** size; L6, the last level, has none. With fixed
//! targets (`dynamic_levels=false`, as LevelDB has them) L1's is `level1_bytes` and each
//! level's is `level_ratio` times the one above. Then where the data sits depends on how
//! much there is: 116 MB fill L1 (10 MB) and L2 (100 MB) and spill 6 MB into L3, and a
//! store loaded straight into L6 ([`crate::ingest`]) keeps every later overwrite in L1 to
//! L3, far above the old versions in L6, which no compaction ever reaches: the store holds
//! both for good (space amplification near 2), and every scan walks both.
//!
//! So by default (`dynamic_levels=true`, RocksDB's `level_compaction_dynamic_level_bytes`)
//! the targets are set from the bottom: L5's target is the last level's size over
//! `level_ratio`, L4's is L5's over `level_ratio`, and so on up while a target stays at or
//! above `level1_bytes`. The highest level with a target is the **base level**; the levels
//! above it stay empty, and L0 compacts straight into the base level. An empty store has
//! no level with a target: its base level is L6 itself, and L0 compacts into L6 until L6
//! holds `level_ratio · level1_bytes`. Either way about `(ratio - 1) / ratio` of the data
//! (90 % for a ratio of 10) sits in the last level, fully compacted, whatever its size, so
//! space amplification stays near `1 + 1/ratio` and a read meets few versions of a key
//! ([`targets`]).
//!
//! ## Scores
//!
//! Each level gets a **score**: for L0, its number of tables over `l0_trigger` (L0 tables
//! overlap, so their *count* is what makes reads slow); for the base level to L5, its bytes
//! over its target; a level above the base level that holds anything (left by fixed targets
//! or by a smaller last level) scores at least 1, so it drains down. The level with the
//! highest score at or above 1 is compacted:
//!
//! * from **L0**: every L0 table (taking them all means no older version of a key stays
//!   behind in L0), plus every table of the base level overlapping their combined key
//!   range, into the base level (or into the first level above it that still holds
//!   tables: those are newer than anything below them, so L0's data must not pass them,
//!   [`l0_output`]);
//! * from **Ln, n ≥ 1**: one table, taken round-robin through the key space (each level
//!   remembers where its last compaction ended, as LevelDB's *compact pointer* does), plus
//!   every table of level n+1 that overlaps it.
//!
//! The merge itself, trivial moves and tombstones are [`crate::compaction::merge`]'s.

use std::sync::Arc;

use crate::compaction::plan::{Compaction, key_range};
use crate::options::LsmOptions;
use crate::version::{NUM_LEVELS, TableFile, Version};

/// The levels' target sizes, and the level L0 compacts into (see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    /// The level L0 compacts into: the highest level with a target (L1 with fixed targets;
    /// L6 for a store whose last level is still small).
    pub base: usize,
    /// Per level, its target in bytes: 0 for L0, for levels above `base` (they should be
    /// empty) and for L6 (it has none).
    pub bytes: [u64; NUM_LEVELS],
}

/// The target sizes for `version`: fixed ([`LsmOptions::level_target`]) or, with
/// `dynamic_levels`, from the last level's size up (see the module documentation).
pub fn targets(version: &Version, options: &LsmOptions) -> Targets {
    targets_for(version.level_bytes(NUM_LEVELS - 1), options)
}

/// The target sizes for a tree whose last level holds `last_level_bytes` (see
/// [`targets`]).
pub fn targets_for(last_level_bytes: u64, options: &LsmOptions) -> Targets {
    let last = NUM_LEVELS - 1;
    let mut bytes = [0; NUM_LEVELS];
    if !options.dynamic_levels {
        for (level, target) in bytes.iter_mut().enumerate().take(last).skip(1) {
            *target = options.level_target(level);
        }
        return Targets { base: 1, bytes };
    }
    let mut base = last;
    let mut target = last_level_bytes;
    for level in (1..last).rev() {
        target /= options.level_ratio;
        if target < options.level1_bytes {
            break;
        }
        bytes[level] = target;
        base = level;
    }
    Targets { base, bytes }
}

/// The level an L0 compaction writes to: the base level, or the first level above it that
/// still holds tables (left by fixed targets, by tiered compaction, or by a last level that
/// shrank), which are newer than anything below them: L0's data must land above them.
pub fn l0_output(version: &Version, options: &LsmOptions) -> usize {
    let base = targets(version, options).base;
    (1..base)
        .find(|&level| !version.level(level).is_empty())
        .unwrap_or(base)
}

/// Each level's score (L0 to L5): at 1 or above, the level needs compacting.
pub fn scores(version: &Version, options: &LsmOptions) -> Vec<f64> {
    let targets = targets(version, options);
    (0..NUM_LEVELS - 1)
        .map(|level| {
            let bytes = version.level_bytes(level) as f64;
            if level == 0 {
                version.level(0).len() as f64 / options.l0_trigger as f64
            } else if level < targets.base {
                // Above the base level: anything here drains down.
                if bytes > 0.0 {
                    (bytes / options.level1_bytes as f64).max(1.0)
                } else {
                    0.0
                }
            } else {
                bytes / targets.bytes[level] as f64
            }
        })
        .collect()
}

/// The compaction to run next: the level with the highest score, if any is at or above 1;
/// else, with `seek_compaction`, a table whose allowed seeks are spent
/// ([`crate::seek_compaction`]). `pointers[n]` is the largest key of the last compaction
/// from level n (empty: start from the beginning).
pub fn pick(version: &Version, options: &LsmOptions, pointers: &[Vec<u8>]) -> Option<Compaction> {
    let scores = scores(version, options);
    let (level, &score) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if score >= 1.0 {
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
        return Some(into_next_level(version, options, level, inputs, score));
    }
    if !options.seek_compaction {
        return None;
    }
    let (level, table) = version.seek_compaction_candidate()?;
    // From L0, all of it: an older L0 table must not be left above a newer one's output.
    let inputs = if level == 0 {
        version.level(0).to_vec()
    } else {
        vec![table.clone()]
    };
    let mut task = into_next_level(version, options, level, inputs, score);
    task.seek = true;
    Some(task)
}

/// The compaction of `inputs`, tables of `level`, with every table of the level below that
/// they overlap: for L0 the level [`l0_output`] names, else `level + 1`.
fn into_next_level(
    version: &Version,
    options: &LsmOptions,
    level: usize,
    inputs: Vec<Arc<TableFile>>,
    score: f64,
) -> Compaction {
    let output_level = if level == 0 {
        l0_output(version, options)
    } else {
        level + 1
    };
    let (smallest, largest) = key_range(&inputs);
    let lower_inputs = version
        .overlapping(output_level, &smallest, &largest)
        .into_iter()
        .map(|t| (output_level, t))
        .collect();
    Compaction {
        level,
        inputs,
        lower_inputs,
        output_level,
        score,
        manual: false,
        seek: false,
    }
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
        seek: false,
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
    fn dynamic_targets_follow_the_last_level() {
        let dir = TableDir::new();
        let mut o = options(4);
        o.dynamic_levels = true;
        o.level1_bytes = 1000;
        o.level_ratio = 10;
        let empty = Version::from_levels(vec![]);
        let t = targets(&empty, &o);
        assert_eq!(
            (t.base, t.bytes),
            (NUM_LEVELS - 1, [0; NUM_LEVELS]),
            "L0 into L6"
        );
        // A last level of n bytes: L5 gets n/10, L4 n/100, ... while at least 1000.
        let big = dir.table(1, &[("a", 1, Some(&"x".repeat(200_000)))]);
        let n = big.meta.size;
        let mut levels = vec![vec![]; NUM_LEVELS];
        levels[NUM_LEVELS - 1].push(big);
        let v = Version::from_levels(levels);
        let t = targets(&v, &o);
        assert_eq!(t.base, 4, "{n} bytes: L5 {} and L4 {}", n / 10, n / 100);
        assert_eq!(t.bytes[5], n / 10);
        assert_eq!(t.bytes[4], n / 100);
        assert_eq!(t.bytes[3], 0);
        // Fixed targets ignore the data.
        o.dynamic_levels = false;
        assert_eq!(targets(&v, &o).base, 1);
        assert_eq!(targets(&v, &o).bytes[2], 10_000);
    }

    #[test]
    fn with_dynamic_targets_l0_goes_to_the_base_level_and_upper_levels_drain() {
        let dir = TableDir::new();
        let mut o = options(2);
        o.dynamic_levels = true;
        o.level1_bytes = 1 << 30;
        let l0a = dir.table(10, &[("c", 5, Some("x"))]);
        let l0b = dir.table(11, &[("e", 7, Some("x"))]);
        let l6 = dir.table(3, &[("d", 1, Some("x"))]);
        let mut levels = vec![vec![l0a, l0b], vec![]];
        levels.resize(NUM_LEVELS, vec![]);
        levels[NUM_LEVELS - 1].push(l6);
        let c = pick(&Version::from_levels(levels), &o, &[]).unwrap();
        assert_eq!((c.level, c.output_level), (0, NUM_LEVELS - 1));
        assert_eq!(c.lower_inputs.len(), 1, "the L6 table inside [c, e]");
        // A table left on L2 above the base level drains into L3, whatever its size.
        let stray = dir.table(4, &[("q", 1, Some("x"))]);
        let mut levels = vec![vec![]; NUM_LEVELS];
        levels[2].push(stray);
        let c = pick(&Version::from_levels(levels), &o, &[]).unwrap();
        assert_eq!((c.level, c.output_level), (2, 3));
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
