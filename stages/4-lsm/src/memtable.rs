//! The memtable: recent writes, sorted in memory, readable while they are being written.
//!
//! A [`SkipList`] ordered by internal key (user key ascending, sequence number descending,
//! [`crate::key`]) holds every version written since the memtable was created: a put of an
//! existing key adds a new version beside the old one rather than replacing it, so a
//! reader holding an older snapshot still finds what it should see, and nothing is ever
//! modified in place. One writer inserts at a time (the engine's writer lock already
//! ensures it); `get`s and cursors never wait for it ([`crate::skiplist`] tells how).
//!
//! The engine keeps one *active* memtable for new writes. When it holds about
//! `memtable_bytes`, it becomes *immutable* (nothing is added to it any more), a fresh one
//! takes its place, and a background thread flushes the immutable one to an L0 table.
//!
//! A memtable remembers the number of the WAL file that holds its writes, so that file can
//! be deleted once the flush is recorded in the manifest.
//!
//! ## Counting its memory
//!
//! `memtable_bytes` bounds the memory a memtable really takes, not just the bytes of its
//! keys and values: each insert adds [`entry_bytes`] to
//! [`approximate_bytes`](Memtable::approximate_bytes), the entry's allocation as the
//! allocator rounds it plus its share of the skiplist's slots. The figure was measured
//! (`examples/memtable_inserts.rs`): 200,000 inserts of 16-byte keys and 100-byte values
//! grew the resident set by 176 bytes an entry, sequential or random, of which 112 are the
//! value's allocation (a 16-byte key lives in its node); the memtable counts 178. Values
//! of 0, 10, 1,000 and 4,000 bytes: 64, 96, 1,073 and 4,080 bytes measured, 66, 98, 1,074
//! and 4,082 counted. (Under `crossbeam-skiplist`, which allocated the node, the key and
//! the value apart, the 116-byte entries took 235 bytes.)
//!
//! ## Walking it: [`MemtableCursor`]
//!
//! A cursor holds the memtable (an `Arc`, so that it outlives a flush) and the index of its
//! current node, which stays valid as long as the memtable does: nodes never move. Its
//! entry is borrowed straight from the skiplist, nothing copied. Moving forward follows the
//! node's link. Moving backward has no link to follow, so the cursor searches for the
//! entries just before its own (4 of them the first time after a seek, then 16, then 64 at
//! a time: [`SkipList::entries_before`]) and keeps them as a stack to step back through;
//! moving forward pushes the entries it leaves on that stack too, so a step back after a
//! step forward needs no search.
//!
//! Writers go on meanwhile: an entry added after the cursor passed may be missed, and
//! entries added later carry sequence numbers above the reader's snapshot, which the reader
//! skips anyway ([`crate::cursor::snapshot`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use kv_shared::Result;

use crate::bloom::hash;
use crate::cursor::{EntryCursor, EntryRef};
use crate::key::{Lookup, LookupKey};
use crate::memtable_filter::MemtableFilter;
use crate::skiplist::{NodeId, SkipList};

/// Bytes of an entry besides its allocation: its 64-byte node slot, its links above level 1
/// (for one node in 16), and its share of the arenas' chunk tables and of their last
/// chunks' unfilled slots, measured (see the module documentation).
const NODE_BYTES: usize = 66;
/// The fewest bytes an entry takes: a node and no allocation (a tombstone of a short key);
/// sizes the filter and the skiplist's arenas.
const ENTRY_OVERHEAD: usize = NODE_BYTES;

