//! Snapshots for sled, which has none: an undo log per snapshot.
//!
//! sled's range iterators read its tree as it is at each step: a write made while a scan
//! runs shows up in it if it lands ahead of the scan, and a batch can show up half. The
//! course's cursors are snapshots, so the adapter builds them the way InnoDB builds the old
//! row versions its consistent reads need: from an undo log.
//!
//! * **Taking a snapshot** registers an empty [`UndoLog`] ([`Snapshots::take`]).
//! * **A writer**, before it changes any key, reads the value each of its keys has now and
//!   records it in every live snapshot's log that has no entry for the key yet
//!   ([`Snapshots::write`]): the first entry for a key is the value it had when the snapshot
//!   was taken (`None` when it did not exist).
//! * **A reader** walks the tree as it is and the log together ([`SnapshotWalk`]): a key in
//!   the log reads as its logged value (and is skipped when that is `None`), any other key as
//!   the tree has it. Logged keys the tree no longer holds (deleted since) come from the log.
//!
//! Three orderings make this exact. Writers hold the registry shared while they log and
//! write, and a snapshot is taken holding it exclusively, so no write is half done when a
//! snapshot begins, and every write after it sees its log. A writer logs before it writes,
//! so a key cannot change in the tree before the log holds its old value. And a reader looks
//! in the log only *after* reading the tree: if the tree showed it a changed key, the log
//! already held that key.
//!
//! The cost falls on writes while snapshots live (a `get` per key written, and an entry per
//! live snapshot); with none alive, a write takes the registry's lock shared and goes on.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use kv_shared::{Direction, Result};
use sled::IVec;

use super::range_cursor::{Bounds, Walk, earlier_end, holds_nothing, later_start};

/// The live snapshots of one sled tree, whose undo logs its writers keep.
#[derive(Debug, Default)]
pub struct Snapshots {
    live: RwLock<Vec<Weak<UndoLog>>>,
}

impl Snapshots {
    /// Runs `write`, which changes `keys` of `tree`, after logging the value each key has
    /// now in every live snapshot's log (where the log has no entry for it yet).
    ///
    /// # Errors
    /// sled's error reading a key, or `write`'s.
    pub fn write<'k>(
        &self,
        tree: &sled::Tree,
        keys: impl IntoIterator<Item = &'k [u8]>,
        write: impl FnOnce() -> sled::Result<()>,
    ) -> sled::Result<()> {
        let live = self.live.read().unwrap_or_else(PoisonError::into_inner);
        let logs: Vec<Arc<UndoLog>> = live.iter().filter_map(Weak::upgrade).collect();
        if !logs.is_empty() {
            for key in keys {
                let now = tree.get(key)?;
                for log in &logs {
                    log.keep(key, &now);
                }
            }
        }
        write()
    }

    /// Takes a snapshot: an empty undo log that every later write keeps, until the last
    /// handle to it is dropped.
    pub fn take(&self) -> Arc<UndoLog> {
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        live.retain(|log| log.strong_count() > 0);
        let log = Arc::new(UndoLog::default());
        live.push(Arc::downgrade(&log));
        log
    }
}

/// One snapshot's undo log: for each key written since the snapshot was taken, the value
/// it had then (`None`: it did not exist).
#[derive(Debug, Default)]
pub struct UndoLog {
    old: Mutex<BTreeMap<IVec, Option<IVec>>>,
}

impl UndoLog {
    /// Logs `value` as `key`'s old value, unless the log has one for it already.
    fn keep(&self, key: &[u8], value: &Option<IVec>) {
        let mut old = self.old.lock().unwrap_or_else(PoisonError::into_inner);
        if !old.contains_key(key) {
            old.insert(IVec::from(key), value.clone());
        }
    }

