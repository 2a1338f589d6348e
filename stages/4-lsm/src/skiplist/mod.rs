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
//! The writer inserts a whole **write group** at a time ([`SkipList::insert_ops`]): the ops
//! of a group (a batch, or the batches of several writers, [`crate::group_commit`]) as its
//! WAL record holds them, op `i` with sequence number `first + i`. A single insert is a
//! group of one.
//!
//! ## One writer, readers without locks
//!
//! The engine already lets one thread at a time write to a memtable (the leader of a write
//! group, holding the writer lock; recovery replays a log from one thread), so this list
//! takes writers one at a time too, behind a [`Mutex`] that is never contended in the
//! engine; it is taken once a group, not once an op. That makes the writer's job simple: it
//! never races another writer for a link. It fills the new node completely (its entry, the
//! block the entry points into, and its own links to its successors), and only then
//! **publishes** it: it stores the node's index into its predecessor's link on level 0,
//! then on level 1, and so on, each store with `Release` ordering. A reader loads every
//! link with `Acquire`, so when it sees a new node it sees everything written before the
//! link was, in the node and in its block: a reader meets complete nodes or none. A reader
//! never waits and never retries; it may miss a node published while it walks, which for
//! the engine is fine: that node's sequence number is above every reader's snapshot.
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
//!  entry, set once (48 bytes):
//!    head       the key's first 16 bytes, zero-padded (all of a short key)
//!    trailer    sequence number << 8 | kind
//!    key_len, tower (where the node's links of levels 2 and up start)
//!    block, key_at, value_at, value_len -+
//!                                        v
//!  blocks: Arena<OnceLock<Box<[u8]>>>, one slot (24 bytes) a write group
//!  +---+----------------------------------------------------------------------+
//!  | 0 | 1 16 key 100 value | 1 16 key 100 value | ... | 0 16 key    1,000 ops  |
//!  | 1 | 1 3 abc 1 x                                           a single put     |
//!  |...|                                                                        |
//!  +---+----------------------------------------------------------------------+
//!        kind, key length, key, [value length, value]: the batch ops format
//! ```
//!
//! The ops of a write group already sit back to back in one buffer, in the format of the
//! group's WAL record ([`kv_shared::batch`]). The writer copies that buffer once into a
//! **block**, one allocation for the whole group, puts the block in a slot of a third
//! arena, and has each of the group's entries point into it: `block` is the slot's index,
//! `key_at` where the entry's key starts, `value_at` and `value_len` where a put's value
//! lies (right after the key, behind its length, a varint). Keeping the value's place in
//! the node, rather than reading its length from the block, means that reading an entry
//! (which a scan's merge does several times a step) touches the block's bytes only for a
//! key longer than the head. The slot is a
//! [`OnceLock`], set before the first node pointing into the block is published (a group
//! none of whose ops is added, every one a duplicate, keeps no block). The ops were
//! checked whole where they were made (a [`WriteBatch`](kv_shared::WriteBatch) checks
//! each op, recovery the whole record), so the writer reads them with bounds checks only;
//! readers find value lengths with the same reader, so both agree on where a value lies.
//!
//! The search reads a node's key head and its links, and both sit in the node's cache
//! line: moving through the list costs one cache miss a node, not one for the node and
//! another for its key. Keys of up to 16 bytes live there whole; two longer keys compare
//! past their heads only when the heads are equal (the same trick as the tables'
//! [`crate::key::key_head`]), and only then is the rest of the key read from the entry's
//! block. Levels 0 and 1 have their links in the node, since every walk follows them; the
//! links of levels 2 and up (one node in 16 has any) sit in the `links` arena, a run of
//! slots per tower that never crosses a chunk, so that one lookup finds it. The entry
//! sits in a [`OnceLock`]: the writer sets it once; a reader who reached the node through
//! a link finds it set.
//!
//! The blocks arena has chunks of the same number of slots as the others (1,024 in a
//! 32 MiB memtable, 24 KiB of block slots), which suits both ends: single puts take a
//! block each, 200,000 of them, as many as nodes; groups of 1,000 take some 200 blocks,
//! in the one chunk allocated first. Either way the slack is at most one chunk.
//!
//! ## What an insert costs
//!
//! * **One allocation a group**: its block, the ops as they are, so each op brings its
//!   kind byte, its lengths and its key along (19 bytes besides the value for a 16-byte key
//!   and a 100-byte value), and a 24-byte slot of the blocks arena. A group of 1,000 shares
//!   both among its entries (a thousandth of an allocation each); a single put pays both
//!   whole. The memtable counts them at what the allocator really takes
//!   ([`crate::memtable`]). The chunks of the arenas come on top, one allocation per
//!   chunk of slots. Nothing is freed until the list is dropped, and then once a group:
//!   the thread that drops a flushed memtable (the flush thread) no longer frees one
//!   allocation an entry, contending for the allocator's lock with the writer.
//! * A node slot (64 bytes) and `height - 2` link slots (4 bytes each) for the one node
//!   in 16 taller than 2.
//! * The search for the predecessors, and `height` link stores. Inserts in key order do
//!   not search from the top, thanks to the **insert hint**: the writer keeps the
//!   predecessors of the last key it inserted (RocksDB calls them the *splice*), across the
//!   ops of a group and from one group to the next. When the next key comes after that one
//!   and before its successor on level 0 (sequential keys; the sorted ops of a batch;
//!   replaying a log of them), those predecessors are the new key's too: no search at all,
//!   two key comparisons. A key a little further on climbs from the hint until a level's
//!   next node is past it, then searches down from there, so the cost grows with the log
//!   of the distance, not of the list. A key before the last one searches from the top.
//!
//! Measured with `examples/memtable_inserts.rs` under `valgrind --tool=callgrind`, 200,000
//! inserts of 16-byte keys and 100-byte values into one memtable, instructions an insert
//! (each run's count less that of the example's `none` mode, so the drop's frees are in):
//!
//! | inserts | in key order | in random order | allocations | memory counted |
//! |---|---|---|---|---|
//! | groups of 1,000 ([`SkipList::insert_ops`]) | 1,012 | 3,360 | 1 a group | 185 bytes |
//! | groups of 1 (a lone `put` in the engine) | 1,688 | 4,037 | 1 | 218 bytes |
//! | before blocks: groups of 1,000, inserted op by op | 1,726 | 3,993 | 1 an op | 178 bytes |
//! | before blocks: groups of 1, the same | 1,757 | 4,024 | 1 | 178 bytes |
//! | before blocks: bare inserts, nothing to read | 1,378 | 3,645 | 1 | 178 bytes |
//!
//! (`memtable_inserts seq|random|none 200000 100 GROUP`. The lines before blocks: the same
//! example on the list as it was, one allocation an entry, its groups read with
//! [`BatchOps`](kv_shared::batch::BatchOps) and inserted op by op, as the engine did.) In a
//! group of 1,000, some 120 of the 1,012 are callgrind's count of copying the block (one a
//! byte; a few cycles on the machine), 300 linking the node, 175 finding its place (two
//! comparisons), 140 the memtable's filter, and some 40 keeping the value's place in the
//! node (which saves each later read of the entry a varint in the block); no `malloc` or
//! `free` is left in an insert.
//! Before blocks, more than half of the 1,378 were the allocator's (the `malloc` of the
//! insert, the `free` of the drop; the example's allocation counter makes both dearer than
//! bare glibc), and the engine added some 350 for reading each op of its group through the
//! checking decoder. A single put now copies its key into its block too and fills a block
//! slot (some 150 instructions: the arena lookup and a [`OnceLock`] set): it still costs
//! one allocation, some 70 instructions fewer than in the engine before, and 40 bytes more
//! memory. ([`Memtable::insert`](crate::memtable::Memtable::insert), which encodes its op
//! into a block first, takes 1,766 and 4,114.) In random order every insert searches (some
//! 30 comparisons) and misses the cache, whatever its group. The general-purpose lock-free
//! skiplist the memtable used before this one (`crossbeam-skiplist`, whose inserts searched
//! from the top and allocated three times: the node, the key, the value) took 3,600 and
//! 4,100 instructions, three allocations and 235 bytes; its random inserts also missed the
//! first-level cache twice as often, since each node it visited sent it to a second
//! allocation for the key.

