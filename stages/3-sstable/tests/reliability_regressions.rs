//! Failures the long runs of the reliability suites found in `sstable`, each replayed
//! exactly. The options are those of `tests/reliability.rs`.

use kv_testkit::FaultKind;

fn options() -> kv_shared::Options {
    kv_shared::Options::new()
        .set("memtable_bytes", "4K")
        .set("block_bytes", "512")
}

/// Found by `KV_IOERROR_RUNS=1000` (seed 4325): one failed WAL append (an append to
/// `000011.wal`, the fourth record before the flush that starts WAL 13 and table 14) left a
/// store that open refused once the fault cleared ("WAL 13 is older than the newest table's
/// WALs (up to 14) yet not in a table"). A failed call must leave a store that reopens.
///
/// The replay fails every append to `000011.wal` in turn, the original one among them, so
/// that it does not hang on the exact call number (which moves whenever open or a flush
/// makes one call more or fewer).
#[test]
fn one_failed_wal_append_leaves_a_store_that_reopens() {
    let mut appends = 0;
    for k in 1..2000 {
        let (_, failed, first) = kv_testkit::io_errors::io_error_at::<sstable::SstableStore>(
            &options(),
            4325,
            k,
            FaultKind::Once,
        );
        if failed == 0 {
            break; // past the workload's last call
        }
        if first.is_some_and(|f| f.starts_with("append of /disk/store/000011.wal ")) {
            appends += 1;
        }
    }
    assert!(
        appends >= 4,
        "the workload changed: it makes {appends} appends to 000011.wal, so this no longer \
         replays the original failure"
    );
}

/// Found by `KV_TEST_SEED=11 KV_POWERLOSS_RUNS=300` (run 98): a power loss inside
/// `Wal::create` kept the new WAL's directory entry but not its header, and open refused
/// the store ("not a WAL: magic ..."). A header torn by a crash, with no record after it,
/// is an empty log. (Checked: without that rule this replay still fails. The unit test
/// `wal::tests::append_replay_and_torn_tails` pins the rule itself.)
#[test]
fn power_loss_inside_wal_create_seed_11() {
    kv_testkit::power_loss::random_power_losses::<sstable::SstableStore>(&options(), 11, 99);
}

/// Found by `KV_TEST_SEED=22 KV_POWERLOSS_POINTS=2000` (crash point 304 of 709): the same
/// torn WAL header, this time with the magic kept and the version torn ("format version
/// 1115897804").
#[test]
fn power_loss_inside_wal_create_seed_22() {
    kv_testkit::power_loss::crash_at_every_mutation::<sstable::SstableStore>(&options(), 22, 2000);
}
