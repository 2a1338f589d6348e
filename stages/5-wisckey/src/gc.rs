//! Garbage collection: freeing the value log's segments of values nothing points at.
//!
//! An overwrite or a delete changes the tree; the old value stays in the value log, dead.
//! The garbage collector frees whole **sealed** segments (never the active one): it reads
//! a segment front to back, keeps the records still **live**, appends copies of them at the
//! head of the log, points the tree at the copies, and deletes the segment.
//!
//! ## Which records are live
//!
//! A record is live when the tree's current entry for its key is a pointer to exactly this
//! segment and offset. The record holds its key, so one tree `get` per record answers it.
//! A small value's copy (the tree holds the value itself), a tombstone, an overwritten or
//! deleted value: all dead. This is **liveness computed during collection**, as the WiscKey
//! paper does it; nothing is counted on the write path, which stays blind (a write never
//! reads the tree to learn what it replaces).
//!
//! ## Which segments
//!
//! Each segment knows its **dead bytes** as far as they are known without reading: the
//! small values and tombstones written into it (dead from the start), and what the last
//! collection that read it measured. `compact` reads every sealed segment and collects each
//! one holding any dead byte. The background collector (`gc_dead_ratio` above 0) is woken
//! each time a segment is sealed, and looks at:
//!
//! * every sealed segment whose known dead bytes already reach `gc_dead_ratio` of its
//!   bytes (a segment of records that were all dead when written, small values and
//!   tombstones, is deleted without being read, and without the flush below: no pointer
//!   ever named its records);
//! * one more segment in turn, oldest first and round again (the paper's tail-to-head
//!   order), whose liveness it measures: overwrites are only found this way. It is
//!   collected if its measured dead share reaches `gc_dead_ratio`.
//!
//! So the background collector reads about one segment per segment written.
//!
//! ## Moving live values
//!
//! The live records are moved in chunks. For each chunk, **under the writer mutex**, the
//! collector asks the tree again whether each record is still live (a write may have
//! replaced or deleted the key since the segment was read), appends the copies of those
//! that are to the value log's head, and writes one tree batch pointing their keys at the
//! copies. Holding the writer mutex between the check and the tree write is what makes it
//! safe: no write can come in between, so a newer value is never overwritten by an old
//! one, and a deleted key never comes back.
//!
//! ## Crash safety
//!
//! When every segment of a round is emptied, the collector syncs the value log to its end,
//! then **flushes the tree**: its memtable, which holds the moves (and every write that
//! made a record dead), is frozen (its WAL synced, the barrier syncing the log first) and
//! written to a table. Only then are the segments deleted. At every point a crash leaves a
//! store that reads the same:
//!
//! * before the tree batch is durable, the tree's pointers name the old segment, which is
//!   still there; the copies are garbage the next collection finds dead (and recovery trims
//!   a tree batch whose copies a power loss took, [`crate::recovery`]);
//! * after the flush, the tree points at copies that are durable, and the old segment is
//!   garbage: whether its deletion reached the disk or not, nothing reads it.
//!
//! Why a flush, not just a sync of the tree's WAL: recovery takes the end of the newest
//! WAL for an unsynced tail when it is damaged, and cuts it (it cannot tell damage from a
//! torn write). Had the moves stayed in that WAL, such a cut would send the keys back to
//! the segment the collector deleted. In a table they are out of its reach: damage to a
//! table is reported on every read of the damaged block, never taken for a torn write. The
//! same holds for the writes that made the other records dead: a record is found dead in
//! the tree as it is *in memory*, and that tree must be on the disk, for good, before the
//! record may go (a write whose WAL sync later fails would otherwise leave nothing to read).
//!
//! No commit record is needed (bitcask's merge needs one, [`bitcask::merge_commit`]): the
//! tree is the only record of where each value is, and it changes by atomic batches.
//!
//! ## Readers during a collection
//!
//! A segment is retired ([`crate::value_log::ValueLog::retire`]) after the tree stopped
//! pointing into it, with the table of segments held for writing. A `get` reads the tree
//! while it holds the table for reading, and a cursor copies the table when it takes its
//! tree snapshot, under the same lock: whatever pointer either can see names a segment it
//! holds. A cursor opened before the collection keeps reading the old segment, whose file
//! stays until the cursor lets it go.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;