mod arena;
#[cfg(test)]
mod tests;

use std::cmp::Ordering::{self, Equal, Less};
use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::sync::atomic::{
    AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Mutex, MutexGuard, OnceLock};

use kv_shared::batch;
use kv_shared::framing::varint_len;

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

/// What a node holds, written once before the node is published: 48 bytes.
struct Entry {
    /// The key's first [`KEY_HEAD`] bytes, zero-padded.
    head: [u8; KEY_HEAD],
    /// `seq << 8 | kind`, as [`key::trailer`] packs them.
    trailer: u64,
    key_len: u32,
    /// Index in the links arena of the node's link on level 2; its links on levels 3
    /// and up follow it.
    tower: u32,
    /// Index in the blocks arena of the block that holds the entry's op.
    block: u32,
    /// Where the key starts in that block. A put's value length (a varint) and value
    /// follow the key.
    key_at: u32,
    /// Where a put's value starts in that block, and its length (0 and 0 for a
    /// tombstone): kept here so that reading an entry touches the block's bytes only for
    /// a long key.
    value_at: u32,
    value_len: u32,
}

impl Entry {
    fn seq(&self) -> u64 {
        self.trailer >> 8
    }

    /// The key, from the head when it fits there, else from `block` (the entry's block).
    fn key<'a>(&'a self, block: &'a [u8]) -> &'a [u8] {
        let len = self.key_len as usize;
        if len > KEY_HEAD {
            let at = self.key_at as usize;
            &block[at..at + len]
        } else {
            &self.head[..len]
        }
    }

