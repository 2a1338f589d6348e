//! The conformance suite: what every engine must do, checked the same way for each.
//!
//! Each engine crate runs the whole suite from its own tests with one line,
//! [`crate::conformance_tests!`]`(MyEngine, options)`, where `options` usually shrinks the
//! engine's thresholds (segment, memtable, level sizes) so that rotations, flushes, merges
//! and compactions happen many times inside the suite.
//!
//! The checks: basic semantics (overwrite, delete, missing keys, empty keys and values,
//! binary keys with `0x00` and `0xFF` bytes, keys and values at the limits and one byte
//! over, every kind of scan bound, scans across deletes), persistence across close and
//! reopen, the directory lock and marker, statistics, a **model test** that runs random
//! operations (including sync, compact, close and reopen) against a `BTreeMap` and compares
//! every answer, and a **concurrency test** where readers never see a value older than the
//! last acknowledged write nor one that was never written.
//!
//! Randomized checks print their seed; set `KV_TEST_SEED` to replay one and `KV_MODEL_OPS`
//! (default 2000) or `KV_CONCURRENCY_ROUNDS` (default 200) to run longer.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_shared::{Engine, Error, KeyRange, MAX_KEY_LEN, MAX_VALUE_LEN, Options, marker};

use crate::knobs::{env_u64, seed};

/// Collects a scan into a vector, panicking on error.
pub fn scan_vec<E: Engine>(engine: &E, range: KeyRange) -> Vec<(Vec<u8>, Vec<u8>)> {
    engine
        .scan(range)
        .expect("scan")
        .collect::<Result<Vec<_>, _>>()
        .expect("scan item")
}

fn open<E: Engine>(dir: &Path, options: &Options) -> E {
    E::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", E::NAME))
}

fn fresh() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    (tmp, dir)
}

/// Put, get, overwrite, and a missing key.
pub fn put_get_overwrite<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"k").unwrap(), None);
    e.put(b"k", b"v1").unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    e.put(b"k", b"value two").unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"value two"[..]));
    e.put(b"k2", b"x").unwrap();
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"value two"[..]));
    assert_eq!(e.get(b"k3").unwrap(), None);
    e.close().unwrap();
}

/// Deletes hide a key, deleting a missing key is fine, and a key can come back.
pub fn delete_and_recreate<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.delete(b"never").unwrap();
    e.put(b"a", b"1").unwrap();
    e.delete(b"a").unwrap();
    assert_eq!(e.get(b"a").unwrap(), None);
    e.delete(b"a").unwrap();
    e.put(b"a", b"2").unwrap();
    assert_eq!(e.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
    e.delete(b"a").unwrap();
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"a").unwrap(), None);
    assert_eq!(e.get(b"never").unwrap(), None);
    e.close().unwrap();
}

/// An empty value is a value, not a delete; the empty key is a key.
pub fn empty_key_and_value<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.put(b"empty", b"").unwrap();
    e.put(b"", b"the empty key").unwrap();
    assert_eq!(e.get(b"empty").unwrap(), Some(Vec::new()));
    assert_eq!(e.get(b"").unwrap().as_deref(), Some(&b"the empty key"[..]));
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"empty").unwrap(), Some(Vec::new()));
    let all = scan_vec(&e, KeyRange::all());
    assert_eq!(all[0], (Vec::new(), b"the empty key".to_vec()));
    assert_eq!(all[1], (b"empty".to_vec(), Vec::new()));
    e.delete(b"").unwrap();
    assert_eq!(e.get(b"").unwrap(), None);
    e.close().unwrap();
}

/// Keys are bytes: `0x00` and `0xFF` anywhere, ordered bytewise.
pub fn binary_keys<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let keys: Vec<Vec<u8>> = vec![
        vec![0xff, 0xff],
        vec![0x00],
        vec![0x00, 0x00],
        vec![0xff],
        b"a\x00b".to_vec(),
        b"a".to_vec(),
        b"a\xff".to_vec(),
    ];
    for (i, k) in keys.iter().enumerate() {
        e.put(k, &[i as u8, 0x00, 0xff]).unwrap();
    }
    let mut sorted = keys.clone();
    sorted.sort();
    let check = |e: &E| {
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                e.get(k).unwrap(),
                Some(vec![i as u8, 0x00, 0xff]),
                "key {k:?}"
            );
        }
        let scanned: Vec<Vec<u8>> = scan_vec(e, KeyRange::all())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(scanned, sorted);
        assert_eq!(e.get(&[0x00, 0x00, 0x00]).unwrap(), None);
        assert_eq!(e.get(&[0xff, 0xff, 0xff]).unwrap(), None);
    };
    check(&e);
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    check(&e);
    e.close().unwrap();
}

