//! The cursor checks: seeks at every boundary, walks that change direction, and the
//! snapshot rule (writes, deletes, compactions and other threads change nothing an existing
//! cursor shows), each compared move by move with a [`ModelCursor`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_shared::{Cursor, Engine, KeyRange, Options, WriteBatch};

use super::model::{ModelCursor, Move};
use super::support::{
    Model, StopOnDrop, check_scans, check_through_compact_and_reopen, compact_until, fresh, open,
    random_range, scan_vec,
};
use crate::knobs::{env_u64, seed};

/// Walks `cursor` from one end to the other and back, checking every entry against `model`
/// (what the cursor must show, whenever it was made).
pub fn walk_both_ways(cursor: &mut dyn Cursor, model: &Model, context: &str) {
    let mut expected = ModelCursor::new(model.clone());
    for (start, then) in [(Move::First, Move::Next), (Move::Last, Move::Prev)] {
        expected.step(cursor, &start, context);
        for _ in 0..model.len() {
            expected.step(cursor, &then, context);
        }
        assert!(
            !cursor.valid(),
            "a cursor moved past the end is not valid ({context})"
        );
        expected.step(cursor, &then, &format!("one move more, {context}"));
    }
}

/// Keys that are prefixes of each other, binary keys with `0x00` and `0xff` bytes, and the
/// empty key.
fn boundary_keys() -> Vec<Vec<u8>> {
    let keys: [&[u8]; 13] = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x00\x01",
        b"a",
        b"ab",
        b"abc",
        b"abd",
        b"b",
        b"b\x00",
        b"\xff",
        b"\xff\x00",
        b"\xff\xff",
    ];
    keys.iter().map(|k| k.to_vec()).collect()
}

/// Every target worth seeking among `keys`: each key, just after it (a `0x00` more), its
/// prefix, the key with its last byte one higher, and the extremes.
pub fn probes<'a>(keys: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<Vec<u8>> {
    let mut probes = vec![Vec::new(), vec![0xff; 4]];
    for key in keys {
        probes.push(key.clone());
        probes.push([key.as_slice(), &[0]].concat());
        if let Some((&last, prefix)) = key.split_last() {
            probes.push(prefix.to_vec());
            if last < 0xff {
                probes.push([prefix, &[last + 1]].concat());
            }
        }
    }
    probes.sort();
    probes.dedup();
    probes
}

/// Checks a new cursor of `engine` against `model`, move by move: both ends, every seek and
/// `seek_for_prev` of `probes`, each followed by a step on and a step back, and walks from
/// one end to the other both ways.
pub fn check_cursor<E: Engine>(engine: &E, model: &Model, probes: &[Vec<u8>], context: &str) {
    let mut cursor = engine.cursor().expect("cursor");
    assert!(
        !cursor.valid(),
        "a new cursor is not positioned ({context})"
    );
    let mut expected = ModelCursor::new(model.clone());
    for mv in [Move::First, Move::Next, Move::Last, Move::Prev] {
        expected.step(&mut *cursor, &mv, context);
    }
    for probe in probes {
        for seek in [Move::Seek(probe.clone()), Move::SeekForPrev(probe.clone())] {
            for then in [Move::Next, Move::Prev] {
                expected.step(&mut *cursor, &seek, context);
                expected.step(&mut *cursor, &then, context);
            }
        }
    }
    walk_both_ways(&mut *cursor, model, context);
}

/// Checks that `engine` answers like `model`, a sorted map of what it holds: every move of a
/// new cursor ([`check_cursor`], with [`probes`] at, around and between every key), then
/// `scan` and `scan_rev` of 200 random ranges with bounds among those probes.
pub fn check_sorted_map<E: Engine>(engine: &E, model: &Model, rng: &mut impl Rng) {
    let probes = probes(model.keys());
    check_cursor(engine, model, &probes, "every move");
    let ranges: Vec<KeyRange> = (0..200).map(|_| random_range(rng, &probes)).collect();
    check_scans(engine, model, ranges, "random ranges");
}

