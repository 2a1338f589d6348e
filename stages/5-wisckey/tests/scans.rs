//! Scans and cursors, whose values come from the value log, read ahead: the cursor checks
//! of the conformance suite with windows of every small size (so window edges are met at
//! every step), reads gathered into few large ones for values written in key order, an
//! error of a value read ahead reported only where the cursor reaches it, and the time a
//! scan takes with and without reading ahead (printed, not checked).

mod common;

use std::time::Instant;

use kv_shared::{Engine, Error, Fs, KeyRange, Options};
use kv_testkit::conformance;
use wisckey::Wisckey;
use wisckey::value_pointer::{self, TreeValue};

/// The test store's sizes, with windows of at most `prefetch` entries.
fn with_prefetch(prefetch: usize) -> Options {
    common::small().set("scan_prefetch", prefetch)
}

#[test]
fn cursors_keep_their_promises_whatever_the_window() {
    for prefetch in [1, 2, 3, 5] {
        let options = with_prefetch(prefetch);
        conformance::cursor_seeks_at_every_boundary::<Wisckey>(&options);
        conformance::cursor_direction_changes::<Wisckey>(&options);
        conformance::cursor_is_a_snapshot::<Wisckey>(&options);
    }
}

#[test]
fn the_model_test_with_small_windows() {
    conformance::model_run::<Wisckey>(&with_prefetch(3), 0x5CA7, 600);
}

/// The key of number `i`.
fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// A value of about `len` bytes for key `i`.
fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("value of {i}:").into_bytes();
    v.resize(len, b'v');
    v
}

/// A store of `n` keys with `len`-byte values, written in key order or in a scrambled one.
fn store_of(
    options: &Options,
    n: usize,
    len: usize,
    in_order: bool,
) -> (tempfile::TempDir, Wisckey) {
    let (tmp, store) = common::new_store(options);
    for j in 0..n {
        let i = if in_order { j } else { (j * 7919) % n };
        store.put(&key(i), &value(i, len)).unwrap();
    }
    (tmp, store)
}

/// Scans the whole store, checking every pair; returns the reads the scan made and the
/// values it fetched.
fn scan_all(store: &Wisckey, n: usize, len: usize) -> (u64, u64) {
    let before = store.stats().unwrap().extra;
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = store
        .scan(KeyRange::all())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pairs.len(), n);
    for (i, (k, v)) in pairs.iter().enumerate() {
        assert_eq!((k, v), (&key(i), &value(i, len)));
    }
    let after = store.stats().unwrap().extra;
    let delta = |name: &str| after[name] - before[name];
    (delta("prefetch_reads"), delta("prefetch_values"))
}

#[test]
fn values_written_in_key_order_are_read_in_few_reads() {
    let options = common::options("value_threshold=8 vlog_segment_bytes=1M scan_prefetch=64");
    let (_tmp, store) = store_of(&options, 2000, 200, true);
    let (reads, values) = scan_all(&store, 2000, 200);
    assert_eq!(values, 2000);
    assert!(reads * 20 < values, "{reads} reads for {values} values");
    let one_by_one = common::options("value_threshold=8 vlog_segment_bytes=1M scan_prefetch=1");
    let (_tmp, store) = store_of(&one_by_one, 2000, 200, true);
    let (reads, values) = scan_all(&store, 2000, 200);
    assert_eq!(
        (reads, values),
        (2000, 2000),
        "one read per value without read-ahead"
    );
    // Written out of order, the values are still all read back right.
    let (_tmp, store) = store_of(&options, 2000, 200, false);
    let (reads, values) = scan_all(&store, 2000, 200);
    assert!(reads <= values && values == 2000);
}

#[test]
fn a_value_read_ahead_reports_its_damage_only_where_the_cursor_reaches_it() {
    let options = common::options("value_threshold=8 vlog_segment_bytes=4K scan_prefetch=64");
    let (tmp, store) = store_of(&options, 40, 150, true);
    let tree_value = store.tree().get(&key(20)).unwrap().unwrap();
    let Ok(TreeValue::Pointer(p)) = value_pointer::decode(&tree_value) else {
        panic!("key 20's value is in the log");
    };
    assert!(
        p.segment < store.value_log().active_id(),
        "in a sealed segment"
    );
    store.close().unwrap();
    let path = wisckey::file_names::segment(&wisckey::file_names::vlog_dir(tmp.path()), p.segment);
    let mut bytes = Fs::default().read_all(&path).unwrap();
    bytes[p.end() as usize - 3] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let store = Wisckey::open(tmp.path(), &options).unwrap();
    // The windows (1, 2, 4, 8, 16 entries) read key 20's value ahead of key 15.
    let before: Vec<_> = store
        .scan(KeyRange::half_open(key(0), key(16)))
        .unwrap()
        .collect::<kv_shared::Result<_>>()
        .unwrap();
    assert_eq!(before.len(), 16);
    let mut through = store.scan(KeyRange::half_open(key(0), key(30))).unwrap();
    for i in 0..20 {
        assert_eq!(through.next().unwrap().unwrap().0, key(i));
    }
    match through.next() {
        Some(Err(Error::Corruption { file, offset, .. })) => {
            assert_eq!((file, offset), (path, p.offset));
        }
        other => panic!("key 20 read as {other:?}"),
    }
}

/// Seconds to scan the whole store `reps` times.
fn time_scans(store: &Wisckey, reps: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..reps {
        assert_eq!(store.scan(KeyRange::all()).unwrap().count(), 3000);
    }
    started.elapsed().as_secs_f64()
}

#[test]
fn scan_time_with_and_without_reading_ahead() {
    for in_order in [true, false] {
        let mut line = format!(
            "wisckey scan of 3000 values of 1 KiB written {}:",
            if in_order {
                "in key order"
            } else {
                "scrambled"
            }
        );
        for prefetch in [1, 64] {
            let settings = format!("value_threshold=8 scan_prefetch={prefetch}");
            let (_tmp, store) = store_of(&common::options(&settings), 3000, 1024, in_order);
            let secs = time_scans(&store, 3);
            let reads = store.stats().unwrap().extra["prefetch_reads"];
            line += &format!(
                " prefetch {prefetch}: {:.1} ms, {reads} reads;",
                secs * 1000.0 / 3.0
            );
        }
        eprintln!("{line}");
    }
}