    /// The value of a put (`None` for a tombstone), read from `block` (the entry's block):
    /// its length, a varint right after the key, then its bytes.
    fn value<'a>(&self, block: &'a [u8]) -> Option<&'a [u8]> {
        if key::split_trailer(self.trailer).1 != Some(Kind::Put) {
            return None;
        }
        let at = self.value_at as usize;
        Some(&block[at..at + self.value_len as usize])
    }
}

/// The varint at offset `at` of `bytes`: its value, and the offset just past it; `None`
/// when it runs off the end or past 64 bits. The writer reads every op of a block with it,
/// and readers the value lengths, so both always agree on where a key or a value lies.
#[inline]
fn varint_at(bytes: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value = 0;
    let mut shift = 0;
    while shift < 64 {
        let byte = *bytes.get(at)?;
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value, at));
        }
        shift += 7;
    }
    None
}

/// A length of `len` bytes at offset `at` of `bytes`: the offset past them, when they
/// are all there.
#[inline]
fn span_end(bytes: &[u8], at: usize, len: u64) -> Option<usize> {
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    (end <= bytes.len()).then_some(end)
}

/// An op found in a block: where its key lies, and its value's length (`None` for a
/// delete).
#[derive(Debug)]
struct OpAt {
    key_at: u32,
    key_len: u32,
    /// A put's value: where it starts and its length; `None` for a delete.
    value: Option<(u32, u32)>,
    /// Where the next op starts.
    end: usize,
}

