//! Snapshots: what a reader sees, for a `get` and for a cursor.
//!
//! A reader takes a [`Snapshot`] under a short lock: the last published sequence number,
//! and a [`ReadView`] of the memtables and the current [`Version`]. Every write at or below
//! that sequence number is in those memtables and tables, and every later one is above it,
//! so the snapshot shows the store as it was at that instant for as long as it is held:
//! writes, flushes and compactions that come later change nothing it returns. The `Arc`s it
//! holds keep its memtables in memory and its tables on disk.
//!
//! * [`Snapshot::get`] asks the memtables newest first, then the tables
//!   ([`Version::get`]), and stops at the first version at or below the sequence number.
//!   A read that reaches the tables, a cursor's seek, and every
//!   [`CURSOR_SAMPLE_BYTES`] a cursor returns charge the seek budget of the first table a
//!   read passes through ([`ReadView::charge_read`], [`crate::seek_compaction`]).
//! * [`SnapshotCursor`] is the engine's [`Cursor`]: a [`MergingCursor`] over every memtable
//!   and table yields every version of every key, newest first; the snapshot cursor skips
//!   versions newer than the snapshot, keeps the newest remaining version of each key, and
//!   hides the key when that version is a tombstone (LevelDB's `DBIter`).
//!
//! ## The snapshot cursor, both ways
//!
//! Going **forward**, the merging cursor sits at the current key's newest visible version,
//! and `key` and `value` borrow it there. `next` remembers the key and steps past every
//! older version of it (and past keys whose newest visible version is a tombstone).
//!
//! Going **backward**, versions of one key come oldest first, so the newest visible version
//! of a key is the last one met before the key changes: `prev` walks back over the whole
//! key, copying each visible version into the cursor's own buffers (a tombstone clears
//! them), and stops once it has stepped onto a smaller key. The merging cursor then sits
//! just before the current key's versions, and `key` and `value` borrow the copies.
//!
//! Turning around re-positions the merging cursor to what the new direction expects: a
//! `prev` after a `next` first steps back before the current key's versions; a `next`
//! after a `prev` steps forward into them, then past them.

use std::sync::Arc;

use kv_shared::{Cursor, Result};

use crate::counters::Counters;
use crate::cursor::level::version_cursors;
use crate::cursor::merging::MergingCursor;
use crate::cursor::{EntryCursor, Source};
use crate::key::{Lookup, LookupKey, compare_user_keys};
use crate::memtable::Memtable;
use crate::seek_compaction::{CURSOR_SAMPLE_BYTES, SeekAlarm};
use crate::version::Version;

/// The memtables and tables a reader looks in, shared by every reader until one of them
/// changes.
#[derive(Debug)]
pub struct ReadView {
    /// The active memtable, then the immutable ones, newest first.
    pub mems: Vec<Arc<Memtable>>,
    /// The tables.
    pub version: Arc<Version>,
    /// Rung when a read spends a table's last allowed seek; `None` without seek compaction.
    pub seek_alarm: Option<Arc<SeekAlarm>>,
}

impl ReadView {
    /// The view of the active memtable `mem`, the immutable ones `imm` (oldest first, as
    /// they wait for their flush) and `version`; reads charge seeks and ring `seek_alarm`
    /// when one is given.
    pub fn new(
        mem: &Arc<Memtable>,
        imm: &[Arc<Memtable>],
        version: &Arc<Version>,
        seek_alarm: Option<&Arc<SeekAlarm>>,
    ) -> ReadView {
        let mut mems = Vec::with_capacity(1 + imm.len());
        mems.push(mem.clone());
        mems.extend(imm.iter().rev().cloned());
        ReadView {
            mems,
            version: version.clone(),
            seek_alarm: seek_alarm.cloned(),
        }
    }

    /// Charges a read of `key` to the tables ([`Version::charge_read`]), ringing the alarm
    /// when that spent a table's last allowed seek. Nothing without seek compaction.
    pub fn charge_read(&self, key: &[u8]) {
        if let Some(alarm) = &self.seek_alarm
            && self.version.charge_read(key)
        {
            alarm.ring();
        }
    }

