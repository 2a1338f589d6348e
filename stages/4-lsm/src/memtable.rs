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
//! keys and values. A write group goes in as one block that holds its ops as its WAL
//! record has them ([`crate::skiplist`] tells why), so each
//! [`insert_ops`](Memtable::insert_ops) adds [`group_bytes`] to
//! [`approximate_bytes`](Memtable::approximate_bytes): once for the group, the block's
//! allocation as the allocator rounds it and the block's 24-byte slot in the skiplist; for
//! each entry, 66 bytes (its 64-byte node, and its share of the links and of the arenas'
//! chunk tables and unfilled chunks). A single [`insert`](Memtable::insert) is a group of
//! one ([`entry_bytes`]).
//!
//! Measured with `examples/memtable_inserts.rs` (`memtable_inserts seq 200000 VALUE_BYTES
//! GROUP`): 200,000 inserts of 16-byte keys grew the resident set by, and the memtable
//! counted, these bytes an entry (random order: the same within half a byte):
//!
//! | value bytes | 0 | 10 | 100 | 1,000 | 4,000 |
//! |---|---|---|---|---|---|
//! | groups of 1,000: measured | 83.4 | 93.4 | 183.3 | 1,088.4 | 4,087.0 |
//! | groups of 1,000: counted | 85 | 95 | 185 | 1,090 | 4,088 |
//! | groups of 1: measured | 120.4 | 136.4 | 216.5 | 1,128.7 | 4,120.4 |
//! | groups of 1: counted | 122 | 138 | 218 | 1,130 | 4,122 |
//! | before blocks: measured | 64.3 | 96.3 | 176.4 | 1,072.4 | 4,080.3 |
//! | before blocks: counted | 66 | 98 | 178 | 1,074 | 4,082 |
//!
//! In a group of 1,000 with 100-byte values, an entry takes 119 bytes of its block (the
//! value, and the op's kind byte, lengths and key) and some 64.5 of node. A group of one
//! pays its block's allocator header and rounding (a 128-byte chunk for its 119 bytes) and
//! a block slot whole: single puts of small values take up to 56 bytes more than when the
//! skiplist allocated a value alone (and nothing for an empty one), the price of keeping
//! every write as its WAL record has it. Blocks of 128 KiB and more (groups of 1,000
//! values of 1,000 bytes) are mapped on whole pages, and counted so. (Under
//! `crossbeam-skiplist`, which allocated the node, the key and the value apart, the
//! entries of 100-byte values took 235 bytes.)
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
use kv_shared::framing::varint_len;

use crate::bloom::hash;
use crate::cursor::{EntryCursor, EntryRef};
use crate::key::{Lookup, LookupKey};
use crate::memtable_filter::MemtableFilter;
use crate::skiplist::{Inserted, NodeId, SkipList, op_block};

/// Bytes of an entry besides its op's bytes: its 64-byte node slot, its links above level 1
/// (for one node in 16), and its share of the arenas' chunk tables and of their last
/// chunks' unfilled slots, measured (see the module documentation).
const NODE_BYTES: usize = 66;
/// The fewest bytes an entry takes: a node, and the few bytes of its op in a large group's
/// block; sizes the filter and the skiplist's arenas.
const ENTRY_OVERHEAD: usize = NODE_BYTES;

/// The size from which glibc maps an allocation on pages of its own (its default
/// `M_MMAP_THRESHOLD`).
const MMAP_THRESHOLD: usize = 128 << 10;

/// The memory one heap allocation of `n` bytes takes: the allocator's 8-byte header, rounded
/// up to 16 bytes, at least 32 (glibc's smallest chunk); from [`MMAP_THRESHOLD`] on, to
/// whole 4 KiB pages; nothing for `n = 0`. (Once a mapped block is freed, glibc raises its
/// threshold and serves blocks of that size from the heap: then this counts up to a page
/// too many, under 3% of such a block.)
fn heap_bytes(n: usize) -> usize {
    if n == 0 {
        0
    } else if n >= MMAP_THRESHOLD {
        (n + 8).next_multiple_of(4096)
    } else {
        (n + 8).next_multiple_of(16).max(32)
    }
}

/// The memory a block of `ops_len` bytes of ops, `entries` of them added, takes, as
/// [`Memtable::approximate_bytes`] counts it: what the process really holds for them, so
/// that `memtable_bytes` bounds memory, not just payload. The block's allocation and its
/// slot in the skiplist's blocks arena, charged once to the group, and a node's share for
/// each entry.
pub fn group_bytes(ops_len: usize, entries: usize) -> usize {
    heap_bytes(ops_len) + SkipList::BLOCK_SLOT_BYTES + entries * NODE_BYTES
}

