//! The shared reliability suites (process crash, power loss, I/O errors, corruption, hostile
//! input, linearizability), with sizes small enough that memtables flush, the manifest is
//! rewritten and tables compact down several levels in their short workloads.

/// Tiny thresholds: a 4 KiB memtable, 4 KiB tables, L1 of 12 KiB growing 4x per level.
fn small() -> kv_shared::Options {
    kv_shared::Options::new()
        .set("memtable_bytes", "4K")
        .set("table_bytes", "4K")
        .set("level1_bytes", "12K")
        .set("level_ratio", "4")
        .set("l0_trigger", "2")
        .set("l0_slowdown", "4")
        .set("l0_stop", "6")
        .set("block_bytes", "512")
}

kv_shared::reliability_tests!(lsm::LsmTree, small(), lsm::inspect);
