//! The memtable: the newest writes, sorted by key, in memory.
//!
//! Every write lands here (after the WAL). Keeping it sorted is what makes a flush cheap:
//! writing it out as a table is one pass in key order. A `BTreeMap` is plenty for this
//! stage; stage 4 swaps in a skiplist so writers and readers do not share one lock.
//!
//! The memtable counts the key and value bytes it holds ([`Memtable::bytes`], a tombstone
//! counts its key); when that passes the `memtable_bytes` option the store freezes it and
//! writes it out. It also remembers the number of the first WAL whose records it holds
//! ([`Memtable::first_wal`]); the table it becomes records that number, which is how
//! recovery knows which WALs a table has made redundant (see [`crate::recovery`]).
//!
//! ## Snapshots: copy on write
//!
//! The map sits behind an `Arc`. A cursor takes a snapshot by cloning the `Arc`, which
//! costs nothing; a write changes the map through `Arc::make_mut`, which copies the map
//! first if a snapshot still shares it. So the first write after a cursor was made pays
//! for one copy of the memtable, and every other write pays nothing extra. (Stage 4's
//! memtable keeps a sequence number with every entry, which lets a snapshot be a number
//! rather than a copy.)
//!
//! [`Memtable::apply`] applies a whole write batch under one hold of the lock: a reader,
//! a `get` or a new snapshot, sees all of a batch or none of it.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use kv_shared::Result;
use kv_shared::batch::BatchOp;

use crate::cursor::EntryCursor;
use crate::entry::Entry;
use crate::unpoisoned;

/// The sorted map a memtable holds, shared with the snapshots taken of it.
pub type MemMap = BTreeMap<Vec<u8>, Entry>;

/// A sorted map of key to [`Entry`], shared between the writer and readers.
#[derive(Debug)]
pub struct Memtable {
    map: RwLock<Arc<MemMap>>,
    bytes: AtomicU64,
    first_wal: u64,
}

impl Memtable {
    /// An empty memtable whose data starts with WAL number `first_wal`.
    pub fn new(first_wal: u64) -> Self {
        Memtable {
            map: RwLock::default(),
            bytes: AtomicU64::new(0),
            first_wal,
        }
    }

    /// Number of the first WAL whose records this memtable holds.
    pub fn first_wal(&self) -> u64 {
        self.first_wal
    }

    /// Sets `key` to `value` (`None` is a tombstone), replacing any older entry.
    pub fn insert(&self, key: &[u8], value: Option<&[u8]>) {
        self.apply([BatchOp { key, value }]);
    }

    // Exercise 3.1: apply writes to the memtable. Read: chapter 3, "Design".
    // Tests: lib::memtable::tests::counts_bytes_and_applies_batches_whole
    // Tests: conformance::conformance::put_get_overwrite
    /// Applies every op, in order (a later op on a key wins), under one hold of the lock,
    /// so that readers see all of them or none.
    pub fn apply<'a>(&self, ops: impl IntoIterator<Item = BatchOp<'a>>) {
        let mut guard = unpoisoned(self.map.write());
        let map = Arc::make_mut(&mut guard);
        for op in ops {
            let entry = op
                .value
                .map_or(Entry::Tombstone, |v| Entry::Value(v.to_vec()));
            let added = (op.key.len() + entry.value_len()) as u64;
            // Only this method changes `bytes`, under the write lock.
            self.bytes.fetch_add(added, Relaxed);
            if let Some(old) = map.insert(op.key.to_vec(), entry) {
                let removed = (op.key.len() + old.value_len()) as u64;
                self.bytes.fetch_sub(removed, Relaxed);
            }
        }
    }

    /// The entry for `key`, if the memtable has one.
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        unpoisoned(self.map.read()).get(key).cloned()
    }

    /// Key plus value bytes held (a tombstone counts its key).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Number of entries, tombstones included.
    pub fn len(&self) -> usize {
        unpoisoned(self.map.read()).len()
    }

    /// True when the memtable holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map as it is now; later writes do not change it (see the module documentation).
    pub fn snapshot(&self) -> Arc<MemMap> {
        unpoisoned(self.map.read()).clone()
    }

    /// A cursor over the memtable as it is now, tombstones included, not yet positioned.
    pub fn cursor(&self) -> MemCursor {
        MemCursor::new(self.snapshot())
    }
}

/// A cursor over a snapshot of a memtable. Each move is one lookup in the map, below or
/// above the current key, whose entry is copied into the cursor's buffers.
#[derive(Debug)]
pub struct MemCursor {
    map: Arc<MemMap>,
    at: Current,
}

