//! The memtable's filter: a Bloom filter that fills as the memtable does, so that a `get`
//! of a key the memtable does not hold skips the skiplist search.
//!
//! After a large fill, the memtable holds only the last few megabytes written, and almost
//! every `get` misses it: yet a skiplist search touches about `log2(n)` nodes scattered
//! through memory (some 15 cache misses for the 25 000 entries of a 4 MiB memtable), on
//! the active memtable and again on an immutable one waiting for its flush. A filter
//! answers "certainly not here" from one cache line. (RocksDB offers the same thing as
//! `memtable_whole_key_filtering`.)
//!
//! It is a *blocked* Bloom filter, probed as the tables' filters are
//! ([`crate::bloom::block_probes`]): the key's [`crate::bloom::hash`] picks one 64-byte
//! block (512 bits, one cache line), and all [`PROBES`] probes fall inside it, so a check
//! costs one memory access instead of one per probe. That raises the false-positive rate a
//! little over a plain filter with the same bits (about 1 % at the 10 bits per expected
//! key it is sized for), which costs only a skiplist search.
//!
//! The bits are atomic words, read by any number of readers without a lock and set by the
//! memtable's one writer, under the skiplist's writer lock ([`SkipList::insert_all`]):
//! with one writer, a plain load and store of each changed word loses no bit, where an
//! atomic `fetch_or` would be a locked instruction that also holds up every memory access
//! after it (measured below). The writer sets a key's bits **before** it links the key into
//! the skiplist (a `Release` store that readers' `Acquire` loads pair with) and before it
//! publishes the key's sequence number (a `SeqCst` store that readers load before they
//! look), so a reader that may see a version of the key also sees its bits. The filter
//! lives only in memory: nothing of it is written to disk.
//!
//! [`SkipList::insert_all`]: crate::skiplist::SkipList::insert_all

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::bloom::{BLOCK_BYTES, block_probes};

/// Probes per key (the best number for 10 bits per key, as for table filters).
pub const PROBES: u8 = 6;
/// Filter bits per key the memtable is expected to hold.
pub const BITS_PER_KEY: usize = 10;
/// Words (of 64 bits) per block: one 64-byte cache line.
const BLOCK_WORDS: usize = BLOCK_BYTES / 8;
/// Bits per block.
const BLOCK_BITS: u64 = (BLOCK_BYTES * 8) as u64;

/// A concurrent, in-memory, blocked Bloom filter over the keys of one memtable.
#[derive(Debug)]
pub struct MemtableFilter {
    words: Box<[AtomicU64]>,
    blocks: u64,
}

impl MemtableFilter {
    /// A filter sized for `expected_keys` keys (at least one block).
    pub fn new(expected_keys: usize) -> MemtableFilter {
        let blocks = (expected_keys.saturating_mul(BITS_PER_KEY) as u64)
            .div_ceil(BLOCK_BITS)
            .max(1);
        MemtableFilter {
            words: (0..blocks as usize * BLOCK_WORDS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            blocks,
        }
    }

    /// The filter's size in bytes.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// The (word, bit mask) of each probe of the key with hash `h`, all in one block.
    fn probes(&self, h: u64) -> impl Iterator<Item = (usize, u64)> + use<> {
        let (block, bits) = block_probes(h, self.blocks, PROBES);
        let base = block * BLOCK_WORDS;
        bits.map(move |bit| (base + (bit / 64) as usize, 1u64 << (bit % 64)))
    }

    /// Adds the key with hash `h`. Call it from one thread at a time (the memtable calls it
    /// under its skiplist's writer lock): each changed word is loaded and stored back, not
    /// updated atomically, so two concurrent inserts could lose a bit.
    pub fn insert(&self, h: u64) {
        for (word, mask) in self.probes(h) {
            let word = &self.words[word];
            let bits = word.load(Relaxed);
            if bits & mask != mask {
                word.store(bits | mask, Relaxed);
            }
        }
    }

    /// False when the key with hash `h` was certainly never inserted; true when it may
    /// have been.
    pub fn may_contain(&self, h: u64) -> bool {
        self.probes(h)
            .all(|(word, mask)| self.words[word].load(Relaxed) & mask != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bloom::hash;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let filter = MemtableFilter::new(10_000);
        for i in 0..10_000u32 {
            filter.insert(hash(format!("key{i}").as_bytes()));
        }
        for i in 0..10_000u32 {
            assert!(filter.may_contain(hash(format!("key{i}").as_bytes())));
        }
        let false_positives = (0..10_000u32)
            .filter(|i| filter.may_contain(hash(format!("other{i}").as_bytes())))
            .count();
        // About 1 % in theory for a blocked filter at 10 bits per key; 3 % is far off it.
        assert!(false_positives < 300, "{false_positives} false positives");
        assert_eq!(filter.bytes(), (10_000usize * 10).div_ceil(512) * 64);
    }

    #[test]
    fn an_empty_filter_says_no_and_a_tiny_one_still_works() {
        let filter = MemtableFilter::new(0);
        assert_eq!(filter.bytes(), 64);
        assert!(!filter.may_contain(hash(b"a")));
        filter.insert(hash(b"a"));
        assert!(filter.may_contain(hash(b"a")));
    }
}
