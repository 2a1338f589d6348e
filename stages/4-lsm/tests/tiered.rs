//! Size-tiered compaction (`compaction=tiered`): a model-checked random workload with
//! reopens, the conformance suite, switching a store between the two styles, and the write
//! savings that are the point of it.

use std::collections::BTreeMap;

mod common;

use kv_shared::{Engine, KeyRange, Options};
use kv_testkit::conformance::scan_vec;
use lsm::LsmTree;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Tiny sizes, so that flushes and merges of runs happen every few hundred writes.
fn tiered() -> Options {
    common::options(
        "compaction=tiered memtable_bytes=16K table_bytes=8K tiered_max_runs=4 block_bytes=512",
    )
}

/// The same sizes with the default, leveled compaction (L1 of 16 KiB growing 4× a level).
fn leveled() -> Options {
    common::options(
        "memtable_bytes=16K table_bytes=8K level1_bytes=16K level_ratio=4 l0_trigger=2 \
         block_bytes=512",
    )
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32, version: u32) -> Vec<u8> {
    format!("v{version}-{i}-{}", "x".repeat((i % 40) as usize)).into_bytes()
}

/// Every key of the model, and a full scan, against the engine.
fn check_all(e: &LsmTree, model: &BTreeMap<Vec<u8>, Vec<u8>>, keys: u32) {
    for i in 0..keys {
        assert_eq!(
            e.get(&key(i)).unwrap().as_ref(),
            model.get(&key(i)),
            "key {i}"
        );
    }
    let scanned = scan_vec(e, KeyRange::all());
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(scanned, expected);
}

/// Checks that no level holds a table.
fn assert_no_tables(e: &LsmTree) {
    let summary = e.levels_summary();
    assert!(
        summary.iter().all(|s| s.files == 0),
        "nothing left: {summary:?}"
    );
}

/// Random puts, overwrites and deletes over 1500 keys, with reopens: after each write the
/// written key reads back as the model says and the version's invariants hold; every
/// 1000 writes and after each reopen, every key and a full scan match the model.
#[test]
fn random_workload_matches_a_model_across_reopens() {
    const KEYS: u32 = 1500;
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7173);
    let mut model = BTreeMap::new();
    let mut merges = 0;
    for session in 0..4u32 {
        let e = LsmTree::open(tmp.path(), &tiered()).unwrap();
        check_all(&e, &model, KEYS);
        e.debug_check_invariants().unwrap();
        for n in 0..3000u32 {
            let i = rng.random_range(0..KEYS);
            if rng.random_range(0..5) == 0 {
                e.delete(&key(i)).unwrap();
                model.remove(&key(i));
            } else {
                let v = value(i, session * 10_000 + n);
                e.put(&key(i), &v).unwrap();
                model.insert(key(i), v);
            }
            assert_eq!(e.get(&key(i)).unwrap().as_ref(), model.get(&key(i)));
            e.debug_check_invariants().unwrap();
            if n % 1000 == 999 {
                check_all(&e, &model, KEYS);
            }
        }
        if session == 2 {
            e.full_compaction().unwrap();
            check_all(&e, &model, KEYS);
            let runs = e.stats().unwrap().extra["sorted_runs"];
            assert_eq!(runs, 1, "a full compaction leaves one run");
        }
        let stats = e.stats().unwrap();
        merges += stats.extra["compaction_bytes_written"];
        e.close().unwrap();
    }
    assert!(merges > 0, "runs were merged, not only flushed and moved");
}

/// Writes `rounds` rounds of `per_round` overwrites over `keys` keys, each round ending in
/// `compact` (flush, then compaction until settled). A round stays under the memtable
/// size, so flushes happen only there and each compaction starts from a settled tree: the
/// bytes written do not depend on thread timing.
fn overwrite_rounds(options: &Options, keys: u32, rounds: u32, per_round: u32) -> (u64, u64) {
    let (_tmp, e) = common::new_tree(options);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for round in 0..rounds {
        for _ in 0..per_round {
            let i = rng.random_range(0..keys);
            e.put(&key(i), &value(i, round)).unwrap();
        }
        e.compact().unwrap();
    }
    let stats = e.stats().unwrap();
    (stats.disk_bytes_written, stats.user_bytes_written)
}

/// The point of size-tiered compaction: for the same overwrite-heavy workload it writes
/// fewer bytes than leveled (here at least a fifth fewer).
#[test]
fn tiered_writes_fewer_bytes_than_leveled_on_overwrites() {
    let (tiered_bytes, user) = overwrite_rounds(&tiered(), 2000, 60, 150);
    let (leveled_bytes, user_again) = overwrite_rounds(&leveled(), 2000, 60, 150);
    assert_eq!(user, user_again, "the same workload");
    assert!(
        tiered_bytes * 5 < leveled_bytes * 4,
        "tiered wrote {tiered_bytes} bytes, leveled {leveled_bytes} (user bytes {user})"
    );
}

