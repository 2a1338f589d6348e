//! Merges: concurrent with writers and readers, across restarts, with tombstones, with a
//! reader still holding an old segment, and what they do to disk usage.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use bitcask::Bitcask;
use common::*;
use kv_shared::{Engine, KeyRange};
use kv_testkit::conformance::StopOnDrop;

fn extra(e: &Bitcask, name: &str) -> u64 {
    e.stats().unwrap().extra[name]
}

/// Several writers (each owning its keys, putting and sometimes deleting), readers (gets
/// and scans), a thread calling `compact`, and the background merge, all at once. Every
/// read must answer a state of the key between the last acknowledged write before the
/// read began and the last write begun before it ended.
#[test]
fn merges_run_while_threads_write_and_read() {
    const WRITERS: usize = 3;
    const KEYS: usize = 12;
    let rounds = kv_testkit::knobs::env_u64("KV_MERGE_ROUNDS", 150);
    let options = merging("2K", "0.3");
    let (_tmp, dir, e) = new_store(&options);
    let n = WRITERS * KEYS;
    let started: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let acked: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let done = AtomicBool::new(false);
    let key = |k: usize| format!("key{k:03}").into_bytes();
    // Round r of a key is a delete when r is a multiple of 7, else a put of "k:r/pad".
    let is_delete = |r: u64| r.is_multiple_of(7);
    let parse = |k: usize, v: &[u8]| -> u64 {
        let text = std::str::from_utf8(v).unwrap();
        let (kk, rest) = text.split_once(':').unwrap();
        assert_eq!(kk, k.to_string(), "value of another key");
        rest.split_once('/').unwrap().0.parse().unwrap()
    };
    // A read that began after round `lo` was acknowledged and ended before round `hi + 1`
    // began may see any round in `lo..=hi`.
    let check = |k: usize, got: Option<&[u8]>, lo: u64, hi: u64, what: &str| match got {
        Some(v) => {
            let r = parse(k, v);
            assert!(
                lo <= r && r <= hi && !is_delete(r),
                "{what} of key {k} saw round {r}, outside [{lo}, {hi}]"
            );
        }
        None => assert!(
            (lo..=hi).any(|r| r == 0 || is_delete(r)),
            "{what} of key {k} saw nothing, but [{lo}, {hi}] holds no delete"
        ),
    };
    std::thread::scope(|s| {
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (e, started, acked, key) = (&e, &started, &acked, &key);
            writers.push(s.spawn(move || {
                for round in 1..=rounds {
                    for k in w * KEYS..(w + 1) * KEYS {
                        started[k].store(round, SeqCst);
                        if is_delete(round) {
                            e.delete(&key(k)).unwrap();
                        } else {
                            let pad = "p".repeat((round as usize * 13 + k) % 90);
                            e.put(&key(k), format!("{k}:{round}/{pad}").as_bytes())
                                .unwrap();
                        }
                        acked[k].store(round, SeqCst);
                    }
                }
            }));
        }
        for reader in 0..2u64 {
            let (e, started, acked, done, key, check) = (&e, &started, &acked, &done, &key, &check);
            s.spawn(move || {
                let mut i = reader;
                while !done.load(SeqCst) {
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if i % 10 == 0 {
                        let lo: Vec<u64> = acked.iter().map(|a| a.load(SeqCst)).collect();
                        let pairs: BTreeMap<Vec<u8>, Vec<u8>> = e
                            .scan(KeyRange::all())
                            .unwrap()
                            .collect::<Result<_, _>>()
                            .unwrap();
                        let hi: Vec<u64> = started.iter().map(|a| a.load(SeqCst)).collect();
                        for k in 0..n {
                            check(
                                k,
                                pairs.get(&key(k)).map(Vec::as_slice),
                                lo[k],
                                hi[k],
                                "scan",
                            );
                        }
                    } else {
                        let k = (i >> 33) as usize % n;
                        let lo = acked[k].load(SeqCst);
                        let got = e.get(&key(k)).unwrap();
                        let hi = started[k].load(SeqCst);
                        check(k, got.as_deref(), lo, hi, "get");
                    }
                }
            });
        }
        let (e, done) = (&e, &done);
        let compactor = s.spawn(move || {
            while !done.load(SeqCst) {
                e.compact().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
        });
        // The writers finish, then everyone else stops (also when a writer fails).
        let _stop = StopOnDrop(done);
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, SeqCst);
        compactor.join().unwrap();
    });
    let stats = e.stats().unwrap();
    assert!(stats.extra["merges"] >= 2, "{stats:?}");
    assert_eq!(stats.extra["merge_errors"], 0, "{stats:?}");
    let last = |k: usize| -> Option<Vec<u8>> {
        (!is_delete(rounds)).then(|| {
            let pad = "p".repeat((rounds as usize * 13 + k) % 90);
            format!("{k}:{rounds}/{pad}").into_bytes()
        })
    };
    let model: BTreeMap<Vec<u8>, Vec<u8>> = (0..n)
        .filter_map(|k| last(k).map(|v| (key(k), v)))
        .collect();
    assert_holds(&e, &model, "after the run");
    e.close().unwrap();
    let e = open(&dir, &options);
    assert_holds(&e, &model, "after reopening");
    e.close().unwrap();
}

