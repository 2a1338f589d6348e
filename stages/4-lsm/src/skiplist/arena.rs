//! An append-only array that readers index while one writer grows it: where the skiplist
//! keeps its nodes and its links.
//!
//! A `Vec` cannot be shared that way: growing it moves every element, under the feet of a
//! reader holding a reference. An [`Arena`] never moves anything. It is an array of
//! **chunks** of `2^chunk_bits` slots each, allocated whole when the writer first needs a
//! slot in them and kept until the arena is dropped; slot `i` lives in chunk
//! `i >> chunk_bits`, at `i & (2^chunk_bits - 1)`. Every slot of a new chunk starts as
//! `T::default()`, and the writer fills it through its interior mutability (atomics, a
//! [`OnceLock`]): an arena hands out shared references only.
//!
//! The table of chunks must not move either. Its first `F` entries (a power of two the
//! owner picks, enough for the size it expects) are allocated with the arena; past them,
//! the table goes on in **segments** of doubling size, allocated as they are needed,
//! `F << s` chunks in segment `s`:
//!
//! ```text
//!  first:       [chunk 0 .. chunk F-1]           one lookup: the common case
//!  segments:    [0]: chunks F .. 2F-1
//!               [1]: chunks 2F .. 4F-1
//!               [2]: chunks 4F .. 8F-1   ...    (32 at most: every u32 index)
//!  each chunk:  [2^chunk_bits slots], allocated on first use
//! ```
//!
//! Chunks do not double: the memory an arena holds past what it uses is at most one chunk
//! (its slots all initialised when it is allocated), so the owner picks `chunk_bits` from
//! the size it expects to reach as well.
//!
//! Finding slot `i` in the first chunks costs one [`OnceLock::get`] (an atomic load, no
//! locking) and two array indexings; past them, one more of each. A reader that learned
//! index `i` from the writer through a Release/Acquire pair (the skiplist's links) finds
//! its chunk allocated: the writer allocated it before it published `i`.

use std::sync::OnceLock;

/// Segments of the chunk table past its first part: enough for every `u32` index.
const SEGMENTS: usize = 32;

/// A table of chunks, each allocated on first use.
type Chunks<T> = Box<[OnceLock<Box<[T]>>]>;

/// An append-only array of `T` in chunks (see the module documentation).
pub struct Arena<T> {
    chunk_bits: u32,
    /// `2^chunk_bits - 1`: a slot's place in its chunk is `i & mask`.
    mask: u32,
    /// log2 of the length of `first`.
    first_bits: u32,
    /// The first chunks.
    first: Chunks<T>,
    /// The chunks past those: `first.len() << s` in segment `s`.
    segments: [OnceLock<Chunks<T>>; SEGMENTS],
}

/// Allocates a table of `n` chunks, none of them allocated yet.
fn table<T>(n: usize) -> Chunks<T> {
    (0..n).map(|_| OnceLock::new()).collect()
}