impl OpAt {
    /// The op at offset `at` of `block`, in the shared batch ops format
    /// ([`kv_shared::batch`]); `None` when it does not decode, or its key lies past 4 GiB
    /// into the block.
    ///
    /// Every block's ops were checked whole by whoever made them (a [`WriteBatch`]'s ops
    /// as it was built, a WAL record's by [`crate::wal::decode`]), so this reads them with
    /// bounds checks only, not [`batch::read_op`]'s checks of every limit: some 30
    /// instructions an op instead of some 300.
    ///
    /// [`WriteBatch`]: kv_shared::WriteBatch
    #[inline]
    fn read(block: &[u8], at: usize) -> Option<OpAt> {
        let kind = *block.get(at)?;
        let (key_len, key_at) = varint_at(block, at + 1)?;
        let key_end = span_end(block, key_at, key_len)?;
        let (value, end) = match kind {
            batch::PUT => {
                let (value_len, value_at) = varint_at(block, key_end)?;
                let end = span_end(block, value_at, value_len)?;
                let value_at = u32::try_from(value_at).ok()?;
                (Some((value_at, u32::try_from(value_len).ok()?)), end)
            }
            batch::DELETE => (None, key_end),
            _ => return None,
        };
        Some(OpAt {
            key_at: u32::try_from(key_at).ok()?,
            key_len: u32::try_from(key_len).ok()?,
            value,
            end,
        })
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
}

/// What [`SkipList::insert_ops`] did with a block's ops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Ops read from the block: all of them, unless one did not decode (then the ones
    /// before it).
    pub ops: u32,
    /// Entries added: the ops read, less those whose internal key the list already held.
    /// The block was kept when this is not 0, dropped when it is.
    pub entries: u32,
    /// Bytes of the keys and values of the ops read.
    pub payload: usize,
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
    /// Slots of the blocks arena taken.
    blocks: u32,
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
    /// The blocks of ops the entries point into, each set once before any node pointing
    /// into it is published.
    blocks: Arena<OnceLock<Box<[u8]>>>,
    len: AtomicUsize,
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

/// A block of one op (a put, or a delete when `value` is `None`) in the shared batch ops
/// format, allocated at its exact length: what a single insert stores.
pub fn op_block(key: &[u8], value: Option<&[u8]>) -> Box<[u8]> {
    let value_part = value.map_or(0, |v| varint_len(v.len() as u64) + v.len());
    let mut op = Vec::with_capacity(1 + varint_len(key.len() as u64) + key.len() + value_part);
    batch::encode_op(&mut op, key, value);
    op.into_boxed_slice()
}

impl SkipList {
    /// An empty list whose arenas are sized for about `expected_len` entries: chunks of an
    /// eighth of them (from 16 to 1024 slots a chunk), and room for twice as many in the
    /// part of the chunk table that one lookup reaches (at least 64 chunks). More entries
    /// only take more chunks, one lookup further. The blocks arena is sized the same way,
    /// for the case of one block an entry (single writes); a list of large write groups
    /// uses one of its chunks for hundreds of blocks.
    pub fn new(expected_len: usize) -> SkipList {
        let chunk_bits = (expected_len / 8).clamp(16, 1024).ilog2();
        let first_bits = ((2 * expected_len) >> chunk_bits)
            .max(64)
            .next_power_of_two()
            .ilog2();
        let list = SkipList {
            nodes: Arena::new(chunk_bits, first_bits),
            links: Arena::new(chunk_bits, first_bits),
            blocks: Arena::new(chunk_bits, first_bits),
            len: AtomicUsize::new(0),
            insert_comparisons: AtomicU64::new(0),
            writer: Mutex::new(Writer {
                nodes: 1,
                links: (MAX_HEIGHT - NODE_LINKS) as u32,
                blocks: 0,
                splice: [HEAD_NODE; MAX_HEIGHT],
                last: HEAD_NODE,
                rng: 0x2545_F491_4F6C_DD1D,
            }),
        };
        // The head: an empty key (no block is ever read for it), its tower at the start of
        // the links arena. A fresh OnceLock: the set succeeds.
        let head = Entry {
            head: [0; KEY_HEAD],
            trailer: key::trailer(0, Kind::Delete),
            key_len: 0,
            tower: 0,
            block: 0,
            key_at: 0,
            value_at: 0,
            value_len: 0,
        };
        let _ = list.nodes.slot(HEAD_NODE).entry.set(head);
        for slot in 0..(MAX_HEIGHT - NODE_LINKS) as u32 {
            list.links.slot(slot);
        }
        list
    }

