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
//! ## Index and filter blocks are pinned, and charged to the budget
//!
//! A table's index and filter are read when it is opened and stay in memory, *pinned*, for
//! as long as the table is open ([`crate::table::Table`]): every `get` costs at most one
//! block lookup, and a burst of data blocks never evicts the index that says where they
//! are. LevelDB pins them too, outside its cache's budget; but their memory grows with the
//! data (about one index entry per 4 KiB block and 10 filter bits per key), so a store much
//! larger than the cache would outgrow any budget. So the budget pays for them: an open
//! table holds a [`Charge`] of its index's and filter's bytes, and the cache keeps data
//! blocks only in what is left (`block_cache_bytes` minus the charges). RocksDB reaches the
//! same bound another way, with `cache_index_and_filter_blocks`: there they are ordinary
//! cache entries, and an evicted one costs a read. The engine reports the charged memory as
//! `table_index_bytes` and `table_filter_bytes` in its statistics, beside
//! `block_cache_bytes` (data blocks held now), `block_cache_charged_bytes` and
//! `block_cache_capacity` (the whole budget).
//!
//! ## Who fills it
//!
//! `get` and scans insert the blocks they read. Compaction reads its input tables through
//! the cache (a block already there is not read again) but does not insert: its inputs are
//! about to be deleted, and filling the cache with them would evict the blocks readers use
//! (RocksDB's `fill_cache = false`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

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
    /// Bytes charged to the budget by memory held outside the cache ([`Charge`]); the
    /// cache's own capacity is `capacity` minus this. A mutex, not an atomic: the sum and
    /// the capacity set from it change together.
    charged: Mutex<u64>,
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
    /// Bytes charged to the budget by memory outside the cache (the open tables' indexes
    /// and filters): the data blocks get the rest.
    pub charged_bytes: u64,
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
            charged: Mutex::new(0),
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

    /// Charges `bytes` of memory held outside the cache to its budget until the returned
    /// [`Charge`] is dropped: the cache evicts data blocks to stay within what is left. A
    /// cache with no budget (`0`) charges nothing.
    pub fn charge(self: &Arc<Self>, bytes: u64) -> Charge {
        let bytes = if self.cache.is_some() { bytes } else { 0 };
        self.adjust_charge(|charged| charged + bytes);
        Charge {
            cache: self.clone(),
            bytes,
        }
    }

    /// Sets the charged bytes to `change(charged)`, and the cache's capacity to what is left.
    fn adjust_charge(&self, change: impl FnOnce(u64) -> u64) {
        let Some(cache) = &self.cache else { return };
        let mut charged = self.charged.lock().unwrap_or_else(PoisonError::into_inner);
        *charged = change(*charged);
        cache.set_capacity(self.capacity.saturating_sub(*charged));
    }

    /// Counters and current use.
    pub fn stats(&self) -> BlockCacheStats {
        BlockCacheStats {
            charged_bytes: *self.charged.lock().unwrap_or_else(PoisonError::into_inner),
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            inserted_bytes: self.inserted_bytes.load(Relaxed),
            used_bytes: self.cache.as_ref().map_or(0, Cache::weight),
            capacity: self.capacity,
        }
    }
}

/// Memory held outside a [`BlockCache`] and charged to its budget (see the [module
/// documentation](self)), until dropped.
#[derive(Debug)]
pub struct Charge {
    cache: Arc<BlockCache>,
    bytes: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        let bytes = self.bytes;
        self.cache
            .adjust_charge(|charged| charged.saturating_sub(bytes));
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
    fn charges_leave_the_data_blocks_what_is_left() {
        let budget = 64 * (1000 + ENTRY_OVERHEAD);
        let cache = Arc::new(BlockCache::new(budget));
        let fill = |from: u64| {
            for offset in from..from + 200 {
                cache.insert(3, offset * 1000, block(1, 1000));
            }
        };
        fill(0);
        assert!(cache.stats().used_bytes > budget / 2);
        let charge = cache.charge(budget / 2);
        let held = |c: &BlockCache| (c.stats().used_bytes, c.stats().charged_bytes);
        assert!(cache.stats().used_bytes <= budget / 2, "{:?}", held(&cache));
        let everything = cache.charge(budget);
        assert_eq!(cache.stats().charged_bytes, budget + budget / 2);
        fill(1000);
        assert_eq!(held(&cache), (0, budget + budget / 2));
        drop((charge, everything));
        fill(2000);
        assert!(cache.stats().used_bytes > budget / 2, "{:?}", held(&cache));
        assert_eq!(cache.stats().charged_bytes, 0);
    }

    #[test]
    fn zero_budget_holds_nothing() {
        let cache = BlockCache::new(0);
        cache.insert(1, 0, block(1, 10));
        assert_eq!(cache.get(1, 0), None);
        let cache = Arc::new(cache);
        let _charge = cache.charge(100);
        assert_eq!(cache.stats(), BlockCacheStats::default());
    }
}
