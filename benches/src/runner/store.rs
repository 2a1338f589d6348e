//! The store one engine's workloads run on, carried from one workload to the next: when it
//! is recreated empty, when it is filled first (untimed), and what a workload leaves in it.
//! See [`super`] for the rules.

use std::path::{Path, PathBuf};

use kv_shared::bulk::LOAD_BATCH;
use kv_shared::{DynEngine, Error, Result, WriteBatch};

use crate::bench_workload::BenchWorkload;
use crate::disk_bandwidth;
use crate::engine_spec::ResolvedEngine;
use crate::progress::Progress;
use crate::workload::{Op, Workload, WorkloadConfig};

/// What the runner knows about the store's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    /// No store yet, or one with no keys.
    Empty,
    /// Keys `0..num` are present (values may have been overwritten).
    Filled,
    /// Anything else: a fill or delete cut short by the time limit.
    Partial,
    /// The engine failed; the remaining workloads are skipped.
    Broken,
}

/// One engine's store, carried from workload to workload.
pub(super) struct Store<'a> {
    /// The engine and its settings.
    pub(super) engine: &'a ResolvedEngine,
    /// The directory this engine's stores are created in, one subdirectory each.
    pub(super) root: PathBuf,
    /// The current store's directory name under `root`, one more for each new store.
    generation: u32,
    /// The current store's directory.
    pub(super) dir: PathBuf,
    /// The open store, if any.
    pub(super) db: Option<Box<dyn DynEngine>>,
    /// What it holds.
    pub(super) fill: Fill,
}

impl<'a> Store<'a> {
    /// The store of `engine`, not created yet, whose directories go under `root`.
    pub(super) fn new(engine: &'a ResolvedEngine, root: PathBuf) -> Self {
        Store {
            engine,
            dir: root.join("0"),
            root,
            generation: 0,
            db: None,
            fill: Fill::Empty,
        }
    }

    /// The open store.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when no store is open.
    pub(super) fn db(&self) -> Result<&dyn DynEngine> {
        self.db
            .as_deref()
            .ok_or_else(|| Error::InvalidArgument("the store is not open".into()))
    }

    /// Opens the store in `dir` with the engine's settings.
    pub(super) fn open(&self, dir: &Path) -> Result<Box<dyn DynEngine>> {
        (self.engine.info.open)(dir, &self.engine.options)
    }

    /// Closes and removes the current store, then opens an empty one in a new directory.
    fn recreate(&mut self) -> Result<()> {
        self.close()?;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
            disk_bandwidth::settle(&self.root)?;
        }
        self.generation += 1;
        self.dir = self.root.join(self.generation.to_string());
        self.db = Some(self.open(&self.dir)?);
        self.fill = Fill::Empty;
        Ok(())
    }

    /// Closes the open store, if any.
    pub(super) fn close(&mut self) -> Result<()> {
        match self.db.take() {
            Some(db) => db.close(),
            None => Ok(()),
        }
    }

    /// Makes sure the store is in the state `workload` starts from.
    pub(super) fn prepare(
        &mut self,
        workload: BenchWorkload,
        config: &WorkloadConfig,
        progress: &dyn Progress,
    ) -> Result<()> {
        if !workload.needs_filled_store() {
            if self.fill != Fill::Empty || self.db.is_none() {
                self.recreate()?;
            }
            return Ok(());
        }
        if self.fill == Fill::Filled && self.db.is_some() {
            return Ok(());
        }
        progress.note("filling the store (untimed)");
        self.recreate()?;
        fill_seq(self.db()?, config)?;
        self.fill = Fill::Filled;
        progress.note("");
        Ok(())
    }
}

/// A directory name for an engine label (`sstable[search=linear]` → `sstable_search_linear_`).
pub(super) fn dir_name(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Puts keys `0..num` in order, untimed, in write batches of [`LOAD_BATCH`] pairs: the
/// same store as one `put` each, built faster (a store that commits a transaction per write,
/// as redb does, fills 16 million keys in seconds instead of minutes).
pub(super) fn fill_seq(db: &dyn DynEngine, config: &WorkloadConfig) -> Result<()> {
    let mut batch = WriteBatch::new();
    for op in Workload::FillSeq.ops(config) {
        if let Op::Put { key, value } = op {
            batch.put(&key, &value)?;
            if batch.len() == LOAD_BATCH {
                db.write(&batch)?;
                batch.clear();
            }
        }
    }
    db.write(&batch)
}

/// The store's state after `workload` ran on a store in state `before`.
pub(super) fn fill_after(workload: BenchWorkload, before: Fill, limited: bool) -> Fill {
    match workload {
        BenchWorkload::Standard(Workload::FillSeq | Workload::FillRandom)
        | BenchWorkload::FillBatch
        | BenchWorkload::BulkLoad
        | BenchWorkload::FillThreads
            if limited =>
        {
            Fill::Partial
        }
        BenchWorkload::Standard(Workload::FillSeq | Workload::FillRandom)
        | BenchWorkload::FillBatch
        | BenchWorkload::BulkLoad
        | BenchWorkload::FillThreads => Fill::Filled,
        BenchWorkload::Standard(Workload::DeleteRandom) if limited => Fill::Partial,
        BenchWorkload::Standard(Workload::DeleteRandom) => Fill::Empty,
        _ => before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_state_follows_the_workloads() {
        let fill = BenchWorkload::Standard(Workload::FillRandom);
        let delete = BenchWorkload::Standard(Workload::DeleteRandom);
        let read = BenchWorkload::Standard(Workload::ReadRandom);
        assert_eq!(fill_after(fill, Fill::Empty, false), Fill::Filled);
        assert_eq!(fill_after(fill, Fill::Empty, true), Fill::Partial);
        for fill in [BenchWorkload::FillBatch, BenchWorkload::BulkLoad] {
            assert_eq!(fill_after(fill, Fill::Empty, false), Fill::Filled);
            assert_eq!(fill_after(fill, Fill::Empty, true), Fill::Partial);
        }
        assert_eq!(fill_after(read, Fill::Filled, true), Fill::Filled);
        assert_eq!(fill_after(delete, Fill::Filled, false), Fill::Empty);
        assert_eq!(fill_after(delete, Fill::Filled, true), Fill::Partial);
        assert_eq!(dir_name("sstable[search=linear]"), "sstable_search_linear_");
    }
}
