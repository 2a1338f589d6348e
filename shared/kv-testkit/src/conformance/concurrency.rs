//! The concurrency check of gets and scans: readers never see a value older than the last
//! acknowledged write, nor one newer than the last write begun, nor one never written.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_shared::{Engine, KeyRange, Options};

use super::support::{StopOnDrop, compact_until, fresh, open, scan_vec};
use crate::knobs::env_u64;

const KEYS: usize = 16;

fn key(k: usize) -> Vec<u8> {
    format!("key{k:02}").into_bytes()
}

/// The round of the write that left `value` in key `k`.
fn parse(k: usize, value: &[u8]) -> u64 {
    let text = std::str::from_utf8(value).expect("value is UTF-8");
    let (vk, round) = text.split_once(':').expect("value has a key prefix");
    assert_eq!(vk, format!("key{k:02}"), "value of another key");
    let round = round.split_once('/').map_or(round, |(r, _)| r);
    round.parse().expect("round number")
}

/// Per key, the round of the last write begun and of the last write acknowledged.
struct Rounds {
    started: Vec<AtomicU64>,
    acked: Vec<AtomicU64>,
}

impl Rounds {
    fn snapshot(counters: &[AtomicU64]) -> Vec<u64> {
        counters.iter().map(|a| a.load(SeqCst)).collect()
    }
}

/// Several readers (gets and scans), one writer and a compacting thread at once. A read of a
/// key never returns a value older than the last write acknowledged before the read began,
/// nor one newer than the last write begun before it ended, nor one never written.
pub fn concurrent_readers_and_writer<E: Engine>(options: &Options) {
    let rounds = env_u64("KV_CONCURRENCY_ROUNDS", 200);
    let (_tmp, dir) = fresh();
    let engine = open::<E>(&dir, options);
    let state = Rounds {
        started: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        acked: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
    };
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&done);
        for reader in 0..3u64 {
            let (engine, state, done) = (&engine, &state, &done);
            s.spawn(move || read_until(engine, state, done, reader));
        }
        s.spawn(|| compact_until(&engine, &done));
        for round in 1..=rounds {
            for k in 0..KEYS {
                state.started[k].store(round, SeqCst);
                let padding = "p".repeat((round as usize * 7 + k) % 200);
                engine
                    .put(&key(k), format!("key{k:02}:{round}/{padding}").as_bytes())
                    .unwrap();
                state.acked[k].store(round, SeqCst);
            }
        }
        done.store(true, SeqCst);
    });
    for k in 0..KEYS {
        assert_eq!(parse(k, &engine.get(&key(k)).unwrap().unwrap()), rounds);
    }
    engine.close().unwrap();
}

/// One reader thread: gets, and a scan one time in ten, until `done` (and 100 at least).
fn read_until<E: Engine>(engine: &E, state: &Rounds, done: &AtomicBool, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut reads = 0u64;
    while !done.load(SeqCst) || reads < 100 {
        reads += 1;
        if rng.random_bool(0.1) {
            check_a_scan(engine, state);
        } else {
            let k = rng.random_range(0..KEYS);
            let lo = state.acked[k].load(SeqCst);
            let got = engine.get(&key(k)).unwrap();
            let hi = state.started[k].load(SeqCst);
            let r = got.map_or(0, |v| parse(k, &v));
            assert!(
                lo <= r && r <= hi,
                "get saw round {r} of key {k}, outside [{lo}, {hi}]"
            );
        }
    }
}

/// A scan sees, for every key, a round between the acknowledged one before it and the
/// begun one after it, and every key written before it.
fn check_a_scan<E: Engine>(engine: &E, state: &Rounds) {
    let floor = Rounds::snapshot(&state.acked);
    let pairs = scan_vec(engine, KeyRange::all());
    let ceiling = Rounds::snapshot(&state.started);
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
}
