//! The shared conformance suite, with sizes small enough that memtables flush, L0 compacts
//! and tables move down several levels many times within it.

use lsm::LsmTree;

/// Tiny thresholds: an 8 KiB memtable, 8 KiB tables, L1 of 24 KiB growing 4× per level.
fn small() -> kv_shared::Options {
    kv_shared::Options::new()
        .set("memtable_bytes", "8K")
        .set("table_bytes", "8K")
        .set("level1_bytes", "24K")
        .set("level_ratio", "4")
        .set("l0_trigger", "2")
        .set("l0_slowdown", "4")
        .set("l0_stop", "6")
        .set("block_bytes", "512")
}

kv_testkit::conformance_tests!(LsmTree, small());