use bitcask::record::{Kind, Record, SEGMENT_HEADER_LEN, SegmentLog};
use kv_shared::log_reader::{LogTail, read_log};
use kv_shared::{Engine as _, Error, Result, WriteBatch};

use crate::engine::{Counters, Inner};
use crate::value_log::{NewRecord, Segment, lock, seal_len};
use crate::value_pointer::{self, TreeValue, ValuePointer};

/// Bytes of live records moved under one hold of the writer mutex.
const CHUNK_BYTES: u64 = 1 << 20;
/// Live records moved under one hold of the writer mutex, at most.
const CHUNK_RECORDS: usize = 512;

/// What [`Inner::empty_segment`] did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emptied {
    /// Nothing: too few of its bytes are dead.
    No,
    /// Nothing needed: every record in it was dead when written.
    BornDead,
    /// Its records are dead by what the tree holds now (some were moved, perhaps).
    ByTheTree,
}

/// The segments a round emptied, and whether any of them depends on the tree.
#[derive(Debug, Default)]
struct Emptying {
    ids: Vec<u32>,
    by_the_tree: bool,
}

impl Emptying {
    /// Notes what [`Inner::empty_segment`] did with segment `id`.
    fn note(&mut self, id: u32, how: Emptied) {
        if how != Emptied::No {
            self.ids.push(id);
        }
        self.by_the_tree |= how == Emptied::ByTheTree;
    }
}

/// A live record read from a segment: where it was, and its key and value.
#[derive(Debug)]
struct Live {
    from: ValuePointer,
    record: Record,
}

impl Inner {
    /// True when the tree's entry for `key` is the pointer `at`.
    fn points_at(&self, key: &[u8], at: &ValuePointer) -> Result<bool> {
        let Some(value) = self.tree.get(key)? else {
            return Ok(false);
        };
        match value_pointer::decode(&value).map_err(|e| self.bad_tree_value(e))? {
            TreeValue::Pointer(p) => Ok(p == *at),
            TreeValue::Inline(_) => Ok(false),
        }
    }

    /// Runs one collection: every sealed segment whose dead share, measured, reaches
    /// `min_dead_ratio` is collected. Returns how many were.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a damaged segment (it is left in place, and so are the
    /// rest), [`Error::Io`].
    pub(crate) fn collect(&self, min_dead_ratio: f64) -> Result<u64> {
        let _one_at_a_time = lock(&self.gc_lock);
        Counters::add(&self.counters.gc_runs, 1);
        let mut emptied = Emptying::default();
        let mut each = || {
            for segment in self.sealed_segments() {
                let how = self.empty_segment(&segment, min_dead_ratio)?;
                emptied.note(segment.id(), how);
            }
            Ok(())
        };
        let done = each();
        self.delete_emptied(&emptied.ids, emptied.by_the_tree)?;
        done.map(|()| emptied.ids.len() as u64)
    }

    /// Every sealed segment, oldest first, once every write that appended to them has
    /// reached the tree.
    ///
    /// A write appends its records, then writes the tree, holding the writer mutex
    /// throughout; a batch's append can seal a segment halfway, and `compact` seals one
    /// without the mutex. So a segment sealed a moment ago may hold records whose pointers
    /// are not in the tree *yet*: measured now, they would look dead, and the segment would
    /// go while the tree is about to point into it. Taking the writer mutex once, after the
    /// segments are listed, waits for every such write to finish.
    fn sealed_segments(&self) -> Vec<Arc<Segment>> {
        let active = self.vlog.active_id();
        let sealed = {
            let segments = self.vlog.segments();
            segments.range(..active).map(|(_, s)| s.clone()).collect()
        };
        drop(lock(&self.writer));
        sealed
    }

