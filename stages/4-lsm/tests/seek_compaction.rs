//! Seek compaction: reads that keep passing through a table on their way to an older
//! version make the tree merge it into the level below; a read the memtable answers, or a
//! tree with `seek_compaction=false`, leaves the shape alone.

mod common;

use std::ops::Bound;

use kv_shared::{Engine, KeyRange, LoadOrder, Options};
use lsm::LsmTree;
use lsm::seek_compaction::MIN_ALLOWED_SEEKS;

const KEYS: u32 = 2_000;

fn options(seek_compaction: bool) -> Options {
    common::options(&format!(
        "memtable_bytes=256K block_bytes=1K l0_trigger=8 l0_slowdown=10 l0_stop=12 \
         seek_compaction={seek_compaction}"
    ))
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value-{i}-{round}").into_bytes()
}

/// A tree whose last level holds every key (a bulk load) and whose one L0 table holds a
/// newer version of every other key: each read of a key between the L0 table's first and
/// last keys passes through it.
fn overlapping_tree(seek_compaction: bool) -> (tempfile::TempDir, LsmTree) {
    let (tmp, tree) = common::new_tree(&options(seek_compaction));
    let mut pairs = (0..KEYS).map(|i| Ok((key(i), value(i, 0))));
    tree.load(&mut pairs, LoadOrder::Sorted).unwrap();
    for i in (0..KEYS).step_by(2) {
        tree.put(&key(i), &value(i, 1)).unwrap();
    }
    tree.flush().unwrap();
    assert_eq!(l0_and_last(&tree), (1, 1), "{:?}", tree.levels_summary());
    (tmp, tree)
}

/// Tables on L0 and on the last level.
fn l0_and_last(tree: &LsmTree) -> (usize, usize) {
    let summary = tree.levels_summary();
    (summary[0].files, summary[6].files)
}

fn seek_compactions(tree: &LsmTree) -> u64 {
    let stats = tree.stats_without_live_data().unwrap();
    stats.extra["seek_compactions"]
}

/// Every key reads its newest value.
fn assert_every_value(tree: &LsmTree) {
    for i in 0..KEYS {
        let round = u32::from(i % 2 == 0);
        assert_eq!(tree.get(&key(i)).unwrap(), Some(value(i, round)), "key {i}");
    }
}

/// After settling, the L0 table is gone, merged by one seek compaction, and every key
/// still reads its newest value.
fn merged_by_one_seek_compaction(tree: LsmTree) {
    tree.compact().unwrap();
    assert_eq!(l0_and_last(&tree).0, 0, "{:?}", tree.levels_summary());
    assert_eq!(seek_compactions(&tree), 1);
    assert_every_value(&tree);
    tree.close().unwrap();
}

#[test]
fn gets_that_pass_through_a_table_compact_it_into_the_level_below() {
    let (_tmp, tree) = overlapping_tree(true);
    // One seek short of the budget: nothing happens yet.
    let budget = MIN_ALLOWED_SEEKS as u32;
    for i in 0..budget - 1 {
        tree.get(&key(i)).unwrap();
    }
    tree.compact().unwrap();
    assert_eq!(l0_and_last(&tree).0, 1, "{:?}", tree.levels_summary());
    assert_eq!(seek_compactions(&tree), 0);
    // The last seek: the L0 table goes into the last level.
    tree.get(&key(budget)).unwrap();
    merged_by_one_seek_compaction(tree);
}

#[test]
fn cursor_seeks_charge_the_tables_they_position_in() {
    let (_tmp, tree) = overlapping_tree(true);
    for i in 0..MIN_ALLOWED_SEEKS as u32 {
        let range = KeyRange::new(Bound::Included(key(i * 7)), Bound::Excluded(key(i * 7 + 3)));
        assert_eq!(tree.scan(range).unwrap().count(), 3);
    }
    merged_by_one_seek_compaction(tree);
}

#[test]
fn reads_the_memtable_answers_charge_nothing() {
    let (_tmp, tree) = overlapping_tree(true);
    for i in (0..KEYS).step_by(2) {
        tree.put(&key(i), &value(i, 1)).unwrap();
    }
    for _ in 0..2 {
        for i in (0..KEYS).step_by(2) {
            tree.get(&key(i)).unwrap();
        }
    }
    tree.compact().unwrap();
    assert_eq!(seek_compactions(&tree), 0, "{:?}", tree.levels_summary());
    tree.close().unwrap();
}

#[test]
fn without_seek_compaction_reads_leave_the_shape_alone() {
    let (_tmp, tree) = overlapping_tree(false);
    for _ in 0..4 {
        assert_every_value(&tree);
    }
    tree.compact().unwrap();
    assert_eq!(l0_and_last(&tree), (1, 1), "{:?}", tree.levels_summary());
    assert_eq!(seek_compactions(&tree), 0);
    tree.close().unwrap();
}