/// The memory one heap allocation of `n` bytes takes: the allocator's 8-byte header, rounded
/// up to 16 bytes, at least 32 (glibc's smallest chunk); nothing for `n = 0`.
fn heap_bytes(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

/// The memory an entry of a `key_len`-byte key and a `value_len`-byte value takes, as
/// [`Memtable::approximate_bytes`] counts it: what the process really holds for it, so
/// that `memtable_bytes` bounds memory, not just payload. Its allocation holds the value,
/// and the key too when the key does not fit the node ([`SkipList::allocated_bytes`]).
pub fn entry_bytes(key_len: usize, value_len: usize) -> usize {
    NODE_BYTES + heap_bytes(SkipList::allocated_bytes(key_len, value_len))
}

/// The level [`SkipList::entries_before`] collects from after a seek (about 4 entries);
/// each later backward search takes one level more (16, then 64 entries), up to
/// [`LAST_BACK_LEVEL`].
const FIRST_BACK_LEVEL: usize = 1;
/// The highest level a backward search collects from (about 64 entries).
const LAST_BACK_LEVEL: usize = 3;
/// Most entries a [`MemtableCursor`] keeps behind it while it moves forward.
const MAX_BEHIND: usize = 64;

/// Sorted, versioned, in-memory writes.
#[derive(Debug)]
pub struct Memtable {
    list: SkipList,
    /// Every key inserted, so that a `get` of a key not here skips the skiplist.
    filter: MemtableFilter,
    bytes: AtomicUsize,
    wal_number: u64,
}

impl Memtable {
    /// An empty memtable whose writes go to WAL file `wal_number`, with a filter and
    /// skiplist chunks sized for `memtable_bytes` of entries (the size at which it will be
    /// frozen).
    pub fn new(wal_number: u64, memtable_bytes: usize) -> Memtable {
        // At least ENTRY_OVERHEAD bytes per entry, and most have a value.
        let most_entries = memtable_bytes / (ENTRY_OVERHEAD + 32);
        Memtable {
            list: SkipList::new(most_entries),
            filter: MemtableFilter::new(most_entries),
            bytes: AtomicUsize::new(0),
            wal_number,
        }
    }

    /// The number of the WAL file that holds this memtable's writes.
    pub fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// Adds a version of `key` (`None` is a tombstone). A version already here (the same
    /// key and sequence number) is kept as it is.
    pub fn insert(&self, key: &[u8], seq: u64, value: Option<&[u8]>) {
        self.insert_all([(key, seq, value)]);
    }

    /// Adds every `(key, seq, value)` of `entries`, in order, under one hold of the
    /// skiplist's writer lock (a write group's ops). Each is added as [`insert`](Self::insert)
    /// adds it.
    pub fn insert_all<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a [u8], u64, Option<&'a [u8]>)>,
    ) {
        // Under the skiplist's writer lock, before each entry is linked: a reader that can
        // see a version finds its bits. One writer, so plain stores lose nothing.
        self.list.insert_all(entries, |key, value| {
            self.filter.insert(hash(key));
            let size = entry_bytes(key.len(), value.map_or(0, <[u8]>::len));
            self.bytes.store(self.bytes.load(Relaxed) + size, Relaxed);
        });
    }

    /// The newest version of the looked-up key with a sequence number at most its snapshot.
    /// Allocates nothing but a found value.
    pub fn get(&self, lookup: &LookupKey<'_>) -> Lookup {
        if !self.filter.may_contain(lookup.hash) {
            return Lookup::Absent;
        }
        let Some(node) = self.list.seek(lookup.key, lookup.snapshot) else {
            return Lookup::Absent;
        };
        let entry = self.list.entry_ref(node);
        if entry.key != lookup.key {
            return Lookup::Absent;
        }
        match entry.value {
            Some(value) => Lookup::Found(value.to_vec()),
            None => Lookup::Deleted,
        }
    }

    /// Approximate memory held: each entry's node and allocation ([`entry_bytes`]).
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Relaxed)
    }

    /// Number of versions held.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The smallest and the largest user key held; `None` when nothing was written.
    pub fn key_range(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let first = self.list.entry_ref(self.list.first()?).key.to_vec();
        let last = self.list.entry_ref(self.list.last()?).key.to_vec();
        Some((first, last))
    }

    /// A cursor over every version of every key, not yet positioned. It holds the memtable
    /// alive and never blocks the writer.
    pub fn cursor(self: &Arc<Self>) -> MemtableCursor {
        MemtableCursor {
            mem: self.clone(),
            at: None,
            behind: Vec::new(),
            back_level: FIRST_BACK_LEVEL,
        }
    }

    /// Calls `f` with every version of every key, in internal-key order, borrowing each
    /// from the skiplist: the flush's way to read a memtable that no longer changes.
    ///
    /// # Errors
    /// The first error `f` returns, which ends the walk.
    pub fn for_each<E>(
        &self,
        mut f: impl FnMut(&[u8], u64, Option<&[u8]>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut at = self.list.first();
        while let Some(node) = at {
            let e = self.list.entry_ref(node);
            f(e.key, e.seq, e.value)?;
            at = self.list.next(node);
        }
        Ok(())
    }
}

