//! The memtable's skiplist: a sorted list that one writer extends while any number of
//! readers walk it, without a lock and without `unsafe`.
//!
//! ## The structure
//!
//! A sorted linked list is cheap to insert into once you stand at the right place, but
//! finding the place means walking it from the start. A **skiplist** (Pugh, 1990) adds
//! express lanes. Every node gets a random **height**: 1 always, 2 with probability 1/4,
//! 3 with 1/16, and so on up to [`MAX_HEIGHT`]. A node of height `h` is linked into the
//! lists of levels `0` to `h - 1`, its **tower**; level 0 holds every node, level 1 about a
//! quarter of them, level 2 a sixteenth:
//!
//! ```text
//! level 3  HEAD --------------------------------> g -----------> nil
//! level 2  HEAD ------------> c ----------------> g -----------> nil
//! level 1  HEAD --> a ------> c ------> e ------> g ------> i -> nil
//! level 0  HEAD --> a -> b -> c -> d -> e -> f -> g -> h -> i -> nil
//! ```
//!
//! A search starts at the head's top level and moves right while the next node is before
//! the target, then down one level, and again. Seeking `f`: level 3 stops at HEAD (`g` is
//! past `f`), level 2 moves to `c`, level 1 to `e`, level 0 finds `f`. Each level skips
//! about four nodes of the level below, so a search compares some `log4(n)` times 3 to 4
//! keys: some 30 in the 200,000 entries of a 32 MiB memtable. An insert is a search that
//! remembers, on each level, the last node before the new key (the **predecessors**), then
//! links the new node after them, on the levels of its tower.
//!
//! Entries are ordered by internal key (user key ascending, then sequence number
//! descending, [`crate::key`]), so that a search for `(key, snapshot)` lands on the newest
//! version a reader at that snapshot may see. Every internal key is written once: an insert
//! of one already there is dropped.
//!
//! ## One writer, readers without locks
//!
//! The engine already lets one thread at a time write to a memtable (the leader of a write
//! group, holding the writer lock; recovery replays a log from one thread), so this list
//! takes writers one at a time too, behind a [`Mutex`] that is never contended in the
//! engine. That makes the writer's job simple: it never races another writer for a link.
//! It fills the new node completely (its entry and its own links to its successors), and
//! only then **publishes** it: it stores the node's index into its predecessor's link on
//! level 0, then on level 1, and so on, each store with `Release` ordering. A reader loads
//! every link with `Acquire`, so when it sees a new node it sees everything written into
//! the node before the link was: a reader meets complete nodes or none. A reader never
//! waits and never retries; it may miss a node published while it walks, which for the
//! engine is fine: that node's sequence number is above every reader's snapshot.
//!
//! Nothing is ever unlinked, moved or freed until the whole list is dropped, so a node a
//! reader once saw stays where it was, and a cursor can keep a node's index as long as it
//! holds the memtable. (Lock-free lists that delete need epochs or hazard pointers to know
//! when memory may be reused; an append-only list needs none of that.)
//!
//! ## Memory layout
//!
//! Safe Rust cannot keep pointers in atomics, so links are **indices**: `u32`s into an
//! append-only [`Arena`] of nodes, which never moves one (`arena.rs`). Index 0 is the
//! head, which no link ever points to, so 0 also means "no next node" (nil).
//!
//! ```text
//!  nodes: Arena<Node>, one 64-byte cache line a slot     links: Arena<AtomicU32>
//!  +---+------------------------------------------+     +----------------------------+
//!  | 0 | HEAD                 next[0] next[1]     |     | 0..9: HEAD's levels 2..11  |
//!  | 1 | entry                next[0] next[1]     |     | 10:   level 2 of a node of |
//!  | 2 | entry                next[0] next[1]     |     |       height 3             |
//!  |...|                                          |     | ...                        |
//!  +---+------------------------------------------+     +----------------------------+
//!  entry, set once: head      the key's first 16 bytes, zero-padded (all of a short key)
//!                   bytes --> [ key | value ]  one allocation; the key only when it is
//!                             longer than the head; nothing for a short key's tombstone
//!                   trailer   sequence number << 8 | kind
//!                   key_len, tower (where the node's links of levels 2 and up start)
//! ```
//!
//! The search reads a node's key head and its links, and both sit in the node's cache
//! line: moving through the list costs one cache miss a node, not one for the node and
//! another for its key. Keys of up to 16 bytes live there whole; two longer keys compare
//! past their heads only when the heads are equal (the same trick as the tables'
//! [`crate::key::key_head`]). Levels 0 and 1 have their links in the node, since every
//! walk follows them; the links of levels 2 and up (one node in 16 has any) sit in the
//! `links` arena, a run of slots per tower that never crosses a chunk, so that one lookup
//! finds it. The entry sits in a [`OnceLock`]: the writer sets it once; a reader who
//! reached the node through a link finds it set.
//!
//! ## What an insert costs
//!
//! * **One allocation**: the value, with the key when it is longer than 16 bytes (none
//!   at all for the tombstone of a short key). The memtable counts it at what the
//!   allocator really takes ([`crate::memtable`]). The chunks of both arenas come on top,
//!   one allocation per chunk of slots.
//! * A node slot (64 bytes) and `height - 2` link slots (4 bytes each) for the one node
//!   in 16 taller than 2.
//! * The search for the predecessors, and `height` link stores. Inserts in key order do
//!   not search from the top, thanks to the **insert hint**: the writer keeps the
//!   predecessors of the last key it inserted (RocksDB calls them the *splice*). When the
//!   next key comes after that one and before its successor on level 0 (sequential keys;
//!   the sorted ops of a batch; replaying a log of them), those predecessors are the new
//!   key's too: no search at all, two key comparisons. A key a little further on climbs
//!   from the hint until a level's next node is past it, then searches down from there,
//!   so the cost grows with the log of the distance, not of the list. A key before the
//!   last one searches from the top.
//!
//! Measured with `examples/memtable_inserts.rs` under callgrind, 200,000 inserts of 16-byte
//! keys and 100-byte values into one memtable: some 1,400 instructions an insert in key
//! order (two thirds of them the allocator's, the `malloc` of the insert and the `free` of
//! the drop), 3,600 in random order (a search of some 30 comparisons), one allocation, 176
//! bytes of memory. The general-purpose lock-free skiplist the memtable used before
//! (`crossbeam-skiplist`, whose inserts searched from the top and allocated three times:
//! the node, the key, the value) took 3,600 and 4,100 instructions, three allocations and
//! 235 bytes; its random inserts also missed the first-level cache twice as often, since
//! each node it visited sent it to a second allocation for the key.