    /// The first logged key of `start..end` beyond `last` in `direction` (from the range's
    /// own end when `last` is `None`), with its old value.
    fn first_beyond(
        &self,
        (start, end): Bounds<'_>,
        last: Option<&[u8]>,
        direction: Direction,
    ) -> Option<(IVec, Option<IVec>)> {
        let old = self.old.lock().unwrap_or_else(PoisonError::into_inner);
        if old.is_empty() {
            return None;
        }
        let (start, end) = match (last, direction) {
            (None, _) => (start, end),
            (Some(last), Direction::Forward) => (later_start(start, Bound::Excluded(last)), end),
            (Some(last), Direction::Reverse) => (start, earlier_end(end, Bound::Excluded(last))),
        };
        if holds_nothing(start, end) {
            return None;
        }
        let mut logged = old.range::<[u8], _>((start, end));
        let first = match direction {
            Direction::Forward => logged.next(),
            Direction::Reverse => logged.next_back(),
        };
        first.map(|(key, value)| (key.clone(), value.clone()))
    }
}

/// One walk of a snapshot: the tree's pairs of a range in one direction, corrected by the
/// snapshot's undo log (see the module documentation).
pub struct SnapshotWalk {
    /// sled's walk of the range, as the tree is.
    live: Walk<IVec, IVec>,
    log: Arc<UndoLog>,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    direction: Direction,
    /// The last key handed out: the log is searched beyond it.
    last: Option<IVec>,
    /// A pair read from the tree and not handed out yet.
    pending: Option<(IVec, IVec)>,
}

impl SnapshotWalk {
    /// A walk of `start..end` in `direction`: `live` is sled's walk of that range, `log`
    /// the snapshot's undo log.
    pub fn new(
        live: Walk<IVec, IVec>,
        log: Arc<UndoLog>,
        (start, end): Bounds<'_>,
        direction: Direction,
    ) -> Self {
        SnapshotWalk {
            live,
            log,
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
            direction,
            last: None,
            pending: None,
        }
    }

    /// True when key `a` comes before key `b` in the walk's direction.
    fn before(&self, a: &[u8], b: &[u8]) -> bool {
        match self.direction {
            Direction::Forward => a < b,
            Direction::Reverse => a > b,
        }
    }

    /// True when `key` lies beyond the last key handed out (or skipped), in the walk's
    /// direction. sled's iterator, reading a tree that changes under it, can yield a key
    /// it has yielded already (it caches a node and reads the next one fresh): such a key
    /// is passed over.
    fn beyond_last(&self, key: &[u8]) -> bool {
        self.last
            .as_deref()
            .is_none_or(|last| self.before(last, key))
    }

    /// Hands out `key` and `value`, remembering `key` as the last one.
    fn hand_out(&mut self, key: IVec, value: IVec) -> Option<Result<(IVec, IVec)>> {
        self.last = Some(key.clone());
        Some(Ok((key, value)))
    }
}

impl Iterator for SnapshotWalk {
    type Item = Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pending.is_none() {
                match self.live.next() {
                    Some(Ok((key, _))) if !self.beyond_last(&key) => continue,
                    Some(Ok(pair)) => self.pending = Some(pair),
                    Some(Err(e)) => return Some(Err(e)),
                    None => {}
                }
            }
            // Only now, after the tree was read, is the log searched (see the module doc).
            let bounds = (
                self.start.as_ref().map(Vec::as_slice),
                self.end.as_ref().map(Vec::as_slice),
            );
            let logged = self
                .log
                .first_beyond(bounds, self.last.as_deref(), self.direction);
            let Some((key, old)) = logged else {
                let (key, value) = self.pending.take()?;
                return self.hand_out(key, value);
            };
            if let Some((live, _)) = &self.pending {
                if self.before(live, &key) {
                    let (key, value) = self.pending.take()?;
                    return self.hand_out(key, value);
                }
                if *live == key {
                    // The log's value is the snapshot's.
                    self.pending = None;
                }
            }
            self.last = Some(key.clone());
            if let Some(value) = old {
                return Some(Ok((key, value)));
            }
            // The key did not exist when the snapshot was taken: on to the next one.
        }
    }
}
