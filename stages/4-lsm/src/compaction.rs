//! Leveled compaction: choosing what to merge, merging it, and what to drop on the way.
//!
//! ## Choosing ([`pick`])
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
//! Input tables that overlap nothing below and do not overlap each other (one table; or L0
//! tables flushed from a sequential fill) are **moved** down by the manifest alone, without
//! being rewritten (a *trivial move*).
//!
//! ## Merging ([`run`])
//!
//! The inputs are merged with [`crate::merge_iter::MergeIter`]. Of each key only the newest
//! version is written (readers with older snapshots read their own version's tables, which
//! stay on disk while they are held). Outputs are cut at `table_bytes`, so the next
//! compaction of that range rewrites a small piece rather than the whole level.
//!
//! A **tombstone** is dropped only when nothing older can remain below it: no table on any
//! level deeper than the output level has a key range that holds the key. Otherwise it is
//! written, because dropping it would resurrect an older value further down.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use kv_shared::{Fs, Result};

use crate::block_cache::BlockCache;
use crate::counters::Counters;
use crate::filename;
use crate::key::EntryIter;
use crate::manifest::{NUM_LEVELS, TableMeta, VersionEdit};
use crate::merge_iter::MergeIter;
use crate::options::LsmOptions;
use crate::table::Table;
use crate::table_builder::TableBuilder;
use crate::version::{TableFile, Version};

/// One compaction: the tables of `level` and of `level + 1` to merge.
#[derive(Debug, Clone)]
pub struct Compaction {
    /// The level compacted (the output goes to `level + 1`).
    pub level: usize,
    /// The chosen tables of `level`.
    pub inputs: Vec<Arc<TableFile>>,
    /// The tables of `level + 1` that overlap them.
    pub next_inputs: Vec<Arc<TableFile>>,
    /// The level's score when it was chosen.
    pub score: f64,
}

impl Compaction {
    /// The level the outputs go to.
    pub fn output_level(&self) -> usize {
        self.level + 1
    }

    /// True when the inputs can move down without being rewritten: nothing below overlaps
    /// them, and they do not overlap each other (always so for one table; for L0 tables, so
    /// after a sequential fill).
    pub fn is_trivial_move(&self) -> bool {
        if !self.next_inputs.is_empty() {
            return false;
        }
        let mut sorted: Vec<&Arc<TableFile>> = self.inputs.iter().collect();
        sorted.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
        sorted
            .windows(2)
            .all(|w| w[0].meta.largest < w[1].meta.smallest)
    }

    /// Smallest and largest user keys over the chosen tables of `level`.
    fn input_range(&self) -> (Vec<u8>, Vec<u8>) {
        key_range(&self.inputs)
    }
}

fn key_range(tables: &[Arc<TableFile>]) -> (Vec<u8>, Vec<u8>) {
    let smallest = tables
        .iter()
        .map(|t| &t.meta.smallest)
        .min()
        .cloned()
        .unwrap_or_default();
    let largest = tables
        .iter()
        .map(|t| &t.meta.largest)
        .max()
        .cloned()
        .unwrap_or_default();
    (smallest, largest)
}

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
    let next_inputs = version.overlapping(level + 1, &smallest, &largest);
    Some(Compaction {
        level,
        inputs,
        next_inputs,
        score,
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
        next_inputs: version.overlapping(level + 1, &smallest, &largest),
        inputs,
        score: 0.0,
    })
}

/// What a compaction produced: the edit to record, and the new tables, open.
#[derive(Debug)]
pub struct Outcome {
    /// Removes the inputs, adds the outputs (or moves the one input).
    pub edit: VersionEdit,
    /// The output tables (empty for a trivial move, or when everything was dropped).
    pub outputs: Vec<Arc<TableFile>>,
    /// The largest key compacted, for the level's round-robin pointer.
    pub largest: Vec<u8>,
}

/// What [`run`] needs from the engine.
pub struct Context<'a> {
    /// The file layer.
    pub fs: &'a Fs,
    /// The store directory.
    pub dir: &'a Path,
    /// The options.
    pub options: &'a LsmOptions,
    /// The file-number counter.
    pub next_file: &'a AtomicU64,
    /// Where to count bytes and dropped tombstones.
    pub counters: &'a Counters,
    /// Set when the engine shuts down: the compaction stops early and writes nothing.
    pub stop: &'a AtomicBool,
    /// The tree's block cache, for the output tables.
    pub cache: &'a Arc<BlockCache>,
}

