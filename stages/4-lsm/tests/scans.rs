//! Scans see one consistent snapshot while flushes and compactions rewrite the tables under
//! them, and the files they read are not deleted while they read them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::Duration;

mod common;

use kv_shared::{Engine, KeyRange};

const KEYS: u32 = 400;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn round_of(value: &[u8]) -> u32 {
    let text = std::str::from_utf8(value).unwrap();
    text.split('/').next().unwrap().parse().unwrap()
}

/// The writer sets every key to round `r`, in key order, round after round. A consistent
/// snapshot therefore sees some prefix of the keys at round `r` and the rest at `r - 1`:
/// rounds never increase along the key order and differ by at most one. Each scan reads
/// slowly, so compactions finish and delete files while it is in the middle of them.
#[test]
fn scans_see_a_consistent_snapshot_during_compactions() {
    let (_tmp, e) = common::new_tree(&common::options(
        "memtable_bytes=16K table_bytes=8K level1_bytes=32K level_ratio=4 l0_trigger=2 \
         block_bytes=1K",
    ));
    let padding = "p".repeat(60);
    for i in 0..KEYS {
        e.put(&key(i), format!("0/{padding}").as_bytes()).unwrap();
    }
    let done = AtomicBool::new(false);
    let rounds_written = AtomicU32::new(0);
    let scans = AtomicU32::new(0);
    std::thread::scope(|s| {
        for reader in 0..2u32 {
            let (e, done, scans) = (&e, &done, &scans);
            s.spawn(move || {
                while !done.load(SeqCst) {
                    let mut rounds = Vec::with_capacity(KEYS as usize);
                    for (n, pair) in e.scan(KeyRange::all()).unwrap().enumerate() {
                        let (k, v) = pair.unwrap();
                        assert_eq!(k, key(n as u32), "scan skipped or repeated a key");
                        rounds.push(round_of(&v));
                        if n % 100 == reader as usize * 50 {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                    assert_eq!(rounds.len(), KEYS as usize);
                    let (first, last) = (rounds[0], rounds[rounds.len() - 1]);
                    assert!(
                        rounds.windows(2).all(|w| w[0] >= w[1]) && first - last <= 1,
                        "not a snapshot: rounds from {first} down to {last}, not monotone"
                    );
                    scans.fetch_add(1, SeqCst);
                }
            });
        }
        for round in 1..=40u32 {
            for i in 0..KEYS {
                e.put(&key(i), format!("{round}/{padding}").as_bytes())
                    .unwrap();
            }
            rounds_written.store(round, SeqCst);
        }
        // Let the readers finish a few scans over the settled tree too.
        e.compact().unwrap();
        let seen = scans.load(SeqCst);
        while scans.load(SeqCst) < seen + 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        done.store(true, SeqCst);
    });
    let stats = e.stats().unwrap();
    assert!(
        stats.extra["compactions"] > 5 && stats.extra["flushes"] > 10,
        "{stats:?}"
    );
    assert!(scans.load(SeqCst) >= 2);
    e.close().unwrap();
}

/// A scan opened before a full compaction still reads every key it should from the old
/// tables, although the compaction replaced (and marked for deletion) all of them.
#[test]
fn an_open_scan_keeps_its_tables() {
    let (tmp, e) = common::new_tree(&common::options(
        "memtable_bytes=8K table_bytes=4K level1_bytes=16K block_bytes=512",
    ));
    for i in 0..KEYS {
        e.put(&key(i), format!("1/{}", "v".repeat(80)).as_bytes())
            .unwrap();
    }
    e.compact().unwrap();
    let mut scan = e.scan(KeyRange::all()).unwrap();
    let first = scan.next().unwrap().unwrap();
    assert_eq!(first.0, key(0));
    for i in 0..KEYS {
        e.put(&key(i), format!("2/{}", "w".repeat(80)).as_bytes())
            .unwrap();
    }
    e.full_compaction().unwrap();
    let rest: Vec<(Vec<u8>, Vec<u8>)> = scan.map(Result::unwrap).collect();
    assert_eq!(rest.len(), KEYS as usize - 1);
    assert!(
        rest.iter().all(|(_, v)| round_of(v) == 1),
        "the scan's snapshot predates round 2"
    );
    // Once the scan is gone, nothing but the live tables remains on disk. A background
    // thread may still hold the old version for a moment after the tree settles (its last
    // round's snapshot): the last holder deletes the files, so the count may lag behind.
    e.compact().unwrap();
    let live: usize = e.levels_summary().iter().map(|s| s.files).sum();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut tables = common::table_files(tmp.path()).len();
    while tables != live && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
        tables = common::table_files(tmp.path()).len();
    }
    assert_eq!(
        tables, live,
        "obsolete tables are deleted once no version holds them"
    );
    e.close().unwrap();
}

/// Without a block cache every block a scan reads comes from its file, so a long scan runs
/// on readahead (several blocks per read, the buffer doubling up to its limit): forward,
/// backward, after seeks back and forth, and turning around, it returns exactly what was
/// written; and damage in a block that arrived by readahead is still reported, naming the
/// table.
#[test]
fn scans_over_readahead_return_every_entry_and_find_damage() {
    let (tmp, e) = common::new_tree(&common::options(
        "memtable_bytes=64K table_bytes=4M block_bytes=256 block_cache_bytes=0",
    ));
    let value = |i: u32| format!("value {i} {}", "v".repeat((i % 30) as usize)).into_bytes();
    let n = 6000u32;
    for i in 0..n {
        e.put(&key(i), &value(i)).unwrap();
    }
    e.full_compaction().unwrap();
    let all: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(|i| (key(i), value(i))).collect();
    let forward = kv_testkit::conformance::scan_vec(&e, KeyRange::all());
    assert!(forward == all, "a full scan over readahead");
    let mut backward: Vec<_> = e
        .scan_rev(KeyRange::all())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    backward.reverse();
    assert!(backward == all, "a reverse scan");
    let mut cursor = e.cursor().unwrap();
    for &at in &[4000u32, 10, 2500, 2501, 5999, 0] {
        cursor.seek(&key(at)).unwrap();
        for step in 0..300u32.min(n - at) {
            assert_eq!(
                cursor.key(),
                key(at + step).as_slice(),
                "from {at}, step {step}"
            );
            cursor.next().unwrap();
        }
        cursor.prev().unwrap();
    }
    drop(cursor);
    e.close().unwrap();
    // Damage one byte in the middle of the (single) table: a full scan reads it by
    // readahead and must report it.
    let table = common::table_files(tmp.path()).pop().unwrap();
    let path = tmp.path().join(&table);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let e = lsm::LsmTree::open(tmp.path(), &common::options("block_cache_bytes=0")).unwrap();
    let error = e
        .scan(KeyRange::all())
        .unwrap()
        .find_map(Result::err)
        .expect("the damaged block is reported");
    assert!(
        error.is_corruption() && error.to_string().contains(&table),
        "{error}"
    );
}