/// The entry a [`MemCursor`] is at, copied out of the map into buffers that are reused.
#[derive(Debug, Default)]
struct Current {
    valid: bool,
    key: Vec<u8>,
    value: Vec<u8>,
    tombstone: bool,
}

impl Current {
    /// Moves to `found`, or to nowhere.
    fn set(&mut self, found: Option<(&Vec<u8>, &Entry)>) {
        self.valid = found.is_some();
        if let Some((key, entry)) = found {
            self.key.clear();
            self.key.extend_from_slice(key);
            self.value.clear();
            self.value
                .extend_from_slice(entry.value().unwrap_or_default());
            self.tombstone = *entry == Entry::Tombstone;
        }
    }
}

impl MemCursor {
    /// A cursor over `map`, not yet positioned.
    pub fn new(map: Arc<MemMap>) -> MemCursor {
        MemCursor {
            map,
            at: Current::default(),
        }
    }
}

impl EntryCursor for MemCursor {
    fn valid(&self) -> bool {
        self.at.valid
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.at.set(self.map.iter().next());
        Ok(())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.at.set(self.map.iter().next_back());
        Ok(())
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let found = self
            .map
            .range::<[u8], _>((Included(target), Unbounded))
            .next();
        self.at.set(found);
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        if self.at.valid {
            let after = (Excluded(self.at.key.as_slice()), Unbounded);
            let found = self.map.range::<[u8], _>(after).next();
            self.at.set(found);
        }
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        if self.at.valid {
            let before = (Unbounded, Excluded(self.at.key.as_slice()));
            let found = self.map.range::<[u8], _>(before).next_back();
            self.at.set(found);
        }
        Ok(())
    }
    fn key(&self) -> &[u8] {
        assert!(self.at.valid, "key() of a cursor that is not valid");
        &self.at.key
    }
    fn value(&self) -> Option<&[u8]> {
        assert!(self.at.valid, "value() of a cursor that is not valid");
        (!self.at.tombstone).then_some(self.at.value.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &[u8]) -> Entry {
        Entry::Value(v.to_vec())
    }

    const TOMBSTONE: Option<&[u8]> = None;

    #[test]
    fn counts_bytes_and_applies_batches_whole() {
        let mem = Memtable::new(7);
        mem.insert(b"a", Some(b"123"));
        assert_eq!(mem.bytes(), 4);
        mem.insert(b"a", Some(b"1"));
        assert_eq!(mem.bytes(), 2);
        mem.insert(b"a", TOMBSTONE);
        assert_eq!(mem.bytes(), 1);
        assert_eq!(mem.get(b"a"), Some(Entry::Tombstone));
        let ops = [
            BatchOp {
                key: b"b",
                value: Some(b"22"),
            },
            BatchOp {
                key: b"a",
                value: Some(b"x"),
            },
            BatchOp {
                key: b"b",
                value: None,
            },
        ];
        mem.apply(ops);
        assert_eq!(mem.get(b"a"), Some(value(b"x")));
        assert_eq!(mem.get(b"b"), Some(Entry::Tombstone), "the later op wins");
        assert_eq!((mem.len(), mem.bytes()), (2, 3));
        assert_eq!(mem.first_wal(), 7);
    }

    #[test]
    fn a_cursor_is_a_snapshot_that_walks_both_ways() {
        let mem = Memtable::new(1);
        for k in [b"b", b"d", b"f"] {
            mem.insert(k, Some(k));
        }
        mem.insert(b"d", TOMBSTONE);
        let mut c = mem.cursor();
        mem.insert(b"c", Some(b"late"));
        mem.insert(b"b", TOMBSTONE);
        assert!(!c.valid());
        c.seek_to_first().unwrap();
        let mut seen = Vec::new();
        while c.valid() {
            seen.push((c.key().to_vec(), c.value().map(<[u8]>::to_vec)));
            c.next().unwrap();
        }
        let want = vec![
            (b"b".to_vec(), Some(b"b".to_vec())),
            (b"d".to_vec(), None),
            (b"f".to_vec(), Some(b"f".to_vec())),
        ];
        assert_eq!(seen, want, "writes after the cursor was made are not seen");
        c.seek_to_last().unwrap();
        c.prev().unwrap();
        assert_eq!(c.key(), b"d");
        c.seek(b"c").unwrap();
        assert_eq!(c.key(), b"d");
        c.seek(b"g").unwrap();
        assert!(!c.valid());
        c.prev().unwrap();
        assert!(
            !c.valid(),
            "prev on a cursor that is not valid does nothing"
        );
        assert_eq!(mem.get(b"c"), Some(value(b"late")));
    }
}
