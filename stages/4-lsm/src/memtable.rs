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
//!
//! ## Walking it: [`MemtableCursor`]
//!
//! A skiplist entry borrows the skiplist, and a cursor that holds the memtable (an `Arc`,
//! so that it outlives a flush) cannot also hold a borrow of it. So the cursor copies a
//! *window* of consecutive entries out (4 of them after a seek, then twice as many each
//! time up to 64, and never more than 64 KiB but at least one), moves inside it, and
//! searches the skiplist again (once per window) for the next or previous window when it
//! leaves one. A seek followed by a few steps copies a few entries; a long scan copies 64
//! per search.
//! Writers go on meanwhile: entries they add later carry sequence numbers above the
//! reader's snapshot, which the reader skips ([`crate::cursor::snapshot`]).

use std::cell::RefCell;
use std::ops::{Bound, Range};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crossbeam_skiplist::SkipMap;
use kv_shared::Result;

use crate::bloom::hash;
use crate::cursor::{EntryCursor, EntryRef};
use crate::key::{InternalKey, Lookup, LookupKey};
use crate::memtable_filter::MemtableFilter;

/// Bytes of one skiplist node (the internal key's and the value's headers, the node's
/// links, the allocator's header), measured: 300,000 inserts of 16-byte keys and 100-byte
/// values grew the resident set by 239 bytes an entry, of which 32 + 112 are the key's and
/// the value's own allocations ([`heap_bytes`]).
const NODE_BYTES: usize = 96;
/// The fewest bytes an entry takes: a node and two minimal allocations (sizes the filter).
const ENTRY_OVERHEAD: usize = NODE_BYTES + 2 * 32;

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
/// that `memtable_bytes` bounds memory, not just payload.
fn entry_bytes(key_len: usize, value_len: usize) -> usize {
    NODE_BYTES + heap_bytes(key_len) + heap_bytes(value_len)
}
/// Most entries copied out of the skiplist at a time by a [`MemtableCursor`].
const BATCH: usize = 64;
/// Entries the first window after a seek takes; each later window takes twice as many as
/// the one before, up to [`BATCH`]. A short scan (a seek and a few steps, the common case)
/// copies a few entries, not 64; a long one soon copies 64 per skiplist search.
const FIRST_BATCH: usize = 4;
/// Bytes of keys and values after which a [`MemtableCursor`]'s window takes no more entries.
const BATCH_BYTES: usize = 64 << 10;

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