/// A cursor over a memtable's entries (see [`Memtable::cursor`] and the module
/// documentation): a node of its skiplist, and the nodes just behind it.
#[derive(Debug)]
pub struct MemtableCursor {
    mem: Arc<Memtable>,
    /// The current entry; `None` when not valid.
    at: Option<NodeId>,
    /// Entries just before `at`, in order (the nearest last): where `prev` steps without
    /// a search.
    behind: Vec<NodeId>,
    /// The level the next backward search collects from.
    back_level: usize,
}

impl MemtableCursor {
    /// Forgets the entries behind: the cursor jumped.
    fn jumped(&mut self) {
        self.behind.clear();
        self.back_level = FIRST_BACK_LEVEL;
    }

    /// Fills `behind` with the entries just before `end` (the end of the list for `None`)
    /// and moves to the last of them.
    fn step_back_to_before(&mut self, end: Option<NodeId>) {
        self.mem
            .list
            .entries_before(end, self.back_level, &mut self.behind);
        self.back_level = (self.back_level + 1).min(LAST_BACK_LEVEL);
        self.at = self.behind.pop();
    }
}

impl EntryCursor for MemtableCursor {
    fn valid(&self) -> bool {
        self.at.is_some()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.jumped();
        self.at = self.mem.list.first();
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.jumped();
        self.step_back_to_before(None);
        Ok(())
    }

    fn seek(&mut self, key: &[u8], seq: u64) -> Result<()> {
        self.jumped();
        self.at = self.mem.list.seek(key, seq);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if let Some(at) = self.at {
            if self.behind.len() == MAX_BEHIND {
                self.behind.clear();
            }
            self.behind.push(at);
            self.at = self.mem.list.next(at);
        }
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        if let Some(at) = self.at {
            match self.behind.pop() {
                Some(before) => self.at = Some(before),
                None => self.step_back_to_before(Some(at)),
            }
        }
        Ok(())
    }

