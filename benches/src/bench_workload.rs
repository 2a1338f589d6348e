//! The workloads `kvbench` runs: the db_bench set from [`crate::workload`] and a few more.
//!
//! | name | what is timed | ops/s counts |
//! |---|---|---|
//! | the eight standard ones | see [`crate::workload`] | entries written, read or deleted |
//! | `fillbatch` | `fillseq`'s puts (keys `0..num` in order) into an empty store, in [`WriteBatch`](kv_shared::WriteBatch)es of [`BATCH_PAIRS`] through `write`, as db_bench's `fillbatch`; each batch timed as one operation | pairs written |
//! | `bulkload` | one [`load`](kv_shared::DynEngine::load) of keys `0..num` in order (`LoadOrder::Sorted`, `fillseq`'s values) into an empty store, the pairs made as the engine takes them; also the load's MB/s against the disk's sequential write bandwidth, measured once per run ([`crate::disk_bandwidth`]) | pairs loaded |
//! | `scan` | `max(1, num/100)` bounded range scans `[key(i), key(i+100))` from random `i` | entries read |
//! | `fillthreads` | `fillrandom`'s puts into an empty store, shared by `threads` writer threads (`--threads`, default 4) that take them [`FILL_CHUNK`] at a time from one sequence | entries written (all threads together) |
//! | `readwhilewriting` | one reader thread doing `num` random gets while one writer thread overwrites random keys | reads (the writes' rate is reported beside it) |
//! | `recovery` | closing the store cleanly and opening it again (the store as the workloads before left it); then, when a helper process is available, opening a store whose only content is a `fillseq` of `num` keys written by a child process that was then killed (SIGKILL) | keys recovered per second of the clean open |
//! | `compact` | one call to the engine's `compact` | nothing (the report shows the time taken and the space amplification after it) |
//!
//! Every workload but the five fills (`fillseq`, `fillrandom`, `fillbatch`, `bulkload`,
//! `fillthreads`) needs a filled store: see [`crate::runner`]
//! for how the store is carried from one workload to the next.

use crate::workload::Workload;
use kv_shared::{Error, Result};

/// One workload `kvbench` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BenchWorkload {
    /// A db_bench workload from the shared crate.
    Standard(Workload),
    /// `fillseq`'s puts in batches of [`BATCH_PAIRS`].
    FillBatch,
    /// One bulk load of keys `0..num`, in order.
    BulkLoad,
    /// `fillrandom` split across several writer threads.
    FillThreads,
    /// Bounded range scans of 100 keys from random starts.
    Scan,
    /// One reader and one writer thread at once.
    ReadWhileWriting,
    /// Time to open a store after a clean close, and after a kill.
    Recovery,
    /// The engine's compaction, run once to completion.
    Compact,
}

/// How many keys each `scan` range covers.
pub const SCAN_KEYS: u64 = 100;

/// Pairs per `fillbatch` batch: db_bench's `fillbatch` size, the same as a default bulk
/// load's ([`kv_shared::bulk::LOAD_BATCH`]).
pub const BATCH_PAIRS: usize = kv_shared::bulk::LOAD_BATCH;

/// How many puts a `fillthreads` writer takes from the shared sequence at a time.
pub const FILL_CHUNK: usize = 64;

impl BenchWorkload {
    /// Every workload, in the order a default `kvbench` run takes them. `compact` comes after
    /// the reads so that those see the store as the writes left it (for the single-level
    /// `sstable`, before its tables are merged); `recovery` comes after `compact`, so it
    /// reopens a compacted store (for `bitcask`, one with hint files); `deleterandom` comes
    /// last. The fills come first: each starts from an empty store.
    pub const ALL: [BenchWorkload; 15] = [
        BenchWorkload::Standard(Workload::FillSeq),
        BenchWorkload::Standard(Workload::FillRandom),
        BenchWorkload::FillBatch,
        BenchWorkload::BulkLoad,
        BenchWorkload::FillThreads,
        BenchWorkload::Standard(Workload::Overwrite),
        BenchWorkload::Standard(Workload::ReadRandom),
        BenchWorkload::Standard(Workload::ReadMissing),
        BenchWorkload::Standard(Workload::ReadSeq),
        BenchWorkload::Standard(Workload::SeekRandom),
        BenchWorkload::Scan,
        BenchWorkload::ReadWhileWriting,
        BenchWorkload::Compact,
        BenchWorkload::Recovery,
        BenchWorkload::Standard(Workload::DeleteRandom),
    ];

    /// The name `--workloads` takes and the report prints.
    pub fn name(self) -> &'static str {
        match self {
            BenchWorkload::Standard(w) => w.name(),
            BenchWorkload::FillBatch => "fillbatch",
            BenchWorkload::BulkLoad => "bulkload",
            BenchWorkload::FillThreads => "fillthreads",
            BenchWorkload::Scan => "scan",
            BenchWorkload::ReadWhileWriting => "readwhilewriting",
            BenchWorkload::Recovery => "recovery",
            BenchWorkload::Compact => "compact",
        }
    }

    /// The workload called `name`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] listing the known names.
    pub fn from_name(name: &str) -> Result<BenchWorkload> {
        Self::ALL
            .into_iter()
            .find(|w| w.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|w| w.name()).collect();
                Error::InvalidArgument(format!(
                    "unknown workload `{name}` (known: {})",
                    names.join(", ")
                ))
            })
    }

    /// Parses a comma-separated list of names, in the order given.
    ///
    /// # Errors
    /// As [`BenchWorkload::from_name`].
    pub fn parse_list(text: &str) -> Result<Vec<BenchWorkload>> {
        text.split(',').map(Self::from_name).collect()
    }

    /// True when the workload expects keys `0..num` present before it starts.
    pub fn needs_filled_store(self) -> bool {
        match self {
            BenchWorkload::Standard(w) => w.needs_filled_store(),
            BenchWorkload::FillBatch | BenchWorkload::BulkLoad | BenchWorkload::FillThreads => {
                false
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_cover_the_standard_set() {
        for w in BenchWorkload::ALL {
            assert_eq!(BenchWorkload::from_name(w.name()).unwrap(), w);
        }
        for w in Workload::ALL {
            assert!(
                BenchWorkload::ALL.contains(&BenchWorkload::Standard(w)),
                "{}",
                w.name()
            );
        }
        assert_eq!(
            BenchWorkload::parse_list("fillseq,scan").unwrap(),
            vec![
                BenchWorkload::Standard(Workload::FillSeq),
                BenchWorkload::Scan
            ]
        );
        let err = BenchWorkload::parse_list("fillseq,nope")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope") && err.contains("readwhilewriting"),
            "{err}"
        );
        assert!(!BenchWorkload::Standard(Workload::FillRandom).needs_filled_store());
        assert!(!BenchWorkload::FillThreads.needs_filled_store());
        assert!(!BenchWorkload::FillBatch.needs_filled_store());
        assert!(!BenchWorkload::BulkLoad.needs_filled_store());
        assert_eq!(
            BenchWorkload::parse_list("fillbatch,bulkload").unwrap(),
            vec![BenchWorkload::FillBatch, BenchWorkload::BulkLoad]
        );
        assert!(BenchWorkload::Recovery.needs_filled_store());
    }
}