impl Memtable {
    /// An empty memtable whose writes go to WAL file `wal_number`, with a filter sized for
    /// `memtable_bytes` of entries (the size at which it will be frozen).
    pub fn new(wal_number: u64, memtable_bytes: usize) -> Memtable {
        Memtable {
            map: SkipMap::new(),
            // At least ENTRY_OVERHEAD bytes per entry.
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
        let size = entry_bytes(key.len(), value.map_or(0, <[u8]>::len));
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

    /// The newest version of the looked-up key with a sequence number at most its snapshot.
    /// Allocates nothing but a found value.
    pub fn get(&self, lookup: &LookupKey<'_>) -> Lookup {
        if !self.filter.may_contain(lookup.hash) {
            return Lookup::Absent;
        }
        PROBE.with_borrow_mut(|probe| {
            probe.user_key.clear();
            probe.user_key.extend_from_slice(lookup.key);
            probe.seq = lookup.snapshot;
            match self.map.lower_bound(Bound::Included(&*probe)) {
                Some(entry) if entry.key().user_key == lookup.key => match entry.value() {
                    Some(value) => Lookup::Found(value.clone()),
                    None => Lookup::Deleted,
                },
                _ => Lookup::Absent,
            }
        })
    }

    /// Approximate memory held: each entry's node and allocations ([`entry_bytes`]).
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

    /// The smallest and the largest user key held; `None` when nothing was written.
    pub fn key_range(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let first = self.map.front()?.key().user_key.clone();
        let last = self.map.back()?.key().user_key.clone();
        Some((first, last))
    }

    /// A cursor over every version of every key, not yet positioned. It holds the memtable
    /// alive and copies entries out in small batches, so it never blocks the writer.
    pub fn cursor(self: &Arc<Self>) -> MemtableCursor {
        MemtableCursor {
            mem: self.clone(),
            window: Window::default(),
            limit: FIRST_BATCH,
            at: 0,
            probe: InternalKey {
                user_key: Vec::new(),
                seq: 0,
            },
        }
    }
}

impl Memtable {
    /// Calls `f` with every version of every key, in internal-key order, borrowing each
    /// from the skiplist instead of copying it: the flush's way to read a memtable that no
    /// longer changes. (A reader uses [`Memtable::cursor`], which copies small windows out,
    /// so that it can hold the memtable and move both ways.)
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

/// A skiplist entry, borrowed from the memtable.
type SkipEntry<'a> = crossbeam_skiplist::map::Entry<'a, InternalKey, Option<Vec<u8>>>;

/// Consecutive entries copied out of the skiplist, in internal-key order: their bytes back
/// to back in one buffer (reused from batch to batch, so it stops allocating once grown).
#[derive(Debug, Default)]
struct Window {
    bytes: Vec<u8>,
    entries: Vec<WindowEntry>,
}

/// One entry of a [`Window`]: where its key and value lie in the window's bytes.
#[derive(Debug, Clone)]
struct WindowEntry {
    key: Range<usize>,
    seq: u64,
    /// `None` for a tombstone.
    value: Option<Range<usize>>,
}

impl Window {
    /// Copies up to `limit` entries (and no more once [`BATCH_BYTES`] are copied), from
    /// `first` on, forward or backward (then stored reversed, so that the window is in
    /// internal-key order either way). Returns the position of `first` in the window (past
    /// its end, so not valid, when it is empty).
    fn fill(&mut self, first: Option<SkipEntry<'_>>, forward: bool, limit: usize) -> usize {
        self.bytes.clear();
        self.entries.clear();
        let mut next = first;
        while let Some(entry) = next {
            if self.entries.len() == limit || self.bytes.len() >= BATCH_BYTES {
                break;
            }
            let key = self.push(&entry.key().user_key);
            let value = entry.value().as_deref().map(|v| self.push(v));
            self.entries.push(WindowEntry {
                key,
                seq: entry.key().seq,
                value,
            });
            next = if forward { entry.next() } else { entry.prev() };
        }
        if forward {
            0
        } else {
            self.entries.reverse();
            self.entries.len().saturating_sub(1)
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }
}

/// A cursor over a memtable's entries (see [`Memtable::cursor`]). It moves inside a window
/// of entries copied out of the skiplist, and copies the next window (one skiplist search)
/// when it leaves one at either end.
#[derive(Debug)]
pub struct MemtableCursor {
    mem: Arc<Memtable>,
    window: Window,
    /// Entries the next window takes: [`FIRST_BATCH`] after a seek, doubling up to
    /// [`BATCH`].
    limit: usize,
    /// The current entry in the window; not valid at or past its end.
    at: usize,
    /// The internal key seeks search the skiplist with, reused.
    probe: InternalKey,
}

impl MemtableCursor {
    /// Copies the window just beyond the current entry, after it (`forward`) or before it,
    /// with one skiplist search for the current entry's internal key, and moves to the
    /// entry next to the current one.
    fn refill_beyond_current(&mut self, forward: bool) {
        let e = &self.window.entries[self.at];
        self.probe.user_key.clear();
        self.probe
            .user_key
            .extend_from_slice(&self.window.bytes[e.key.clone()]);
        self.probe.seq = e.seq;
        let beyond = Bound::Excluded(&self.probe);
        let first = if forward {
            self.mem.map.lower_bound(beyond)
        } else {
            self.mem.map.upper_bound(beyond)
        };
        self.limit = (2 * self.limit).min(BATCH);
        self.at = self.window.fill(first, forward, self.limit);
    }
}

impl EntryCursor for MemtableCursor {
    fn valid(&self) -> bool {
        self.at < self.window.entries.len()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.limit = FIRST_BATCH;
        self.at = self.window.fill(self.mem.map.front(), true, FIRST_BATCH);
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.limit = FIRST_BATCH;
        self.at = self.window.fill(self.mem.map.back(), false, FIRST_BATCH);
        Ok(())
    }

    fn seek(&mut self, key: &[u8], seq: u64) -> Result<()> {
        self.probe.user_key.clear();
        self.probe.user_key.extend_from_slice(key);
        self.probe.seq = seq;
        let first = self.mem.map.lower_bound(Bound::Included(&self.probe));
        self.limit = FIRST_BATCH;
        self.at = self.window.fill(first, true, FIRST_BATCH);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if self.valid() {
            if self.at + 1 < self.window.entries.len() {
                self.at += 1;
            } else {
                self.refill_beyond_current(true);
            }
        }
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        if self.valid() {
            if self.at > 0 {
                self.at -= 1;
            } else {
                self.refill_beyond_current(false);
            }
        }
        Ok(())
    }

    fn entry(&self) -> EntryRef<'_> {
        let e = &self.window.entries[self.at];
        let bytes = &self.window.bytes;
        EntryRef {
            key: &bytes[e.key.clone()],
            seq: e.seq,
            value: e.value.clone().map(|value| &bytes[value]),
        }
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
}
