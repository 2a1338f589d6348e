//! The engine's two background threads, and how what they make becomes the tree.
//!
//! * The **flush thread** writes the oldest immutable memtable to an L0 table
//!   ([`crate::flush`]), records it in the manifest with the new log number, installs the
//!   new version, and only then deletes the memtable's WAL.
//! * The **compaction thread** picks a compaction ([`crate::compaction::pick`]), runs it,
//!   records the edit, installs the new version, and marks the replaced tables obsolete
//!   (their files go when the last version holding them goes).
//!
//! Both install through one lock around "append the edit to the manifest, swap the
//! version", so the manifest's order is the order versions were installed in.
//!
//! ## Failures
//!
//! Each thread runs its loop inside [`std::panic::catch_unwind`]. A loop that returns an
//! error or panics records the first failure as the tree's background error
//! ([`Inner::fail`]), wakes every writer waiting for progress, and ends; the other thread
//! ends at its next job (see the engine's module documentation for what writers and
//! readers see then). A panic must not vanish with its thread: a writer waiting for a flush
//! that will never come would wait forever.
//!
//! Catching the panic is sound here (the loop is wrapped in `AssertUnwindSafe`) because of
//! what a background job may leave behind when it stops halfway. Its tables are files that
//! no manifest names yet; the shared state changes only under its locks, each change
//! leaving it whole (a version `Arc` swapped, a memtable moved from `imm` into a table's
//! version in the same instant), and the locks are taken poisoned or not
//! ([`crate::lock`]). The one flag a panicking compaction leaves set, `compacting`, only
//! holds off other compactions, which stop anyway. And after the failure nothing is
//! written again: the engine reads what it had and refuses writes until it is reopened.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::thread::JoinHandle;

use kv_shared::{Error, Result};

use super::{Inner, State};
use crate::compaction::{self, Compaction};
use crate::counters::Counters;
use crate::file_names;
use crate::flush::flush;
use crate::lock::{lock, wait};
use crate::memtable::Memtable;
use crate::table::Table;
use crate::version::{TableFile, Version};
use crate::version_edit::VersionEdit;

impl Inner {
    /// Appends `edit` to the manifest and installs the version it makes, in one step under
    /// the manifest lock. `prepare` completes the edit from the current state; `commit`
    /// changes the rest of the state in the same instant the new version appears, so no
    /// reader ever sees a memtable gone before its table arrived.
    pub(super) fn install(
        &self,
        mut edit: VersionEdit,
        new: &[Arc<TableFile>],
        prepare: impl FnOnce(&State, &mut VersionEdit),
        commit: impl FnOnce(&mut State),
    ) -> Result<()> {
        let manifest = lock(&self.manifest);
        // Only this thread installs versions while the manifest lock is held, so the version
        // read here is still current when the new one replaces it below.
        let next = {
            let st = self.lock_state();
            prepare(&st, &mut edit);
            edit.next_file = Some(self.next_file.load(SeqCst));
            let path = self.dir.join(file_names::manifest(manifest.number()));
            let next = st
                .version
                .apply(&edit, new)
                .map_err(|detail| Error::corruption(&path, 0, detail))?;
            // A version that breaks the level invariants is never recorded: only damage that
            // got past a checksum (a table whose entries are out of order, an edit with wrong
            // key ranges) can make one.
            next.check_invariants().map_err(|detail| {
                Error::corruption(
                    &path,
                    0,
                    format!("a new version breaks the level invariants: {detail}"),
                )
            })?;
            next
        };
        manifest.append(&edit)?;
        {
            let mut st = self.lock_state();
            st.version = Arc::new(next);
            commit(&mut st);
            st.refresh_view();
        }
        drop(manifest);
        self.progress.notify_all();
        self.work.notify_all();
        Ok(())
    }

    /// Flushes the oldest immutable memtable `mem` to an L0 table, installs it, and deletes
    /// the memtable's WAL.
    fn flush_one(&self, mem: &Arc<Memtable>) -> Result<()> {
        let number = self.next_file.fetch_add(1, SeqCst);
        let flushed = flush(&self.fs, &self.dir, mem, number, &self.options)?;
        let mut new = Vec::new();
        let mut edit = VersionEdit::default();
        if let Some((meta, max_seq)) = flushed {
            Counters::add(&self.counters.flushes, 1);
            Counters::add(&self.counters.flush_bytes_written, meta.size);
            let path = self.dir.join(file_names::table(meta.number));
            let table = Table::open(&self.fs, &path, meta.number, self.cache.clone())?;
            edit.last_seq = Some(max_seq);
            edit.added.push((0, meta.clone()));
            new.push(Arc::new(TableFile::new(meta, table, self.fs.clone())));
        }
        let mut old_wal = 0;
        self.install(
            edit,
            &new,
            |st, edit| {
                // The memtable after this one holds the oldest writes not yet in a table.
                let next_wal = st.imm.get(1).unwrap_or(&st.mem).wal_number();
                edit.log_number = Some(next_wal);
                old_wal = st.imm[0].wal_number();
            },
            |st| {
                st.imm.remove(0);
            },
        )?;
        self.fs
            .remove_if_exists(&self.dir.join(file_names::wal(old_wal)))
    }