#[test]
fn a_restart_after_merges_reads_hints_and_loses_nothing() {
    let (_tmp, dir, e) = new_store(&quiet("1K"));
    let mut model = churn(&e, 80, 4);
    e.compact().unwrap();
    // Writes after the merge land in hint-less segments.
    for i in 0..30u32 {
        let key = format!("key{i:04}").into_bytes();
        e.put(&key, b"after the merge").unwrap();
        model.insert(key, b"after the merge".to_vec());
    }
    let before = e.stats().unwrap();
    e.close().unwrap();
    let hints = files_ending(&dir, ".hint").len() as u64;
    assert!(hints >= 2, "{:?}", files(&dir));

    let e = open(&dir, &quiet("1K"));
    assert_holds(&e, &model, "reopened from hints");
    let s = e.stats().unwrap();
    assert_eq!(s.extra["hint_files_read"], hints);
    assert_eq!(s.extra["hint_files_rejected"], 0);
    assert_eq!(
        (s.live_keys, s.live_data_bytes),
        (before.live_keys, before.live_data_bytes)
    );
    assert_eq!(s.extra["dead_bytes"], before.extra["dead_bytes"]);
    e.close().unwrap();

    let no_hints = quiet("1K").set("hint_files", "false");
    let e = open(&dir, &no_hints);
    assert_holds(&e, &model, "reopened from data files");
    let s = e.stats().unwrap();
    assert_eq!(s.extra["hint_files_read"], 0);
    assert_eq!(s.extra["dead_bytes"], before.extra["dead_bytes"]);
    e.close().unwrap();
}

#[test]
fn a_deleted_key_never_comes_back_across_merges_and_restarts() {
    let options = quiet("1K");
    let (_tmp, dir, e) = new_store(&options);
    let key = |i: u32| format!("doomed{i:03}").into_bytes();
    // Old values in the oldest segments, tombstones in later ones.
    for round in 0..3 {
        for i in 0..100 {
            e.put(&key(i), format!("value {round}").as_bytes()).unwrap();
        }
    }
    for i in 0..50 {
        e.delete(&key(i)).unwrap();
    }
    let check = |e: &Bitcask, context: &str| {
        for i in 0..100 {
            let want = (i >= 50).then(|| b"value 2".to_vec());
            assert_eq!(e.get(&key(i)).unwrap(), want, "{context}: key {i}");
        }
        assert_eq!(contents(e).len(), 50, "{context}");
    };
    check(&e, "before any merge");
    e.close().unwrap();
    let e = open(&dir, &options);
    check(&e, "reopened, tombstones only in the logs");
    e.compact().unwrap();
    check(&e, "merged");
    assert!(extra(&e, "tombstones_dropped") >= 50);
    e.close().unwrap();
    for name in files(&dir) {
        assert!(!name.ends_with(".commit"), "{name} left after close");
    }
    reopen_with_and_without_hints(&dir, &options, |e, context| {
        check(e, &format!("merged, {context}"));
    });

    // A key merged into a hinted segment, then deleted, then merged again.
    let e = open(&dir, &options);
    e.delete(&key(60)).unwrap();
    e.close().unwrap();
    let e = open(&dir, &options);
    assert_eq!(
        e.get(&key(60)).unwrap(),
        None,
        "tombstone in the active segment"
    );
    e.compact().unwrap();
    e.close().unwrap();
    let e = open(&dir, &options);
    assert_eq!(e.get(&key(60)).unwrap(), None, "tombstone merged away");
    assert_eq!(contents(&e).len(), 49);
    e.close().unwrap();
}

