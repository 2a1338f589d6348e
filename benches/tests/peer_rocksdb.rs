//! RocksDB (feature `rocksdb`) behind the course's [`kv_shared::Engine`] contract: the
//! whole conformance suite with a small memtable and blocks, so it flushes and compacts many
//! times inside it, then the figures the adapter takes from RocksDB's own counters.
//!
//! Run with `cargo test --release -p kvbench --features rocksdb --test peer_rocksdb`
//! (`--release` reuses the release build of the C++ library instead of compiling it again).
#![cfg(feature = "rocksdb")]

use kv_shared::{Engine, LoadOrder, Options};
use kvbench::peers::rocksdb::RocksDb;

mod rocksdb_suite {
    use super::*;
    kv_testkit::conformance_tests!(
        RocksDb,
        Options::new()
            .set("memtable_bytes", "64K")
            .set("block_bytes", "1K")
    );
}

mod rocksdb_blob_files_suite {
    use super::*;
    kv_testkit::conformance_tests!(
        RocksDb,
        Options::new()
            .set("blob_files", "true")
            .set("memtable_bytes", "64K")
            .set("block_bytes", "1K")
    );
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value {i} ").repeat(8).into_bytes()
}

#[test]
fn bytes_written_come_from_rocksdb_and_cover_the_wal_flushes_and_compactions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let options = Options::new().set("memtable_bytes", "64K");
    let engine = RocksDb::open(&dir, &options).unwrap();
    let mut user = 0u64;
    for i in 0..5000 {
        engine.put(&key(i), &value(i)).unwrap();
        user += (key(i).len() + value(i).len()) as u64;
    }
    engine.compact().unwrap();
    let stats = engine.stats().unwrap();
    assert_eq!(stats.user_bytes_written, user);
    let (wal, flush, compaction) = (
        stats.extra["wal_bytes"],
        stats.extra["flush_bytes"],
        stats.extra["compaction_bytes"],
    );
    assert_eq!(stats.disk_bytes_written, wal + flush + compaction);
    // Every write went through the WAL; the memtable was flushed several times (64 KiB
    // memtables, ~600 KB of data) and everything rewritten once by the full compaction.
    assert!(wal >= user, "{stats:?}");
    assert!(flush >= user / 2, "{stats:?}");
    assert!(compaction >= user / 2, "{stats:?}");
    assert!(!stats.extra.contains_key("disk_bytes_written_from_os"));
    assert_eq!(stats.live_keys, 5000);
    engine.close().unwrap();
}

#[test]
fn gets_count_the_blocks_read_from_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let engine = RocksDb::open(&dir, &Options::new()).unwrap();
    for i in 0..5000 {
        engine.put(&key(i), &value(i)).unwrap();
    }
    engine.compact().unwrap();
    engine.close().unwrap();
    let engine = RocksDb::open(&dir, &Options::new()).unwrap();
    for i in (0..5000).step_by(50) {
        assert_eq!(engine.get(&key(i)).unwrap(), Some(value(i)));
    }
    let cold = engine.stats().unwrap();
    assert_eq!(cold.gets, 100);
    assert!(cold.get_disk_reads > 0, "{cold:?}");
    assert!(cold.get_disk_reads <= 100 * 4, "{cold:?}");
    // The same gets again are served from the block cache.
    for i in (0..5000).step_by(50) {
        engine.get(&key(i)).unwrap();
    }
    assert_eq!(engine.stats().unwrap().get_disk_reads, cold.get_disk_reads);
    // A missing key between present ones is stopped by the bloom filter or the cache.
    let before = engine.stats().unwrap().get_disk_reads;
    for i in 0..100 {
        assert_eq!(engine.get(format!("key{i:06}x").as_bytes()).unwrap(), None);
    }
    let after = engine.stats().unwrap().get_disk_reads;
    assert!(after - before <= 10, "{before} -> {after}");
    engine.close().unwrap();
}

