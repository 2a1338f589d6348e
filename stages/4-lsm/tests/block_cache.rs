//! The block cache seen from outside: a `get` whose block is cached allocates nothing but
//! the value it returns, the counters in `stats` say what the cache did, and a tree without
//! a cache reads the same values.
//!
//! This test binary counts allocations with a counting global allocator
//! (`allocation_counter`, counting per thread, so the engine's background threads do not
//! disturb the figures).

mod common;

use kv_shared::{Engine, Options};
use lsm::LsmTree;
use tempfile::TempDir;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}-{}", "v".repeat((i % 40) as usize)).into_bytes()
}

/// Small blocks, so that a table has many of them, and a block cache of `cache` bytes.
fn cached(cache: &str) -> Options {
    common::options(&format!("block_bytes=512 block_cache_bytes={cache}"))
}

/// A new tree ([`cached`]) whose 2000 keys are all in one L0 table (the memtable is empty).
fn flushed_tree(cache: &str) -> (TempDir, LsmTree) {
    let (tmp, e) = common::new_tree(&cached(cache));
    for i in 0..2000 {
        e.put(&key(i), &value(i)).unwrap();
    }
    e.flush().unwrap();
    (tmp, e)
}

fn extra(e: &LsmTree, name: &str) -> u64 {
    e.stats().unwrap().extra[name]
}

fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn cached_get_allocates_only_its_value() {
    let (_tmp, e) = flushed_tree("1M");
    // The first get reads the block (and builds the readers' view after the flush).
    assert_eq!(e.get(&key(700)).unwrap(), Some(value(700)));
    // Keys are made outside the measured closures.
    let (k700, k701, k1500) = (key(700), key(701), key(1500));
    let mut found = None;
    let n = allocations(|| found = e.get(&k700).unwrap());
    assert_eq!(found, Some(value(700)));
    assert_eq!(n, 1, "a cache-hit get allocates only the returned value");
    // Another key of the same block: also a hit.
    let n = allocations(|| found = e.get(&k701).unwrap());
    assert_eq!(found, Some(value(701)));
    assert_eq!(n, 1);
    // A key the filter rules out allocates nothing at all.
    let n = allocations(|| found = e.get(b"absent").unwrap());
    assert_eq!((found.as_deref(), n), (None, 0));
    // A miss reads the block into a new buffer and keeps it: more than the value.
    let n = allocations(|| found = e.get(&k1500).unwrap());
    assert_eq!(found, Some(value(1500)));
    assert!(n > 1, "a miss allocated {n} times");
}

#[test]
fn memtable_get_allocates_only_its_value() {
    let (_tmp, e) = flushed_tree("1M");
    e.put(b"fresh", b"in the memtable").unwrap();
    assert!(e.get(b"fresh").unwrap().is_some());
    let mut found = None;
    let n = allocations(|| found = e.get(b"fresh").unwrap());
    assert_eq!(found.as_deref(), Some(&b"in the memtable"[..]));
    assert_eq!(n, 1);
}

#[test]
fn counters_follow_hits_and_misses() {
    let (_tmp, e) = flushed_tree("1M");
    // `stats` reads the counters, then scans everything through the cache: the first scan
    // misses on every block and caches it, the second hits every block.
    let s1 = e.stats().unwrap();
    let s2 = e.stats().unwrap();
    for _ in 0..3 {
        assert_eq!(e.get(&key(42)).unwrap(), Some(value(42)));
    }
    let s3 = e.stats().unwrap();
    let c = |s: &kv_shared::Stats, name: &str| s.extra[name];
    assert_eq!(
        (c(&s1, "block_cache_hits"), c(&s1, "block_cache_misses")),
        (0, 0)
    );
    let blocks = c(&s2, "block_cache_misses");
    assert!(blocks > 10, "{blocks} blocks");
    assert_eq!(c(&s2, "block_cache_hits"), 0);
    assert_eq!(c(&s3, "block_cache_misses"), blocks);
    assert_eq!(c(&s3, "block_cache_hits"), blocks + 3);
    assert_eq!(s3.get_disk_reads, 0, "every get found its block cached");
    assert!(c(&s3, "block_cache_bytes") > 0);
    assert_eq!(
        c(&s3, "block_cache_bytes"),
        c(&s3, "block_cache_inserted_bytes")
    );
    assert!(c(&s3, "block_cache_bytes") <= c(&s3, "block_cache_capacity"));
    assert_eq!(c(&s3, "block_cache_capacity"), 1 << 20);
    assert!(c(&s3, "table_index_bytes") > 0);
    assert!(c(&s3, "table_filter_bytes") > 0);
}

