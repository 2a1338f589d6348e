//! # Peers: production engines run beside the course's stages
//!
//! The course's engines are measured against engines people ship: [fjall] (an LSM tree in
//! Rust), [sled] (a Bw-tree-like log-structured store in Rust), [redb] (a copy-on-write
//! B-tree in Rust) and RocksDB (the `rocksdb` crate over the C++ library). Each peer gets a
//! small adapter that implements [`kv_shared::Engine`], so the same `kv` commands, `kvbench`
//! workloads and conformance suite drive it as drive the stages.
//!
//! None of them is compiled by default. Two cargo features of `kvbench` build them:
//!
//! | feature | peers | build needs |
//! |---|---|---|
//! | `peers` | fjall, sled, redb | nothing beyond cargo |
//! | `rocksdb` | RocksDB | clang's libclang (Debian: `libclang-dev clang`); compiles the C++ library, about 20 minutes on 2 cores |
//!
//! A build without them still knows their names: [`PEERS`] lists every peer with the feature
//! that builds it, and [`not_built`] gives the ones this build lacks, so `kv engines` and
//! `kvbench` can say "not built, enable with --features ...".
//!
//! ## Configured like the stages
//!
//! Every adapter is set up to be compared fairly with the course's engines, and says exactly
//! how in its module doc and in its [`Peer::settings`] line (the report prints it):
//!
//! * **No fsync per write.** `put` and `delete` return without forcing anything to stable
//!   storage; `sync` is the peer's own durable flush. Whether an acknowledged write survives a
//!   kill of the process *without* `sync` differs: it does for fjall and RocksDB (their logs
//!   are handed to the OS on every write, the course's contract), not for sled and redb (they
//!   keep recent writes in memory until their next flush or durable commit).
//! * **Bloom filters at 10 bits per key** where the peer has them (fjall, RocksDB), settable
//!   with the stages' own option name `bloom_bits_per_key`.
//! * **No compression**, as none of the stages compresses.
//! * **Default cache sizes**, settable with `cache_bytes`.
//! * Options named like the stages' (`memtable_bytes`, `block_bytes`, `bloom_bits_per_key`)
//!   so `kvbench --set memtable_bytes=4M` sets the stages and the peers alike.
//!
//! ## How an adapter is built
//!
//! Every peer is one [`adapter::PeerEngine`] over the peer's own [`adapter::PeerStore`]. The
//! engine does what all peers share: the course's store directory (the `LOCK` file and the
//! `ENGINE` marker naming the peer, as for every stage, with the peer's own files in a
//! subdirectory named after it: `DIR/fjall/`, `DIR/sled/`, `DIR/redb/`, `DIR/rocksdb/`),
//! the course's limits, the counters, and scans as walks of a cursor. The store makes the
//! peer's own calls, and brings its batches and snapshots:
//!
//! | peer | a batch (`write`, atomic) | a cursor (a snapshot) |
//! |---|---|---|
//! | fjall | one fjall `WriteBatch` (one sequence number) | a fjall `Snapshot`, its ranges walked by a [`range_cursor::RangeCursor`] |
//! | sled | one `sled::Batch` (`apply_batch`) | sled has no snapshots: its ranges as they are, corrected by an undo log the writers keep (`sled_snapshot`), walked by a `RangeCursor` |
//! | redb | one write transaction | a read transaction, its ranges walked by a `RangeCursor` |
//! | RocksDB | one RocksDB `WriteBatch` | RocksDB's raw iterator, which reads at the sequence number of its creation |
//!
//! A bulk load ([`kv_shared::Engine::load`]) in any order goes in by batches of 1,000 pairs,
//! then `sync`, the course's default. A load promised sorted reaches the store's
//! [`adapter::PeerStore::load_sorted`], checked and with equal keys collapsed
//! ([`adapter::SortedPairs`]); fjall and RocksDB write tables from it themselves:
//!
//! | peer | a sorted load |
//! |---|---|
//! | fjall | fjall's ingestion: `Keyspace::start_ingestion`, each pair written into new tables, `finish` adds them to level 0 in one step |
//! | sled, redb | batches of 1,000 pairs, then `sync` (neither has an ingestion API) |
//! | RocksDB | `SstFileWriter` tables in a scratch directory inside the store, then `IngestExternalFile`, which moves them into the tree |
//!
//! ## What the statistics mean for a peer
//!
//! The peers do not go through [`kv_shared::Fs`], so the adapters fill [`kv_shared::Stats`]
//! from what can be observed ([`counters`] holds the shared bookkeeping):
//!
//! | figure | how |
//! |---|---|
//! | `user_bytes_written`, `gets` | counted by the adapter, exactly as the stages count them |
//! | `live_keys`, `live_data_bytes` | a full scan in `stats()` (exact, costs one pass over the store) |
//! | `disk_bytes`, `file_count` | the store directory's files, recursively ([`dir_usage`]) |
//! | `disk_bytes_written` | RocksDB: its own statistics (WAL, flush and compaction bytes). Others: the growth of this process's `wchar` in `/proc/self/io` since open, which counts every byte the *process* hands to `write` calls — exact when one engine runs at a time, as in `kvbench`, and marked by `extra["disk_bytes_written_from_os"] = 1` (a report's check of the engine's count against `wchar` is then no check) |
//! | `get_disk_reads` | fjall: blocks its `get`s loaded from files rather than its cache (lsm-tree's metrics). RocksDB: blocks its `get`s read from files (its per-thread perf context, `block_read_count`). sled, redb: unknown — 0, with `extra["read_amp_unknown"] = 1` so a report prints "n/a" |
//!
//! Peers have no `inspect`: their files are their own formats, not the course's.
//!
//! [fjall]: https://docs.rs/fjall
//! [sled]: https://docs.rs/sled
//! [redb]: https://docs.rs/redb