mod arena;
#[cfg(test)]
mod tests;

use std::cmp::Ordering::{self, Equal, Less};
use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::cursor::EntryRef;
use crate::key::{self, Kind, key_head};

pub use arena::Arena;

/// The most levels a tower has. With a quarter of the nodes going up each level, 12 levels
/// keep searches logarithmic up to some 4^12 = 16 million entries.
pub const MAX_HEIGHT: usize = 12;

/// Bytes of the key kept in the node: all of a key this long or shorter.
const KEY_HEAD: usize = 16;
/// Levels whose links sit in the node.
const NODE_LINKS: usize = 2;

/// The head's index, which no link points to: also "no next node".
const NIL: u32 = 0;
const HEAD_NODE: u32 = 0;

/// A node slot: one cache line, its entry (set once) and its links on levels 0 and 1.
#[derive(Default)]
#[repr(align(64))]
struct Node {
    entry: OnceLock<Entry>,
    next: [AtomicU32; NODE_LINKS],
}

/// What a node holds, written once before the node is published.
struct Entry {
    /// The key's first [`KEY_HEAD`] bytes, zero-padded.
    head: [u8; KEY_HEAD],
    /// The whole key when it is longer than [`KEY_HEAD`] bytes (nothing of a key that fits
    /// the head), then the value (nothing for a tombstone).
    bytes: Box<[u8]>,
    /// `seq << 8 | kind`, as [`key::trailer`] packs them.
    trailer: u64,
    key_len: u32,
    /// Index in the links arena of the node's link on level 2; its links on levels 3
    /// and up follow it.
    tower: u32,
}

impl Entry {
    fn new(key: &[u8], seq: u64, value: Option<&[u8]>, tower: u32) -> Entry {
        let mut head = [0; KEY_HEAD];
        let n = key.len().min(KEY_HEAD);
        head[..n].copy_from_slice(&key[..n]);
        let long_key = if key.len() > KEY_HEAD { key } else { &[] };
        let value_bytes = value.unwrap_or_default();
        let mut bytes = Vec::with_capacity(long_key.len() + value_bytes.len());
        bytes.extend_from_slice(long_key);
        bytes.extend_from_slice(value_bytes);
        Entry {
            head,
            bytes: bytes.into_boxed_slice(),
            trailer: key::trailer(seq, Kind::of(value)),
            key_len: key.len() as u32,
            tower,
        }
    }

