//! The engine's options: the `kv --set NAME=VALUE` names, their defaults, and their checks.
//!
//! The defaults are LevelDB's shape scaled to a small machine: a 4 MiB memtable, 2 MiB
//! tables, 10 MiB in L1 and ten times more on each level below, compaction of L0 at 4 tables,
//! writes slowed at 8 and stopped at 12, 10 filter bits per key, 4 KiB blocks with a restart
//! point every 16 entries, no compression, and a 64 MiB block cache. Shrink them
//! (`--set memtable_bytes=64K --set level1_bytes=256K`) to watch flushes and compactions
//! happen on a small data set.

use kv_shared::{Error, OptionDoc, Options, Result};

use crate::table::compression::Compression;

/// Every option the engine accepts.
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "memtable_bytes",
        default: "4M",
        doc: "memtable memory (entries, their nodes and allocations) at which it is frozen and flushed to an L0 table",
    },
    OptionDoc {
        name: "table_bytes",
        default: "2M",
        doc: "size at which compaction starts a new output table",
    },
    OptionDoc {
        name: "level1_bytes",
        default: "10M",
        doc: "target size of L1; level N+1's target is level_ratio times level N's",
    },
    OptionDoc {
        name: "level_ratio",
        default: "10",
        doc: "size ratio between consecutive levels (fan-out), at least 2",
    },
    OptionDoc {
        name: "dynamic_levels",
        default: "true",
        doc: "size levels from the last one up (L6 holds ~90% of the data, L0 compacts into the first level with a target; RocksDB's level_compaction_dynamic_level_bytes); false: fixed targets from level1_bytes down",
    },
    OptionDoc {
        name: "l0_trigger",
        default: "4",
        doc: "number of L0 tables that triggers a compaction into L1",
    },
    OptionDoc {
        name: "l0_slowdown",
        default: "8",
        doc: "number of L0 tables from which each write is delayed by 1 ms",
    },
    OptionDoc {
        name: "l0_stop",
        default: "12",
        doc: "number of L0 tables at which writes wait for compaction",
    },
    OptionDoc {
        name: "bloom_bits_per_key",
        default: "10",
        doc: "Bloom filter bits per key in each table (1 to 64)",
    },
    OptionDoc {
        name: "block_bytes",
        default: "4K",
        doc: "target size of a table's data blocks",
    },
    // Compaction policy (see `crate::compaction`).
    OptionDoc {
        name: "compaction",
        default: "leveled",
        doc: "compaction policy: leveled (levels of growing size) or tiered (size-tiered sorted runs)",
    },
    OptionDoc {
        name: "seek_compaction",
        default: "true",
        doc: "leveled: a table that reads keep passing through on their way to an older version (one per 16 KiB of it, at least 100) is merged into the level below (LevelDB's allowed_seeks)",
    },
    OptionDoc {
        name: "tiered_max_runs",
        default: "6",
        doc: "tiered: sorted runs allowed before a compaction merges some (at least 2)",
    },
    OptionDoc {
        name: "tiered_size_ratio",
        default: "20",
        doc: "tiered: a run joins a merge of newer runs if it is at most this percent larger than their sum",
    },
    OptionDoc {
        name: "tiered_max_space_amp",
        default: "200",
        doc: "tiered: merge every run once the newer runs hold this percent of the oldest run's bytes",
    },
    // Writes (see `crate::group_commit`).
    OptionDoc {
        name: "sync_writes",
        default: "false",
        doc: "fsync the WAL before each write group returns (one fsync shared by the group)",
    },
    OptionDoc {
        name: "wal_bytes_per_sync",
        default: "1M",
        doc: "a background thread syncs the WAL each time this much more was appended, so the sync at a memtable switch is short (0: off)",
    },
    // Blocks and the block cache (see `crate::table::block`, `crate::block_cache`).
    OptionDoc {
        name: "restart_interval",
        default: "16",
        doc: "entries between restart points in a data block (at least 1; 1 = no prefix compression)",
    },
    OptionDoc {
        name: "compression",
        default: "none",
        doc: "per-block compression of new tables: none or lz4 (kept only where it saves 1/8)",
    },
    OptionDoc {
        name: "block_cache_bytes",
        default: "64M",
        doc: "memory for the open tables' indexes and filters and recently read data blocks (0: no cache)",
    },
];

/// How compaction shapes the tree: the `compaction` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionStyle {
    /// Levels of growing target size, compacted a table at a time ([`crate::compaction::leveled`]).
    Leveled,
    /// Sorted runs merged when there are too many ([`crate::compaction::tiered`]).
    Tiered,
}