impl<T: Default> Arena<T> {
    /// An empty arena whose chunks hold `2^chunk_bits` slots (`chunk_bits` from 1 to 24),
    /// the first `2^first_bits` of them (`first_bits` from 0 to 16) found in one lookup.
    pub fn new(chunk_bits: u32, first_bits: u32) -> Arena<T> {
        let chunk_bits = chunk_bits.clamp(1, 24);
        let first_bits = first_bits.min(16);
        Arena {
            chunk_bits,
            mask: (1 << chunk_bits) - 1,
            first_bits,
            first: table(1 << first_bits),
            segments: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Slots in one chunk.
    pub fn chunk_len(&self) -> usize {
        1 << self.chunk_bits
    }

    /// The table entry of chunk `c` (past the first ones): its segment, and its place there.
    fn locate_past_first(&self, c: u32) -> (usize, usize) {
        let past = c - (1 << self.first_bits);
        let segment = ((past >> self.first_bits) + 1).ilog2();
        let start = ((1 << segment) - 1) << self.first_bits;
        (segment as usize, (past - start) as usize)
    }

    /// The chunk slot `i` lives in, and its place there; `None` when the chunk was never
    /// allocated.
    #[inline]
    fn chunk(&self, i: u32) -> Option<(&[T], usize)> {
        let c = i >> self.chunk_bits;
        let chunk = match self.first.get(c as usize) {
            Some(chunk) => chunk,
            None => {
                let (segment, at) = self.locate_past_first(c);
                self.segments.get(segment)?.get()?.get(at)?
            }
        };
        Some((chunk.get()?, (i & self.mask) as usize))
    }

    /// Slot `i`, or `None` when its chunk was never allocated.
    #[inline]
    pub fn get(&self, i: u32) -> Option<&T> {
        let (chunk, slot) = self.chunk(i)?;
        chunk.get(slot)
    }

    /// Slot `i` and the slots after it to the end of its chunk, or `None` when its chunk
    /// was never allocated: a run of slots that one lookup reaches.
    #[inline]
    pub fn rest_of_chunk(&self, i: u32) -> Option<&[T]> {
        let (chunk, slot) = self.chunk(i)?;
        chunk.get(slot..)
    }

    /// Where a run of `len` slots (at most a chunk) may start at or after slot `i` without
    /// crossing into the next chunk: `i`, or the start of the next chunk; `None` past the
    /// last `u32` index.
    pub fn fit_run(&self, i: u32, len: u32) -> Option<u32> {
        let in_chunk = i & self.mask;
        if in_chunk + len <= 1 << self.chunk_bits {
            Some(i)
        } else {
            (i - in_chunk).checked_add(1 << self.chunk_bits)
        }
    }

    /// Slot `i`, its chunk (and segment) allocated first if they were not: the writer's
    /// way in.
    pub fn slot(&self, i: u32) -> &T {
        let c = i >> self.chunk_bits;
        let entry = match self.first.get(c as usize) {
            Some(entry) => entry,
            None => {
                let (segment, at) = self.locate_past_first(c);
                let len = 1usize << (self.first_bits as usize + segment);
                &self.segments[segment].get_or_init(|| table(len))[at]
            }
        };
        let chunk = entry.get_or_init(|| (0..self.chunk_len()).map(|_| T::default()).collect());
        &chunk[(i & self.mask) as usize]
    }

    /// Chunks allocated so far.
    pub fn chunks(&self) -> usize {
        let past_first = self.segments.iter().filter_map(OnceLock::get);
        std::iter::once(&self.first)
            .chain(past_first)
            .flat_map(|chunks| chunks.iter())
            .filter(|chunk| chunk.get().is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

    #[test]
    fn slots_are_found_where_the_writer_put_them_across_chunks_and_segments() {
        let arena: Arena<AtomicU32> = Arena::new(2, 1);
        assert!(arena.get(0).is_none(), "nothing allocated yet");
        for i in 0..1000u32 {
            arena.slot(i).store(i + 1, Relaxed);
        }
        for i in 0..1000u32 {
            let found = arena.get(i).map(|s| s.load(Relaxed));
            assert_eq!(found, Some(i + 1), "slot {i}");
        }
        // 1000 slots in chunks of 4: 250 chunks, 2 in the first table, the rest in
        // segments of 2, 4, 8, ... 128 chunks (the last one partly).
        assert_eq!(arena.chunks(), 250);
        assert!(arena.get(1000).is_none(), "chunk 250 was never allocated");
        assert_eq!(arena.rest_of_chunk(6).map(<[_]>::len), Some(2));
        assert_eq!(arena.rest_of_chunk(6).unwrap()[1].load(Relaxed), 8);
        assert!(arena.rest_of_chunk(1000).is_none());
        // The table's boundaries: segment s starts at chunk 2 << s.
        assert_eq!(arena.locate_past_first(2), (0, 0));
        assert_eq!(arena.locate_past_first(3), (0, 1));
        assert_eq!(arena.locate_past_first(4), (1, 0));
        assert_eq!(arena.locate_past_first(8), (2, 0));
        assert_eq!(arena.locate_past_first(15), (2, 7));
        assert_eq!(arena.locate_past_first(16), (3, 0));
        // Runs of slots that fit in a chunk (of 4) stay where they are; others move on.
        assert_eq!(arena.fit_run(4, 4), Some(4));
        assert_eq!(arena.fit_run(5, 3), Some(5));
        assert_eq!(arena.fit_run(5, 4), Some(8));
        assert_eq!(arena.fit_run(7, 0), Some(7));
        assert_eq!(arena.fit_run(u32::MAX - 1, 3), None);
    }

    #[test]
    fn the_last_u32_index_has_a_place() {
        for (chunk_bits, first_bits) in [(1, 0), (1, 16), (10, 0), (24, 16), (4, 6)] {
            let arena: Arena<u8> = Arena::new(chunk_bits, first_bits);
            let last_chunk = u32::MAX >> chunk_bits;
            if last_chunk < 1 << first_bits {
                assert!(arena.first.len() > last_chunk as usize);
                continue;
            }
            let (segment, at) = arena.locate_past_first(last_chunk);
            assert!(segment < SEGMENTS, "{chunk_bits} {first_bits}");
            assert!(at < 1 << (first_bits as usize + segment));
        }
    }
}