    fn entry(&self) -> EntryRef<'_> {
        let at = self.at.expect("entry() on a cursor that is not valid");
        self.mem.list.entry_ref(at)
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
        assert_eq!(m.get(&LookupKey::new(b"a", 0)), Lookup::Absent);
        assert_eq!(
            m.get(&LookupKey::new(b"a", 2)),
            Lookup::Found(b"one".to_vec())
        );
        assert_eq!(m.get(&LookupKey::new(b"a", 4)), Lookup::Deleted);
        assert_eq!(
            m.get(&LookupKey::new(b"a", 9)),
            Lookup::Found(b"five".to_vec())
        );
        assert_eq!(m.get(&LookupKey::new(b"ab", 9)), Lookup::Absent);
        let walk = |c: &mut MemtableCursor, forward: bool| {
            let mut out = Vec::new();
            while c.valid() {
                out.push((c.entry().key.to_vec(), c.entry().seq));
                if forward {
                    c.next().unwrap()
                } else {
                    c.prev().unwrap()
                }
            }
            out
        };
        let mut c = m.cursor();
        c.seek_to_first().unwrap();
        let all = walk(&mut c, true);
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), 5),
                (b"a".to_vec(), 3),
                (b"a".to_vec(), 1),
                (b"b".to_vec(), 2)
            ]
        );
        c.seek_to_last().unwrap();
        let mut backward = walk(&mut c, false);
        backward.reverse();
        assert_eq!(backward, all);
        c.seek(b"a", 4).unwrap();
        let e = c.entry();
        assert_eq!((e.key, e.seq, e.value), (&b"a"[..], 3, None));
        c.seek(b"a", 0).unwrap();
        assert_eq!((c.entry().key, c.entry().seq), (&b"b"[..], 2));
        // Many entries cross several windows, both ways.
        let big = Arc::new(Memtable::new(2, 1 << 20));
        for i in 0..1000u32 {
            big.insert(format!("{i:05}").as_bytes(), u64::from(i), Some(b"v"));
        }
        let mut c = big.cursor();
        c.seek(b"00500", u64::MAX).unwrap();
        assert_eq!(walk(&mut c, true).len(), 500);
        c.seek(b"00500", u64::MAX).unwrap();
        assert_eq!(walk(&mut c, false).len(), 501);
        // Large values: a window of one or two entries, still every entry both ways.
        let large = Arc::new(Memtable::new(3, 1 << 20));
        for i in 0..5u64 {
            large.insert(&[b'k', i as u8], i + 1, Some(&[7; 40 << 10]));
        }
        let mut c = large.cursor();
        c.seek_to_first().unwrap();
        assert_eq!(walk(&mut c, true).len(), 5);
        c.seek_to_last().unwrap();
        assert_eq!(walk(&mut c, false).len(), 5);
    }

    /// A cursor driven by random seeks and steps both ways agrees with a sorted `Vec` at
    /// every step, across the stack of entries behind it and the searches that refill it.
    #[test]
    fn cursor_steps_match_a_sorted_vec() {
        use rand::{Rng, SeedableRng};
        let seed = 5;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let m = Arc::new(Memtable::new(1, 1 << 16));
        let mut model = Vec::new();
        for seq in 1..=400u64 {
            let key = format!("{:03}", rng.random_range(0..150u32)).into_bytes();
            let value = (!seq.is_multiple_of(5)).then(|| seq.to_be_bytes().to_vec());
            m.insert(&key, seq, value.as_deref());
            model.push((key, seq, value));
        }
        model.sort_by(|a, b| crate::key::compare(&a.0, a.1, &b.0, b.1));
        let mut c = m.cursor();
        let mut at: Option<usize> = None;
        for step in 0..20_000 {
            match rng.random_range(0..10) {
                0 => {
                    c.seek_to_first().unwrap();
                    at = (!model.is_empty()).then_some(0);
                }
                1 => {
                    c.seek_to_last().unwrap();
                    at = model.len().checked_sub(1);
                }
                2 => {
                    let key = format!("{:03}", rng.random_range(0..160u32)).into_bytes();
                    let seq = rng.random_range(0..450u64);
                    c.seek(&key, seq).unwrap();
                    let i = model.partition_point(|e| {
                        crate::key::compare(&e.0, e.1, &key, seq) == std::cmp::Ordering::Less
                    });
                    at = (i < model.len()).then_some(i);
                }
                3..=6 => {
                    c.next().unwrap();
                    at = at.and_then(|i| (i + 1 < model.len()).then_some(i + 1));
                }
                _ => {
                    c.prev().unwrap();
                    at = at.and_then(|i| i.checked_sub(1));
                }
            }
            assert_eq!(c.valid(), at.is_some(), "seed {seed}, step {step}");
            if let Some(i) = at {
                let e = c.entry();
                let want = &model[i];
                assert_eq!(
                    (e.key, e.seq, e.value),
                    (&want.0[..], want.1, want.2.as_deref()),
                    "seed {seed}, step {step}"
                );
            }
        }
    }

    #[test]
    fn a_duplicate_version_is_kept_once_and_counted_once() {
        let m = Memtable::new(1, 1 << 20);
        m.insert(b"k", 1, Some(b"v"));
        let bytes = m.approximate_bytes();
        assert_eq!(bytes, entry_bytes(1, 1));
        m.insert(b"k", 1, Some(b"other"));
        assert_eq!((m.len(), m.approximate_bytes()), (1, bytes));
        assert_eq!(
            m.get(&LookupKey::new(b"k", 1)),
            Lookup::Found(b"v".to_vec())
        );
        assert_eq!(m.key_range(), Some((b"k".to_vec(), b"k".to_vec())));
    }
}