#[test]
fn a_scan_keeps_old_segments_readable_across_a_merge() {
    let (_tmp, dir, e) = new_store(&quiet("1K"));
    let model = churn(&e, 60, 5);
    let old_segments = files_ending(&dir, ".seg");
    let mut scan = e.scan(KeyRange::all()).unwrap();
    let mut got = BTreeMap::new();
    for _ in 0..5 {
        let (k, v) = scan.next().unwrap().unwrap();
        got.insert(k, v);
    }
    e.compact().unwrap();
    // The merge committed, but its inputs are still held by the scan: nothing is deleted yet.
    assert!(
        old_segments.iter().all(|p| p.exists()),
        "an input was deleted under a reader"
    );
    assert_eq!(files_ending(&dir, ".commit").len(), 1);
    for item in scan {
        let (k, v) = item.unwrap();
        got.insert(k, v);
    }
    assert!(
        got == model,
        "the scan across the merge differs from the model"
    );
    // The scan is gone: its segments are deleted, then the commit record.
    assert!(
        old_segments.iter().all(|p| !p.exists()),
        "{:?}",
        files(&dir)
    );
    assert!(files_ending(&dir, ".commit").is_empty());
    assert_holds(&e, &model, "after the merge");
    e.close().unwrap();
}

#[test]
fn merging_reclaims_the_space_of_overwrites() {
    let (_tmp, _, e) = new_store(&quiet("4K"));
    let mut model = BTreeMap::new();
    for round in 0..20u32 {
        for i in 0..100u32 {
            let (k, v) = (format!("k{i:03}"), format!("{round:03}{}", "v".repeat(97)));
            e.put(k.as_bytes(), v.as_bytes()).unwrap();
            model.insert(k.into_bytes(), v.into_bytes());
        }
    }
    let before = e.stats().unwrap();
    assert!(before.space_amp().unwrap() > 10.0, "{before:?}");
    e.compact().unwrap();
    let after = e.stats().unwrap();
    // Per key: a 131-byte record for 104 bytes of data, and a 39-byte hint entry.
    assert!(after.space_amp().unwrap() < 1.8, "{after:?}");
    assert_eq!(after.extra["dead_bytes"], 0);
    assert!(after.extra["merge_bytes_written"] > 100 * 131);
    assert_holds(&e, &model, "after merging");
    e.close().unwrap();
}

#[test]
fn background_merge_starts_on_its_own_past_the_dead_ratio() {
    let options = merging("1K", "0.5");
    let (_tmp, dir, e) = new_store(&options);
    let mut model = BTreeMap::new();
    let mut round = 0u32;
    // Overwrite the same keys until the merge thread has run (bounded, never by time alone).
    while extra(&e, "merges") == 0 {
        round += 1;
        assert!(round < 10_000, "no background merge after {round} rounds");
        for i in 0..20u32 {
            let (k, v) = (format!("k{i:02}"), format!("round {round}"));
            e.put(k.as_bytes(), v.as_bytes()).unwrap();
            model.insert(k.into_bytes(), v.into_bytes());
        }
        std::thread::yield_now();
    }
    assert_holds(&e, &model, "after a background merge");
    e.close().unwrap();
    let e = open(&dir, &options);
    assert_holds(&e, &model, "reopened");
    e.close().unwrap();
}
