//! The block cache: recently read data blocks, kept in memory within a byte budget.
//!
//! Without it, every `get` that passes a table's filter reads one data block from the file
//! (a `pread` system call, even when the operating system has the page cached), checks its
//! CRC and decompresses it. A read-heavy workload reads the same hot blocks again and again, so
//! the engine keeps the blocks it read, already checked and decoded, in one [`BlockCache`]
//! shared by every table of an open tree. A `get` that finds its block there does no system
//! call, no checksum and no decompression: it only searches the block.
//!
//! * **Key**: the table's file number and the block's offset in the file. File numbers are
//!   never reused, so a key always names the same bytes: when compaction deletes a table,
//!   its blocks are simply never asked for again and age out of the cache.
//! * **Value**: the block's *contents* (what [`crate::table::block::decode`] returns: checked,
//!   decompressed and ready to search), shared as an `Arc`, so a reader keeps using a block even if the cache evicts
//!   it meanwhile.
//! * **Budget**: the `block_cache_bytes` option (default 64 MiB; `0` turns the cache off).
//!   Each entry weighs its contents plus [`ENTRY_OVERHEAD`] bytes of bookkeeping.
//! * **Eviction**: [`quick_cache`]'s policy (a variant of CLOCK-Pro, close to S3-FIFO),
//!   sharded so that concurrent readers rarely meet on one lock. It resists scans: a block
//!   read once by a long scan enters as "cold" and leaves before the blocks `get`s keep
//!   hitting.
//!
//! ## Index and filter blocks are not in this cache
//!
//! A table's index and filter are read when it is opened and stay in memory, *pinned*, for
//! as long as the table is open ([`crate::table::Table`]); they never compete with data
//! blocks for the budget. LevelDB does the same; RocksDB offers both
//! (`cache_index_and_filter_blocks`). Pinning makes every `get` cost at most one block
//! lookup and keeps a burst of data blocks from evicting the index that says where they
//! are; its price is memory that grows with the data (about one index entry per 4 KiB block
//! and 10 filter bits per key) and is not bounded by the cache budget. The engine reports
//! that memory as `table_index_bytes` and `table_filter_bytes` in its statistics, beside
//! `block_cache_bytes` (current use) and `block_cache_capacity`.
//!
//! ## Who fills it
//!
//! `get` and scans insert the blocks they read. Compaction reads its input tables through
//! the cache (a block already there is not read again) but does not insert: its inputs are
//! about to be deleted, and filling the cache with them would evict the blocks readers use
//! (RocksDB's `fill_cache = false`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Bytes counted per cached block on top of its contents: the key, the `Arc`'s counts and
/// the cache's own slot.
pub const ENTRY_OVERHEAD: u64 = 64;

/// Typical size of a block, used only to size the cache's tables up front.
const TYPICAL_BLOCK: u64 = 4096;

/// The contents of one block, checked and ready to search.
pub type BlockContents = Arc<Vec<u8>>;

/// Weighs a cached block by its bytes.
#[derive(Debug, Clone, Copy)]
struct BlockWeighter;

impl Weighter<(u64, u64), BlockContents> for BlockWeighter {
    fn weight(&self, _key: &(u64, u64), block: &BlockContents) -> u64 {
        block.capacity() as u64 + ENTRY_OVERHEAD
    }
}

/// A byte-budgeted cache of data blocks, keyed by (table file number, block offset).
pub struct BlockCache {
    /// `None` when the budget is 0.
    cache: Option<Cache<(u64, u64), BlockContents, BlockWeighter>>,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    inserted_bytes: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What a [`BlockCache`] has done since it was made, and holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockCacheStats {
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not (the block was read from its file).
    pub misses: u64,
    /// Bytes of blocks inserted, overhead included.
    pub inserted_bytes: u64,
    /// Bytes held now, overhead included.
    pub used_bytes: u64,
    /// The budget.
    pub capacity: u64,
}

impl BlockCache {
    /// A cache holding at most `capacity` bytes of blocks; `0` makes a cache that holds
    /// nothing (every lookup misses, nothing is counted).
    pub fn new(capacity: u64) -> BlockCache {
        let cache = (capacity > 0).then(|| {
            let blocks = (capacity / (TYPICAL_BLOCK + ENTRY_OVERHEAD)).max(16);
            Cache::with_weighter(blocks as usize, capacity, BlockWeighter)
        });
        BlockCache {
            cache,
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            inserted_bytes: AtomicU64::new(0),
        }
    }

    /// The block at `offset` in table `table`, if cached. Counts a hit or a miss.
    pub fn get(&self, table: u64, offset: u64) -> Option<BlockContents> {
        let cache = self.cache.as_ref()?;
        let found = cache.get(&(table, offset));
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Relaxed);
        found
    }

    /// Keeps `block`, the contents of the block at `offset` in table `table`, evicting
    /// others if the budget requires it. A block larger than the budget is not kept.
    pub fn insert(&self, table: u64, offset: u64, block: BlockContents) {
        if let Some(cache) = &self.cache {
            let weight = BlockWeighter.weight(&(table, offset), &block);
            self.inserted_bytes.fetch_add(weight, Relaxed);
            cache.insert((table, offset), block);
        }
    }

    /// Counters and current use.
    pub fn stats(&self) -> BlockCacheStats {
        BlockCacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            inserted_bytes: self.inserted_bytes.load(Relaxed),
            used_bytes: self.cache.as_ref().map_or(0, Cache::weight),
            capacity: self.capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(byte: u8, len: usize) -> BlockContents {
        Arc::new(vec![byte; len])
    }

    #[test]
    fn hits_misses_and_keys() {
        let cache = BlockCache::new(1 << 20);
        assert_eq!(cache.get(1, 0), None);
        cache.insert(1, 0, block(7, 100));
        assert_eq!(cache.get(1, 0).as_deref(), Some(&vec![7; 100]));
        // Same offset, another table: another block.
        assert_eq!(cache.get(2, 0), None);
        let s = cache.stats();
        assert_eq!((s.hits, s.misses), (1, 2));
        assert_eq!(s.inserted_bytes, 100 + ENTRY_OVERHEAD);
        assert_eq!(s.used_bytes, 100 + ENTRY_OVERHEAD);
        assert_eq!(s.capacity, 1 << 20);
    }

    #[test]
    fn stays_within_its_budget() {
        let budget = 64 * (1000 + ENTRY_OVERHEAD);
        let cache = BlockCache::new(budget);
        for offset in 0..1000 {
            cache.insert(9, offset * 1000, block(offset as u8, 1000));
            assert!(cache.stats().used_bytes <= budget);
        }
        let held = (0..1000)
            .filter(|&o| cache.get(9, o * 1000).is_some())
            .count();
        assert!(held > 0 && held <= 64, "{held} blocks held");
        // Every block held is the one inserted under its key.
        for offset in 0..1000u64 {
            if let Some(b) = cache.get(9, offset * 1000) {
                assert_eq!(b[0], offset as u8);
            }
        }
    }

    #[test]
    fn zero_budget_holds_nothing() {
        let cache = BlockCache::new(0);
        cache.insert(1, 0, block(1, 10));
        assert_eq!(cache.get(1, 0), None);
        assert_eq!(cache.stats(), BlockCacheStats::default());
    }
}