/// The memory an entry of a `key_len`-byte key and a `value_len`-byte value (`None` for a
/// tombstone) inserted alone takes ([`Memtable::insert`]): a block of one op
/// ([`group_bytes`]).
pub fn entry_bytes(key_len: usize, value_len: Option<usize>) -> usize {
    let value_part = value_len.map_or(0, |v| varint_len(v as u64) + v);
    group_bytes(1 + varint_len(key_len as u64) + key_len + value_part, 1)
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

    /// Adds a version of `key` (`None` is a tombstone), as a group of one op. A version
    /// already here (the same key and sequence number) is kept as it is.
    pub fn insert(&self, key: &[u8], seq: u64, value: Option<&[u8]>) {
        self.insert_block(op_block(key, value), 1, seq);
    }

    /// Adds the `count` ops of `ops`, a write group's or a batch's ops in the shared batch
    /// ops format ([`kv_shared::batch`], as [`kv_shared::batch::check_ops`] accepts them),
    /// op `i` as the version with sequence number `first_seq + i`. The ops are copied once,
    /// into one block that their entries point into: one allocation for the group. Ops
    /// whose version is already here are kept as they are; ops past one that does not
    /// decode are not read. Returns what was added, and the bytes of the keys and values
    /// read ([`Inserted`]).
    pub fn insert_ops(&self, ops: &[u8], count: u32, first_seq: u64) -> Inserted {
        self.insert_block(Box::from(ops), count, first_seq)
    }

    /// Adds the ops of `block` and counts the memory they take ([`group_bytes`]).
    fn insert_block(&self, block: Box<[u8]>, count: u32, first_seq: u64) -> Inserted {
        let ops_len = block.len();
        // The filter first: a reader that can see a version must find its bits.
        let done = self
            .list
            .insert_ops(block, count, first_seq, |key| self.filter.insert(hash(key)));
        if done.entries > 0 {
            let size = group_bytes(ops_len, done.entries as usize);
            self.bytes.fetch_add(size, Relaxed);
        }
        done
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

    /// Approximate memory held: each group's block and each entry's node ([`group_bytes`]).
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
        assert_eq!(bytes, entry_bytes(1, Some(1)));
        assert_eq!(
            bytes,
            heap_bytes(4) + SkipList::BLOCK_SLOT_BYTES + NODE_BYTES
        );
        m.insert(b"k", 1, Some(b"other"));
        assert_eq!((m.len(), m.approximate_bytes()), (1, bytes));
        assert_eq!(
            m.get(&LookupKey::new(b"k", 1)),
            Lookup::Found(b"v".to_vec())
        );
        assert_eq!(m.key_range(), Some((b"k".to_vec(), b"k".to_vec())));
    }

    /// A group's ops go in as one block, one allocation, counted once with a node for each
    /// entry; a group whose every version is here already adds nothing and counts nothing.
    #[test]
    fn a_group_is_one_allocation_counted_once() {
        use kv_shared::batch::encode_op;
        let m = Memtable::new(1, 1 << 20);
        // The arenas' first chunks, allocated by the first insert.
        m.insert(b"first", 1, None);
        let before = m.approximate_bytes();
        let long_key = [b'k'; 40];
        let mut ops = Vec::new();
        for i in 0..500u32 {
            let key = format!("key{i:05}");
            match i % 3 {
                0 => encode_op(&mut ops, key.as_bytes(), Some(b"value")),
                1 => encode_op(&mut ops, key.as_bytes(), None),
                _ => encode_op(
                    &mut ops,
                    &[&long_key[..], key.as_bytes()].concat(),
                    Some(b""),
                ),
            }
        }
        let mut done = Inserted::default();
        let allocations = allocation_counter::measure(|| done = m.insert_ops(&ops, 500, 10));
        assert_eq!(allocations.count_total, 1, "one block, no allocation an op");
        assert_eq!((done.ops, done.entries), (500, 500));
        // Keys of 8 bytes, 5-byte values for a third, 48-byte keys for another third.
        assert_eq!(done.payload, 500 * 8 + 167 * 5 + 166 * 40);
        let counted = m.approximate_bytes() - before;
        assert_eq!(counted, group_bytes(ops.len(), 500));
        assert_eq!(
            counted,
            (ops.len() + 8).next_multiple_of(16) + 24 + 500 * NODE_BYTES
        );
        let get = |key: &[u8], seq| m.get(&LookupKey::new(key, seq));
        assert_eq!(get(b"key00000", 10), Lookup::Found(b"value".to_vec()));
        assert_eq!(get(b"key00001", 99), Lookup::Deleted);
        let long = [&long_key[..], b"key00002"].concat();
        assert_eq!(get(&long, 12), Lookup::Found(Vec::new()));
        assert_eq!(get(&long, 11), Lookup::Absent);
        // The same group again: every version is here already.
        let again = m.insert_ops(&ops, 500, 10);
        assert_eq!((again.ops, again.entries), (500, 0));
        assert_eq!(m.approximate_bytes() - before, counted);
        assert_eq!(m.len(), 501);
        // Big blocks are mapped on pages of their own.
        assert_eq!(heap_bytes(1 << 20), (1 << 20) + 4096);
        assert_eq!(heap_bytes(100), 112);
        assert_eq!(heap_bytes(1), 32);
        assert_eq!(heap_bytes(0), 0);
    }
}