/// True when some table deeper than `level` has a key range that holds `key`.
fn key_may_exist_below(version: &Version, level: usize, key: &[u8]) -> bool {
    (level + 1..NUM_LEVELS).any(|deeper| {
        let tables = version.level(deeper);
        let i = tables.partition_point(|t| t.meta.largest.as_slice() < key);
        tables.get(i).is_some_and(|t| t.meta.contains(key))
    })
}

/// Runs `compaction` against `version` (the version it was picked from). Returns `None`
/// when stopped by [`Context::stop`], having removed its partial outputs.
///
/// # Errors
/// [`kv_shared::Error::Corruption`] from an input table, [`kv_shared::Error::Io`].
pub fn run(
    compaction: &Compaction,
    version: &Version,
    cx: &Context<'_>,
) -> Result<Option<Outcome>> {
    let level = compaction.level;
    let out_level = compaction.output_level();
    let (_, largest) = compaction.input_range();
    let removed: Vec<(u8, u64)> = compaction
        .inputs
        .iter()
        .map(|t| (level as u8, t.meta.number))
        .chain(
            compaction
                .next_inputs
                .iter()
                .map(|t| (out_level as u8, t.meta.number)),
        )
        .collect();
    if compaction.is_trivial_move() {
        let added = compaction
            .inputs
            .iter()
            .map(|t| (out_level as u8, t.meta.clone()))
            .collect();
        return Ok(Some(Outcome {
            edit: VersionEdit {
                removed,
                added,
                ..VersionEdit::default()
            },
            outputs: Vec::new(),
            largest,
        }));
    }
    let sources: Vec<EntryIter<'static>> = compaction
        .inputs
        .iter()
        .chain(&compaction.next_inputs)
        .map(|t| {
            Counters::add(&cx.counters.compaction_bytes_read, t.meta.size);
            t.table.compaction_iter()
        })
        .collect();
    let mut outputs: Vec<TableMeta> = Vec::new();
    let mut builder: Option<TableBuilder> = None;
    let mut last_key: Option<Vec<u8>> = None;
    let mut stopped = false;
    let result = (|| -> Result<()> {
        for (n, entry) in MergeIter::new(sources).enumerate() {
            if n % 1024 == 0 && cx.stop.load(SeqCst) {
                stopped = true;
                return Ok(());
            }
            let entry = entry?;
            if last_key.as_deref() == Some(entry.key.as_slice()) {
                continue; // an older version of a key already written (or dropped)
            }
            last_key = Some(entry.key.clone());
            if entry.value.is_none() && !key_may_exist_below(version, out_level, &entry.key) {
                Counters::add(&cx.counters.tombstones_dropped, 1);
                continue;
            }
            if builder
                .as_ref()
                .is_some_and(|b| b.estimated_size() >= cx.options.table_bytes)
            {
                outputs.push(builder.take().expect("checked").finish()?);
            }
            if builder.is_none() {
                let number = cx.next_file.fetch_add(1, SeqCst);
                builder = Some(TableBuilder::create(
                    cx.fs,
                    &cx.dir.join(filename::table(number)),
                    number,
                    cx.options,
                )?);
            }
            let b = builder.as_mut().expect("just made");
            b.add(&entry.key, entry.seq, entry.value.as_deref())?;
        }
        if let Some(b) = builder.take() {
            outputs.push(b.finish()?);
        }
        Ok(())
    })();
    if stopped || result.is_err() {
        drop(builder);
        // Best effort: whatever is left is an orphan, deleted by the next open.
        for meta in &outputs {
            let _ = cx
                .fs
                .remove_if_exists(&cx.dir.join(filename::table(meta.number)));
        }
        result?;
        return Ok(None);
    }
    cx.fs.sync_dir(cx.dir)?;
    let mut opened = Vec::with_capacity(outputs.len());
    for meta in &outputs {
        Counters::add(&cx.counters.compaction_bytes_written, meta.size);
        let path = cx.dir.join(filename::table(meta.number));
        let table = Table::open(cx.fs, &path, meta.number, cx.cache.clone())?;
        opened.push(Arc::new(TableFile::new(meta.clone(), table, cx.fs.clone())));
    }
    Ok(Some(Outcome {
        edit: VersionEdit {
            removed,
            added: outputs.into_iter().map(|m| (out_level as u8, m)).collect(),
            next_file: Some(cx.next_file.load(SeqCst)),
            ..VersionEdit::default()
        },
        outputs: opened,
        largest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_shared::Options;

    /// A table on disk holding `keys` (each `Some(value)` or a tombstone), opened.
    fn table(
        fs: &Fs,
        dir: &Path,
        number: u64,
        keys: &[(&str, u64, Option<&str>)],
    ) -> Arc<TableFile> {
        let path = dir.join(filename::table(number));
        let options = LsmOptions {
            block_bytes: 256,
            ..options(4)
        };
        let mut b = TableBuilder::create(fs, &path, number, &options).unwrap();
        for (k, seq, v) in keys {
            b.add(k.as_bytes(), *seq, v.map(str::as_bytes)).unwrap();
        }
        let meta = b.finish().unwrap();
        Arc::new(TableFile::new(
            meta,
            Table::open(fs, &path, number, Arc::new(BlockCache::new(1 << 20))).unwrap(),
            fs.clone(),
        ))
    }

    fn options(l0_trigger: u32) -> LsmOptions {
        LsmOptions::parse(
            &Options::new()
                .set("l0_trigger", l0_trigger)
                .set("l0_slowdown", 8)
                .set("l0_stop", 8)
                .set("level1_bytes", 1),
        )
        .unwrap()
    }

    #[test]
    fn l0_takes_every_table_and_the_overlapping_l1_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let l0a = table(
            &fs,
            tmp.path(),
            10,
            &[("c", 5, Some("x")), ("f", 6, Some("x"))],
        );
        let l0b = table(
            &fs,
            tmp.path(),
            11,
            &[("e", 7, Some("x")), ("h", 8, Some("x"))],
        );
        let l1a = table(
            &fs,
            tmp.path(),
            3,
            &[("a", 1, Some("x")), ("b", 1, Some("x"))],
        );
        let l1b = table(
            &fs,
            tmp.path(),
            4,
            &[("d", 1, Some("x")), ("g", 1, Some("x"))],
        );
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
        assert_eq!(
            numbers(&c.next_inputs),
            vec![4],
            "only the L1 table inside [c, h]"
        );
        assert!(!c.is_trivial_move());
    }

    #[test]
    fn deeper_levels_go_round_robin() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        let l1: Vec<Arc<TableFile>> = ["a", "c", "e"]
            .iter()
            .enumerate()
            .map(|(i, k)| table(&fs, tmp.path(), i as u64 + 1, &[(k, 1, Some("x"))]))
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

    #[test]
    fn tombstones_drop_only_when_nothing_older_can_lie_below() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Fs::default();
        // L1: deletes of "b" and "x" and a new "c"; L2: an older "c"; L3: an old "x".
        let l1 = table(
            &fs,
            tmp.path(),
            5,
            &[("b", 9, None), ("c", 8, Some("new")), ("x", 9, None)],
        );
        let l2 = table(&fs, tmp.path(), 4, &[("c", 2, Some("old"))]);
        let l3 = table(
            &fs,
            tmp.path(),
            3,
            &[("w", 1, Some("old")), ("y", 1, Some("old"))],
        );
        let v = Version::from_levels(vec![vec![], vec![l1.clone()], vec![l2.clone()], vec![l3]]);
        let c = Compaction {
            level: 1,
            inputs: vec![l1],
            next_inputs: vec![l2],
            score: 1.0,
        };
        let counters = Counters::default();
        let next_file = AtomicU64::new(100);
        let stop = AtomicBool::new(false);
        let o = options(4);
        let cx = Context {
            fs: &fs,
            dir: tmp.path(),
            options: &o,
            next_file: &next_file,
            counters: &counters,
            stop: &stop,
            cache: &Arc::new(BlockCache::new(1 << 20)),
        };
        let out = run(&c, &v, &cx).unwrap().unwrap();
        assert_eq!(out.outputs.len(), 1);
        let entries: Vec<(Vec<u8>, u64, bool)> = out.outputs[0]
            .table
            .iter(std::ops::Bound::Unbounded)
            .map(|e| {
                let e = e.unwrap();
                (e.key, e.seq, e.value.is_some())
            })
            .collect();
        assert_eq!(
            entries,
            vec![(b"c".to_vec(), 8, true), (b"x".to_vec(), 9, false)],
            "b's tombstone dropped, c's old version dropped, x's tombstone kept above L3's x"
        );
        assert_eq!(Counters::get(&counters.tombstones_dropped), 1);
        assert_eq!(out.edit.added.len(), 1);
        assert_eq!(out.edit.added[0].0, 2);
    }
}