pub mod adapter;
pub mod counters;
pub mod dir_usage;
pub mod range_cursor;

#[cfg(feature = "peers")]
pub mod fjall;
#[cfg(feature = "peers")]
pub mod redb;
#[cfg(feature = "rocksdb")]
pub mod rocksdb;
#[cfg(feature = "peers")]
pub mod sled;
#[cfg(feature = "peers")]
pub mod sled_snapshot;

/// One production peer: its name, what it is, how the adapter configures it, and the cargo
/// feature that builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The engine name (`kv --engine`, `kvbench --engines`).
    pub name: &'static str,
    /// One line on what the engine is.
    pub summary: &'static str,
    /// One line on how the adapter configures it (durability, filters, compression, caches).
    pub settings: &'static str,
    /// True when an acknowledged `put` or `delete` survives a kill of the process without
    /// `sync` (the course's contract). False for sled and redb as configured here: a
    /// `recovery` workload that kills the process finds their latest writes missing, by
    /// design, not by a bug.
    pub survives_kill: bool,
    /// The `kvbench` cargo feature that builds it.
    pub feature: &'static str,
    /// True when this build includes it.
    pub built: bool,
}

impl Peer {
    /// What a tool prints for a peer this build lacks:
    /// `fjall: not built, enable with --features peers`.
    pub fn not_built_line(&self) -> String {
        format!(
            "{}: not built, enable with --features {}",
            self.name, self.feature
        )
    }
}

/// fjall, behind the `peers` feature (`fjall::Fjall` when built).
pub const FJALL: Peer = Peer {
    name: "fjall",
    summary: "peer: fjall 3, a leveled LSM tree in Rust (journal, memtable, block-based tables)",
    settings: "journal handed to the OS on every write, no fsync: survives a process kill (`sync` fsyncs the journal); bloom filters on every level; no compression; leveled compaction; `compact` flushes the memtable then compacts everything into the last level; `load` of sorted input = fjall's ingestion (tables written from the pairs, added to L0 in one step), unsorted = batches of 1,000 then sync",
    survives_kill: true,
    feature: "peers",
    built: cfg!(feature = "peers"),
};

/// sled, behind the `peers` feature (`sled::Sled` when built).
pub const SLED: Peer = Peer {
    name: "sled",
    summary: "peer: sled 0.34, a lock-free B+tree over a log-structured page store in Rust",
    settings: "writes buffered in sled's log buffer, written and fsynced every 500 ms: a process kill loses up to the last ~500 ms (`sync` = flush); no bloom filters; no compression; no manual compaction (`compact` does nothing); read amplification unknown; `load` = batches of 1,000 pairs (one `apply_batch` each), then sync",
    survives_kill: false,
    feature: "peers",
    built: cfg!(feature = "peers"),
};

/// redb, behind the `peers` feature (`redb::Redb` when built).
pub const REDB: Peer = Peer {
    name: "redb",
    summary: "peer: redb 4, a copy-on-write B-tree in one file, in Rust",
    settings: "one transaction per write, committed with Durability::None: a process kill loses everything since the last `sync` (a Durability::Immediate commit); no bloom filters; no compression; `compact` = Database::compact; read amplification unknown; `load` = batches of 1,000 pairs (one write transaction each), then sync",
    survives_kill: false,
    feature: "peers",
    built: cfg!(feature = "peers"),
};

/// RocksDB, behind the `rocksdb` feature (`rocksdb::RocksDb` when built).
pub const ROCKSDB: Peer = Peer {
    name: "rocksdb",
    summary: "peer: RocksDB 10 (the rocksdb 0.24 crate), the leveled LSM tree in C++",
    settings: "WAL handed to the OS on every write, no fsync: survives a process kill (`sync` fsyncs the WAL); full bloom filters; no compression; leveled compaction with RocksDB's defaults; statistics on; `compact` = CompactRange of everything, bottommost level forced; `load` of sorted input = SstFileWriter tables + IngestExternalFile (files moved in), unsorted = batches of 1,000 then sync",
    survives_kill: true,
    feature: "rocksdb",
    built: cfg!(feature = "rocksdb"),
};

/// Every peer, built or not, in the order the report shows them.
pub const PEERS: &[Peer] = &[FJALL, SLED, REDB, ROCKSDB];

/// The peer called `name`, built or not.
pub fn find(name: &str) -> Option<&'static Peer> {
    PEERS.iter().find(|peer| peer.name == name)
}

/// The peers this build does not include.
pub fn not_built() -> impl Iterator<Item = &'static Peer> {
    PEERS.iter().filter(|peer| !peer.built)
}

/// The `inspect` function of every peer's registry entry: peers' files are not course
/// formats, so no bytes are recognised.
pub fn no_inspect(_bytes: &[u8]) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_peer_is_listed_once_with_its_feature() {
        let names: Vec<&str> = PEERS.iter().map(|p| p.name).collect();
        assert_eq!(names, ["fjall", "sled", "redb", "rocksdb"]);
        assert_eq!(find("redb").unwrap().feature, "peers");
        assert_eq!(find("rocksdb").unwrap().feature, "rocksdb");
        assert!(find("hashlog").is_none());
        assert_eq!(
            find("rocksdb").unwrap().not_built_line(),
            "rocksdb: not built, enable with --features rocksdb"
        );
        assert_eq!(find("fjall").unwrap().built, cfg!(feature = "peers"));
        assert_eq!(find("rocksdb").unwrap().built, cfg!(feature = "rocksdb"));
        let survivors: Vec<&str> = PEERS
            .iter()
            .filter(|p| p.survives_kill)
            .map(|p| p.name)
            .collect();
        assert_eq!(survivors, ["fjall", "rocksdb"]);
    }
}