#[test]
fn the_registry_runs_rocksdb_by_name() {
    use kvbench::engines::{ENGINES, find};
    let info = find(ENGINES, "rocksdb").unwrap();
    assert!(kvbench::peers::not_built().all(|p| p.name != "rocksdb"));
    assert_eq!(info.summary, kvbench::peers::ROCKSDB.summary);
    let tmp = tempfile::tempdir().unwrap();
    let engine = (info.open)(&tmp.path().join("db"), &Options::new()).unwrap();
    engine.put(b"k", b"v").unwrap();
    assert_eq!(engine.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    engine.close().unwrap();
}

/// A bulk load's pairs, as `load` takes them.
type Pairs = Vec<kv_shared::Result<(Vec<u8>, Vec<u8>)>>;

#[test]
fn a_sorted_load_is_ingested_as_tables_and_an_unsorted_one_goes_in_by_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let engine = RocksDb::open(&dir, &Options::new()).unwrap();
    engine.put(&key(5), b"old").unwrap();
    engine.put(b"zzz", b"kept").unwrap();
    // The empty key first, key 10 twice: the last value wins.
    let mut sorted: Pairs = vec![Ok((Vec::new(), b"empty".to_vec()))];
    for i in 0..3000 {
        if i == 10 {
            sorted.push(Ok((key(i), b"first of two".to_vec())));
        }
        sorted.push(Ok((key(i), value(i))));
    }
    let report = engine
        .load(&mut sorted.into_iter(), LoadOrder::Sorted)
        .unwrap();
    assert_eq!((report.pairs, report.files_added), (3002, 1), "{report:?}");
    assert_eq!(
        report.method,
        "1 tables written by SstFileWriter, then IngestExternalFile"
    );
    // The table was moved into RocksDB's directory; the scratch directory is gone.
    assert!(!dir.join("rocksdb-ingest").exists());
    let stats = engine.stats().unwrap();
    let ingested = stats.extra["ingested_bytes"];
    assert!(ingested > report.bytes / 2, "{stats:?}");
    assert_eq!(
        stats.disk_bytes_written,
        stats.extra["wal_bytes"]
            + stats.extra["flush_bytes"]
            + stats.extra["compaction_bytes"]
            + ingested
    );
    // A step back is refused before RocksDB sees it, and nothing of that load is added.
    let step_back: Pairs = vec![
        Ok((b"y1".to_vec(), b"v".to_vec())),
        Ok((b"y0".to_vec(), b"v".to_vec())),
    ];
    let refused = engine
        .load(&mut step_back.into_iter(), LoadOrder::Sorted)
        .unwrap_err();
    assert!(
        matches!(refused, kv_shared::Error::InvalidArgument(_)),
        "{refused}"
    );
    assert_eq!(engine.get(b"y1").unwrap(), None);
    assert!(!dir.join("rocksdb-ingest").exists());
    let mut unsorted: Pairs = (3000..3100).rev().map(|i| Ok((key(i), value(i)))).collect();
    let batches = engine
        .load(&mut unsorted.drain(..), LoadOrder::Unsorted)
        .unwrap();
    assert_eq!(batches.method, "1 batches of up to 1000 pairs, then sync");
    engine.close().unwrap();

    let engine = RocksDb::open(&dir, &Options::new()).unwrap();
    for (k, v) in [
        (Vec::new(), b"empty".to_vec()),
        (key(5), value(5)),
        (key(10), value(10)),
        (key(2999), value(2999)),
        (key(3050), value(3050)),
        (b"zzz".to_vec(), b"kept".to_vec()),
    ] {
        assert_eq!(engine.get(&k).unwrap(), Some(v), "{k:?}");
    }
    assert_eq!(engine.stats().unwrap().live_keys, 3000 + 100 + 2);
    engine.close().unwrap();
}

#[test]
fn blob_files_hold_the_values_and_their_bytes_count_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let engine = RocksDb::open(&dir, &Options::new().set("blob_files", "true")).unwrap();
    let big = |i: u32| value(i).repeat(50); // ~4 KiB
    for i in 0..300 {
        engine.put(&key(i), &big(i)).unwrap();
    }
    assert!(engine.flush().unwrap());
    let sizes = |ext: &str| -> u64 {
        std::fs::read_dir(dir.join("rocksdb"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    };
    let (blobs, tables) = (sizes("blob"), sizes("sst"));
    let values: u64 = (0..300).map(|i| big(i).len() as u64).sum();
    assert!(blobs >= values && tables < values / 10, "{blobs} {tables}");
    let stats = engine.stats().unwrap();
    assert_eq!(stats.extra["blob_files"], 1, "{stats:?}");
    // The flush's ticker counts the table and the blob file: the blob bytes are inside it.
    let (flush, blob_written) = (
        stats.extra["flush_bytes"],
        stats.extra["blob_bytes_written"],
    );
    assert!(
        blob_written >= values && flush >= blob_written + tables,
        "{stats:?}"
    );
    assert!(
        flush < blob_written + tables + values / 10,
        "counted twice? {stats:?}"
    );
    assert_eq!(
        stats.disk_bytes_written,
        stats.extra["wal_bytes"] + flush + stats.extra["compaction_bytes"]
    );
    engine.close().unwrap();
    // Reopened with a cold cache, a get reads the table's block and then the blob file.
    let engine = RocksDb::open(&dir, &Options::new().set("blob_files", "true")).unwrap();
    for i in (0..300).step_by(30) {
        assert_eq!(engine.get(&key(i)).unwrap(), Some(big(i)));
    }
    // One blob read per get, and the table's blocks (few: they are shared by the gets).
    let cold = engine.stats().unwrap();
    assert!(cold.get_disk_reads > 10, "{cold:?}");
    assert!(cold.extra["blob_reads"] >= 10, "{cold:?}");
    // Again: the values come from the blob cache (the block cache), the blocks too.
    for i in (0..300).step_by(30) {
        engine.get(&key(i)).unwrap();
    }
    assert_eq!(engine.stats().unwrap().get_disk_reads, cold.get_disk_reads);
    engine.close().unwrap();
}
