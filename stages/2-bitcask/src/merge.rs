//! Merge: rewriting immutable segments so that only each key's live record remains.
//!
//! Overwrites and deletes leave dead records behind; a merge reclaims their space. It reads
//! its **input** segments record by record and copies each record the keydir still points
//! at into new **output** segments, writing a hint file beside each. Then it switches the
//! keydir to the copies and retires the inputs.
//!
//! ## Which segments
//!
//! The inputs are the immutable segments that hold at least one dead record, plus those
//! without a hint file (so that after `compact` every immutable segment has a hint). When
//! `compact` is called while some key has an expiry, every immutable segment is taken, so
//! expired records are dropped wherever they are. The active segment is never an input.
//! A background merge starts when the immutable segments' dead bytes reach
//! `merge_dead_ratio` of their size; `compact` first seals the active segment, then merges.
//!
//! ## Records a merge drops
//!
//! * A put the keydir does not point at: a newer record of its key exists.
//! * A tombstone, or a put whose expiry has passed, **only if no segment outside the merge
//!   can hold an older record of that key.** Otherwise that older value would be the
//!   newest record left on disk, and the key would come back to life at the next open.
//!   Every record that is not its key's newest is counted in its segment's dead bytes, so
//!   older records of a key can only be in segments with dead bytes; the rule is "every
//!   segment outside the merge that has dead bytes starts after this record's sequence
//!   number". A tombstone that cannot be dropped yet is copied, and a later merge that
//!   takes those other segments too drops it.
//!
//! ## Batch records
//!
//! A batch record is copied op by op, each as the plain record it stands for: a live put
//! becomes a put record of its own (same sequence number, no expiry), a delete is treated
//! as a tombstone. So a merge's outputs never hold batch records, hint files describe
//! plain records only, and a value read from a merged segment is one read again. Every
//! segment holding a batch record has dead bytes (the batch's header), so a merge always
//! takes it.
//!
//! ## Reads and writes go on during a merge
//!
//! The merge copies without holding any lock; for each record it takes the keydir's read
//! lock just long enough to ask whether the record is live. Writes keep appending to the
//! active segment. The **switch** happens under the keydir's write lock, all at once: each
//! copied key is repointed to its copy **only if it still points at the record that was
//! copied**; if a put or delete came in meanwhile, the newer write wins and the copy
//! becomes a dead record of the output.
//!
//! ## Durability
//!
//! A record is dropped because a newer record of its key replaced it. If that newer record
//! were still only in the operating system's cache, a power loss could lose it while the
//! merge's deletion of the old one survived, and the key would lose both. So before its
//! commit point a merge fsyncs the active segment (sealed segments already are): every
//! record that justified a drop is durable before the drop is.
//!
//! ## Deleting the inputs
//!
//! After the switch nothing new can find an input, but a `get` or a scan iterator may still
//! hold one: each holds an `Arc` of its segment. Inputs are *retired*
//! ([`crate::segment::Segment::retire`]) and their files are deleted when the last
//! reference is dropped. The commit protocol that makes all this crash-safe is described in
//! [`crate::merge_commit`].
//!
//! ## When a merge fails
//!
//! A merge that returns an error changed nothing the store depends on: before its commit
//! point it deletes its outputs and the inputs stay as they were; after it (the commit
//! record written, the switch not done) the keydir still points at the inputs, which stay
//! on disk, and merges stop until the store is reopened, whose recovery finishes the merge
//! by its commit record. So writes go on. A failed background merge is counted
//! (`merge_errors` in `stats`) and its error kept ([`crate::Bitcask::last_merge_error`]);
//! `compact` runs a merge itself and returns that merge's error.
//!
//! A **panic** of the merge thread is another matter: it may have struck anywhere, in the
//! middle of the switch under the keydir's write lock too, and the engine cannot tell what
//! it left half done. The thread catches it (`Inner::background_merge`), and from then on
//! every write, `sync` (after syncing) and `compact` return [`Error::Background`] naming
//! the merge, until the store is reopened; `stats` counts it in `background_failures`.
//! Reads go on with what the keydir holds. Catching the panic (with `AssertUnwindSafe`) is
//! sound because nothing is written after it: the locks are taken poisoned or not
//! (`unpoisoned`, in [`crate::engine`]), and what is on disk is what recovery already knows how
//! to read: segments, uncommitted outputs it deletes, a commit record it finishes.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Mutex, OnceLock};

use kv_shared::log_reader::{LogTail, read_log};
use kv_shared::{Error, FileRef, Result};