/// Keys and values at the limits work; one byte over is a typed error that writes nothing.
pub fn size_limits<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let big_key = vec![b'k'; MAX_KEY_LEN];
    let big_value: Vec<u8> = (0..MAX_VALUE_LEN).map(|i| (i % 251) as u8).collect();
    e.put(&big_key, b"at the key limit").unwrap();
    e.put(b"big", &big_value).unwrap();
    let over_key = vec![b'k'; MAX_KEY_LEN + 1];
    let over_value = vec![0u8; MAX_VALUE_LEN + 1];
    assert!(matches!(
        e.put(&over_key, b"x"),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        e.delete(&over_key),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        e.put(b"big", &over_value),
        Err(Error::ValueTooLarge { .. })
    ));
    assert!(matches!(
        e.put(b"new", &over_value),
        Err(Error::ValueTooLarge { .. })
    ));
    let check = |e: &E| {
        assert_eq!(
            e.get(&big_key).unwrap().as_deref(),
            Some(&b"at the key limit"[..])
        );
        assert!(
            e.get(b"big").unwrap() == Some(big_value.clone()),
            "big value changed"
        );
        assert_eq!(e.get(b"new").unwrap(), None);
        assert_eq!(scan_vec(e, KeyRange::all()).len(), 2);
    };
    check(&e);
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    check(&e);
    e.compact().unwrap();
    check(&e);
    e.close().unwrap();
}

/// Every combination of inclusive, exclusive and open bounds, at present and absent keys,
/// plus empty and inverted ranges.
pub fn scan_bounds<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let present = [b"b".to_vec(), b"d".to_vec(), b"f".to_vec(), b"h".to_vec()];
    for k in &present {
        e.put(k, &[k[0], b'!']).unwrap();
    }
    let probes: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d", b"h", b"i"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    let mut bounds = vec![Bound::Unbounded];
    for p in &probes {
        bounds.push(Bound::Included(p.clone()));
        bounds.push(Bound::Excluded(p.clone()));
    }
    for start in &bounds {
        for end in &bounds {
            let range = KeyRange::new(start.clone(), end.clone());
            let expected: Vec<Vec<u8>> = present
                .iter()
                .filter(|k| range.contains(k))
                .cloned()
                .collect();
            let got: Vec<Vec<u8>> = scan_vec(&e, range.clone())
                .into_iter()
                .map(|(k, v)| {
                    assert_eq!(v, vec![k[0], b'!']);
                    k
                })
                .collect();
            assert_eq!(got, expected, "range {range:?}");
        }
    }
    e.close().unwrap();
}

/// Scans skip deleted keys, show the latest value of overwritten ones, and stop at the end.
pub fn scan_across_deletes<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    for i in 0..200u32 {
        e.put(format!("key{i:04}").as_bytes(), format!("v{i}").as_bytes())
            .unwrap();
    }
    for i in (0..200u32).step_by(3) {
        e.delete(format!("key{i:04}").as_bytes()).unwrap();
    }
    for i in (0..200u32).step_by(5) {
        e.put(format!("key{i:04}").as_bytes(), format!("w{i}").as_bytes())
            .unwrap();
    }
    let expected = |i: u32| -> Option<String> {
        if i.is_multiple_of(5) {
            Some(format!("w{i}"))
        } else if i.is_multiple_of(3) {
            None
        } else {
            Some(format!("v{i}"))
        }
    };
    let check = |e: &E| {
        let range = KeyRange::half_open(b"key0050".to_vec(), b"key0150".to_vec());
        let got = scan_vec(e, range);
        let want: Vec<(Vec<u8>, Vec<u8>)> = (50..150)
            .filter_map(|i| {
                expected(i).map(|v| (format!("key{i:04}").into_bytes(), v.into_bytes()))
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            scan_vec(e, KeyRange::all()).len(),
            (0..200).filter(|&i| expected(i).is_some()).count()
        );
        let mut it = e.scan(KeyRange::from(b"key0100".to_vec())).unwrap();
        let first = it.next().unwrap().unwrap();
        assert_eq!(first.0, b"key0100");
    };
    check(&e);
    e.compact().unwrap();
    check(&e);
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    check(&e);
    e.close().unwrap();
}

