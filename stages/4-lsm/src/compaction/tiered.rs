//! Size-tiered compaction: a few sorted runs, merged whole when there are too many.
//!
//! Leveled compaction keeps every level near its target size, so a byte is rewritten about
//! `level_ratio` times per level it passes. Size-tiered compaction (RocksDB's *universal*
//! style, Cassandra's STCS) rewrites less: the store is a short list of **sorted runs**,
//! newest first; each flush adds a run, and only when there are more than `tiered_max_runs`
//! does a compaction merge several runs of similar size into one. The price is paid by
//! reads (a `get` may look in every run) and by space (an overwritten key keeps one old
//! version per run until the runs holding it are merged).
//!
//! ## Runs on the levels
//!
//! The manifest and the read path are the leveled ones, unchanged: a run is one L0 table
//! (a flush) or one whole level L1 to L6 (tables sorted, disjoint). [`Version::runs`] lists
//! them newest first: L0 newest to oldest, then L1, L2, ... L6. Reads already search in
//! that order, so the one rule that keeps them right is **deeper = older**: a run must
//! never sit above a newer one. Every step below keeps it:
//!
//! * **Settling** (a move, manifest only): a level whose next level is empty moves down to
//!   the deepest empty level below it, and the oldest L0 table moves to the empty level
//!   just above the shallowest run. Runs thus pack at the bottom (L6, L5, ...) in age
//!   order, and L0 holds flushes only while L1 is taken.
//! * **Merging** a group of adjacent runs `i..=j` (newest to oldest) writes the result on
//!   the level of the oldest run `j`. The runs older than the group stay below it, the
//!   runs newer stay above. A group never ends on an L0 run: it would have to go back to
//!   L0, above older L0 tables that are not in the group.
//!
//! ## Choosing a group ([`pick`])
//!
//! After settling, nothing happens until there are more than `tiered_max_runs` runs, or L0
//! holds `l0_slowdown` tables (with a large `tiered_max_runs`, L0 would otherwise reach
//! `l0_stop` and hold writers back for a merge that never comes). Then, as universal
//! compaction does, the first of these that applies:
//!
//! 1. **Space amplification**: when the runs newer than the oldest hold at least
//!    `tiered_max_space_amp` percent of its bytes, merge them all (into the last level,
//!    where tombstones can go).
//! 2. **Size ratio**: from the newest run on, grow a group while the next older run is at
//!    most `tiered_size_ratio` percent larger than the group so far; the first group of
//!    two or more runs that may be merged (see above) is.
//! 3. **Run count**: merge the newest runs, as few as bring the count back to the limit,
//!    and at least every L0 run and L1's.
//!
//! A tombstone is dropped when its merge writes to the deepest run (nothing older below).
//!
//! The default `tiered_max_runs` is 6, the number of levels below L0: every run but the
//! newest flush has a level of its own, so a `get` searches at most one table per level
//! plus one L0 table, and L0 stays far below `l0_slowdown`, so writers are not slowed.
//! The default `tiered_size_ratio` of 20 % lets two flushed memtables of nearly equal size
//! (their table sizes differ by a few percent) count as similar; RocksDB's 1 % would not.

use crate::compaction::plan::Compaction;
use crate::options::LsmOptions;
use crate::version::{NUM_LEVELS, SortedRun, Version};

/// The next settling move, if a run can move down: the deepest level whose next level is
/// empty, moved as far down as the empty levels go; else the oldest L0 table, moved to the
/// empty level just above the shallowest run.
fn settle(version: &Version) -> Option<Compaction> {
    let empty = |level: usize| version.level(level).is_empty();
    // The deepest empty level of the empty stretch starting at `from`.
    let bottom_of_gap = |from: usize| (from..NUM_LEVELS).take_while(|&l| empty(l)).last();
    for level in (1..NUM_LEVELS - 1).rev() {
        if !empty(level)
            && let Some(target) = bottom_of_gap(level + 1)
        {
            return Some(Compaction {
                level,
                inputs: version.level(level).to_vec(),
                lower_inputs: Vec::new(),
                output_level: target,
                score: 0.0,
                manual: false,
                seek: false,
            });
        }
    }
    let oldest_l0 = version.level(0).last()?;
    let target = bottom_of_gap(1)?;
    Some(Compaction {
        level: 0,
        inputs: vec![oldest_l0.clone()],
        lower_inputs: Vec::new(),
        output_level: target,
        score: 0.0,
        manual: false,
        seek: false,
    })
}