/// `seek`, `seek_for_prev`, `seek_to_first` and `seek_to_last` at every boundary: an empty
/// store; before the first key, on each key, between keys, after the last; keys that are
/// prefixes of each other and binary keys; then the same with the edge keys deleted, and
/// all of it after compaction and reopening.
pub fn cursor_seeks_at_every_boundary<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let keys = boundary_keys();
    let probes = probes(&keys);
    check_cursor(&e, &Model::new(), &probes, "empty store");
    let mut model = Model::new();
    for (i, key) in keys.iter().enumerate() {
        let value = [key.as_slice(), b"=", &[i as u8]].concat();
        e.put(key, &value).unwrap();
        model.insert(key.clone(), value);
    }
    check_through_compact_and_reopen(e, &dir, options, |e| {
        check_cursor(e, &model, &probes, "every boundary key");
    });
    let e = open::<E>(&dir, options);
    for key in [&b""[..], b"\x00", b"ab", b"\xff\xff"] {
        e.delete(key).unwrap();
        model.remove(key);
    }
    e.put(b"abc", b"overwritten").unwrap();
    model.insert(b"abc".to_vec(), b"overwritten".to_vec());
    check_through_compact_and_reopen(e, &dir, options, |e| {
        check_cursor(e, &model, &probes, "edges deleted, one key overwritten");
    });
}

/// Random walks of `next` and `prev` that change direction in the middle, with seeks now
/// and then, over a store whose newest data (overwrites, deletes, new keys in between) lies
/// over older, compacted data.
pub fn cursor_direction_changes<E: Engine>(options: &Options) {
    let seed = seed("cursor_direction_changes", 0xD1EC);
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let key = |i: u32| format!("key{i:04}").into_bytes();
    let mut model = Model::new();
    for i in (0..400).step_by(2) {
        model.insert(key(i), format!("old {i}").into_bytes());
    }
    for (k, v) in &model {
        e.put(k, v).unwrap();
    }
    e.compact().unwrap();
    for i in 0..400 {
        if i % 5 == 0 {
            e.delete(&key(i)).unwrap();
            model.remove(&key(i));
        } else if i % 3 == 0 {
            let value = format!("new {i}").into_bytes();
            e.put(&key(i), &value).unwrap();
            model.insert(key(i), value);
        }
    }
    check_through_compact_and_reopen(e, &dir, options, |e| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut cursor = e.cursor().expect("cursor");
        let mut expected = ModelCursor::new(model.clone());
        for n in 0..600 {
            let mv = match rng.random_range(0..20) {
                0..9 => Move::Next,
                9..18 => Move::Prev,
                18 => Move::Seek(key(rng.random_range(0..400))),
                _ => Move::SeekForPrev(key(rng.random_range(0..400))),
            };
            expected.step(&mut *cursor, &mv, &format!("move {n}, seed {seed}"));
            if !cursor.valid() {
                expected.step(&mut *cursor, &Move::Seek(key(200)), "back in");
            }
        }
    });
}

/// The changes made while a cursor lives: new keys (before the first, between, after the
/// last), overwrites, deletes, a batch and a compaction.
fn change_everything<E: Engine>(e: &E, model: &Model) {
    for (i, key) in model.keys().enumerate() {
        match i % 4 {
            0 => e.delete(key).unwrap(),
            1 => e.put(key, b"overwritten").unwrap(),
            2 => e.put(&[key.as_slice(), b"+"].concat(), b"new").unwrap(),
            _ => {}
        }
    }
    let mut batch = WriteBatch::new();
    batch.put(b"", b"new first").unwrap();
    batch.put(b"\xff\xff\xff", b"new last").unwrap();
    batch
        .delete(model.keys().nth(3).expect("a fourth key"))
        .unwrap();
    e.write(&batch).unwrap();
    e.compact().unwrap();
}

