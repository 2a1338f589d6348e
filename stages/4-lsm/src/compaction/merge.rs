//! Carrying a compaction out: merging its inputs into new tables, or moving them.
//!
//! The inputs are read through one [`MergingCursor`]: every version of every key, newest
//! first. Of each key only the newest version is written (readers with older snapshots read
//! their own version's tables, which stay on disk while they are held). Outputs are cut at
//! `table_bytes`, so the next compaction of that range rewrites a small piece rather than
//! the whole level.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use kv_shared::{Fs, Result};

use crate::block_cache::BlockCache;
use crate::compaction::plan::Compaction;
use crate::counters::Counters;
use crate::cursor::EntryCursor;
use crate::cursor::level::tables_cursors;
use crate::cursor::merging::MergingCursor;
use crate::file_names;
use crate::options::LsmOptions;
use crate::table::Table;
use crate::table::table_builder::TableBuilder;
use crate::version::{NUM_LEVELS, TableFile, Version};
use crate::version_edit::{TableMeta, VersionEdit};

/// What a compaction produced: the edit to record, and the new tables, open.
#[derive(Debug)]
pub struct Outcome {
    /// Removes the inputs, adds the outputs (or moves the inputs).
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
    let (_, largest) = compaction.input_range();
    let removed = compaction
        .all_inputs()
        .map(|(level, t)| (level as u8, t.meta.number))
        .collect();
    let out_level = compaction.output_level as u8;
    if compaction.is_trivial_move() {
        let added = compaction
            .all_inputs()
            .map(|(_, t)| (out_level, t.meta.clone()))
            .collect();
        let edit = VersionEdit {
            removed,
            added,
            ..VersionEdit::default()
        };
        return Ok(Some(Outcome {
            edit,
            outputs: Vec::new(),
            largest,
        }));
    }
    let Some(outputs) = merge(compaction, version, cx)? else {
        return Ok(None);
    };
    let opened = open_outputs(&outputs, cx)?;
    let edit = VersionEdit {
        removed,
        added: outputs.into_iter().map(|m| (out_level, m)).collect(),
        next_file: Some(cx.next_file.load(SeqCst)),
        ..VersionEdit::default()
    };
    Ok(Some(Outcome {
        edit,
        outputs: opened,
        largest,
    }))
}

/// Merges the inputs into new tables; `None` when stopped. Whatever fails or stops removes
/// the tables it finished (best effort: what is left is an orphan, deleted by the next open).
fn merge(
    compaction: &Compaction,
    version: &Version,
    cx: &Context<'_>,
) -> Result<Option<Vec<TableMeta>>> {
    for (_, t) in compaction.all_inputs() {
        Counters::add(&cx.counters.compaction_bytes_read, t.meta.size);
    }
    let mut input = MergingCursor::new(tables_cursors(compaction.all_inputs(), false));
    let mut outputs = Outputs {
        cx,
        finished: Vec::new(),
        building: None,
    };
    match write_newest_versions(&mut input, version, compaction.output_level, &mut outputs) {
        Ok(true) => outputs.finish().map(Some),
        Ok(false) => {
            outputs.abandon();
            Ok(None)
        }
        Err(e) => {
            outputs.abandon();
            Err(e)
        }
    }
}

/// Writes the newest version of each key of `input` to `outputs`, dropping tombstones that
/// nothing below `out_level` needs. False when stopped by the engine's shutdown.
fn write_newest_versions(
    input: &mut MergingCursor,
    version: &Version,
    out_level: usize,
    outputs: &mut Outputs<'_, '_>,
) -> Result<bool> {
    let cx = outputs.cx;
    let mut last_key: Option<Vec<u8>> = None;
    input.seek_to_first()?;
    let mut n = 0u64;
    while input.valid() {
        if n.is_multiple_of(1024) && cx.stop.load(SeqCst) {
            return Ok(false);
        }
        n += 1;
        let e = input.entry();
        // Not an older version of a key already written (or dropped).
        if last_key.as_deref() != Some(e.key) {
            let last = last_key.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(e.key);
            if e.value.is_none() && !key_may_exist_below(version, out_level, e.key) {
                Counters::add(&cx.counters.tombstones_dropped, 1);
            } else {
                outputs.add(e.key, e.seq, e.value)?;
            }
        }
        input.next()?;
    }
    Ok(true)
}