    /// The bytes a slot of the blocks arena takes, besides the block itself: one a block.
    pub const BLOCK_SLOT_BYTES: usize = std::mem::size_of::<OnceLock<Box<[u8]>>>();

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
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

    /// Block `index`, which a published entry points into.
    fn block(&self, index: u32) -> &[u8] {
        self.blocks
            .get(index)
            .and_then(OnceLock::get)
            .expect("a block is set before any node pointing into it is published")
    }

    /// The key of a published entry (its block is read only for a key longer than the head).
    fn key_of<'a>(&'a self, e: &'a Entry) -> &'a [u8] {
        if e.key_len as usize > KEY_HEAD {
            e.key(self.block(e.block))
        } else {
            e.key(&[])
        }
    }

    /// How the internal key of `e` compares with `target`'s: heads first, and the bytes
    /// past them (read from the entry's block) only when the heads are equal and both
    /// keys go on past them.
    #[inline]
    fn compare(&self, e: &Entry, target: &Target<'_>) -> Ordering {
        let head = u128::from_be_bytes(e.head);
        if head != target.head {
            return head.cmp(&target.head);
        }
        let (len, target_len) = (e.key_len as usize, target.key.len());
        // Equal heads: a key that fits the head is a prefix of the other key.
        let keys = if len <= KEY_HEAD || target_len <= KEY_HEAD {
            len.cmp(&target_len)
        } else {
            self.key_of(e)[KEY_HEAD..].cmp(&target.key[KEY_HEAD..])
        };
        keys.then(target.seq.cmp(&e.seq()))
    }

