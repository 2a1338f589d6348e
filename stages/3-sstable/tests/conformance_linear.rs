//! The conformance suite again with `search=linear`: lookups and scans that ignore the
//! index must give the same answers.

kv_testkit::conformance_tests!(
    sstable::SstableStore,
    kv_shared::Options::new()
        .set("memtable_bytes", "4K")
        .set("block_bytes", "512")
        .set("search", "linear")
);