    /// True when this view still shows `mem`, `imm` and `version`.
    pub fn shows(
        &self,
        mem: &Arc<Memtable>,
        imm: &[Arc<Memtable>],
        version: &Arc<Version>,
    ) -> bool {
        Arc::ptr_eq(&self.version, version)
            && self.mems.len() == 1 + imm.len()
            && Arc::ptr_eq(&self.mems[0], mem)
            && self.mems[1..]
                .iter()
                .zip(imm.iter().rev())
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

/// A consistent view for one read: a sequence number and what to look in.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The last sequence number the reader sees.
    pub seq: u64,
    /// The memtables and tables.
    pub view: Arc<ReadView>,
}

impl Snapshot {
    /// The value of `key`, or `None` when it is absent or deleted, as of this snapshot.
    ///
    /// # Errors
    /// [`kv_shared::Error::Corruption`], [`kv_shared::Error::Io`].
    pub fn get(&self, key: &[u8], counters: &Counters) -> Result<Option<Vec<u8>>> {
        // One hash for every memtable's and table's filter.
        let lookup = LookupKey::new(key, self.seq);
        let mut in_memory = self.view.mems.iter().map(|mem| mem.get(&lookup));
        let found = match in_memory.find(|l| *l != Lookup::Absent) {
            Some(found) => found,
            None => {
                self.view.charge_read(key);
                self.view.version.get(&lookup, counters)?
            }
        };
        Ok(match found {
            Lookup::Found(value) => Some(value),
            Lookup::Deleted | Lookup::Absent => None,
        })
    }

    /// A cursor over the live keys as of this snapshot, not yet positioned. Blocks it reads
    /// go into the block cache.
    pub fn cursor(&self) -> SnapshotCursor {
        let mut children: Vec<Source> = self
            .view
            .mems
            .iter()
            .map(|m| Source::Memtable(m.cursor()))
            .collect();
        children.extend(version_cursors(&self.view.version, true));
        SnapshotCursor {
            view: self.view.clone(),
            unsampled: 0,
            inner: MergingCursor::new(children),
            snapshot: self.seq,
            forward: true,
            valid: false,
            key: Vec::new(),
            value: Vec::new(),
        }
    }
}

/// The live keys of a snapshot, as a [`Cursor`] (see the module documentation).
pub struct SnapshotCursor {
    /// Keeps the memtables and tables the cursor reads (and their files) alive; charged for
    /// the cursor's reads.
    view: Arc<ReadView>,
    /// Bytes of keys and values returned since the last read sample.
    unsampled: u64,
    inner: MergingCursor,
    snapshot: u64,
    /// Forward: `inner` is at the current key's newest visible version. Backward: `inner`
    /// is just before the current key's versions, and `key` and `value` hold the newest.
    forward: bool,
    valid: bool,
    /// Backward, the current key; forward, while moving, the key to skip past.
    key: Vec<u8>,
    /// Backward, the current value.
    value: Vec<u8>,
}

impl SnapshotCursor {
    /// Forward from where `inner` is: stops at the first put visible in the snapshot, of a
    /// key after `self.key` when `skipping`, hiding keys whose newest visible version is a
    /// tombstone.
    fn find_next_visible(&mut self, mut skipping: bool) -> Result<()> {
        while self.inner.valid() {
            let e = self.inner.entry();
            if e.seq <= self.snapshot {
                if e.value.is_none() {
                    // A tombstone: every older version of its key is hidden.
                    self.key.clear();
                    self.key.extend_from_slice(e.key);
                    skipping = true;
                } else if !(skipping && compare_user_keys(e.key, &self.key).is_le()) {
                    self.valid = true;
                    return Ok(());
                }
            }
            self.inner.next()?;
        }
        self.valid = false;
        Ok(())
    }

