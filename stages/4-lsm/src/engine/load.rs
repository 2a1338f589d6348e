//! The engine's side of a bulk load ([`crate::ingest`] has the design): the steps that need
//! the engine's locks.
//!
//! The tables are written with no lock held. The commit then takes, in this order:
//!
//! 1. the **writer lock**, so no write commits until the load has: every memtable is
//!    flushed under it (the load's sequence number jump needs WALs free of older writes),
//!    and the counter jumps under it;
//! 2. the **`compacting` flag**, so no compaction runs across the commit: one chosen from
//!    the version before it could install its outputs on the load's level, across the
//!    load's key range, after it. Taken after the flushes, because a flush may have to wait
//!    for a compaction (L0 at `l0_stop`); and compactions never take the writer lock, so
//!    waiting for one with it held cannot deadlock.
//!
//! With both held, the owner's WAL barrier runs ([`crate::barrier`]): the load's tables join
//! the tree without a WAL sync, so the barrier runs before the manifest edit that commits
//! them instead.
//!
//! Writers therefore wait for the flushes of the writes made during the load, for a running
//! compaction to end, and for the renames and the manifest append: the commit step, never
//! the table writing. A first flush before the commit, with no lock held, leaves the commit
//! only what was written meanwhile.

use std::sync::atomic::Ordering::SeqCst;

use kv_shared::{Error, LoadInput, LoadOrder, LoadReport, Result};

use super::{Inner, Writer};
use crate::counters::Counters;
use crate::ingest::{self, Scratch, Staged};
use crate::lock::lock;
use crate::version_edit::VersionEdit;

impl Inner {
    /// Loads `input` by table ingestion (see [`crate::ingest`]).
    pub(super) fn load(&self, input: LoadInput<'_>, order: LoadOrder) -> Result<LoadReport> {
        let _one_load_at_a_time = lock(&self.loading);
        self.lock_state().check_background()?;
        let scratch = Scratch::create(&self.fs, &self.dir)?;
        let seq = ingest::load_seq(lock(&self.writer).last_seq)?;
        let mut report = LoadReport::default();
        let staged = ingest::stage(
            &self.fs,
            &scratch,
            input,
            order,
            seq,
            &self.options,
            &mut report,
        )?;
        if staged.tables.is_empty() {
            report.method = "nothing to load".into();
            return Ok(report);
        }
        let flushed = self.flush_all()?;
        let (level, flushed_meanwhile) = self.commit_load(&scratch, &staged)?;
        Counters::add(&self.counters.user_bytes_written, report.bytes);
        report.files_added = staged.tables.len() as u64;
        report.method = ingest::describe(staged.tables.len(), level, flushed || flushed_meanwhile);
        Ok(report)
    }

    /// Freezes the memtable if it holds anything and waits until every memtable is flushed,
    /// without holding the writer lock while waiting. Returns whether one was frozen.
    fn flush_all(&self) -> Result<bool> {
        let frozen = {
            let mut w = lock(&self.writer);
            let frozen = !w.mem.is_empty();
            self.make_room(&mut w, true)?;
            frozen
        };
        self.wait_flushed()?;
        Ok(frozen)
    }

    /// Waits until no immutable memtable is left to flush.
    fn wait_flushed(&self) -> Result<()> {
        let mut st = self.lock_state();
        while !st.imm.is_empty() {
            st.check_background()?;
            st = self.wait_for_progress(st);
        }
        st.check_background()
    }

    /// Step 4 of [`crate::ingest`]: under the writer lock and with compactions held off,
    /// flushes what was written during the load, runs the owner's barrier, moves the tables
    /// in and records them. Returns the level they went to and whether a memtable was
    /// flushed.
    fn commit_load(&self, scratch: &Scratch, staged: &Staged) -> Result<(usize, bool)> {
        let mut w = lock(&self.writer);
        let flushed = !w.mem.is_empty();
        self.make_room(&mut w, true)?;
        self.wait_flushed()?;
        self.hold_compactions()?;
        let level = self
            .barrier_or_stop()
            .and_then(|()| self.install_load(&mut w, scratch, staged));
        self.lock_state().compacting = false;
        self.work.notify_all();
        Ok((level?, flushed))
    }

    /// Waits until no compaction runs, then takes the `compacting` flag.
    fn hold_compactions(&self) -> Result<()> {
        let mut st = self.lock_state();
        loop {
            // A compaction that panicked never releases the flag: its error ends the wait.
            st.check_background()?;
            if !st.compacting {
                st.compacting = true;
                return Ok(());
            }
            st = self.wait_for_progress(st);
        }
    }

    /// Publishes the staged tables and installs the edit that adds them, with the load's
    /// sequence number becoming the last one in the same step. Returns the level.
    fn install_load(&self, w: &mut Writer, scratch: &Scratch, staged: &Staged) -> Result<usize> {
        if w.last_seq >= staged.seq {
            return Err(Error::InvalidArgument(format!(
                "bulk load: more than {} writes committed while its tables were written, \
                 past its sequence number {}: nothing was loaded, load again",
                ingest::SEQ_HEADROOM,
                staged.seq
            )));
        }
        let Some((smallest, largest)) = staged.key_range() else {
            return Err(Error::InvalidArgument("an empty load".into()));
        };
        let next_number = || self.next_file.fetch_add(1, SeqCst);
        let tables = ingest::publish(
            &self.fs,
            &self.dir,
            scratch,
            staged,
            next_number,
            &self.cache,
        )?;
        let mut level = 0;
        let edit = VersionEdit {
            last_seq: Some(staged.seq),
            ..VersionEdit::default()
        };
        self.install(
            edit,
            &tables,
            |st, edit| {
                level = ingest::pick_level(&st.version, smallest, largest);
                let added = tables.iter().map(|t| (level as u8, t.meta.clone()));
                edit.added.extend(added);
            },
            |_| self.visible_seq.store(staged.seq, SeqCst),
        )
        .inspect_err(|e| self.fail("load", e.to_string()))?;
        w.last_seq = staged.seq;
        Ok(level)
    }
}