/// The theory figure is reported in both styles, and tiered reports its runs.
#[test]
fn stats_report_the_write_amplification_theory() {
    for options in [tiered(), leveled()] {
        let (_tmp, e) = common::new_tree(&options);
        assert!(
            !e.stats()
                .unwrap()
                .extra
                .contains_key("write_amp_theory_milli")
        );
        for i in 0..3000 {
            e.put(&key(i), &value(i, 0)).unwrap();
        }
        e.compact().unwrap();
        let stats = e.stats().unwrap();
        let theory = stats.extra["write_amp_theory_milli"];
        assert!(
            theory > 2000,
            "WAL and flush alone cost over 1 each: {theory}"
        );
        assert!(stats.extra["sorted_runs"] >= 1);
    }
}

/// A store switches between the styles on reopen and reads right in both: the run order
/// (deeper is older) that tiered keeps is one leveled keeps too, and back.
#[test]
fn a_store_switches_between_styles_on_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (session, options) in [tiered(), leveled(), tiered(), leveled()]
        .iter()
        .enumerate()
    {
        let e = LsmTree::open(tmp.path(), options).unwrap();
        check_all(&e, &model, 1000);
        for n in 0..2500u32 {
            let i = rng.random_range(0..1000);
            if n % 7 == 0 {
                e.delete(&key(i)).unwrap();
                model.remove(&key(i));
            } else {
                let v = value(i, session as u32 * 10_000 + n);
                e.put(&key(i), &v).unwrap();
                model.insert(key(i), v);
            }
        }
        e.compact().unwrap();
        e.debug_check_invariants().unwrap();
        check_all(&e, &model, 1000);
        e.close().unwrap();
    }
}

/// Deleting everything and compacting fully leaves no table: tombstones are dropped when
/// they reach the oldest run.
#[test]
fn full_compaction_drops_every_tombstone() {
    let (_tmp, e) = common::new_tree(&tiered());
    for i in 0..2000 {
        e.put(&key(i), &value(i, 0)).unwrap();
    }
    for i in 0..2000 {
        e.delete(&key(i)).unwrap();
    }
    e.full_compaction().unwrap();
    assert_no_tables(&e);
    assert!(scan_vec(&e, KeyRange::all()).is_empty());
}

/// With more runs allowed than L0 can hold before writers stop (`l0_stop`), a full L0
/// starts a merge by itself: writes go on, and `compact` returns.
#[test]
fn a_large_run_limit_never_stops_writers_for_good() {
    let options = tiered()
        .set("tiered_max_runs", "40")
        .set("l0_trigger", "2")
        .set("l0_slowdown", "3")
        .set("l0_stop", "4");
    let (_tmp, e) = common::new_tree(&options);
    for i in 0..8000 {
        e.put(&key(i % 3000), &value(i, 0)).unwrap();
    }
    e.compact().unwrap();
    let stats = e.stats().unwrap();
    assert!(stats.extra["flushes"] >= 12, "{:?}", stats.extra);
    assert!(stats.extra["l0_files"] < 3);
    e.debug_check_invariants().unwrap();
}

/// A run of tombstones alone (deletes of keys never written), moved down to the last level
/// without a rewrite, is still rewritten, and so emptied, by a full compaction.
#[test]
fn full_compaction_rewrites_a_single_run() {
    let (_tmp, e) = common::new_tree(&tiered());
    for i in 0..200 {
        e.delete(&key(i)).unwrap();
    }
    e.compact().unwrap();
    let summary = e.levels_summary();
    assert_eq!(summary[6].files, 1, "one run, moved to L6: {summary:?}");
    e.full_compaction().unwrap();
    assert_no_tables(&e);
}

/// Unknown styles and impossible tiered limits are refused at open.
#[test]
fn bad_tiered_options_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for setting in [
        "compaction=universal",
        "tiered_max_runs=1",
        "tiered_max_space_amp=0",
    ] {
        let mut options = tiered();
        options.set_pair(setting).unwrap();
        assert!(
            matches!(
                LsmTree::open(tmp.path(), &options),
                Err(kv_shared::Error::InvalidArgument(_))
            ),
            "{setting}"
        );
    }
}

kv_testkit::conformance_tests!(LsmTree, tiered());

/// The reliability suites (crash, power loss, I/O errors, corruption, hostile input,
/// linearizability) in tiered mode, with a 4 KiB memtable so that runs flush, settle and
/// merge within their short workloads.
fn tiny_tiered() -> Options {
    tiered()
        .set("memtable_bytes", "4K")
        .set("table_bytes", "4K")
        .set("tiered_max_runs", "3")
}

kv_testkit::reliability_tests!(lsm::LsmTree, tiny_tiered(), lsm::inspect);