/// A cursor is a snapshot: writes, deletes, a batch and a compaction made after it was
/// created, and then writes and compactions of a second thread while it is walked, change
/// nothing it returns. A cursor made afterwards sees the new state.
pub fn cursor_is_a_snapshot<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let mut model = Model::new();
    for i in 0..300u32 {
        let (k, v) = (
            format!("key{i:04}"),
            format!("value {i}").repeat(1 + i as usize % 5),
        );
        model.insert(k.into_bytes(), v.into_bytes());
    }
    for (k, v) in &model {
        e.put(k, v).unwrap();
    }
    let mut cursor = e.cursor().unwrap();
    let mut expected = ModelCursor::new(model.clone());
    expected.step(
        &mut *cursor,
        &Move::Seek(b"key0100".to_vec()),
        "before the changes",
    );
    change_everything(&e, &model);
    for _ in 0..50 {
        expected.step(&mut *cursor, &Move::Next, "after the changes");
    }
    walk_both_ways(&mut *cursor, &model, "after the changes");
    drop(cursor);
    let now: Model = scan_vec(&e, KeyRange::all()).into_iter().collect();
    assert!(now != model, "the changes are visible to a new cursor");
    let mut cursor = e.cursor().unwrap();
    walk_both_ways(&mut *cursor, &now, "a cursor made after the changes");

    let (done, rounds) = (AtomicBool::new(false), AtomicU64::new(0));
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&done);
        s.spawn(|| {
            while !done.load(SeqCst) {
                change_everything(&e, &now);
                rounds.fetch_add(1, SeqCst);
            }
        });
        let mut pass = 0;
        while pass < 20 || rounds.load(SeqCst) < 3 {
            walk_both_ways(&mut *cursor, &now, &format!("pass {pass}, writes going on"));
            pass += 1;
        }
        done.store(true, SeqCst);
    });
    drop(cursor);
    e.close().unwrap();
}

const ROUND_KEYS: usize = 16;

/// What key `k` holds after round `r` of [`cursors_during_concurrent_writes`]: deleted in one
/// round of seven, else that round's value (nothing before round 1).
fn round_value(k: usize, r: u64) -> Option<u64> {
    (r > 0 && !(r + k as u64).is_multiple_of(7)).then_some(r)
}

/// True when `seen` (key to round) is the store between two writes of the round-by-round
/// writer: keys before some `j` as of round `r`, the rest as of round `r - 1`.
fn is_a_moment_of_the_writer(seen: &[Option<u64>]) -> bool {
    let newest = seen.iter().flatten().copied().max().unwrap_or(0);
    (newest.max(1)..=newest + 1).any(|r| {
        (0..=ROUND_KEYS).any(|j| {
            (0..ROUND_KEYS).all(|k| seen[k] == round_value(k, if k < j { r } else { r - 1 }))
        })
    })
}

/// Cursors made and walked while a writer rewrites every key round after round (deleting
/// some) and another thread compacts: each cursor shows one moment of the writer, the
/// same forwards and backwards.
pub fn cursors_during_concurrent_writes<E: Engine>(options: &Options) {
    let rounds = env_u64("KV_CONCURRENCY_ROUNDS", 200);
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let key = |k: usize| format!("c{k:02}").into_bytes();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&done);
        for _ in 0..2 {
            s.spawn(|| {
                let mut walks = 0;
                while !done.load(SeqCst) || walks < 20 {
                    check_one_moment(&e);
                    walks += 1;
                }
            });
        }
        s.spawn(|| compact_until(&e, &done));
        for r in 1..=rounds {
            for k in 0..ROUND_KEYS {
                match round_value(k, r) {
                    Some(r) => {
                        let padding = "p".repeat((r as usize * 13 + k) % 150);
                        e.put(&key(k), format!("{r}/{padding}").as_bytes()).unwrap();
                    }
                    None => e.delete(&key(k)).unwrap(),
                }
            }
        }
        done.store(true, SeqCst);
    });
    e.close().unwrap();
}

/// Walks one new cursor forwards then backwards: both walks must show the same pairs, and
/// those must be one moment of the writer.
fn check_one_moment<E: Engine>(e: &E) {
    let mut cursor = e.cursor().expect("cursor");
    let mut forward = Vec::new();
    cursor.seek_to_first().expect("seek_to_first");
    while cursor.valid() {
        forward.push((cursor.key().to_vec(), cursor.value().to_vec()));
        cursor.next().expect("next");
    }
    let mut backward = Vec::new();
    cursor.seek_to_last().expect("seek_to_last");
    while cursor.valid() {
        backward.push((cursor.key().to_vec(), cursor.value().to_vec()));
        cursor.prev().expect("prev");
    }
    backward.reverse();
    assert!(forward == backward, "a cursor changed between two walks");
    let mut seen = vec![None; ROUND_KEYS];
    for (k, v) in &forward {
        let k: usize = std::str::from_utf8(&k[1..]).unwrap().parse().unwrap();
        let v = std::str::from_utf8(v).unwrap();
        seen[k] = Some(v.split_once('/').unwrap().0.parse::<u64>().unwrap());
    }
    assert!(
        is_a_moment_of_the_writer(&seen),
        "a cursor shows no moment of the writer: rounds by key {seen:?}"
    );
}