    /// Waits on `work` until `ready` hands out a job, or the engine stops or background
    /// work failed (`None`).
    fn next_job<T>(&self, mut ready: impl FnMut(&mut State) -> Option<T>) -> Option<T> {
        let mut st = self.lock_state();
        loop {
            if self.stop.load(SeqCst) || st.bg_error.is_some() {
                return None;
            }
            if let Some(job) = ready(&mut st) {
                return Some(job);
            }
            st = wait(&self.work, st);
        }
    }

    /// The flush thread: flushes immutable memtables, oldest first, as they come.
    pub(super) fn flush_loop(&self) -> Result<()> {
        while let Some(mem) = self.next_job(|st| st.imm.first().cloned()) {
            self.flush_one(&mem)?;
        }
        Ok(())
    }

    /// The compaction thread: runs the compactions the policy picks, one at a time.
    pub(super) fn compaction_loop(&self) -> Result<()> {
        let pick = |st: &mut State| {
            // `compacting` may be held by a manual `full_compaction`.
            if st.compacting {
                return None;
            }
            let task = compaction::pick(&st.version, &self.options, &st.pointers)?;
            st.compacting = true;
            Some((task, st.version.clone()))
        };
        while let Some((task, version)) = self.next_job(pick) {
            self.compact_and_release(&task, &version)?;
        }
        Ok(())
    }

    /// Runs `task` (for which `compacting` is held), then releases `compacting`.
    pub(super) fn compact_and_release(&self, task: &Compaction, version: &Version) -> Result<()> {
        let done = self.compact_once(task, version);
        self.lock_state().compacting = false;
        self.progress.notify_all();
        self.work.notify_all();
        done
    }

    /// Runs one compaction and installs what it made.
    fn compact_once(&self, task: &Compaction, version: &Version) -> Result<()> {
        let cx = compaction::Context {
            fs: &self.fs,
            dir: &self.dir,
            options: &self.options,
            next_file: &self.next_file,
            counters: &self.counters,
            stop: &self.stop,
            cache: &self.cache,
        };
        let Some(outcome) = compaction::run(task, version, &cx)? else {
            return Ok(());
        };
        let level = task.level;
        self.install(
            outcome.edit,
            &outcome.outputs,
            |_, _| {},
            |st| st.pointers[level] = outcome.largest.clone(),
        )?;
        Counters::add(&self.counters.compactions, 1);
        Counters::add(&self.counters.seek_compactions, u64::from(task.seek));
        if task.is_trivial_move() {
            Counters::add(&self.counters.trivial_moves, 1);
        } else {
            for (_, t) in task.all_inputs() {
                t.mark_obsolete();
            }
        }
        Ok(())
    }

    /// Runs a background loop on a thread named `lsm-{name}`, recording its error or panic
    /// as the background error (see the module documentation).
    pub(super) fn run_background(
        self: &Arc<Self>,
        name: &'static str,
        body: fn(&Inner) -> Result<()>,
    ) -> Result<JoinHandle<()>> {
        let inner = self.clone();
        std::thread::Builder::new()
            .name(format!("lsm-{name}"))
            .spawn(move || {
                let detail = match catch_unwind(AssertUnwindSafe(|| body(&inner))) {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e.to_string(),
                    Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
                };
                inner.fail(name, detail);
            })
            .map_err(|e| Error::io(&self.dir, e))
    }

    /// Records that background job `task` failed: the first failure becomes the error every
    /// later write returns. Wakes every thread waiting for progress, and the background
    /// threads, so that each sees it.
    pub(super) fn fail(&self, task: &'static str, detail: String) {
        {
            let mut st = self.lock_state();
            st.bg_failures += 1;
            st.bg_error.get_or_insert((task, detail));
        }
        self.progress.notify_all();
        self.work.notify_all();
    }

    /// Waits until no memtable waits for a flush, no compaction runs, and no level needs one.
    pub(super) fn wait_until_settled(&self) -> Result<()> {
        let mut st = self.lock_state();
        loop {
            st.check_background()?;
            let idle = st.imm.is_empty()
                && !st.compacting
                && compaction::pick(&st.version, &self.options, &st.pointers).is_none();
            if idle {
                return Ok(());
            }
            self.work.notify_all();
            st = self.wait_for_progress(st);
        }
    }
}

/// The message a panic was raised with (`panic!` makes a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}
