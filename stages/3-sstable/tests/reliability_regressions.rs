//! Failures the long runs of the reliability suites found in `sstable`, each replayed
//! exactly. The options are those of `tests/reliability.rs`.

use kv_shared::FaultKind;

fn options() -> kv_shared::Options {
    kv_shared::Options::new()
        .set("memtable_bytes", "4K")
        .set("block_bytes", "512")
}

/// Found by `KV_IOERROR_RUNS=1000` (seed 4325): one failed file call (call 459 of the I/O
/// error workload) leaves WAL 13 behind while table 14's WAL range is newer; after the
/// fault clears, open refuses the store ("WAL 13 is older than the newest table's WALs (up
/// to 14) yet not in a table"). A failed call must leave a store that reopens.
#[test]
fn one_failed_call_during_a_flush_leaves_a_store_that_reopens() {
    let (_, failed, _) = kv_shared::io_errors::io_error_at::<sstable::SstableStore>(
        &options(),
        4325,
        459,
        FaultKind::Once,
    );
    assert_eq!(failed, 1, "the fault must hit a call of the workload");
}
