//! The production peers fjall, sled and redb (feature `peers`) behind the course's
//! [`kv_shared::Engine`] contract: the whole conformance suite on each, with small memtables
//! and blocks so fjall flushes and compacts many times inside it, then what the adapters add
//! (statistics, directory layout, the registry, redb's compaction around open cursors).
//!
//! Run with `cargo test -p kvbench --features peers --test peers`.
#![cfg(feature = "peers")]

use std::path::Path;

use kv_shared::{Engine, KeyRange, LoadOrder, LoadReport, Options};
use kvbench::peers::fjall::Fjall;
use kvbench::peers::redb::Redb;
use kvbench::peers::sled::Sled;

mod fjall_suite {
    use super::*;
    kv_testkit::conformance_tests!(
        Fjall,
        Options::new()
            .set("memtable_bytes", "64K")
            .set("block_bytes", "1K")
    );
}

mod sled_suite {
    use super::*;
    kv_testkit::conformance_tests!(Sled, Options::new().set("cache_bytes", "1M"));
}

mod redb_suite {
    use super::*;
    kv_testkit::conformance_tests!(Redb, Options::new().set("cache_bytes", "1M"));
}

mod redb_durable_suite {
    use super::*;
    kv_testkit::conformance_tests!(Redb, Options::new().set("durability", "immediate"));
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value {i} ").repeat(8).into_bytes()
}

/// Fills a fresh store with `n` keys, closes it, and reopens it with a cold cache.
fn filled<E: Engine>(dir: &Path, options: &Options, n: u32) -> E {
    let engine = E::open(dir, options).unwrap();
    for i in 0..n {
        engine.put(&key(i), &value(i)).unwrap();
    }
    engine.compact().unwrap();
    engine.close().unwrap();
    E::open(dir, options).unwrap()
}

#[test]
fn fjall_counts_the_blocks_its_gets_read_from_files() {
    let tmp = tempfile::tempdir().unwrap();
    let options = Options::new().set("memtable_bytes", "64K");
    let engine: Fjall = filled(&tmp.path().join("db"), &options, 5000);
    for i in (0..5000).step_by(50) {
        assert_eq!(engine.get(&key(i)).unwrap(), Some(value(i)));
    }
    let stats = engine.stats().unwrap();
    assert_eq!(stats.gets, 100);
    // A cold cache: the first gets must load blocks; with a block cache and bloom filters,
    // no get needs more than a handful (filter, index, data block per table touched).
    assert!(stats.get_disk_reads > 0, "{stats:?}");
    assert!(stats.get_disk_reads <= 100 * 4, "{stats:?}");
    assert!(!stats.extra.contains_key("read_amp_unknown"));
    assert_eq!(stats.extra.get("disk_bytes_written_from_os"), Some(&1));
    // Gets of the same keys again hit the cache.
    for i in (0..5000).step_by(50) {
        engine.get(&key(i)).unwrap();
    }
    assert_eq!(engine.stats().unwrap().get_disk_reads, stats.get_disk_reads);
    engine.close().unwrap();
}

#[test]
fn sled_and_redb_say_their_read_amplification_is_unknown() {
    fn check<E: Engine>() {
        let tmp = tempfile::tempdir().unwrap();
        let engine: E = filled(&tmp.path().join("db"), &Options::new(), 500);
        for i in 0..50 {
            assert_eq!(engine.get(&key(i)).unwrap(), Some(value(i)), "{}", E::NAME);
        }
        let stats = engine.stats().unwrap();
        assert_eq!((stats.gets, stats.get_disk_reads), (50, 0), "{}", E::NAME);
        assert_eq!(stats.read_amp(), Some(0.0));
        assert_eq!(stats.extra.get("read_amp_unknown"), Some(&1), "{}", E::NAME);
        assert_eq!(stats.live_keys, 500, "{}", E::NAME);
        engine.close().unwrap();
    }
    check::<Sled>();
    check::<Redb>();
}

#[test]
fn peers_keep_their_files_in_a_subdirectory_named_after_them() {
    fn check<E: Engine>() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let engine = E::open(&dir, &Options::new()).unwrap();
        engine.put(b"k", b"v").unwrap();
        engine.sync().unwrap();
        let mut top: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, ["ENGINE", "LOCK", E::NAME], "{}", E::NAME);
        let stats = engine.stats().unwrap();
        assert!(stats.file_count > 2 && stats.disk_bytes > 0, "{stats:?}");
        engine.close().unwrap();
    }
    check::<Fjall>();
    check::<Sled>();
    check::<Redb>();
}