    /// True when `target` comes after the entry `e`.
    #[inline]
    fn is_before(&self, e: &Entry, target: &Target<'_>) -> bool {
        self.compare(e, target) == Less
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

    /// Adds the entry `(key, seq)` with `value` (`None` is a tombstone), in a block of its
    /// own. Returns false, and adds nothing, when the list already holds that internal key.
    ///
    /// # Panics
    /// As [`SkipList::insert_ops`].
    pub fn insert(&self, key: &[u8], seq: u64, value: Option<&[u8]>) -> bool {
        self.insert_ops(op_block(key, value), 1, seq, |_| {})
            .entries
            == 1
    }

    /// Adds the `count` ops of `block` (in the shared batch ops format,
    /// [`kv_shared::batch`]) as entries, op `i` with sequence number `first_seq + i`, under
    /// one lock of the writer's mutex. Every entry points into the block, which the list
    /// keeps (one slot of its blocks arena) from the first entry added on; when every op
    /// is a duplicate (an internal key the list already holds, which is not added) the
    /// block is dropped. `before_publish` is called with each op's key before its entry
    /// can be seen. Ops past one that does not decode are not read ([`Inserted::ops`]).
    ///
    /// # Panics
    /// When the list already holds 2^32 - 1 entries or blocks (hundreds of gigabytes).
    pub fn insert_ops(
        &self,
        block: Box<[u8]>,
        count: u32,
        first_seq: u64,
        mut before_publish: impl FnMut(&[u8]),
    ) -> Inserted {
        let mut guard = self.lock_writer();
        let w = &mut *guard;
        let mut done = Inserted::default();
        let mut comparisons = 0;
        // The block, until its first entry is linked; from then on, its slot.
        let mut held = block;
        let mut stored: Option<u32> = None;
        let mut at = 0;
        for i in 0..count {
            let bytes = stored.map_or(&*held, |b| self.block(b));
            let Some(op) = OpAt::read(bytes, at) else {
                break;
            };
            let key = &bytes[op.key_at as usize..][..op.key_len as usize];
            at = op.end;
            done.ops += 1;
            done.payload += key.len() + op.value.map_or(0, |(_, len)| len as usize);
            before_publish(key);
            let seq = first_seq.saturating_add(u64::from(i));
            let target = Target::new(key, seq);
            if !self.find_place(w, &target, &mut comparisons) {
                continue;
            }
            let head = target.head.to_be_bytes();
            // The block goes to its slot before the first node pointing into it is linked.
            let block = match stored {
                Some(b) => b,
                None => *stored.insert(self.store_block(w, std::mem::take(&mut held))),
            };
            let kind = if op.value.is_some() {
                Kind::Put
            } else {
                Kind::Delete
            };
            let (value_at, value_len) = op.value.unwrap_or_default();
            let entry = Entry {
                head,
                trailer: key::trailer(seq, kind),
                key_len: op.key_len,
                tower: 0,
                block,
                key_at: op.key_at,
                value_at,
                value_len,
            };
            self.link_node(w, entry);
            done.entries += 1;
        }
        self.insert_comparisons.fetch_add(comparisons, Relaxed);
        self.len.fetch_add(done.entries as usize, Relaxed);
        done
    }

    /// Puts `block` in the next slot of the blocks arena, before any node points into it,
    /// and returns its index.
    fn store_block(&self, w: &mut Writer, block: Box<[u8]>) -> u32 {
        let index = w.blocks;
        w.blocks = index.checked_add(1).expect("at most 2^32 - 1 blocks");
        // A fresh slot: no block was ever set in it.
        let _ = self.blocks.slot(index).set(block);
        index
    }

    /// Sets the writer's splice to the predecessors of `target` (adding the comparisons
    /// made to `comparisons`). Returns false when the list already holds the target's
    /// internal key: then there is nothing to insert, and the hint is dropped.
    fn find_place(&self, w: &mut Writer, target: &Target<'_>, comparisons: &mut u64) -> bool {
        *comparisons += self.find_splice(w, target);
        let after = self.node(w.splice[0]).next[0].load(Relaxed);
        if after != NIL && self.compare(Self::entry_of(self.node(after)), target) == Equal {
            w.last = HEAD_NODE;
            return false;
        }
        true
    }

    /// Links a new node holding `entry` (its tower still to be placed) after the
    /// predecessors in the writer's splice, and makes it the hint.
    fn link_node(&self, w: &mut Writer, mut entry: Entry) {
        let height = w.random_height();
        let tall = height.saturating_sub(NODE_LINKS) as u32;
        let id = w.nodes;
        let tower = self.links.fit_run(w.links, tall);
        w.nodes = id.checked_add(1).expect("at most 2^32 - 1 entries");
        w.links = tower
            .and_then(|t| t.checked_add(tall))
            .expect("at most 2^32 - 1 links");
        entry.tower = w.links - tall;
        // A fresh slot: no entry was ever set in it.
        let node = self.nodes.slot(id);
        let _ = node.entry.set(entry);
        // The node's own links first, then its predecessors' (Release: a reader that
        // sees the node sees it whole, its block too).
        for level in 0..height {
            let next = self.link(self.node(w.splice[level]), level).load(Relaxed);
            match node.next.get(level) {
                Some(link) => link.store(next, Relaxed),
                None => self
                    .links
                    .slot(w.links - tall + (level - NODE_LINKS) as u32)
                    .store(next, Relaxed),
            }
        }
        for level in 0..height {
            self.link(self.node(w.splice[level]), level)
                .store(id, Release);
        }
        w.splice[..height].fill(id);
        w.last = id;
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
            self.is_before(e, target)
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
        let (_, after) = self.descend(
            HEAD_NODE,
            0..MAX_HEIGHT,
            |e| self.is_before(e, &target),
            |_, _| {},
        );
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
                let target = Target::new(self.key_of(e), e.seq());
                self.descend(HEAD_NODE, levels, |x| self.is_before(x, &target), |_, _| {})
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
        let block = self.block(e.block);
        EntryRef {
            key: e.key(block),
            seq: e.seq(),
            value: e.value(block),
        }
    }

    /// Node slots, link slots and block slots allocated (in whole chunks): what the
    /// arenas hold.
    pub fn slots(&self) -> (usize, usize, usize) {
        (
            self.nodes.chunks() * self.nodes.chunk_len(),
            self.links.chunks() * self.links.chunk_len(),
            self.blocks.chunks() * self.blocks.chunk_len(),
        )
    }
}
