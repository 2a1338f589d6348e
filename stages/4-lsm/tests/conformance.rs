//! The shared conformance suite, with sizes small enough that memtables flush, L0 compacts
//! and tables move down several levels many times within it.

mod common;

use lsm::LsmTree;

/// Tiny thresholds: an 8 KiB memtable, 8 KiB tables, L1 of 24 KiB growing 4× per level.
fn small() -> kv_shared::Options {
    common::options(
        "memtable_bytes=8K table_bytes=8K level1_bytes=24K level_ratio=4 l0_trigger=2 \
         l0_slowdown=4 l0_stop=6 block_bytes=512",
    )
}

kv_testkit::conformance_tests!(LsmTree, small());