#[test]
fn a_peer_refuses_another_peers_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fjall = Fjall::open(&dir, &Options::new()).unwrap();
    fjall.put(b"k", b"v").unwrap();
    fjall.close().unwrap();
    assert!(matches!(
        Sled::open(&dir, &Options::new()),
        Err(kv_shared::Error::WrongEngine { .. })
    ));
    let fjall = Fjall::open(&dir, &Options::new()).unwrap();
    assert_eq!(fjall.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    fjall.close().unwrap();
}

#[test]
fn bad_peer_options_are_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("block_bytes", "100"),
        ("block_bytes", "2G"),
        ("bloom_bits_per_key", "-1"),
        ("memtable_bytes", "0"),
        ("cache_bytes", "lots"),
    ] {
        let options = Options::new().set(name, value);
        assert!(
            matches!(
                Fjall::open(&tmp.path().join("f"), &options),
                Err(kv_shared::Error::InvalidArgument(_))
            ),
            "{name}={value}"
        );
    }
    let options = Options::new().set("cache_bytes", "lots");
    assert!(Sled::open(&tmp.path().join("s"), &options).is_err());
    assert!(Redb::open(&tmp.path().join("r"), &options).is_err());
    let options = Options::new().set("durability", "eventual");
    assert!(matches!(
        Redb::open(&tmp.path().join("r"), &options),
        Err(kv_shared::Error::InvalidArgument(_))
    ));
}

#[test]
fn fjall_options_reach_fjall() {
    // A 64 KiB memtable: ~270 KB of data is flushed to tables (which fjall may then merge
    // into one), where the default 64 MiB memtable holds it all in memory.
    let tmp = tempfile::tempdir().unwrap();
    let small = Options::new()
        .set("memtable_bytes", "64K")
        .set("block_bytes", "1K");
    let engine = Fjall::open(&tmp.path().join("small"), &small).unwrap();
    for i in 0..3000 {
        engine.put(&key(i), &value(i)).unwrap();
    }
    let tables = |e: &Fjall| e.stats().unwrap().extra["tables"];
    // fjall flushes sealed memtables in a background thread: wait for them (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tables(&engine) < 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let flushed_tables = tables(&engine);
    assert!(flushed_tables >= 1, "{flushed_tables} tables");
    assert_eq!(
        kv_testkit::conformance::scan_vec(&engine, KeyRange::all()).len(),
        3000
    );
    engine.close().unwrap();

    let engine = Fjall::open(&tmp.path().join("default"), &Options::new()).unwrap();
    for i in 0..3000 {
        engine.put(&key(i), &value(i)).unwrap();
    }
    assert_eq!(
        tables(&engine),
        0,
        "everything fits the default 64 MiB memtable"
    );
    engine.close().unwrap();
}

#[test]
fn the_registry_runs_the_peers_by_name() {
    use kvbench::engines::{ENGINES, find};
    for name in ["fjall", "sled", "redb"] {
        let info = find(ENGINES, name).unwrap();
        let peer = kvbench::peers::find(name).unwrap();
        assert!(peer.built);
        assert_eq!(info.summary, peer.summary);
        assert_eq!((info.inspect)(b"anything at all"), None);
        let tmp = tempfile::tempdir().unwrap();
        let engine = (info.open)(&tmp.path().join("db"), &Options::new()).unwrap();
        engine.put(b"k", b"v").unwrap();
        assert_eq!(engine.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(engine.name(), name);
        engine.close().unwrap();
    }
    assert!(kvbench::peers::not_built().all(|p| p.feature == "rocksdb"));
}

#[test]
fn redb_leaves_its_file_to_a_later_compact_while_a_cursor_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = Redb::open(&tmp.path().join("db"), &Options::new()).unwrap();
    for i in 0..3000 {
        engine.put(&key(i), &value(i)).unwrap();
    }
    for i in 0..2900 {
        engine.delete(&key(i)).unwrap();
    }
    let disk_bytes = |e: &Redb| e.stats().unwrap().disk_bytes;
    let before = disk_bytes(&engine);
    let mut cursor = engine.cursor().unwrap();
    engine.put(&key(0), b"after the cursor").unwrap();
    engine.compact().unwrap();
    cursor.seek_to_first().unwrap();
    assert_eq!(
        (cursor.key(), cursor.value()),
        (&key(2900)[..], &value(2900)[..])
    );
    drop(cursor);
    engine.compact().unwrap();
    let after = disk_bytes(&engine);
    assert!(after < before, "compacted from {before} to {after} bytes");
    assert_eq!(
        engine.get(&key(0)).unwrap().as_deref(),
        Some(&b"after the cursor"[..])
    );
    engine.close().unwrap();
}