#[test]
fn first_get_misses_then_hits() {
    let (tmp, e) = flushed_tree("1M");
    // A fresh open: the cache is empty (stats scans it full, so look before any stats).
    drop(e);
    let e = LsmTree::open(tmp.path(), &cached("1M")).unwrap();
    e.get(&key(5)).unwrap();
    e.get(&key(5)).unwrap();
    let s = e.stats().unwrap();
    assert_eq!(s.get_disk_reads, 1);
    assert_eq!(s.extra["block_cache_misses"], 1);
    assert_eq!(s.extra["block_cache_hits"], 1);
}

#[test]
fn without_a_cache_every_get_reads_and_values_agree() {
    let (_tmp, e) = flushed_tree("0");
    for i in (0..2000).step_by(7) {
        assert_eq!(e.get(&key(i)).unwrap(), Some(value(i)));
        assert_eq!(e.get(&key(i)).unwrap(), Some(value(i)));
    }
    let s = e.stats().unwrap();
    assert_eq!(s.get_disk_reads, 2 * 2000u64.div_ceil(7));
    assert_eq!(s.extra["block_cache_hits"], 0);
    assert_eq!(s.extra["block_cache_bytes"], 0);
    assert_eq!(s.extra["block_cache_capacity"], 0);
    // A cache too small for one block holds nothing and changes no answer.
    let (_tmp, e) = flushed_tree("100");
    for i in (0..2000).step_by(13) {
        assert_eq!(e.get(&key(i)).unwrap(), Some(value(i)));
    }
    assert!(extra(&e, "block_cache_bytes") <= 100);
}

#[test]
fn compaction_reads_through_the_cache_without_filling_it() {
    let options = common::options(
        "memtable_bytes=8K table_bytes=4K level1_bytes=16K l0_trigger=2 block_bytes=512 \
         block_cache_bytes=1M",
    );
    let (_tmp, e) = common::new_tree(&options);
    for round in 0..3 {
        for i in 0..1500 {
            e.put(&key((i * 7919 + round) % 1500), &value(i)).unwrap();
        }
    }
    e.compact().unwrap();
    // `stats` reads the cache's counters before its own scan: they show compaction alone.
    let s = e.stats().unwrap();
    assert!(s.extra["compactions"] > s.extra["trivial_moves"]);
    assert!(s.extra["compaction_bytes_read"] > 0);
    assert!(
        s.extra["block_cache_misses"] > 0,
        "compaction looked blocks up"
    );
    assert_eq!(s.extra["block_cache_inserted_bytes"], 0);
    assert_eq!(s.extra["block_cache_bytes"], 0);
}

#[test]
fn the_open_tables_indexes_and_filters_are_charged_to_the_budget() {
    let budget = 64 << 10;
    let (_tmp, e) = flushed_tree(&budget.to_string());
    // `stats` reads the counters, then scans every table through the cache, filling it as
    // far as it may: the second one shows what the first filled.
    e.stats().unwrap();
    let s = e.stats().unwrap();
    let pinned = s.extra["table_index_bytes"] + s.extra["table_filter_bytes"];
    assert!(pinned > 0);
    assert_eq!(s.extra["block_cache_charged_bytes"], pinned);
    assert_eq!(s.extra["block_cache_capacity"], budget);
    assert!(
        s.extra["block_cache_bytes"] > 0,
        "the rest holds data blocks"
    );
    assert!(
        s.extra["block_cache_bytes"] + pinned <= budget,
        "data blocks {} and pinned {pinned} within {budget}",
        s.extra["block_cache_bytes"]
    );
    // Compaction replaces the table: the charge follows the open tables, not the made ones.
    e.compact().unwrap();
    let s = e.stats().unwrap();
    let pinned = s.extra["table_index_bytes"] + s.extra["table_filter_bytes"];
    assert_eq!(s.extra["block_cache_charged_bytes"], pinned);
}