    /// Backward from where `inner` is: finds the newest visible version of the key before,
    /// copying it into `key` and `value`, and leaves `inner` just before that key's versions.
    fn find_prev_visible(&mut self) -> Result<()> {
        let mut found = false;
        while self.inner.valid() {
            let e = self.inner.entry();
            if e.seq <= self.snapshot {
                if found && e.key < self.key.as_slice() {
                    // Stepped onto a smaller key: the newest version of `key` was the last.
                    break;
                }
                self.key.clear();
                self.value.clear();
                self.key.extend_from_slice(e.key);
                match e.value {
                    Some(value) => self.value.extend_from_slice(value),
                    // A tombstone: the key is hidden, unless a newer visible put follows.
                    None => self.key.clear(),
                }
                found = e.value.is_some();
            }
            self.inner.prev()?;
        }
        self.valid = found;
        Ok(())
    }

    /// Forward after a `prev`: `inner` goes from before the current key's versions to the
    /// first of them; `key` already holds the key to skip past.
    fn turn_forward(&mut self) -> Result<()> {
        self.forward = true;
        if self.inner.valid() {
            self.inner.next()
        } else {
            self.inner.seek_to_first()
        }
    }

    /// Backward after a `next`: `inner` goes from the current version back to the last entry
    /// of a smaller key.
    fn turn_backward(&mut self) -> Result<()> {
        self.forward = false;
        self.key.clear();
        self.key.extend_from_slice(self.inner.entry().key);
        loop {
            self.inner.prev()?;
            if !self.inner.valid() || self.inner.entry().key < self.key.as_slice() {
                return Ok(());
            }
        }
    }

    /// Places `inner` with `seek` (given the snapshot), then finds the first visible key
    /// from there, `forward` or backward.
    fn place(
        &mut self,
        forward: bool,
        seek: impl FnOnce(&mut MergingCursor, u64) -> Result<()>,
    ) -> Result<()> {
        self.checked(|c| {
            c.forward = forward;
            seek(&mut c.inner, c.snapshot)?;
            if forward {
                c.find_next_visible(false)
            } else {
                c.find_prev_visible()
            }
        })
    }

    /// Runs a move, leaving the cursor not valid if it fails.
    fn checked(&mut self, moved: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let result = moved(self);
        if result.is_err() {
            self.valid = false;
        }
        result
    }

    /// Counts the current pair's bytes, and charges a read of its key once every
    /// [`CURSOR_SAMPLE_BYTES`] (LevelDB's read sampling).
    fn sample(&mut self) {
        if !self.valid {
            return;
        }
        self.unsampled += (self.key().len() + self.value().len()) as u64;
        if self.unsampled >= CURSOR_SAMPLE_BYTES {
            self.unsampled = 0;
            self.view.charge_read(self.key());
        }
    }
}

impl Cursor for SnapshotCursor {
    fn valid(&self) -> bool {
        self.valid
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.place(true, |inner, _| inner.seek_to_first())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.place(false, |inner, _| inner.seek_to_last())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        // Positioning in every table that holds `target` is a read through them all.
        self.view.charge_read(target);
        // The newest version of `target` the snapshot may see, or a later key.
        self.place(true, |inner, snapshot| inner.seek(target, snapshot))
    }

    fn next(&mut self) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        self.checked(|c| {
            if c.forward {
                c.key.clear();
                c.key.extend_from_slice(c.inner.entry().key);
                c.inner.next()?;
            } else {
                c.turn_forward()?;
            }
            c.find_next_visible(true)
        })?;
        self.sample();
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        self.checked(|c| {
            if c.forward {
                c.turn_backward()?;
            }
            c.find_prev_visible()
        })?;
        self.sample();
        Ok(())
    }

    fn key(&self) -> &[u8] {
        if self.forward {
            self.inner.entry().key
        } else {
            &self.key
        }
    }

    fn value(&self) -> &[u8] {
        if self.forward {
            self.inner.entry().value.unwrap_or_default()
        } else {
            &self.value
        }
    }
}