use crate::engine::{Inner, MergeStatus, lock, read, write};
use crate::expiry;
use crate::file_names::FileName;
use crate::hint;
use crate::keydir::Entry;
use crate::merge_commit::MergeCommit;
use crate::record::{self, Kind, RecordRef, SEGMENT_HEADER_LEN, SegmentLog};
use crate::segment::{CommitGuard, Segment};

/// Bytes an output buffers before appending them to its file.
const OUTPUT_BUFFER: usize = 1 << 20;

/// How the background merges went since open (see "When a merge fails" above).
#[derive(Debug, Default)]
pub(crate) struct MergeFailures {
    /// What the merge thread's panic said: set once; writes are refused from then on.
    panicked: OnceLock<String>,
    /// The error of the last background merge that failed (writes go on).
    last_error: Mutex<Option<String>>,
}

impl MergeFailures {
    /// `Err(`[`Error::Background`]`)` once the merge thread panicked.
    pub(crate) fn check(&self) -> Result<()> {
        match self.panicked.get() {
            Some(detail) => Err(Error::background("merge", detail.clone())),
            None => Ok(()),
        }
    }

    /// Failures that stopped writes: 1 once the merge thread panicked, else 0.
    pub(crate) fn stopping_writes(&self) -> u64 {
        u64::from(self.panicked.get().is_some())
    }

    /// The error of the last background merge that failed.
    pub(crate) fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
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

/// A live record copied to an output: where it was and where it is now.
#[derive(Debug)]
struct Relocation {
    key: Vec<u8>,
    from_segment: u32,
    from_offset: u64,
    to: Entry,
}

/// The output segment being written.
#[derive(Debug)]
struct Output {
    id: u32,
    file: FileRef,
    /// Length of the segment, counting the bytes still in `pending`.
    len: u64,
    /// Records not yet written: the outputs are invisible until the merge commits, so they
    /// are written in large appends rather than one call per record.
    pending: Vec<u8>,
    /// Hint entries so far (header and end entry added when the output is finished).
    hint: Vec<u8>,
    count: u64,
    min_seq: u64,
    dead: u64,
}

/// A finished output segment.
#[derive(Debug)]
struct Finished {
    id: u32,
    len: u64,
    min_seq: u64,
    dead: u64,
}

/// The merge's output segments, written under temporary names.
struct Outputs<'a> {
    inner: &'a Inner,
    current: Option<Output>,
    finished: Vec<Finished>,
    created: Vec<u32>,
    bytes_written: u64,
}

impl<'a> Outputs<'a> {
    fn new(inner: &'a Inner) -> Self {
        Outputs {
            inner,
            current: None,
            finished: Vec::new(),
            created: Vec::new(),
            bytes_written: 0,
        }
    }

    /// Appends a copy of `rec`; returns the keydir entry of the copy.
    fn append(&mut self, rec: RecordRef<'_>) -> Result<Entry> {
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.len >= self.inner.options.segment_bytes)
        {
            self.finish_current()?;
        }
        let current = match &mut self.current {
            Some(current) => current,
            None => {
                let id = self.inner.next_id.fetch_add(1, SeqCst);
                self.created.push(id);
                let path = FileName::MergeSegment(id).path(&self.inner.dir);
                let file = self.inner.fs.create(&path)?;
                self.bytes_written += SEGMENT_HEADER_LEN;
                self.current.insert(Output {
                    id,
                    file,
                    len: SEGMENT_HEADER_LEN,
                    pending: record::encode_segment_header(id),
                    hint: Vec::new(),
                    count: 0,
                    min_seq: u64::MAX,
                    dead: 0,
                })
            }
        };
        let bytes = rec.encode();
        current.pending.extend_from_slice(&bytes);
        if current.pending.len() >= OUTPUT_BUFFER {
            current.file.append(&current.pending)?;
            current.pending.clear();
        }
        let len = bytes.len() as u32;
        let entry = Entry::record(current.id, current.len, len, rec.seq, rec.expiry);
        hint::encode_entry(
            &mut current.hint,
            rec.seq,
            rec.expiry,
            current.len,
            len,
            rec.kind,
            rec.key,
        );
        current.len += bytes.len() as u64;
        current.count += 1;
        current.min_seq = current.min_seq.min(rec.seq);
        if rec.kind == Kind::Tombstone {
            current.dead += bytes.len() as u64;
        }
        self.bytes_written += bytes.len() as u64;
        Ok(entry)
    }

    /// Seals and fsyncs the current output and writes and fsyncs its hint file.
    fn finish_current(&mut self) -> Result<()> {
        let Some(mut current) = self.current.take() else {
            return Ok(());
        };
        let seal = record::seal_record();
        current.pending.extend_from_slice(&seal);
        current.file.append(&current.pending)?;
        current.len += seal.len() as u64;
        current.file.sync()?;
        let mut bytes = hint::encode_header(current.id);
        bytes.append(&mut current.hint);
        hint::encode_end(&mut bytes, current.count, current.len);
        let hint_file = self
            .inner
            .fs
            .create(&FileName::MergeHint(current.id).path(&self.inner.dir))?;
        hint_file.append(&bytes)?;
        hint_file.sync()?;
        self.bytes_written += (seal.len() + bytes.len()) as u64;
        self.finished.push(Finished {
            id: current.id,
            len: current.len,
            min_seq: current.min_seq,
            dead: current.dead,
        });
        Ok(())
    }

    /// Removes every file written so far (the merge did not commit).
    fn discard(&mut self) {
        self.current = None;
        for &id in &self.created {
            let _ = self
                .inner
                .fs
                .remove_if_exists(&FileName::MergeSegment(id).path(&self.inner.dir));
            let _ = self
                .inner
                .fs
                .remove_if_exists(&FileName::MergeHint(id).path(&self.inner.dir));
        }
    }
}