    /// Where the key ends in `bytes`: 0 when the key fits the head.
    fn key_end(&self) -> usize {
        let len = self.key_len as usize;
        if len > KEY_HEAD { len } else { 0 }
    }

    fn key(&self) -> &[u8] {
        let len = self.key_len as usize;
        if len > KEY_HEAD {
            &self.bytes[..len]
        } else {
            &self.head[..len]
        }
    }

    fn seq(&self) -> u64 {
        self.trailer >> 8
    }

    fn value(&self) -> Option<&[u8]> {
        (key::split_trailer(self.trailer).1 == Some(Kind::Put))
            .then(|| &self.bytes[self.key_end()..])
    }

    /// How this entry's internal key compares with `target`'s: heads first, and the
    /// bytes past them only when the heads are equal and both keys go on past them.
    #[inline]
    fn compare(&self, target: &Target<'_>) -> Ordering {
        let head = u128::from_be_bytes(self.head);
        if head != target.head {
            return head.cmp(&target.head);
        }
        let (len, target_len) = (self.key_len as usize, target.key.len());
        // Equal heads: a key that fits the head is a prefix of the other key.
        let keys = if len <= KEY_HEAD || target_len <= KEY_HEAD {
            len.cmp(&target_len)
        } else {
            self.bytes[KEY_HEAD..len].cmp(&target.key[KEY_HEAD..])
        };
        keys.then(target.seq.cmp(&self.seq()))
    }
}

/// An internal key searched for, with its head computed once for every comparison.
struct Target<'a> {
    key: &'a [u8],
    head: u128,
    seq: u64,
}

impl Target<'_> {
    fn new(key: &[u8], seq: u64) -> Target<'_> {
        Target {
            key,
            head: key_head(key),
            seq,
        }
    }

    /// True when the target comes after `e`.
    #[inline]
    fn follows(&self, e: &Entry) -> bool {
        e.compare(self) == Less
    }
}

/// A node of a [`SkipList`], as readers name it: valid for as long as the list lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeId(NonZeroU32);

impl NodeId {
    /// The node at `index`; `None` for the head (0), which is no entry.
    fn new(index: u32) -> Option<NodeId> {
        NonZeroU32::new(index).map(NodeId)
    }

    fn index(self) -> u32 {
        self.0.get()
    }
}

/// The writer's state, behind the writer's mutex.
struct Writer {
    /// Slots of the nodes arena taken, the head's included.
    nodes: u32,
    /// Slots of the links arena taken, the head's included.
    links: u32,
    /// The insert hint: on each level, the last node at or before `last` (see
    /// [`SkipList::find_splice`]).
    splice: [u32; MAX_HEIGHT],
    /// The node inserted last; the head when there is no hint to use.
    last: u32,
    /// The state of the xorshift generator that draws tower heights.
    rng: u64,
}

impl Writer {
    /// A random height: 1, then one more level with probability 1/4 each time (two random
    /// bits both zero), at most [`MAX_HEIGHT`].
    fn random_height(&mut self) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (1 + self.rng.trailing_zeros() as usize / 2).min(MAX_HEIGHT)
    }
}

/// A sorted list of versioned entries, one writer at a time, readers without locks (see
/// the module documentation).
pub struct SkipList {
    nodes: Arena<Node>,
    links: Arena<AtomicU32>,
    len: AtomicU64,
    /// Key comparisons made by inserts so far.
    insert_comparisons: AtomicU64,
    writer: Mutex<Writer>,
}