/// True when some table deeper than `level` has a key range that holds `key`.
fn key_may_exist_below(version: &Version, level: usize, key: &[u8]) -> bool {
    (level + 1..NUM_LEVELS).any(|deeper| {
        let tables = version.level(deeper);
        let i = tables.partition_point(|t| t.meta.largest.as_slice() < key);
        tables.get(i).is_some_and(|t| t.meta.contains(key))
    })
}

/// The tables a compaction writes, each cut at `table_bytes`.
struct Outputs<'c, 'a> {
    cx: &'c Context<'a>,
    finished: Vec<TableMeta>,
    building: Option<TableBuilder>,
}

impl Outputs<'_, '_> {
    /// Adds an entry, finishing the table being built first when it is full, and starting
    /// a new one when none is being built.
    fn add(&mut self, key: &[u8], seq: u64, value: Option<&[u8]>) -> Result<()> {
        let cx = self.cx;
        if let Some(full) = self
            .building
            .take_if(|b| b.estimated_size() >= cx.options.table_bytes)
        {
            self.finished.push(full.finish()?);
        }
        let builder = match &mut self.building {
            Some(builder) => builder,
            None => {
                let number = cx.next_file.fetch_add(1, SeqCst);
                let path = cx.dir.join(file_names::table(number));
                let builder = TableBuilder::create(cx.fs, &path, number, cx.options)?;
                self.building.insert(builder)
            }
        };
        builder.add(key, seq, value)
    }

    /// Finishes the last table; the descriptions of them all.
    fn finish(mut self) -> Result<Vec<TableMeta>> {
        if let Some(builder) = self.building.take() {
            self.finished.push(builder.finish()?);
        }
        Ok(self.finished)
    }

    /// Removes the finished tables (a table left half written is an orphan, deleted by the
    /// next open).
    fn abandon(self) {
        drop(self.building);
        for meta in &self.finished {
            let path = self.cx.dir.join(file_names::table(meta.number));
            let _ = self.cx.fs.remove_if_exists(&path);
        }
    }
}

/// Syncs the directory (the new tables' entries), counts the bytes written, and opens the
/// new tables.
fn open_outputs(outputs: &[TableMeta], cx: &Context<'_>) -> Result<Vec<Arc<TableFile>>> {
    cx.fs.sync_dir(cx.dir)?;
    let mut opened = Vec::with_capacity(outputs.len());
    for meta in outputs {
        Counters::add(&cx.counters.compaction_bytes_written, meta.size);
        let path = cx.dir.join(file_names::table(meta.number));
        let table = Table::open(cx.fs, &path, meta.number, cx.cache.clone())?;
        opened.push(Arc::new(TableFile::new(meta.clone(), table, cx.fs.clone())));
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::testing::{TableDir, options};

    #[test]
    fn tombstones_drop_only_when_nothing_older_can_lie_below() {
        let dir = TableDir::new();
        // L1: deletes of "b" and "x" and a new "c"; L2: an older "c"; L3: an old "x".
        let l1 = dir.table(5, &[("b", 9, None), ("c", 8, Some("new")), ("x", 9, None)]);
        let l2 = dir.table(4, &[("c", 2, Some("old"))]);
        let l3 = dir.table(3, &[("w", 1, Some("old")), ("y", 1, Some("old"))]);
        let v = Version::from_levels(vec![vec![], vec![l1.clone()], vec![l2.clone()], vec![l3]]);
        let c = Compaction {
            level: 1,
            inputs: vec![l1],
            lower_inputs: vec![(2, l2)],
            output_level: 2,
            score: 1.0,
            manual: false,
            seek: false,
        };
        let counters = Counters::default();
        let next_file = AtomicU64::new(100);
        let stop = AtomicBool::new(false);
        let o = options(4);
        let cx = Context {
            fs: &dir.fs,
            dir: dir.path(),
            options: &o,
            next_file: &next_file,
            counters: &counters,
            stop: &stop,
            cache: &Arc::new(BlockCache::new(1 << 20)),
        };
        let out = run(&c, &v, &cx).unwrap().unwrap();
        assert_eq!(out.outputs.len(), 1);
        let mut cursor = out.outputs[0].table.cursor(false);
        cursor.seek_to_first().unwrap();
        let mut entries: Vec<(Vec<u8>, u64, bool)> = Vec::new();
        while cursor.valid() {
            let e = cursor.entry();
            entries.push((e.key.to_vec(), e.seq, e.value.is_some()));
            cursor.next().unwrap();
        }
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