/// What the copy phase decided.
#[derive(Debug, Default)]
struct Plan {
    relocations: Vec<Relocation>,
    /// Expired puts dropped: `(key, segment, offset)`, removed from the keydir at the switch.
    expired: Vec<(Vec<u8>, u32, u64)>,
    tombstones_dropped: u64,
    tombstones_kept: u64,
}

/// The copy phase's running state.
#[derive(Debug)]
struct Copying {
    /// The time expiry is judged at.
    now: u64,
    /// See [`may_drop`].
    outside_dirty_min_seq: u64,
    plan: Plan,
    /// Newest tombstone of each key among the inputs.
    tombstones: HashMap<Vec<u8>, u64>,
}

/// True when a tombstone or expired put with sequence number `seq` may be dropped: no
/// segment outside the merge that holds dead records starts at or before `seq`.
pub fn may_drop(seq: u64, outside_dirty_min_seq: u64) -> bool {
    seq < outside_dirty_min_seq
}

impl Inner {
    /// Runs one merge for the background thread and records how it failed, if it did: an
    /// error is counted and kept, and the thread goes on (`true`); a panic stops writes and
    /// merges, and the thread ends (`false`).
    pub(crate) fn background_merge(&self) -> bool {
        match catch_unwind(AssertUnwindSafe(|| self.merge(false))) {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                self.counters.merge_errors.fetch_add(1, Relaxed);
                *lock(&self.merge_failures.last_error) = Some(e.to_string());
                true
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                self.merge_thread_panicked(message);
                false
            }
        }
    }

    /// Records that the merge thread panicked with `message`: writes stop until reopen.
    pub(crate) fn merge_thread_panicked(&self, message: &str) {
        let detail = format!("the merge thread panicked: {message}");
        let _ = self.merge_failures.panicked.set(detail);
    }

    /// Runs one merge to completion. `compacting` is true for [`kv_shared::Engine::compact`].
    ///
    /// # Errors
    /// [`Error::Corruption`] when an input segment is damaged (the merge is abandoned, the
    /// store unchanged); [`Error::Io`]; [`Error::Background`] once the merge thread
    /// panicked.
    pub(crate) fn merge(&self, compacting: bool) -> Result<()> {
        self.merge_failures.check()?;
        let mut status = lock(&self.merge_lock);
        if let Some(why) = &status.broken {
            return Err(Error::io(&self.dir, std::io::Error::other(why.clone())));
        }
        let (inputs, outside_dirty_min_seq) = {
            let st = read(&self.state);
            let take_all = compacting && st.keydir.has_expiring();
            let (inputs, outside): (Vec<Arc<Segment>>, Vec<Arc<Segment>>) =
                st.segments.values().cloned().partition(|s| {
                    s.id() != st.active && (take_all || s.dead_bytes() > 0 || !s.has_hint())
                });
            let min = outside
                .iter()
                .filter(|s| s.dead_bytes() > 0)
                .map(|s| s.min_seq())
                .min()
                .unwrap_or(u64::MAX);
            (inputs, min)
        };
        if inputs.is_empty() {
            return Ok(());
        }
        let mut outputs = Outputs::new(self);
        // The merge drops every record that a newer one replaced. Those newer records must
        // be durable before the drop is: otherwise a power loss could take the new value
        // and the merge the old one, leaving neither. So the writes so far are synced
        // before the commit point.
        let plan = match self
            .copy_live(&inputs, outside_dirty_min_seq, &mut outputs)
            .and_then(|plan| self.sync_writes().map(|()| plan))
        {
            Ok(plan) => plan,
            Err(e) => {
                outputs.discard();
                return Err(e);
            }
        };
        self.commit(&mut status, inputs, outputs, plan)
    }

    /// Copies the live records of `inputs` into `outputs`.
    fn copy_live(
        &self,
        inputs: &[Arc<Segment>],
        outside_dirty_min_seq: u64,
        outputs: &mut Outputs<'_>,
    ) -> Result<Plan> {
        let mut copying = Copying {
            now: expiry::now_millis(),
            outside_dirty_min_seq,
            plan: Plan::default(),
            tombstones: HashMap::new(),
        };
        for segment in inputs {
            self.copy_segment(segment, &mut copying, outputs)?;
        }
        self.keep_tombstones(&mut copying, outputs)?;
        outputs.finish_current()?;
        if !outputs.finished.is_empty() {
            self.fs.sync_dir(&self.dir)?;
        }
        Ok(copying.plan)
    }

    /// Copies the live records of one input segment; the ops of a batch record are copied
    /// as the plain puts and tombstones they stand for.
    fn copy_segment(
        &self,
        segment: &Segment,
        copying: &mut Copying,
        outputs: &mut Outputs<'_>,
    ) -> Result<()> {
        let file = segment.file();
        let end = read_log::<SegmentLog>(file, SEGMENT_HEADER_LEN, |r| {
            if self.stopping.load(Relaxed) {
                return Err(Error::io(
                    &self.dir,
                    std::io::Error::other("merge cancelled: the store is closing"),
                ));
            }
            let rec = r.record.as_ref();
            let at = (segment.id(), r.offset);
            if rec.kind == Kind::Batch {
                for op in rec.batch_records() {
                    self.copy_record(at, op, copying, outputs)?;
                }
                Ok(())
            } else {
                self.copy_record(at, rec, copying, outputs)
            }
        })?;
        if let LogTail::Torn { offset, detail, .. } = end.tail {
            return Err(Error::corruption(
                file.path(),
                offset,
                format!("immutable segment is cut short: {detail}"),
            ));
        }
        Ok(())
    }

    // Exercise 2.4: copy a live record to the merge output. Read: chapter 2, "Design".
    // Tests: merge::merging_reclaims_the_space_of_overwrites
    // Tests: merge::a_deleted_key_never_comes_back_across_merges_and_restarts
    // Tests: ttl::expired_keys_read_as_missing_and_merge_drops_them
    /// Copies `rec`, a put or tombstone read at `at` (segment, offset), if it is live: a
    /// put the keydir still points at, and not expired. Tombstones are only noted here.
    fn copy_record(
        &self,
        at: (u32, u64),
        rec: RecordRef<'_>,
        copying: &mut Copying,
        outputs: &mut Outputs<'_>,
    ) -> Result<()> {
        let (segment, offset) = at;
        match rec.kind {
            Kind::Seal | Kind::Batch => {}
            Kind::Tombstone => match copying.tombstones.get_mut(rec.key) {
                Some(newest) => *newest = (*newest).max(rec.seq),
                None => drop(copying.tombstones.insert(rec.key.to_vec(), rec.seq)),
            },
            Kind::Put => {
                let live = read(&self.state)
                    .keydir
                    .get(rec.key)
                    .is_some_and(|e| e.is_at(segment, offset) && e.seq == rec.seq);
                if !live {
                    return Ok(());
                }
                let plan = &mut copying.plan;
                if expiry::is_expired(rec.expiry, copying.now)
                    && may_drop(rec.seq, copying.outside_dirty_min_seq)
                {
                    plan.expired.push((rec.key.to_vec(), segment, offset));
                    return Ok(());
                }
                let to = outputs.append(rec)?;
                plan.relocations.push(Relocation {
                    key: rec.key.to_vec(),
                    from_segment: segment,
                    from_offset: offset,
                    to,
                });
            }
        }
        Ok(())
    }

    /// Writes each input tombstone that must stay (see the module documentation).
    fn keep_tombstones(&self, copying: &mut Copying, outputs: &mut Outputs<'_>) -> Result<()> {
        let mut tombstones: Vec<(Vec<u8>, u64)> = copying.tombstones.drain().collect();
        tombstones.sort_unstable();
        let plan = &mut copying.plan;
        for (key, seq) in tombstones {
            let superseded = read(&self.state)
                .keydir
                .get(&key)
                .is_some_and(|e| e.seq > seq);
            if superseded || may_drop(seq, copying.outside_dirty_min_seq) {
                plan.tombstones_dropped += 1;
                continue;
            }
            outputs.append(RecordRef {
                seq,
                expiry: expiry::NEVER,
                kind: Kind::Tombstone,
                key: &key,
                value: b"",
            })?;
            plan.tombstones_kept += 1;
        }
        Ok(())
    }

    /// Commits the merge (the commit record), renames the outputs, switches the keydir and
    /// retires the inputs.
    fn commit(
        &self,
        status: &mut MergeStatus,
        inputs: Vec<Arc<Segment>>,
        mut outputs: Outputs<'_>,
        plan: Plan,
    ) -> Result<()> {
        let merge_id = self.next_id.fetch_add(1, SeqCst);
        let commit_name = FileName::Commit(merge_id);
        let commit = MergeCommit {
            inputs: inputs.iter().map(|s| s.id()).collect(),
            outputs: outputs.finished.iter().map(|f| f.id).collect(),
        };
        let commit_bytes = commit.encode();
        let committed = self
            .fs
            .write_atomic(&commit_name.path(&self.dir), &commit_bytes);
        if let Err(e) = committed {
            // The record may or may not be on disk: leave the outputs for recovery to judge,
            // and merge no more in this session.
            status.broken = Some(format!(
                "merge {merge_id} may have committed; reopen the store: {e}"
            ));
            return Err(e);
        }
        self.counters
            .merge_bytes_written
            .fetch_add(outputs.bytes_written + commit_bytes.len() as u64, Relaxed);
        match self.install(&outputs.finished) {
            Ok(new_segments) => {
                self.switch(inputs, new_segments, plan, commit_name);
                self.counters.merges.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(e) => {
                outputs.current = None;
                status.broken = Some(format!(
                    "merge {merge_id} committed but could not be finished; reopen the store: {e}"
                ));
                Err(e)
            }
        }
    }

    /// Renames the outputs to their final names and opens them.
    fn install(&self, finished: &[Finished]) -> Result<BTreeMap<u32, Arc<Segment>>> {
        for f in finished {
            for (from, to) in [
                (FileName::MergeSegment(f.id), FileName::Segment(f.id)),
                (FileName::MergeHint(f.id), FileName::Hint(f.id)),
            ] {
                self.fs.rename(&from.path(&self.dir), &to.path(&self.dir))?;
            }
        }
        self.fs.sync_dir(&self.dir)?;
        let mut segments = BTreeMap::new();
        for f in finished {
            let file = self.fs.open(&FileName::Segment(f.id).path(&self.dir))?;
            let segment = Segment::new(&self.fs, self.dir.clone(), f.id, file);
            segment.set_file_len(f.len);
            segment.set_has_hint();
            segment.add_dead(f.dead);
            segment.saw_seq(f.min_seq);
            segments.insert(f.id, Arc::new(segment));
        }
        Ok(segments)
    }

    /// The atomic switch: outputs in, keys repointed where unchanged, inputs retired.
    fn switch(
        &self,
        inputs: Vec<Arc<Segment>>,
        new_segments: BTreeMap<u32, Arc<Segment>>,
        plan: Plan,
        commit: FileName,
    ) {
        let guard = Arc::new(CommitGuard::new(&self.fs, self.dir.clone(), commit));
        let mut st = write(&self.state);
        for r in &plan.relocations {
            if !st
                .keydir
                .repoint(&r.key, r.from_segment, r.from_offset, r.to)
                && let Some(segment) = new_segments.get(&r.to.segment)
            {
                // A newer write came in during the merge: it wins, the copy is dead.
                segment.add_dead(r.to.live_bytes(r.key.len()));
            }
        }
        let mut expired = 0;
        for (key, segment, offset) in &plan.expired {
            expired += u64::from(st.keydir.remove_if_at(key, *segment, *offset).is_some());
        }
        st.segments.extend(new_segments);
        for input in &inputs {
            st.segments.remove(&input.id());
            input.retire(guard.clone());
        }
        drop(st);
        let c = &self.counters;
        c.expired_dropped.fetch_add(expired, Relaxed);
        c.tombstones_dropped
            .fetch_add(plan.tombstones_dropped, Relaxed);
        c.tombstones_kept.fetch_add(plan.tombstones_kept, Relaxed);
        // Dropping `inputs` and `guard` here deletes the input files unless a reader still
        // holds one; the last holder deletes it, and the commit record after it.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_rule() {
        // Outside the merge, the oldest segment with dead records starts at sequence 10.
        assert!(may_drop(9, 10));
        assert!(!may_drop(10, 10) && !may_drop(11, 10));
        assert!(may_drop(u64::MAX - 1, u64::MAX));
    }
}
