//! The shape of the tree: level invariants after compactions, sizes held near their
//! targets, and tombstones that never bring a deleted value back, across compactions and
//! restarts.

mod common;

use kv_shared::{Engine, KeyRange, Options};
use kv_testkit::conformance::scan_vec;
use lsm::LsmTree;

/// Tiny sizes: an 8 KiB memtable, 4 KiB tables, L1 of 16 KiB growing 4× a level (fixed
/// targets; [`dynamic`] sizes levels from the last one up).
fn small() -> Options {
    common::options(
        "memtable_bytes=8K table_bytes=4K level1_bytes=16K level_ratio=4 l0_trigger=2 \
         l0_slowdown=6 l0_stop=8 block_bytes=512 dynamic_levels=false",
    )
}

/// [`small`] with the default, dynamic level targets.
fn dynamic() -> Options {
    common::options(
        "memtable_bytes=8K table_bytes=4K level1_bytes=16K level_ratio=4 l0_trigger=2 \
         l0_slowdown=6 l0_stop=8 block_bytes=512 dynamic_levels=true",
    )
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value-{i}-{round}-{}", "x".repeat((i % 50) as usize)).into_bytes()
}

/// After each settle, L1+ are sorted and disjoint and no level is over its target, and the
/// data spans several levels. (Every install also checks the invariants in debug builds.)
#[test]
fn levels_stay_sorted_disjoint_and_within_targets() {
    let (_tmp, e) = settles_within_targets(&small(), 3);
    e.close().unwrap();
}

/// The same with dynamic targets; and then most of the data sits in the last level.
#[test]
fn dynamic_levels_stay_within_targets_with_most_data_in_the_last_level() {
    let (_tmp, e) = settles_within_targets(&dynamic(), 2);
    let summary = e.levels_summary();
    let total: u64 = summary.iter().map(|s| s.bytes).sum();
    assert!(
        summary[6].bytes * 10 >= total * 7,
        "the last level holds most of the data: {summary:?}"
    );
    e.close().unwrap();
}

/// Four rounds of 1,500 spread-out puts, each followed by `compact`: L0 settles under
/// `l0_trigger`, every level L1 to L5 at or under its target (read after the settle:
/// dynamic targets move with the last level), the data on at least `min_levels` levels.
fn settles_within_targets(options: &Options, min_levels: usize) -> (tempfile::TempDir, LsmTree) {
    let (tmp, e) = common::new_tree(options);
    for round in 0..4u32 {
        for i in 0..1500u32 {
            let i = (i * 7919 + round * 31) % 3000; // a spread-out order
            e.put(&key(i), &value(i, round)).unwrap();
        }
        e.compact().unwrap();
        e.debug_check_invariants().unwrap();
        let targets = e.level_targets();
        let summary = e.levels_summary();
        assert!(
            summary[0].files < 2,
            "L0 settled under l0_trigger: {summary:?}"
        );
        for s in &summary[1..6] {
            assert!(
                s.bytes <= targets[s.level - 1],
                "L{} holds {} bytes, over its target {}: {summary:?}",
                s.level,
                s.bytes,
                targets[s.level - 1]
            );
        }
    }
    let summary = e.levels_summary();
    let used = summary.iter().filter(|s| s.files > 0).count();
    assert!(
        used >= min_levels,
        "data should span {min_levels} levels or more: {summary:?}"
    );
    let stats = e.stats().unwrap();
    assert!(stats.extra["compactions"] > 10, "{stats:?}");
    assert!(stats.extra["compaction_bytes_written"] > 0);
    (tmp, e)
}

