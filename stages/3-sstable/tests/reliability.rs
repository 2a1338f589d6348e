//! The shared reliability suites (process crash, power loss, I/O errors, corruption,
//! hostile input, linearizability), with thresholds small enough that flushes and
//! multi-block tables happen many times in their short workloads.

kv_testkit::reliability_tests!(
    sstable::SstableStore,
    kv_shared::Options::new()
        .set("memtable_bytes", "4K")
        .set("block_bytes", "512"),
    sstable::inspect,
    sstable::repair
);