/// Everything written survives close and reopen, and so does everything before a `sync`
/// when the engine is dropped without `close`.
pub fn reopen_keeps_everything<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    for i in 0..500u32 {
        e.put(
            format!("k{i}").as_bytes(),
            format!("v{i}").repeat(i as usize % 7).as_bytes(),
        )
        .unwrap();
    }
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    for i in 0..500u32 {
        let want = format!("v{i}").repeat(i as usize % 7).into_bytes();
        assert_eq!(
            e.get(format!("k{i}").as_bytes()).unwrap(),
            Some(want),
            "k{i}"
        );
    }
    e.put(b"after", b"reopen").unwrap();
    e.sync().unwrap();
    drop(e);
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"after").unwrap().as_deref(), Some(&b"reopen"[..]));
    assert_eq!(scan_vec(&e, KeyRange::all()).len(), 501);
    e.close().unwrap();
}

/// A second open of an open directory is refused; after close it succeeds.
pub fn second_open_is_locked<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.put(b"k", b"v").unwrap();
    assert!(matches!(E::open(&dir, options), Err(Error::Locked { .. })));
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    assert_eq!(e.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    e.close().unwrap();
}

/// A directory of another engine, of another format version, or of foreign files is refused
/// and left untouched.
pub fn foreign_directories_are_refused<E: Engine>(options: &Options) {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let other_marker = marker::encode("not-this-engine", 1);
    std::fs::write(other.join(kv_shared::store_dir::MARKER_FILE), &other_marker).unwrap();
    assert!(matches!(
        E::open(&other, options),
        Err(Error::WrongEngine { .. })
    ));
    assert_eq!(
        std::fs::read(other.join(kv_shared::store_dir::MARKER_FILE)).unwrap(),
        other_marker
    );

    let newer = tmp.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    let newer_marker = marker::encode(E::NAME, E::FORMAT_VERSION + 1);
    std::fs::write(newer.join(kv_shared::store_dir::MARKER_FILE), &newer_marker).unwrap();
    assert!(matches!(
        E::open(&newer, options),
        Err(Error::FormatVersion { .. })
    ));

    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("data.csv"), b"a,1\n").unwrap();
    assert!(matches!(
        E::open(&foreign, options),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(std::fs::read(foreign.join("data.csv")).unwrap(), b"a,1\n");
}

/// An option name the engine does not know is an error, not silently ignored.
pub fn unknown_option_is_refused<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let bad = options.clone().set("no_such_option", "1");
    assert!(matches!(
        E::open(&dir, &bad),
        Err(Error::InvalidArgument(_))
    ));
}

/// Stats count user bytes exactly, live data exactly, and disk bytes at least as large.
pub fn stats_account_for_writes<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let mut user = 0u64;
    for i in 0..300u32 {
        let (k, v) = (format!("key{i}"), format!("value{i}"));
        e.put(k.as_bytes(), v.as_bytes()).unwrap();
        user += (k.len() + v.len()) as u64;
    }
    for i in 0..100u32 {
        let k = format!("key{i}");
        e.delete(k.as_bytes()).unwrap();
        user += k.len() as u64;
    }
    for i in 100..120u32 {
        assert!(e.get(format!("key{i}").as_bytes()).unwrap().is_some());
    }
    e.sync().unwrap();
    let s = e.stats().unwrap();
    assert_eq!(s.user_bytes_written, user);
    assert!(s.disk_bytes_written >= user, "{s:?}");
    assert_eq!(s.live_keys, 200);
    let live: u64 = (100..300u32)
        .map(|i| (format!("key{i}").len() + format!("value{i}").len()) as u64)
        .sum();
    assert_eq!(s.live_data_bytes, live);
    assert!(s.disk_bytes > 0 && s.file_count >= 2, "{s:?}");
    assert_eq!(s.gets, 20);
    assert!(s.write_amp().unwrap() >= 1.0 && s.space_amp().is_some());
    e.close().unwrap();
}

/// The model test: random operations against the engine and a `BTreeMap`, comparing every
/// answer. Includes syncs, compactions, and closing and reopening the store.
pub fn model<E: Engine>(options: &Options) {
    let seed = seed("model", 0x5eed);
    let ops = env_u64("KV_MODEL_OPS", 2000);
    model_run::<E>(options, seed, ops);
}

