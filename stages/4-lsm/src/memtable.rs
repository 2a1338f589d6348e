//! The memtable: recent writes, sorted in memory, readable while they are being written.
//!
//! A [`crossbeam_skiplist::SkipMap`] keyed by [`InternalKey`] (user key ascending, sequence
//! number descending) holds every version written since the memtable was created: a put of
//! an existing key adds a new version beside the old one rather than replacing it, so a
//! reader holding an older snapshot still finds what it should see, and nothing is ever
//! modified in place. The skiplist is lock-free: `get`s and scans never wait for the writer.
//!
//! The engine keeps one *active* memtable for new writes. When it holds about
//! `memtable_bytes`, it becomes *immutable* (nothing is added to it any more), a fresh one
//! takes its place, and a background thread flushes the immutable one to an L0 table.
//!
//! A memtable remembers the number of the WAL file that holds its writes, so that file can
//! be deleted once the flush is recorded in the manifest.
//!
//! ## Looking a key up without allocating
//!
//! The skiplist seeks with a probe of its own key type, an [`InternalKey`], which owns its
//! user key: a new probe per `get` would allocate a `Vec` for a copy of the key. Each thread
//! keeps one probe instead, and `get` copies the key into its buffer, which stops growing
//! once it has held the longest key looked up.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crossbeam_skiplist::SkipMap;

use crate::bloom::hash;
use crate::key::{Entry, EntryIter, InternalKey};
use crate::memtable_filter::MemtableFilter;

/// Bookkeeping bytes counted per entry on top of its key and value (skiplist node, lengths).
const ENTRY_OVERHEAD: usize = 48;
/// Entries copied out of the skiplist per refill of a [`MemtableIter`].
const BATCH: usize = 64;

thread_local! {
    /// The internal key [`Memtable::get`] seeks with, one per thread (see the module
    /// documentation).
    static PROBE: RefCell<InternalKey> = const {
        RefCell::new(InternalKey {
            user_key: Vec::new(),
            seq: 0,
        })
    };
}

/// Sorted, versioned, in-memory writes.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<InternalKey, Option<Vec<u8>>>,
    /// Every key inserted, so that a `get` of a key not here skips the skiplist.
    filter: MemtableFilter,
    bytes: AtomicUsize,
    wal_number: u64,
}

/// What a memtable knows about a key at a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The newest visible version is this value.
    Found(Vec<u8>),
    /// The newest visible version is a tombstone: the key is deleted (look no further).
    Deleted,
    /// No visible version here: look in older places.
    Absent,
}

impl Memtable {
    /// An empty memtable whose writes go to WAL file `wal_number`, with a filter sized for
    /// `memtable_bytes` of entries (the size at which it will be frozen).
    pub fn new(wal_number: u64, memtable_bytes: usize) -> Memtable {
        Memtable {
            map: SkipMap::new(),
            // At least ENTRY_OVERHEAD + 16 bytes of key and value per entry.
            filter: MemtableFilter::new(memtable_bytes / (ENTRY_OVERHEAD + 16)),
            bytes: AtomicUsize::new(0),
            wal_number,
        }
    }

    /// The number of the WAL file that holds this memtable's writes.
    pub fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// Adds a version of `key` (`None` is a tombstone).
    pub fn insert(&self, key: &[u8], seq: u64, value: Option<&[u8]>) {
        let size = key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD;
        // The filter first: a reader that can see this version must find its bits.
        self.filter.insert(hash(key));
        self.map.insert(
            InternalKey {
                user_key: key.to_vec(),
                seq,
            },
            value.map(<[u8]>::to_vec),
        );
        self.bytes.fetch_add(size, Relaxed);
    }

    /// The newest version of `key` (whose [`crate::bloom::hash`] is `key_hash`, computed once
    /// by the caller for every memtable and table it asks) with a sequence number at most
    /// `snapshot`. Allocates nothing but a found value.
    pub fn get(&self, key: &[u8], key_hash: u64, snapshot: u64) -> Lookup {
        if !self.filter.may_contain(key_hash) {
            return Lookup::Absent;
        }
        PROBE.with_borrow_mut(|probe| {
            probe.user_key.clear();
            probe.user_key.extend_from_slice(key);
            probe.seq = snapshot;
            match self.map.lower_bound(Bound::Included(&*probe)) {
                Some(entry) if entry.key().user_key == key => match entry.value() {
                    Some(value) => Lookup::Found(value.clone()),
                    None => Lookup::Deleted,
                },
                _ => Lookup::Absent,
            }
        })
    }