/// A bulk load's pairs, as `load` takes them.
type Pairs = Vec<kv_shared::Result<(Vec<u8>, Vec<u8>)>>;

/// Loads into a store holding two earlier puts: a sorted load of the empty key and keys
/// `0..2000` (key 10 twice), a sorted load with a step back (refused, nothing of it added),
/// an unsorted load of keys `2000..2100`; checks what reads back before and after a reopen.
/// Returns the sorted load's report.
fn load_like_puts<E: Engine>(options: &Options) -> LoadReport {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let engine = E::open(&dir, options).unwrap();
    engine.put(&key(5), b"old").unwrap();
    engine.put(b"zzz", b"kept").unwrap();
    let mut sorted: Pairs = vec![Ok((Vec::new(), b"empty".to_vec()))];
    for i in 0..2000 {
        if i == 10 {
            sorted.push(Ok((key(i), b"first of two".to_vec())));
        }
        sorted.push(Ok((key(i), value(i))));
    }
    let bytes: usize = sorted
        .iter()
        .map(|p| p.as_ref().map_or(0, |(k, v)| k.len() + v.len()))
        .sum();
    let report = engine
        .load(&mut sorted.into_iter(), LoadOrder::Sorted)
        .unwrap();
    assert_eq!(
        (report.pairs, report.bytes),
        (2002, bytes as u64),
        "{}",
        E::NAME
    );
    let user_bytes = (key(5).len() + 3 + 3 + 4 + bytes) as u64;
    assert_eq!(
        engine.stats().unwrap().user_bytes_written,
        user_bytes,
        "{}",
        E::NAME
    );

    let step_back: Pairs = vec![
        Ok((b"y1".to_vec(), b"v".to_vec())),
        Ok((b"y0".to_vec(), b"v".to_vec())),
    ];
    let refused = engine
        .load(&mut step_back.into_iter(), LoadOrder::Sorted)
        .unwrap_err();
    assert!(
        matches!(refused, kv_shared::Error::InvalidArgument(_)),
        "{}: {refused}",
        E::NAME
    );
    assert_eq!(engine.get(b"y1").unwrap(), None, "{}", E::NAME);

    let mut unsorted: Pairs = (2000..2100).rev().map(|i| Ok((key(i), value(i)))).collect();
    let batches = engine
        .load(&mut unsorted.drain(..), LoadOrder::Unsorted)
        .unwrap();
    assert_eq!(
        batches.method,
        "1 batches of up to 1000 pairs, then sync",
        "{}",
        E::NAME
    );
    assert_eq!((batches.pairs, batches.files_added), (100, 0));
    engine.close().unwrap();

    let engine = E::open(&dir, options).unwrap();
    let expected = [
        (Vec::new(), b"empty".to_vec()),
        (key(5), value(5)),
        (key(10), value(10)),
        (key(1999), value(1999)),
        (key(2050), value(2050)),
        (b"zzz".to_vec(), b"kept".to_vec()),
    ];
    for (k, v) in expected {
        assert_eq!(engine.get(&k).unwrap(), Some(v), "{} {k:?}", E::NAME);
    }
    assert_eq!(engine.stats().unwrap().live_keys, 2102, "{}", E::NAME);
    engine.close().unwrap();
    report
}

#[test]
fn fjall_ingests_a_sorted_load_into_tables() {
    let report = load_like_puts::<Fjall>(&Options::new().set("memtable_bytes", "64K"));
    assert!(report.files_added >= 1, "{report:?}");
    assert_eq!(
        report.method,
        format!(
            "fjall ingestion: {} tables added to level 0, then sync",
            report.files_added
        )
    );
}

#[test]
fn sled_and_redb_load_by_batches_of_a_thousand() {
    // 2,001 distinct keys (the empty key and 0..2000): three batches.
    for report in [
        load_like_puts::<Sled>(&Options::new()),
        load_like_puts::<Redb>(&Options::new()),
    ] {
        assert_eq!(report.method, "3 batches of up to 1000 pairs, then sync");
        assert_eq!(report.files_added, 0);
    }
}