/// The merge of runs `first..=last` (indexes into `runs`, newest first).
fn merge(
    runs: &[SortedRun],
    first: usize,
    last: usize,
    output_level: usize,
    score: f64,
) -> Compaction {
    let level = runs[first].level;
    let mut inputs = Vec::new();
    let mut lower_inputs = Vec::new();
    for run in &runs[first..=last] {
        for t in &run.tables {
            if run.level == level {
                inputs.push(t.clone());
            } else {
                lower_inputs.push((run.level, t.clone()));
            }
        }
    }
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

/// The first group of two or more adjacent runs of similar size (see the module doc) that
/// ends on a level run, as `(first, last)`.
fn similar_sizes(runs: &[SortedRun], size_ratio: u64) -> Option<(usize, usize)> {
    (0..runs.len()).find_map(|first| {
        let mut sum = runs[first].bytes;
        let mut last = first;
        while let Some(next) = runs.get(last + 1) {
            if u128::from(next.bytes) * 100 > u128::from(sum) * u128::from(100 + size_ratio) {
                break;
            }
            last += 1;
            sum += next.bytes;
        }
        (last > first && runs[last].level > 0).then_some((first, last))
    })
}

/// The compaction size-tiered compaction wants next: a settling move, or a merge once there
/// are more than `tiered_max_runs` runs (see the module doc); `None` when neither.
pub fn pick(version: &Version, options: &LsmOptions) -> Option<Compaction> {
    if let Some(moved) = settle(version) {
        return Some(moved);
    }
    let runs = version.runs();
    let count = runs.len();
    // Settled: L0 holds runs only while L1 holds one, so the oldest run is on a level.
    let l0_runs = version.level(0).len();
    if count <= options.tiered_max_runs && l0_runs < options.l0_slowdown {
        return None;
    }
    let score = count as f64 / options.tiered_max_runs as f64;
    let oldest = runs[count - 1].bytes;
    let newer: u64 = runs[..count - 1].iter().map(|r| r.bytes).sum();
    if u128::from(newer) * 100 >= u128::from(oldest) * u128::from(options.tiered_max_space_amp) {
        return Some(merge(&runs, 0, count - 1, NUM_LEVELS - 1, score));
    }
    let (first, last) = similar_sizes(&runs, options.tiered_size_ratio).unwrap_or((
        0,
        count.saturating_sub(options.tiered_max_runs).max(l0_runs),
    ));
    Some(merge(&runs, first, last, runs[last].level, score))
}

/// A merge of every run into one on the last level (a manual full compaction, which
/// rewrites even a single run, to drop its tombstones), or `None` when the tree holds no
/// table.
pub fn merge_all(version: &Version) -> Option<Compaction> {
    let runs = version.runs();
    if runs.is_empty() {
        return None;
    }
    Some(Compaction {
        manual: true,
        seek: false,
        ..merge(&runs, 0, runs.len() - 1, NUM_LEVELS - 1, 0.0)
    })
}

/// About how many times compaction has rewritten each byte of the current runs: the
/// textbook cost of tiering, where a merge takes `T` runs of one size into one run `T`
/// times larger, so a byte is rewritten once per tier and a run of `S` bytes made from
/// flushes of `m` bytes has passed `log_T(S / m)` merges. Here a merge starts when there
/// are `tiered_max_runs + 1` runs, so `T = tiered_max_runs + 1`; the figure is the
/// size-weighted mean of `log_T(S / m)` over the runs (at least 0 each). Merges of fewer
/// runs (a size-ratio group of two) cost more than this, merges of a small run into a
/// large one (the space-amplification rule) too.
pub fn rewrites_per_byte(version: &Version, options: &LsmOptions, flushed_table_bytes: f64) -> f64 {
    let runs = version.runs();
    let total: u64 = runs.iter().map(|r| r.bytes).sum();
    if total == 0 || flushed_table_bytes <= 0.0 {
        return 0.0;
    }
    let fan_in = (options.tiered_max_runs + 1) as f64;
    runs.iter()
        .map(|r| {
            let merges = (r.bytes as f64 / flushed_table_bytes).log(fan_in).max(0.0);
            merges * r.bytes as f64 / total as f64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::testing::TableDir;
    use crate::version::TableFile;
    use kv_shared::Options;
    use std::sync::Arc;

    fn numbers(tables: &[Arc<TableFile>]) -> Vec<u64> {
        tables.iter().map(|t| t.meta.number).collect()
    }

    /// Table `n` holding `keys` keys `k0000`, `k0001`, ... at sequence number `n`: tables
    /// of one key range, overlapping each other, whose size grows with `keys`.
    fn table_of_keys(dir: &TableDir, n: u64, keys: usize) -> Arc<TableFile> {
        let names: Vec<String> = (0..keys).map(|i| format!("k{i:04}")).collect();
        let entries: Vec<(&str, u64, Option<&str>)> =
            names.iter().map(|k| (k.as_str(), n, Some("v"))).collect();
        dir.table(n, &entries)
    }

    fn options(max_runs: usize) -> LsmOptions {
        LsmOptions::parse(
            &Options::new()
                .set("compaction", "tiered")
                .set("tiered_max_runs", max_runs),
        )
        .unwrap()
    }

    #[test]
    fn settling_packs_runs_at_the_bottom_oldest_deepest() {
        let dir = TableDir::new();
        let t = |n: u64, k: &str| dir.table(n, &[(k, n, Some("x"))]);
        // L0: 9 (newest), 8; L2: 5; L4: 3.
        let mut levels = vec![Vec::new(); NUM_LEVELS];
        levels[0] = vec![t(9, "a"), t(8, "a")];
        levels[2] = vec![t(5, "a")];
        levels[4] = vec![t(3, "a")];
        let mut v = Version::from_levels(levels);
        let mut moves = Vec::new();
        while let Some(c) = pick(&v, &options(6)) {
            assert!(c.is_trivial_move());
            moves.push((numbers(&c.inputs), c.level, c.output_level));
            let edit = crate::version_edit::VersionEdit {
                removed: c
                    .all_inputs()
                    .map(|(l, t)| (l as u8, t.meta.number))
                    .collect(),
                added: c
                    .all_inputs()
                    .map(|(_, t)| (c.output_level as u8, t.meta.clone()))
                    .collect(),
                ..Default::default()
            };
            v = v.apply(&edit, &[]).unwrap();
        }
        assert_eq!(
            moves,
            vec![
                (vec![3], 4, 6),
                (vec![5], 2, 5),
                (vec![8], 0, 4),
                (vec![9], 0, 3)
            ],
            "deepest level first; then L0 oldest first, each just above the last run"
        );
        let order: Vec<u64> = v.runs().iter().map(|r| r.tables[0].meta.number).collect();
        assert_eq!(order, vec![9, 8, 5, 3], "newest first, as before");
    }

    #[test]
    fn groups_of_similar_size_merge_onto_the_oldest_member_level() {
        let dir = TableDir::new();
        // Overlapping tables, so nothing is a trivial move. Sizes grow with the key count.
        let t = |n: u64, keys: usize| table_of_keys(&dir, n, keys);
        // Runs newest first: L0 20 (small), L1 19 (small), L2 18 (small), L3 17 (large),
        // L4..L6 larger still: 7 runs over a limit of 6.
        let mut levels = vec![Vec::new(); NUM_LEVELS];
        levels[0] = vec![t(20, 10)];
        levels[1] = vec![t(19, 10)];
        levels[2] = vec![t(18, 10)];
        levels[3] = vec![t(17, 200)];
        levels[4] = vec![t(16, 400)];
        levels[5] = vec![t(15, 800)];
        levels[6] = vec![t(14, 1600)];
        let v = Version::from_levels(levels);
        let c = pick(&v, &options(6)).unwrap();
        assert_eq!(c.level, 0);
        assert_eq!(numbers(&c.inputs), vec![20]);
        let lower: Vec<(usize, u64)> = c
            .lower_inputs
            .iter()
            .map(|(l, t)| (*l, t.meta.number))
            .collect();
        assert_eq!(
            lower,
            vec![(1, 19), (2, 18)],
            "the three small runs, not L3"
        );
        assert_eq!(c.output_level, 2, "on the oldest member's level");
        assert!(!c.is_trivial_move());
        // Six runs is within the limit: nothing to do.
        assert!(pick(&v, &options(7)).is_none());
    }

    #[test]
    fn space_amplification_merges_everything_into_the_last_level() {
        let dir = TableDir::new();
        let t = |n: u64, keys: usize| table_of_keys(&dir, n, keys);
        let shape = |oldest_keys: usize| {
            let mut levels = vec![Vec::new(); NUM_LEVELS];
            levels[3] = vec![t(18, 10)];
            levels[4] = vec![t(17, 40)];
            levels[5] = vec![t(16, 160)];
            levels[6] = vec![t(15, oldest_keys)];
            Version::from_levels(levels)
        };
        // The newer runs hold more than twice the small oldest run: merge everything.
        let v = shape(60);
        let c = pick(&v, &options(3)).unwrap();
        assert_eq!(c.output_level, NUM_LEVELS - 1);
        assert_eq!(c.all_inputs().count(), 4, "every run");
        // A large oldest run, sizes growing fourfold (never similar): the run count rule
        // merges the newest two (4 runs, limit 3) onto the older one's level.
        let v = shape(640);
        let c = pick(&v, &options(3)).unwrap();
        let all: Vec<(usize, u64)> = c.all_inputs().map(|(l, t)| (l, t.meta.number)).collect();
        assert_eq!(all, vec![(3, 18), (4, 17)]);
        assert_eq!(c.output_level, 4);
    }
}
