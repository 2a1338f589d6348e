//! Compaction: merging sorted tables into fewer, newer ones, and what to drop on the way.
//!
//! *What* to merge is a policy, chosen by the `compaction` option; this file is what both
//! policies share:
//!
//! * [`crate::leveled`] (the default) keeps levels of growing target size and merges one
//!   small piece of a level into the overlapping piece of the next;
//! * [`crate::tiered`] keeps a handful of sorted runs and merges whole runs of similar size.
//!
//! A policy describes its choice as a [`Compaction`]: tables taken from one or more levels,
//! shallower (newer) first, and the one level where the result goes. [`pick`] and
//! [`full`] ask the configured policy.
//!
//! ## Merging ([`run`])
//!
//! The inputs are merged with [`crate::cursor::merging::MergeIter`]. Of each key only the newest
//! version is written (readers with older snapshots read their own version's tables, which
//! stay on disk while they are held). Outputs are cut at `table_bytes`, so the next
//! compaction of that range rewrites a small piece rather than the whole level.
//!
//! Inputs that do not overlap one another (one table; or L0 tables flushed from a
//! sequential fill; or tiered runs over distinct key ranges) are **moved** to the output
//! level by the manifest alone, without being rewritten (a *trivial move*). That is correct
//! whenever the output level holds no other table they overlap, which both policies ensure:
//! leveled takes every table of the output level in the inputs' range, and tiered's output
//! level holds only inputs or nothing.
//!
//! A **tombstone** is dropped only when nothing older can remain below it: no table on any
//! level deeper than the output level has a key range that holds the key. Otherwise it is
//! written, because dropping it would resurrect an older value further down.

use std::path::Path;
use std::sync::Arc;

pub mod leveled;
pub mod tiered;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use kv_shared::{Fs, Result};

use crate::block_cache::BlockCache;
use crate::counters::Counters;
use crate::file_names;
use crate::key::EntryIter;
use crate::manifest::{NUM_LEVELS, TableMeta, VersionEdit};
use crate::cursor::merging::MergeIter;
use crate::options::{CompactionStyle, LsmOptions};
use crate::table::table::Table;
use crate::table::table_builder::TableBuilder;
use crate::version::{TableFile, Version};

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
    fn input_range(&self) -> (Vec<u8>, Vec<u8>) {
        key_range(&self.inputs)
    }
}

/// Smallest and largest user keys over `tables` (empty keys for no tables).
pub fn key_range(tables: &[Arc<TableFile>]) -> (Vec<u8>, Vec<u8>) {
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

/// The compaction the configured policy wants next, if any. `pointers[n]` is the largest
/// key of the last compaction from level n (leveled's round-robin; tiered ignores it).
pub fn pick(version: &Version, options: &LsmOptions, pointers: &[Vec<u8>]) -> Option<Compaction> {
    match options.compaction {
        CompactionStyle::Leveled => leveled::pick(version, options, pointers),
        CompactionStyle::Tiered => tiered::pick(version, options),
    }
}

/// The theoretical number of times compaction rewrites each byte written, for the tree's
/// current shape and the configured policy ([`leveled::rewrites_per_byte`],
/// [`tiered::rewrites_per_byte`]). `flushed_table_bytes` is the mean size of a flushed
/// table.
pub fn rewrites_per_byte(version: &Version, options: &LsmOptions, flushed_table_bytes: f64) -> f64 {
    match options.compaction {
        CompactionStyle::Leveled => {
            leveled::rewrites_per_byte(version, options, flushed_table_bytes)
        }
        CompactionStyle::Tiered => tiered::rewrites_per_byte(version, options, flushed_table_bytes),
    }
}

/// The steps of a manual full compaction, one at a time: the next compaction to run, given
/// the current version and `step`, the number of steps already run; `None` when done.
/// Leveled compacts each level in turn into the one below (`step` is the level); tiered
/// merges every run into one on the last level in a single step.
pub fn full(version: &Version, options: &LsmOptions, step: usize) -> Option<Compaction> {
    match options.compaction {
        CompactionStyle::Leveled if step < NUM_LEVELS - 1 => leveled::whole_level(version, step),
        CompactionStyle::Leveled => None,
        CompactionStyle::Tiered if step == 0 => tiered::merge_all(version),
        CompactionStyle::Tiered => None,
    }
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
    let out_level = compaction.output_level;
    let (_, largest) = compaction.input_range();
    let removed: Vec<(u8, u64)> = compaction
        .all_inputs()
        .map(|(level, t)| (level as u8, t.meta.number))
        .collect();
    if compaction.is_trivial_move() {
        let added = compaction
            .all_inputs()
            .map(|(_, t)| (out_level as u8, t.meta.clone()))
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
        .all_inputs()
        .map(|(_, t)| {
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
                    &cx.dir.join(file_names::table(number)),
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
                .remove_if_exists(&cx.dir.join(file_names::table(meta.number)));
        }
        result?;
        return Ok(None);
    }
    cx.fs.sync_dir(cx.dir)?;
    let mut opened = Vec::with_capacity(outputs.len());
    for meta in &outputs {
        Counters::add(&cx.counters.compaction_bytes_written, meta.size);
        let path = cx.dir.join(file_names::table(meta.number));
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
pub(crate) mod testing {
    //! Tables and options for the compaction tests of this file and the policies'.
    use super::*;
    use kv_shared::Options;

    /// A table on disk holding `keys` (each `Some(value)` or a tombstone), opened.
    pub(crate) fn table(
        fs: &Fs,
        dir: &Path,
        number: u64,
        keys: &[(&str, u64, Option<&str>)],
    ) -> Arc<TableFile> {
        let path = dir.join(file_names::table(number));
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

    pub(crate) fn options(l0_trigger: u32) -> LsmOptions {
        LsmOptions::parse(
            &Options::new()
                .set("l0_trigger", l0_trigger)
                .set("l0_slowdown", 8)
                .set("l0_stop", 8)
                .set("level1_bytes", 1),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{options, table};
    use super::*;

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
            lower_inputs: vec![(2, l2)],
            output_level: 2,
            score: 1.0,
            manual: false,
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