/// One model-test run with an explicit seed and length.
pub fn model_run<E: Engine>(options: &Options, seed: u64, ops: u64) {
    let (_tmp, dir) = fresh();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut engine = Some(open::<E>(&dir, options));
    let key_space: Vec<Vec<u8>> = (0..150u32)
        .map(|i| match i % 10 {
            0 => vec![0x00, i as u8],
            1 => vec![0xff, i as u8, 0x00],
            _ => format!("key{:03}", i).into_bytes(),
        })
        .collect();
    let random_key = |rng: &mut ChaCha8Rng| key_space[rng.random_range(0..key_space.len())].clone();
    for step in 0..ops {
        let e = engine.as_ref().unwrap();
        let ctx = || format!("seed {seed}, step {step}");
        match rng.random_range(0..100) {
            0..40 => {
                let key = random_key(&mut rng);
                let len = if rng.random_bool(0.05) {
                    rng.random_range(1000..9000)
                } else {
                    rng.random_range(0..120)
                };
                let value: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                e.put(&key, &value)
                    .unwrap_or_else(|err| panic!("put: {err} ({})", ctx()));
                model.insert(key, value);
            }
            40..55 => {
                let key = random_key(&mut rng);
                e.delete(&key)
                    .unwrap_or_else(|err| panic!("delete: {err} ({})", ctx()));
                model.remove(&key);
            }
            55..80 => {
                let key = random_key(&mut rng);
                let got = e
                    .get(&key)
                    .unwrap_or_else(|err| panic!("get: {err} ({})", ctx()));
                assert_eq!(got.as_ref(), model.get(&key), "get {key:?} ({})", ctx());
            }
            80..92 => {
                let mut a = random_key(&mut rng);
                let mut b = random_key(&mut rng);
                if a > b && rng.random_bool(0.9) {
                    std::mem::swap(&mut a, &mut b);
                }
                let bound = |rng: &mut ChaCha8Rng, k: Vec<u8>| match rng.random_range(0..3) {
                    0 => Bound::Included(k),
                    1 => Bound::Excluded(k),
                    _ => Bound::Unbounded,
                };
                let range = KeyRange::new(bound(&mut rng, a), bound(&mut rng, b));
                let want: Vec<(Vec<u8>, Vec<u8>)> = if range.is_empty() {
                    Vec::new()
                } else {
                    model
                        .range::<[u8], _>(range.clone())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                };
                let got = e
                    .scan(range.clone())
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .unwrap_or_else(|err| panic!("scan: {err} ({})", ctx()));
                assert!(
                    got == want,
                    "scan {range:?}: got {} pairs, want {} ({})",
                    got.len(),
                    want.len(),
                    ctx()
                );
            }
            92..95 => e
                .sync()
                .unwrap_or_else(|err| panic!("sync: {err} ({})", ctx())),
            95..97 => e
                .compact()
                .unwrap_or_else(|err| panic!("compact: {err} ({})", ctx())),
            97..99 => {
                engine
                    .take()
                    .unwrap()
                    .close()
                    .unwrap_or_else(|err| panic!("close: {err} ({})", ctx()));
                engine = Some(open::<E>(&dir, options));
            }
            _ => {
                drop(engine.take());
                engine = Some(open::<E>(&dir, options));
            }
        }
    }
    let e = engine.take().unwrap();
    let all = scan_vec(&e, KeyRange::all());
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
    assert!(all == want, "final scan differs (seed {seed})");
    e.close().unwrap();
}

