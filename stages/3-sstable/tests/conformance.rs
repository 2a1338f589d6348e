//! The shared conformance suite, with a 4 KiB memtable and 256-byte blocks so that flushes,
//! multi-block tables and compactions happen many times inside it.

kv_testkit::conformance_tests!(
    sstable::SstableStore,
    kv_shared::Options::new()
        .set("memtable_bytes", "4K")
        .set("block_bytes", "256")
);
