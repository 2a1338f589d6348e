//! The engine's running counters, shared by the write path, readers and background threads.
//!
//! They are plain atomics, bumped where the event happens and read by
//! [`crate::LsmTree`]'s `stats`, which reports them in [`kv_shared::Stats`] and its `extra`
//! map (the names there are the field names here).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters since the engine was opened.
#[derive(Debug, Default)]
pub struct Counters {
    /// Key and value bytes of accepted puts, key bytes of deletes.
    pub user_bytes_written: AtomicU64,
    /// Calls to `get`.
    pub gets: AtomicU64,
    /// Data blocks read from disk by `get`.
    pub get_disk_reads: AtomicU64,
    /// Bloom filter checks done by `get` (one per table whose key range holds the key).
    pub bloom_checks: AtomicU64,
    /// Checks the filter answered "maybe" for a table that did not hold the key.
    pub bloom_false_positives: AtomicU64,
    /// Memtables flushed to L0 tables.
    pub flushes: AtomicU64,
    /// Bytes of tables written by flushes.
    pub flush_bytes_written: AtomicU64,
    /// Compactions run (trivial moves included).
    pub compactions: AtomicU64,
    /// Compactions that moved a table down a level without rewriting it.
    pub trivial_moves: AtomicU64,
    /// Compactions chosen because reads spent a table's allowed seeks
    /// ([`crate::seek_compaction`]).
    pub seek_compactions: AtomicU64,
    /// Bytes of tables read by compactions.
    pub compaction_bytes_read: AtomicU64,
    /// Bytes of tables written by compactions.
    pub compaction_bytes_written: AtomicU64,
    /// Tombstones dropped by compactions into the last level that could hold their key.
    pub tombstones_dropped: AtomicU64,
    /// Microseconds writers spent slowed down or stopped, waiting for flushes and compactions.
    pub stall_micros: AtomicU64,
    /// Writes that were slowed down or stopped at least once.
    pub stalled_writes: AtomicU64,
    /// Write groups committed: WAL records appended by writes.
    pub write_groups: AtomicU64,
    /// Writes (puts, deletes, batches) committed in those groups.
    pub grouped_writes: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// The counters that statistics report in their `extra` map, by name, read now. (The
    /// others, `user_bytes_written`, `gets` and `get_disk_reads`, have fields of their own
    /// in [`kv_shared::Stats`].)
    pub fn extra(&self) -> [(&'static str, u64); 14] {
        [
            ("flushes", &self.flushes),
            ("flush_bytes_written", &self.flush_bytes_written),
            ("compactions", &self.compactions),
            ("trivial_moves", &self.trivial_moves),
            ("seek_compactions", &self.seek_compactions),
            ("compaction_bytes_read", &self.compaction_bytes_read),
            ("compaction_bytes_written", &self.compaction_bytes_written),
            ("tombstones_dropped", &self.tombstones_dropped),
            ("stall_micros", &self.stall_micros),
            ("stalled_writes", &self.stalled_writes),
            ("write_groups", &self.write_groups),
            ("grouped_writes", &self.grouped_writes),
            ("bloom_checks", &self.bloom_checks),
            ("bloom_false_positives", &self.bloom_false_positives),
        ]
        .map(|(name, counter)| (name, Counters::get(counter)))
    }
}