    /// Bytes of records in a sealed segment (header and seal excluded).
    fn data_bytes(segment: &Segment) -> u64 {
        segment
            .len()
            .saturating_sub(SEGMENT_HEADER_LEN + seal_len())
    }

    /// Measures `segment` and, when its dead share reaches `min_dead_ratio`, moves its live
    /// records to the head (see the module documentation). Says whether it did: the segment
    /// is then all dead, for [`Inner::delete_emptied`] to delete.
    fn empty_segment(&self, segment: &Segment, min_dead_ratio: f64) -> Result<Emptied> {
        let data = Self::data_bytes(segment);
        if segment.born_dead() >= data {
            return Ok(Emptied::BornDead);
        }
        if segment.dead_bytes() >= data {
            return Ok(Emptied::ByTheTree);
        }
        let (live, live_bytes) = self.live_records(segment)?;
        segment.set_dead(data - live_bytes.min(data));
        if (segment.dead_bytes() as f64) < min_dead_ratio * data as f64 {
            return Ok(Emptied::No);
        }
        self.relocate_all(live)?;
        Ok(Emptied::ByTheTree)
    }

    /// Deletes the segments `ids`, emptied by [`Inner::empty_segment`]. When one of them
    /// was emptied `by_the_tree` (its records found dead by asking the tree, or moved),
    /// only once that tree is on the disk **in tables**: the value log is synced to its
    /// end, then the tree's memtable is flushed (its WAL synced first, the barrier syncing
    /// the log again). Segments of records dead when written depend on nothing: no pointer
    /// ever named them (see "Crash safety").
    fn delete_emptied(&self, ids: &[u32], by_the_tree: bool) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        if by_the_tree {
            self.vlog.sync_to_end()?;
            self.tree.flush()?;
        }
        for &id in ids {
            self.vlog.retire(id);
        }
        Counters::add(&self.counters.gc_segments_deleted, ids.len() as u64);
        Ok(())
    }

    /// The live records of `segment`, read whole and checked, and their bytes.
    fn live_records(&self, segment: &Segment) -> Result<(Vec<Live>, u64)> {
        let (mut live, mut bytes) = (Vec::new(), 0);
        let file = segment.file();
        let end = read_log::<SegmentLog>(file, SEGMENT_HEADER_LEN, |r| {
            if self.stopping.load(Relaxed) {
                return Err(Error::io(
                    file.path(),
                    std::io::Error::other("collection cancelled: the store is closing"),
                ));
            }
            if r.record.kind != Kind::Put {
                return Ok(());
            }
            let from = ValuePointer {
                segment: segment.id(),
                offset: r.offset,
                len: r.len as u32,
            };
            if self.points_at(&r.record.key, &from)? {
                bytes += r.len;
                live.push(Live {
                    from,
                    record: r.record,
                });
            }
            Ok(())
        })?;
        if let LogTail::Torn { offset, detail, .. } = end.tail {
            return Err(Error::corruption(
                file.path(),
                offset,
                format!("a sealed segment is cut short: {detail}"),
            ));
        }
        Ok((live, bytes))
    }

    /// Moves `live` in chunks of [`CHUNK_BYTES`] or [`CHUNK_RECORDS`].
    fn relocate_all(&self, live: Vec<Live>) -> Result<()> {
        let mut chunk: Vec<Live> = Vec::new();
        let mut bytes = 0;
        for record in live {
            bytes += u64::from(record.from.len);
            chunk.push(record);
            if bytes >= CHUNK_BYTES || chunk.len() >= CHUNK_RECORDS {
                self.relocate(&chunk)?;
                chunk.clear();
                bytes = 0;
            }
        }
        if !chunk.is_empty() {
            self.relocate(&chunk)?;
        }
        Ok(())
    }

    // Exercise 5.5: move live records to the log's head. Read: chapter 5, "Garbage collection".
    // Tests: gc::collection_reclaims_the_space_of_overwrites_and_deletes
    // Tests: gc::a_write_racing_a_collection_is_never_lost
    // Tests: gc::a_power_loss_at_every_step_of_a_collection_loses_nothing
    /// Under the writer mutex: copies each record of `chunk` that is still live to the
    /// value log's head, and points its key at the copy, in one tree batch.
    fn relocate(&self, chunk: &[Live]) -> Result<()> {
        let _writer = lock(&self.writer);
        let mut still = Vec::with_capacity(chunk.len());
        for live in chunk {
            if self.points_at(&live.record.key, &live.from)? {
                still.push(live);
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        let records: Vec<NewRecord<'_>> = still
            .iter()
            .map(|live| NewRecord {
                kind: Kind::Put,
                key: &live.record.key,
                value: &live.record.value,
                dead: false,
            })
            .collect();
        let pointers = self.vlog.append(&records)?;
        let mut batch = WriteBatch::new();
        for (live, pointer) in still.iter().zip(&pointers) {
            batch.put(&live.record.key, &pointer.encode())?;
        }
        self.tree.write(&batch)?;
        let moved: u64 = pointers.iter().map(|p| u64::from(p.len)).sum();
        Counters::add(&self.counters.gc_values_relocated, pointers.len() as u64);
        Counters::add(&self.counters.gc_bytes_relocated, moved);
        Ok(())
    }

    /// The background collector's round (see "Which segments"): the segments whose known
    /// dead share reaches `gc_dead_ratio`, then the next one in turn, measured.
    fn background_round(&self, next: &mut u32) -> Result<()> {
        let _one_at_a_time = lock(&self.gc_lock);
        Counters::add(&self.counters.gc_runs, 1);
        let ratio = self.options.gc_dead_ratio;
        let sealed = self.sealed_segments();
        let mut emptied = Emptying::default();
        let mut each = || {
            for segment in &sealed {
                let data = Self::data_bytes(segment) as f64;
                if segment.dead_bytes() as f64 >= ratio * data {
                    let how = self.empty_segment(segment, ratio)?;
                    emptied.note(segment.id(), how);
                }
            }
            let turn = sealed.iter().find(|s| s.id() >= *next).or(sealed.first());
            if let Some(segment) = turn.filter(|s| !emptied.ids.contains(&s.id())) {
                *next = segment.id() + 1;
                let how = self.empty_segment(segment, ratio)?;
                emptied.note(segment.id(), how);
            }
            Ok(())
        };
        let done = each();
        self.delete_emptied(&emptied.ids, emptied.by_the_tree)?;
        done
    }

    /// Wakes the background collector: a segment was sealed.
    pub(crate) fn request_collection(&self) {
        lock(&self.gc_signal).requested = true;
        self.gc_wake.notify_all();
    }

    /// The background collector's thread: a round per request, until shutdown. A round that
    /// fails is counted (`gc_errors`) and changes nothing that reads depend on; writes go on.
    fn gc_loop(&self) {
        let mut next = 0;
        loop {
            {
                let mut signal = lock(&self.gc_signal);
                while !signal.requested && !signal.shutdown {
                    signal = self.gc_wake.wait(signal).unwrap_or_else(|p| p.into_inner());
                }
                if signal.shutdown {
                    return;
                }
                signal.requested = false;
            }
            let round = catch_unwind(AssertUnwindSafe(|| self.background_round(&mut next)));
            if !matches!(round, Ok(Ok(()))) {
                Counters::add(&self.counters.gc_errors, 1);
            }
        }
    }
}

/// Starts the background collector's thread, unless `gc_dead_ratio` is 0.
///
/// # Errors
/// [`Error::Io`] when the thread cannot be started.
pub(crate) fn start_thread(inner: &Arc<Inner>) -> Result<Option<JoinHandle<()>>> {
    if inner.options.gc_dead_ratio <= 0.0 {
        return Ok(None);
    }
    let worker = inner.clone();
    std::thread::Builder::new()
        .name("wisckey-gc".into())
        .spawn(move || worker.gc_loop())
        .map(Some)
        .map_err(|e| Error::io(&inner.dir, e))
}
