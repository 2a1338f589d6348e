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
//! recovery knows which WALs a table has made redundant (see [`crate::store`]).
//!
//! Readers iterate it in chunks ([`MemIter`]): each chunk is copied out under the read lock,
//! so a long scan never holds the lock while its caller works, and writers are not blocked.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use kv_shared::{KeyRange, Result};

use crate::entry::Entry;

/// Entries a [`MemIter`] copies out per lock (the 128 its documentation names).
const CHUNK: usize = 128;

/// A sorted map of key to [`Entry`], shared between the writer and readers.
#[derive(Debug)]
pub struct Memtable {
    map: RwLock<BTreeMap<Vec<u8>, Entry>>,
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

    /// Sets `key` to `entry`, replacing any older entry.
    pub fn insert(&self, key: Vec<u8>, entry: Entry) {
        let added = (key.len() + entry.value_len()) as u64;
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let key_len = key.len() as u64;
        match map.insert(key, entry) {
            Some(old) => {
                let removed = key_len + old.value_len() as u64;
                // Only this method changes `bytes`, under the write lock.
                self.bytes.fetch_add(added, Relaxed);
                self.bytes.fetch_sub(removed, Relaxed);
            }
            None => {
                self.bytes.fetch_add(added, Relaxed);
            }
        }
    }

    /// The entry for `key`, if the memtable has one.
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Key plus value bytes held (a tombstone counts its key).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Number of entries, tombstones included.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when the memtable holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries in `range`, in key order, tombstones included.
    pub fn iter(self: &Arc<Self>, range: &KeyRange) -> MemIter {
        MemIter {
            mem: self.clone(),
            next_start: range.start.clone(),
            end: range.end.clone(),
            buffer: VecDeque::new(),
            done: false,
        }
    }
}

/// A lazy iterator over a memtable's entries, copied out 128 at a time.
///
/// Each chunk starts just after the last key of the previous one, so entries inserted
/// behind the iterator are not seen and entries ahead of it may be: a scan sees every key
/// once, each at a version at least as new as when the scan began.
#[derive(Debug)]
pub struct MemIter {
    mem: Arc<Memtable>,
    next_start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    buffer: VecDeque<(Vec<u8>, Entry)>,
    done: bool,
}

impl MemIter {
    fn refill(&mut self) {
        let range = KeyRange::new(self.next_start.clone(), self.end.clone());
        if range.is_empty() {
            self.done = true;
            return;
        }
        let map = self.mem.map.read().unwrap_or_else(|e| e.into_inner());
        self.buffer.extend(
            map.range::<[u8], _>(range)
                .take(CHUNK)
                .map(|(k, e)| (k.clone(), e.clone())),
        );
        drop(map);
        match self.buffer.back() {
            Some((last, _)) if self.buffer.len() == CHUNK => {
                self.next_start = Bound::Excluded(last.clone());
            }
            _ => self.done = true,
        }
    }
}

impl Iterator for MemIter {
    type Item = Result<(Vec<u8>, Entry)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            self.refill();
        }
        self.buffer.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_iterates_in_chunks() {
        let mem = Arc::new(Memtable::new(7));
        mem.insert(b"a".to_vec(), Entry::Value(b"123".to_vec()));
        assert_eq!(mem.bytes(), 4);
        mem.insert(b"a".to_vec(), Entry::Value(b"1".to_vec()));
        assert_eq!(mem.bytes(), 2);
        mem.insert(b"a".to_vec(), Entry::Tombstone);
        assert_eq!(mem.bytes(), 1);
        assert_eq!(mem.get(b"a"), Some(Entry::Tombstone));
        for i in 0..1000u32 {
            mem.insert(format!("k{i:04}").into_bytes(), Entry::Value(vec![1]));
        }
        let keys: Vec<Vec<u8>> = mem
            .iter(&KeyRange::half_open(b"k0100".to_vec(), b"k0900".to_vec()))
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(keys.len(), 800);
        assert_eq!(keys[0], b"k0100");
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(mem.iter(&KeyRange::all()).count(), 1001);
        assert_eq!(mem.first_wal(), 7);
    }
}