    /// Approximate memory held: keys, values and a fixed overhead per entry.
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Relaxed)
    }

    /// Number of versions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every version of every key from `start` on (a user-key bound), in internal-key
    /// order. The iterator holds the memtable alive and copies entries out in small batches,
    /// so it never blocks the writer.
    pub fn iter(self: &Arc<Self>, start: Bound<&[u8]>) -> EntryIter<'static> {
        let next_from = match start {
            Bound::Included(k) => Bound::Included(InternalKey {
                user_key: k.to_vec(),
                seq: u64::MAX,
            }),
            // (k, 0) is the last version of k: strictly after it is the next user key.
            Bound::Excluded(k) => Bound::Excluded(InternalKey {
                user_key: k.to_vec(),
                seq: 0,
            }),
            Bound::Unbounded => Bound::Unbounded,
        };
        Box::new(MemtableIter {
            table: self.clone(),
            next_from,
            buffer: VecDeque::new(),
            done: false,
        })
    }
}

impl Memtable {
    /// Calls `f` with every version of every key, in internal-key order, borrowing each
    /// from the skiplist instead of copying it: the flush's way to read a memtable that no
    /// longer changes. (A scan uses [`Memtable::iter`], which copies small batches out, so
    /// that it owns what it returns.)
    ///
    /// # Errors
    /// The first error `f` returns, which ends the walk.
    pub fn for_each<E>(
        &self,
        mut f: impl FnMut(&[u8], u64, Option<&[u8]>) -> Result<(), E>,
    ) -> Result<(), E> {
        for entry in self.map.iter() {
            f(
                &entry.key().user_key,
                entry.key().seq,
                entry.value().as_deref(),
            )?;
        }
        Ok(())
    }
}

/// A streaming iterator over a memtable (see [`Memtable::iter`]).
struct MemtableIter {
    table: Arc<Memtable>,
    next_from: Bound<InternalKey>,
    buffer: VecDeque<Entry>,
    done: bool,
}

impl MemtableIter {
    fn refill(&mut self) {
        let mut cursor = self.table.map.lower_bound(self.next_from.as_ref());
        while let Some(entry) = cursor {
            if self.buffer.len() == BATCH {
                break;
            }
            self.buffer.push_back(Entry {
                key: entry.key().user_key.clone(),
                seq: entry.key().seq,
                value: entry.value().clone(),
            });
            cursor = entry.next();
        }
        match self.buffer.back() {
            Some(last) => {
                self.next_from = Bound::Excluded(InternalKey {
                    user_key: last.key.clone(),
                    seq: last.seq,
                })
            }
            None => self.done = true,
        }
    }
}

impl Iterator for MemtableIter {
    type Item = kv_shared::Result<Entry>;

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
    fn versions_and_snapshots() {
        let m = Arc::new(Memtable::new(1, 1 << 20));
        m.insert(b"a", 1, Some(b"one"));
        m.insert(b"a", 3, None);
        m.insert(b"a", 5, Some(b"five"));
        m.insert(b"b", 2, Some(b"two"));
        assert_eq!(m.get(b"a", hash(b"a"), 0), Lookup::Absent);
        assert_eq!(m.get(b"a", hash(b"a"), 2), Lookup::Found(b"one".to_vec()));
        assert_eq!(m.get(b"a", hash(b"a"), 4), Lookup::Deleted);
        assert_eq!(m.get(b"a", hash(b"a"), 9), Lookup::Found(b"five".to_vec()));
        assert_eq!(m.get(b"ab", hash(b"ab"), 9), Lookup::Absent);
        let all: Vec<(Vec<u8>, u64)> = m
            .iter(Bound::Unbounded)
            .map(|e| e.map(|e| (e.key, e.seq)).unwrap())
            .collect();
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), 5),
                (b"a".to_vec(), 3),
                (b"a".to_vec(), 1),
                (b"b".to_vec(), 2)
            ]
        );
        assert_eq!(m.iter(Bound::Excluded(b"a")).count(), 1);
        assert_eq!(m.iter(Bound::Included(b"a")).count(), 4);
        // Many entries cross several refills.
        let big = Arc::new(Memtable::new(2, 1 << 20));
        for i in 0..1000u32 {
            big.insert(format!("{i:05}").as_bytes(), u64::from(i), Some(b"v"));
        }
        assert_eq!(big.iter(Bound::Included(b"00500")).count(), 500);
    }
}