/// Deleted keys stay deleted while their tombstones travel down the levels, while older
/// values of the same keys sit below them, and across restarts; a full compaction finally
/// drops every tombstone and every old version.
#[test]
fn tombstones_never_resurrect() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = LsmTree::open(tmp.path(), &small()).unwrap();
    const N: u32 = 2000;
    for i in 0..N {
        e.put(&key(i), &value(i, 0)).unwrap();
    }
    e.full_compaction().unwrap();
    let deepest = e
        .levels_summary()
        .iter()
        .rposition(|s| s.files > 0)
        .unwrap();
    assert_eq!(
        deepest, 6,
        "a full compaction puts everything on the last level"
    );
    let deleted = |i: u32| i.is_multiple_of(3);
    let check = |e: &LsmTree, context: &str| {
        for i in (0..N).step_by(7) {
            let got = e.get(&key(i)).unwrap();
            if deleted(i) {
                assert_eq!(got, None, "key {i} came back ({context})");
            } else {
                assert_eq!(got, Some(value(i, 0)), "key {i} ({context})");
            }
        }
        let live: Vec<Vec<u8>> = scan_vec(e, KeyRange::half_open("key", "kez"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let want: Vec<Vec<u8>> = (0..N).filter(|&i| !deleted(i)).map(key).collect();
        if live != want {
            let first = live.iter().zip(&want).position(|(a, b)| a != b);
            panic!(
                "scan differs ({context}): {} keys, want {}; first difference at {first:?}: {:?} vs {:?}; last {}",
                live.len(),
                want.len(),
                first.map(|i| String::from_utf8_lossy(&live[i]).into_owned()),
                first.map(|i| String::from_utf8_lossy(&want[i]).into_owned()),
                String::from_utf8_lossy(live.last().unwrap()),
            );
        }
    };
    // Tombstones land in L0 above the old values on L6; unrelated writes push them down
    // level by level, and each compaction must keep them (older values lie below).
    for i in (0..N).filter(|&i| deleted(i)) {
        e.delete(&key(i)).unwrap();
    }
    for round in 1..4u32 {
        for i in 0..400u32 {
            let k = format!("other{i:05}-{round}").into_bytes();
            e.put(&k, &value(i, round)).unwrap();
        }
        e.compact().unwrap();
        check(&e, &format!("after compaction round {round}"));
        e.close().unwrap();
        e = LsmTree::open(tmp.path(), &small()).unwrap();
        check(&e, &format!("after restart {round}"));
    }
    let before = e.stats().unwrap();
    e.full_compaction().unwrap();
    check(&e, "after the full compaction");
    let after = e.stats().unwrap();
    let summary = e.levels_summary();
    let entries: u64 = summary.iter().map(|s| s.entries).sum();
    assert_eq!(
        entries, after.live_keys,
        "no tombstone or old version is left: {summary:?}"
    );
    assert!(after.extra["tombstones_dropped"] > before.extra["tombstones_dropped"]);
    e.close().unwrap();
    let e = LsmTree::open(tmp.path(), &small()).unwrap();
    check(&e, "after the last restart");
    e.close().unwrap();
}

/// Overwrites keep one version per key after a full compaction, and the engine's space
/// amplification comes back near 1.
#[test]
fn full_compaction_keeps_only_the_newest_versions() {
    let (_tmp, e) = common::new_tree(&small());
    for round in 0..5u32 {
        for i in 0..600u32 {
            e.put(&key(i), &value(i, round)).unwrap();
        }
    }
    e.full_compaction().unwrap();
    let summary = e.levels_summary();
    assert_eq!(summary.iter().map(|s| s.entries).sum::<u64>(), 600);
    for i in (0..600u32).step_by(13) {
        assert_eq!(e.get(&key(i)).unwrap(), Some(value(i, 4)));
    }
    let stats = e.stats().unwrap();
    assert!(stats.space_amp().unwrap() < 2.0, "{stats:?}");
    e.close().unwrap();
}

/// Keys that share their first 16 bytes (so the heads that tables, levels and index entries
/// are searched by are all equal) and keys of every length around 16: every `get` still
/// finds its own value, on every level, and misses what was never written.
#[test]
fn keys_sharing_their_first_sixteen_bytes_are_found_on_every_level() {
    let (_tmp, e) = common::new_tree(&small());
    let long = |i: u32| format!("{:016}-{i:06}", 0).into_bytes();
    let short = |i: u32| format!("{i:0w$}", w = 12 + (i % 8) as usize).into_bytes();
    for i in 0..3000u32 {
        let i = (i * 7919) % 3000;
        e.put(&long(i), &value(i, 0)).unwrap();
        e.put(&short(i), &value(i, 1)).unwrap();
    }
    e.compact().unwrap();
    let levels = e.levels_summary();
    assert!(
        levels.iter().skip(1).filter(|l| l.files > 0).count() >= 2,
        "data on two levels or more: {levels:?}"
    );
    for i in 0..3000u32 {
        assert_eq!(e.get(&long(i)).unwrap(), Some(value(i, 0)), "long key {i}");
        assert_eq!(
            e.get(&short(i)).unwrap(),
            Some(value(i, 1)),
            "short key {i}"
        );
    }
    assert_eq!(
        e.get(format!("{:016}-{:06}", 0, 3000).as_bytes()).unwrap(),
        None
    );
    assert_eq!(e.get(format!("{:016}", 0).as_bytes()).unwrap(), None);
}