/// Several readers (gets and scans), one writer and a compacting thread at once. A read of a
/// key never returns a value older than the last write acknowledged before the read began,
/// nor one newer than the last write begun before it ended, nor one never written.
pub fn concurrent_readers_and_writer<E: Engine>(options: &Options) {
    const KEYS: usize = 16;
    let rounds = env_u64("KV_CONCURRENCY_ROUNDS", 200);
    let (_tmp, dir) = fresh();
    let engine = Arc::new(open::<E>(&dir, options));
    let started: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let key = |k: usize| format!("key{k:02}").into_bytes();
    let parse = |k: usize, value: &[u8]| -> u64 {
        let text = std::str::from_utf8(value).expect("value is UTF-8");
        let (vk, round) = text.split_once(':').expect("value has a key prefix");
        assert_eq!(vk, format!("key{k:02}"), "value of another key");
        let round = round.split_once('/').map_or(round, |(r, _)| r);
        round.parse().expect("round number")
    };
    std::thread::scope(|s| {
        for reader in 0..3u64 {
            let (engine, started, acked, done) = (&engine, &started, &acked, &done);
            s.spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(reader);
                let mut reads = 0u64;
                while !done.load(SeqCst) || reads < 100 {
                    reads += 1;
                    if rng.random_bool(0.1) {
                        let floor: Vec<u64> = acked.iter().map(|a| a.load(SeqCst)).collect();
                        let pairs = scan_vec(engine.as_ref(), KeyRange::all());
                        let ceiling: Vec<u64> = started.iter().map(|a| a.load(SeqCst)).collect();
                        let mut seen = 0;
                        for (k, v) in pairs {
                            let i: usize = std::str::from_utf8(&k[3..]).unwrap().parse().unwrap();
                            let r = parse(i, &v);
                            assert!(
                                floor[i] <= r && r <= ceiling[i],
                                "scan saw round {r} of key {i}, outside [{}, {}]",
                                floor[i],
                                ceiling[i]
                            );
                            seen += 1;
                        }
                        assert!(seen >= floor.iter().filter(|&&f| f > 0).count());
                    } else {
                        let k = rng.random_range(0..KEYS);
                        let lo = acked[k].load(SeqCst);
                        let got = engine.get(&key(k)).unwrap();
                        let hi = started[k].load(SeqCst);
                        let r = got.map_or(0, |v| parse(k, &v));
                        assert!(
                            lo <= r && r <= hi,
                            "get saw round {r} of key {k}, outside [{lo}, {hi}]"
                        );
                    }
                }
            });
        }
        {
            let (engine, done) = (&engine, &done);
            s.spawn(move || {
                while !done.load(SeqCst) {
                    engine.compact().unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            });
        }
        for round in 1..=rounds {
            for k in 0..KEYS {
                started[k].store(round, SeqCst);
                let padding = "p".repeat((round as usize * 7 + k) % 200);
                engine
                    .put(&key(k), format!("key{k:02}:{round}/{padding}").as_bytes())
                    .unwrap();
                acked[k].store(round, SeqCst);
            }
        }
        done.store(true, SeqCst);
    });
    let engine = Arc::try_unwrap(engine).unwrap_or_else(|_| panic!("engine still shared"));
    for k in 0..KEYS {
        assert_eq!(parse(k, &engine.get(&key(k)).unwrap().unwrap()), rounds);
    }
    engine.close().unwrap();
}

/// Runs the whole conformance suite as `#[test]` functions in a module named `conformance`.
///
/// ```ignore
/// kv_testkit::conformance_tests!(HashLog, kv_shared::Options::new());
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($engine:ty, $options:expr) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            fn options() -> $crate::kv_shared::Options {
                $options
            }

            #[test]
            fn put_get_overwrite() {
                $crate::conformance::put_get_overwrite::<$engine>(&options());
            }
            #[test]
            fn delete_and_recreate() {
                $crate::conformance::delete_and_recreate::<$engine>(&options());
            }
            #[test]
            fn empty_key_and_value() {
                $crate::conformance::empty_key_and_value::<$engine>(&options());
            }
            #[test]
            fn binary_keys() {
                $crate::conformance::binary_keys::<$engine>(&options());
            }
            #[test]
            fn size_limits() {
                $crate::conformance::size_limits::<$engine>(&options());
            }
            #[test]
            fn scan_bounds() {
                $crate::conformance::scan_bounds::<$engine>(&options());
            }
            #[test]
            fn scan_across_deletes() {
                $crate::conformance::scan_across_deletes::<$engine>(&options());
            }
            #[test]
            fn reopen_keeps_everything() {
                $crate::conformance::reopen_keeps_everything::<$engine>(&options());
            }
            #[test]
            fn second_open_is_locked() {
                $crate::conformance::second_open_is_locked::<$engine>(&options());
            }
            #[test]
            fn foreign_directories_are_refused() {
                $crate::conformance::foreign_directories_are_refused::<$engine>(&options());
            }
            #[test]
            fn unknown_option_is_refused() {
                $crate::conformance::unknown_option_is_refused::<$engine>(&options());
            }
            #[test]
            fn stats_account_for_writes() {
                $crate::conformance::stats_account_for_writes::<$engine>(&options());
            }
            #[test]
            fn model() {
                $crate::conformance::model::<$engine>(&options());
            }
            #[test]
            fn concurrent_readers_and_writer() {
                $crate::conformance::concurrent_readers_and_writer::<$engine>(&options());
            }
        }
    };
}