impl fmt::Debug for SkipList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkipList")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl SkipList {
    /// An empty list whose arenas are sized for about `expected_len` entries: chunks of an
    /// eighth of them (from 16 to 1024 nodes a chunk), and room for twice as many in the
    /// part of the chunk table that one lookup reaches (at least 64 chunks). More entries
    /// only take more chunks, one lookup further.
    pub fn new(expected_len: usize) -> SkipList {
        let chunk_bits = (expected_len / 8).clamp(16, 1024).ilog2();
        let first_bits = ((2 * expected_len) >> chunk_bits)
            .max(64)
            .next_power_of_two()
            .ilog2();
        let list = SkipList {
            nodes: Arena::new(chunk_bits, first_bits),
            links: Arena::new(chunk_bits, first_bits),
            len: AtomicU64::new(0),
            insert_comparisons: AtomicU64::new(0),
            writer: Mutex::new(Writer {
                nodes: 1,
                links: (MAX_HEIGHT - NODE_LINKS) as u32,
                splice: [HEAD_NODE; MAX_HEIGHT],
                last: HEAD_NODE,
                rng: 0x2545_F491_4F6C_DD1D,
            }),
        };
        // The head: an empty entry, its tower at the start of the links arena. A fresh
        // OnceLock: the set succeeds.
        let _ = list
            .nodes
            .slot(HEAD_NODE)
            .entry
            .set(Entry::new(&[], 0, None, 0));
        for slot in 0..(MAX_HEIGHT - NODE_LINKS) as u32 {
            list.links.slot(slot);
        }
        list
    }

    /// The bytes an entry of a `key_len`-byte key and a `value_len`-byte value allocates:
    /// the value, and the key too when it is longer than the 16 bytes its node holds.
    pub fn allocated_bytes(key_len: usize, value_len: usize) -> usize {
        if key_len > KEY_HEAD {
            key_len + value_len
        } else {
            value_len
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed) as usize
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.first().is_none()
    }

    /// Key comparisons the inserts made so far: about one an insert when the hint serves
    /// (keys in order), some 30 when every insert searches a large list from the top.
    pub fn insert_comparisons(&self) -> u64 {
        self.insert_comparisons.load(Relaxed)
    }

    /// The slot of node `index`, which was published (or is the head).
    fn node(&self, index: u32) -> &Node {
        self.nodes
            .get(index)
            .expect("a published node's chunk is allocated before its index is")
    }

    /// The entry of a published node (or the head).
    fn entry_of(node: &Node) -> &Entry {
        node.entry
            .get()
            .expect("a node's entry is set before the node is published")
    }

    /// The links of a published node on levels 2 and up, at `[level - 2]`, as far as its
    /// tower reaches (a tower never crosses a chunk of the links arena: one lookup finds it).
    fn tower(&self, node: &Node) -> &[AtomicU32] {
        self.links
            .rest_of_chunk(Self::entry_of(node).tower)
            .expect("a tower's links are allocated before its node is published")
    }

    /// The link of `node` on `level`, which its tower reaches.
    fn link<'a>(&'a self, node: &'a Node, level: usize) -> &'a AtomicU32 {
        match node.next.get(level) {
            Some(link) => link,
            None => &self.tower(node)[level - NODE_LINKS],
        }
    }

    /// The search: from node `start` (before the target), walks the `levels` from the top
    /// down, on each moving right while the next node is before the target (`is_before`,
    /// which counts as one comparison a call), and hands `at_level` the node it stopped at
    /// on each level: the last one before the target there. Returns the last of those, and
    /// the node after it as the search saw it (nil at the end): the first at or after the
    /// target. (Loading the link again would not do: a writer may have put a node between
    /// them since.)
    ///
    /// The hot loop of every search. It keeps the current node's slot and tower at hand,
    /// so that each node costs one lookup in the nodes arena, and the tower of a node it
    /// moves to on level 2 or above one more.
    fn descend(
        &self,
        start: u32,
        levels: Range<usize>,
        mut is_before: impl FnMut(&Entry) -> bool,
        mut at_level: impl FnMut(usize, u32),
    ) -> (u32, u32) {
        let (mut x, mut x_node) = (start, self.node(start));
        let mut x_tower: Option<&[AtomicU32]> = None;
        // A node found not before the target on one level is often the next node on the
        // level below too: no need to compare it again.
        let mut not_before = NIL;
        let mut next = NIL;
        for level in levels.rev() {
            loop {
                next = match x_node.next.get(level) {
                    Some(link) => link.load(Acquire),
                    None => x_tower.get_or_insert_with(|| self.tower(x_node))[level - NODE_LINKS]
                        .load(Acquire),
                };
                if next == NIL || next == not_before {
                    break;
                }
                let next_node = self.node(next);
                if is_before(Self::entry_of(next_node)) {
                    (x, x_node, x_tower) = (next, next_node, None);
                } else {
                    not_before = next;
                    break;
                }
            }
            at_level(level, x);
        }
        (x, next)
    }

    /// Adds the entry `(key, seq)` with `value` (`None` is a tombstone). Returns false, and
    /// adds nothing, when the list already holds that internal key.
    ///
    /// # Panics
    /// When the list already holds 2^32 - 1 entries (hundreds of gigabytes).
    pub fn insert(&self, key: &[u8], seq: u64, value: Option<&[u8]>) -> bool {
        let mut guard = self.lock_writer();
        self.insert_locked(&mut guard, key, seq, value, || {})
    }

    /// Adds every `(key, seq, value)` of `entries` in turn, as [`insert`](Self::insert)
    /// would, under one hold of the writer lock (a write group's thousand entries pay for
    /// one lock, not a thousand). `before_publishing` runs under that lock for each entry
    /// once it is known to be new, before any reader can reach it, with its key and value:
    /// the memtable updates its filter and its byte count there, as the one writer, with
    /// plain loads and stores rather than atomic read-modify-writes (a locked instruction
    /// each, which also stalls every memory access behind it). Returns how many were new.
    ///
    /// # Panics
    /// As [`insert`](Self::insert).
    pub fn insert_all<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a [u8], u64, Option<&'a [u8]>)>,
        mut before_publishing: impl FnMut(&[u8], Option<&[u8]>),
    ) -> usize {
        let mut guard = self.lock_writer();
        let mut added = 0;
        for (key, seq, value) in entries {
            let new = self.insert_locked(&mut guard, key, seq, value, || {
                before_publishing(key, value);
            });
            added += usize::from(new);
        }
        added
    }

    /// The insert itself, the writer lock held (`w`).
    fn insert_locked(
        &self,
        w: &mut Writer,
        key: &[u8],
        seq: u64,
        value: Option<&[u8]>,
        before_publishing: impl FnOnce(),
    ) -> bool {
        let target = Target::new(key, seq);
        let comparisons = self.find_splice(w, &target);
        add_as_writer(&self.insert_comparisons, comparisons);
        let after = self.node(w.splice[0]).next[0].load(Relaxed);
        if after != NIL && Self::entry_of(self.node(after)).compare(&target) == Equal {
            w.last = HEAD_NODE;
            return false;
        }
        before_publishing();
        let height = w.random_height();
        let tall = height.saturating_sub(NODE_LINKS) as u32;
        let id = w.nodes;
        let tower = self.links.fit_run(w.links, tall);
        w.nodes = id.checked_add(1).expect("at most 2^32 - 1 entries");
        w.links = tower
            .and_then(|t| t.checked_add(tall))
            .expect("at most 2^32 - 1 links");
        let tower = w.links - tall;
        // A fresh slot: no entry was ever set in it.
        let node = self.nodes.slot(id);
        let _ = node.entry.set(Entry::new(key, seq, value, tower));
        // The node's own links first, then its predecessors' (Release: a reader that
        // sees the node sees it whole).
        for level in 0..height {
            let next = self.link(self.node(w.splice[level]), level).load(Relaxed);
            match node.next.get(level) {
                Some(link) => link.store(next, Relaxed),
                None => self
                    .links
                    .slot(tower + (level - NODE_LINKS) as u32)
                    .store(next, Relaxed),
            }
        }
        for level in 0..height {
            self.link(self.node(w.splice[level]), level)
                .store(id, Release);
        }
        w.splice[..height].fill(id);
        w.last = id;
        add_as_writer(&self.len, 1);
        true
    }

    /// The writer's state. A writer that panicked may have left the hint half updated
    /// (nothing else: indices are taken before the slots are written), so then the hint
    /// is dropped.
    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        match self.writer.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                guard.last = HEAD_NODE;
                self.writer.clear_poison();
                guard
            }
        }
    }

    /// Sets `w.splice` to the predecessors of `target`: on each level, the last node
    /// before it. Returns the key comparisons made.
    ///
    /// The hint: after each insert, `splice[l]` is the last node on level `l` at or before
    /// the node inserted, `last` (for the levels of `last`'s tower, `last` itself). When
    /// the target comes after `last`, every `splice[l]` is before it, and `splice[l]` is
    /// its predecessor on level `l` as soon as the next node there is past it. That holds
    /// on level 0 for the key just after `last` (two comparisons, or one at the end of the
    /// list, no search); otherwise on some higher level `b` (then on every level above `b`
    /// as well), and the search goes down from `splice[b]` instead of from the head.
    fn find_splice(&self, w: &mut Writer, target: &Target<'_>) -> u64 {
        let mut comparisons = 0;
        let mut is_before = |e: &Entry| {
            comparisons += 1;
            target.follows(e)
        };
        let (start, top) = if w.last != HEAD_NODE && is_before(Self::entry_of(self.node(w.last))) {
            let mut level = 0;
            // A node known to be before the target: the next node on one level is often
            // the next one on the level above too.
            let mut before = NIL;
            while level < MAX_HEIGHT {
                let next = self.link(self.node(w.splice[level]), level).load(Relaxed);
                if next == NIL || (next != before && !is_before(Self::entry_of(self.node(next)))) {
                    break;
                }
                before = next;
                level += 1;
            }
            // Past the top level, the search starts on it from the hint, still before the key.
            (w.splice[level.min(MAX_HEIGHT - 1)], level)
        } else {
            (HEAD_NODE, MAX_HEIGHT)
        };
        let splice = &mut w.splice;
        self.descend(start, 0..top, &mut is_before, |level, x| splice[level] = x);
        comparisons
    }

    /// The first entry at or after the internal key `(key, seq)`.
    pub fn seek(&self, key: &[u8], seq: u64) -> Option<NodeId> {
        let target = Target::new(key, seq);
        let (_, after) = self.descend(HEAD_NODE, 0..MAX_HEIGHT, |e| target.follows(e), |_, _| {});
        NodeId::new(after)
    }

    /// The first entry.
    pub fn first(&self) -> Option<NodeId> {
        NodeId::new(self.node(HEAD_NODE).next[0].load(Acquire))
    }

    /// The last entry (a search: nodes have no links back).
    pub fn last(&self) -> Option<NodeId> {
        NodeId::new(
            self.descend(HEAD_NODE, 0..MAX_HEIGHT, |_| true, |_, _| {})
                .0,
        )
    }

    /// The entry after `node`.
    pub fn next(&self, node: NodeId) -> Option<NodeId> {
        NodeId::new(self.node(node.index()).next[0].load(Acquire))
    }

    /// Appends to `out` the entries just before `end` (the end of the list for `None`),
    /// in order: from the last node before `end` on `level` (or the first node) up to the
    /// one before `end`, about `4^level` of them. A cursor moving backward takes them as a
    /// stack, so that one search serves many steps back. Appends nothing when `end` is the
    /// first entry.
    pub fn entries_before(&self, end: Option<NodeId>, level: usize, out: &mut Vec<NodeId>) {
        let levels = level.min(MAX_HEIGHT - 1)..MAX_HEIGHT;
        let (from, _) = match end {
            Some(end) => {
                let e = Self::entry_of(self.node(end.index()));
                let target = Target::new(e.key(), e.seq());
                self.descend(HEAD_NODE, levels, |x| target.follows(x), |_, _| {})
            }
            None => self.descend(HEAD_NODE, levels, |_| true, |_, _| {}),
        };
        let stop = end.map_or(NIL, NodeId::index);
        out.extend(NodeId::new(from));
        let mut at = from;
        loop {
            at = self.node(at).next[0].load(Acquire);
            if at == stop || at == NIL {
                break;
            }
            out.extend(NodeId::new(at));
        }
    }

    /// The entry of `node`: key, sequence number, value (`None` for a tombstone), borrowed
    /// from the list.
    pub fn entry_ref(&self, node: NodeId) -> EntryRef<'_> {
        let e = Self::entry_of(self.node(node.index()));
        EntryRef {
            key: e.key(),
            seq: e.seq(),
            value: e.value(),
        }
    }

    /// Node slots allocated (in whole chunks), and link slots: what the arenas hold.
    pub fn slots(&self) -> (usize, usize) {
        (
            self.nodes.chunks() * self.nodes.chunk_len(),
            self.links.chunks() * self.links.chunk_len(),
        )
    }
}

/// Adds `n` to a counter only the list's writer changes (under its lock): a plain load and
/// store, which loses nothing with one writer, where `fetch_add` would be a locked
/// instruction. Readers load it at any time.
fn add_as_writer(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed) + n, Relaxed);
}