/// The options, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsmOptions {
    /// See [`OPTIONS`].
    pub memtable_bytes: usize,
    /// See [`OPTIONS`].
    pub table_bytes: u64,
    /// See [`OPTIONS`].
    pub level1_bytes: u64,
    /// See [`OPTIONS`].
    pub level_ratio: u64,
    /// See [`OPTIONS`].
    pub dynamic_levels: bool,
    /// See [`OPTIONS`].
    pub l0_trigger: usize,
    /// See [`OPTIONS`].
    pub l0_slowdown: usize,
    /// See [`OPTIONS`].
    pub l0_stop: usize,
    /// See [`OPTIONS`].
    pub bloom_bits_per_key: usize,
    /// See [`OPTIONS`].
    pub block_bytes: usize,
    /// See [`OPTIONS`].
    pub compaction: CompactionStyle,
    /// See [`OPTIONS`].
    pub seek_compaction: bool,
    /// See [`OPTIONS`].
    pub tiered_max_runs: usize,
    /// See [`OPTIONS`].
    pub tiered_size_ratio: u64,
    /// See [`OPTIONS`].
    pub tiered_max_space_amp: u64,
    /// See [`OPTIONS`].
    pub sync_writes: bool,
    /// See [`OPTIONS`].
    pub wal_bytes_per_sync: u64,
    /// See [`OPTIONS`].
    pub restart_interval: usize,
    /// See [`OPTIONS`].
    pub compression: Compression,
    /// See [`OPTIONS`].
    pub block_cache_bytes: u64,
}

impl LsmOptions {
    /// Parses and checks the options (unknown names are refused by the caller first).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a value that does not parse or is out of range.
    pub fn parse(options: &Options) -> Result<LsmOptions> {
        let o = LsmOptions {
            memtable_bytes: options.get_or("memtable_bytes", 4 << 20)?,
            table_bytes: options.get_or("table_bytes", 2 << 20)?,
            level1_bytes: options.get_or("level1_bytes", 10 << 20)?,
            level_ratio: options.get_or("level_ratio", 10)?,
            dynamic_levels: options.get_or("dynamic_levels", true)?,
            l0_trigger: options.get_or("l0_trigger", 4)?,
            l0_slowdown: options.get_or("l0_slowdown", 8)?,
            l0_stop: options.get_or("l0_stop", 12)?,
            bloom_bits_per_key: options.get_or("bloom_bits_per_key", 10)?,
            block_bytes: options.get_or("block_bytes", 4 << 10)?,
            compaction: match options.get_raw("compaction").unwrap_or("leveled") {
                "leveled" => CompactionStyle::Leveled,
                "tiered" => CompactionStyle::Tiered,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "lsm option compaction must be leveled or tiered, not {other:?}"
                    )));
                }
            },
            seek_compaction: options.get_or("seek_compaction", true)?,
            tiered_max_runs: options.get_or("tiered_max_runs", 6)?,
            tiered_size_ratio: options.get_or("tiered_size_ratio", 20)?,
            tiered_max_space_amp: options.get_or("tiered_max_space_amp", 200)?,
            sync_writes: options.get_or("sync_writes", false)?,
            wal_bytes_per_sync: options.get_or("wal_bytes_per_sync", 1 << 20)?,
            restart_interval: options.get_or("restart_interval", 16)?,
            compression: options.get_or("compression", Compression::None)?,
            block_cache_bytes: options.get_or("block_cache_bytes", 64 << 20)?,
        };
        let bad = |what: &str| Err(Error::InvalidArgument(format!("lsm option {what}")));
        if o.memtable_bytes == 0 || o.table_bytes == 0 || o.level1_bytes == 0 || o.block_bytes == 0
        {
            return bad("sizes must be at least 1 byte");
        }
        if o.level_ratio < 2 {
            return bad("level_ratio must be at least 2");
        }
        if !(1 <= o.l0_trigger && o.l0_trigger <= o.l0_slowdown && o.l0_slowdown <= o.l0_stop) {
            return bad("needs 1 <= l0_trigger <= l0_slowdown <= l0_stop");
        }
        if o.restart_interval == 0 {
            return bad("restart_interval must be at least 1");
        }
        if !(1..=64).contains(&o.bloom_bits_per_key) {
            return bad("bloom_bits_per_key must be 1 to 64");
        }
        if o.tiered_max_runs < 2 {
            return bad("tiered_max_runs must be at least 2");
        }
        if o.tiered_max_space_amp == 0 {
            return bad("tiered_max_space_amp must be at least 1 percent");
        }
        Ok(o)
    }

    /// The fixed target size of `level` (1 to 5; L0 is sized by file count, L6 has no
    /// target), as `dynamic_levels=false` uses it; with dynamic levels the targets follow
    /// the last level's size ([`crate::compaction::leveled::targets`]).
    pub fn level_target(&self, level: usize) -> u64 {
        let mut target = self.level1_bytes;
        for _ in 1..level {
            target = target.saturating_mul(self.level_ratio);
        }
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_format_options() {
        let defaults = LsmOptions::parse(&Options::new()).unwrap();
        assert_eq!(
            (defaults.restart_interval, defaults.compression),
            (16, Compression::None)
        );
        let set = LsmOptions::parse(
            &Options::new()
                .set("restart_interval", 1)
                .set("compression", "lz4"),
        )
        .unwrap();
        assert_eq!(
            (set.restart_interval, set.compression),
            (1, Compression::Lz4)
        );
        assert!(LsmOptions::parse(&Options::new().set("restart_interval", 0)).is_err());
        assert!(LsmOptions::parse(&Options::new().set("compression", "zstd")).is_err());
    }
}
