//! `compact` merges every table into one, dropping shadowed versions and tombstones, and
//! never pulls a file from under a reader.

use std::path::{Path, PathBuf};

use kv_shared::{Engine, KeyRange, Options};
use kv_testkit::conformance::scan_vec;
use sstable::SstableStore;

fn sst_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sst"))
        .collect();
    v.sort();
    v
}

/// Four rounds of writes to `k000` to `k099` (each deleting every fifth key, the deleted
/// keys moving by one each round), each flushed into a table of its own; in a new temporary
/// directory (the guard) whose `db` holds the store.
fn filled() -> (tempfile::TempDir, PathBuf, SstableStore) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let e = SstableStore::open(&dir, &Options::new().set("memtable_bytes", "1M")).unwrap();
    for round in 0..4u32 {
        for i in 0..100u32 {
            if (i + round) % 5 == 0 {
                e.delete(format!("k{i:03}").as_bytes()).unwrap();
            } else {
                e.put(
                    format!("k{i:03}").as_bytes(),
                    format!("v{i}-{round}").as_bytes(),
                )
                .unwrap();
            }
        }
        e.flush().unwrap();
    }
    (tmp, dir, e)
}

#[test]
fn compaction_keeps_only_the_newest_live_versions() {
    let (_tmp, dir, e) = filled();
    let before = scan_vec(&e, KeyRange::all());
    let s = e.stats().unwrap();
    assert_eq!(s.extra["tables"], 4);
    assert_eq!(s.extra["table_entries"], 400);
    assert_eq!(s.extra["table_tombstones"], 80);
    e.compact().unwrap();
    let s = e.stats().unwrap();
    assert_eq!(s.extra["tables"], 1);
    assert_eq!(s.extra["compactions"], 1);
    assert_eq!(
        s.extra["table_entries"], s.live_keys,
        "one entry per live key"
    );
    assert_eq!(s.extra["table_tombstones"], 0);
    assert_eq!(s.live_keys, 80);
    assert_eq!(scan_vec(&e, KeyRange::all()), before);
    assert_eq!(e.get(b"k001").unwrap(), Some(b"v1-3".to_vec()));
    assert_eq!(e.get(b"k002").unwrap(), None, "deleted in the last round");
    assert_eq!(sst_files(&dir).len(), 1);
    // Nothing left to drop: a second compaction writes nothing.
    e.compact().unwrap();
    assert_eq!(e.stats().unwrap().extra["compactions"], 1);
    e.close().unwrap();
}

#[test]
fn a_scan_keeps_reading_the_tables_a_compaction_replaced() {
    let (_tmp, dir, e) = filled();
    let want = scan_vec(&e, KeyRange::all());
    let old_files = sst_files(&dir);
    let mut scan = e.scan(KeyRange::all()).unwrap();
    let first = scan.next().unwrap().unwrap();
    e.compact().unwrap();
    let on_disk = sst_files(&dir);
    assert!(
        old_files.iter().all(|f| on_disk.contains(f)),
        "replaced tables stay while a reader holds them: {on_disk:?}"
    );
    let mut got = vec![first];
    got.extend(scan.by_ref().map(|r| r.unwrap()));
    assert_eq!(got, want);
    drop(scan);
    assert_eq!(
        sst_files(&dir).len(),
        1,
        "removed once the last reader let go"
    );
    e.close().unwrap();
}
