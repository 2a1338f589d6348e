//! The batch checks: ops apply in order (a later op on a key wins), readers see all of a
//! batch or none of it while compactions run, batches survive reopening, an empty batch
//! changes nothing, and a batch over a limit is refused with nothing of it applied.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use kv_shared::{Engine, Error, KeyRange, MAX_KEY_LEN, MAX_VALUE_LEN, Options, WriteBatch};

use super::model::Move;
use super::support::{
    Model, StopOnDrop, assert_holds, assert_refuses_one_byte_over,
    check_through_compact_and_reopen, compact_until, fresh, open, scan_rev_vec, scan_vec,
};
use crate::fixtures::batch_of;
use crate::knobs::env_u64;

/// The ops of a batch apply in order, so a later op on a key wins: puts and deletes of one
/// key in one batch, a delete of a key that was there, a put of a key that was deleted.
/// The same after compaction and after reopening (which replays the batch from disk).
pub fn batch_ops_apply_in_order<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.put(b"a", b"old").unwrap();
    e.put(b"gone", b"old").unwrap();
    let b = batch_of(&[
        (b"a", Some(b"1")),
        (b"a", None),
        (b"a", Some(b"2")),
        (b"b", Some(b"1")),
        (b"b", None),
        (b"gone", None),
        (b"c", Some(b"1")),
        (b"c", Some(b"2")),
        (b"never", None),
        (b"gone", Some(b"back")),
        (b"c", Some(b"3")),
        (b"", Some(b"the empty key")),
    ]);
    assert_eq!(b.len(), 12);
    e.write(&b).unwrap();
    let model: Model = [
        (&b""[..], &b"the empty key"[..]),
        (b"a", b"2"),
        (b"c", b"3"),
        (b"gone", b"back"),
    ]
    .iter()
    .map(|(k, v)| (k.to_vec(), v.to_vec()))
    .collect();
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_holds(e, &model, &[b"b", b"never"], "after the batch");
    });
}

/// An empty batch writes nothing and changes nothing; so does a batch cleared for reuse.
pub fn empty_batch_changes_nothing<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.put(b"a", b"1").unwrap();
    let user_bytes = e.stats().unwrap().user_bytes_written;
    e.write(&WriteBatch::new()).unwrap();
    let mut b = WriteBatch::new();
    b.put(b"a", b"2").unwrap();
    b.delete(b"a").unwrap();
    b.clear();
    e.write(&b).unwrap();
    assert_eq!(e.stats().unwrap().user_bytes_written, user_bytes);
    let model: Model = [(b"a".to_vec(), b"1".to_vec())].into();
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_holds(e, &model, &[], "after empty batches");
    });
}

/// Limits: an op over a key or value limit is refused by the batch with a typed error,
/// leaving the batch and the store as they were; ops at the limits go through; and a batch
/// too large for the engine's record is refused whole ([`Error::InvalidArgument`], nothing
/// of it applied) or taken whole.
pub fn batch_limits<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    e.put(b"kept", b"1").unwrap();
    let mut b = WriteBatch::new();
    b.put(b"first", b"1").unwrap();
    assert_refuses_one_byte_over(|key, value| match value {
        Some(value) => b.put(key, value),
        None => b.delete(key),
    });
    assert_eq!(b.len(), 1, "a refused op leaves the batch as it was");
    assert_eq!(
        e.get(b"first").unwrap(),
        None,
        "nothing written before `write`"
    );

    let big_key = vec![b'k'; MAX_KEY_LEN];
    let big_value: Vec<u8> = (0..MAX_VALUE_LEN).map(|i| (i % 251) as u8).collect();
    b.put(&big_key, &big_value).unwrap();
    e.write(&b).unwrap();
    let mut model: Model = [(b"kept".to_vec(), b"1".to_vec())].into();
    model.insert(b"first".to_vec(), b"1".to_vec());
    model.insert(big_key, big_value.clone());

    let mut huge = WriteBatch::new();
    huge.put(b"small", b"1").unwrap();
    huge.put(b"big1", &big_value).unwrap();
    huge.put(b"big2", &big_value).unwrap();
    match e.write(&huge) {
        Ok(()) => {
            model.insert(b"small".to_vec(), b"1".to_vec());
            model.insert(b"big1".to_vec(), big_value.clone());
            model.insert(b"big2".to_vec(), big_value);
        }
        Err(Error::InvalidArgument(_)) => {}
        Err(other) => panic!("a batch too large to take is InvalidArgument, not `{other}`"),
    }
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_holds(
            e,
            &model,
            &[b"small", b"big1"],
            "after batches at the limits",
        );
    });
}

/// How many keys each generation batch sets.
const GENERATION_KEYS: usize = 16;

fn generation_key(i: usize) -> Vec<u8> {
    format!("g{i:02}").into_bytes()
}

fn marker(generation: u64) -> Vec<u8> {
    format!("m{generation:06}").into_bytes()
}

/// The batch that moves the store from `generation - 1` to `generation`: every key set to
/// the generation (with some padding, so that batches fill memtables and segments), the
/// old marker deleted, the new one put.
fn generation_batch(generation: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    for i in 0..GENERATION_KEYS {
        let padding = "p".repeat((generation as usize * 7 + i) % 90);
        b.put(
            &generation_key(i),
            format!("{generation}/{padding}").as_bytes(),
        )
        .unwrap();
    }
    if generation > 0 {
        b.delete(&marker(generation - 1)).unwrap();
    }
    b.put(&marker(generation), b"").unwrap();
    b
}

/// The generation of a value written by [`generation_batch`].
fn generation_of(value: &[u8]) -> u64 {
    let text = std::str::from_utf8(value).expect("a generation value");
    text.split_once('/')
        .expect("generation/padding")
        .0
        .parse()
        .expect("a generation")
}

/// The one generation that every pair of a whole store (ascending) shows, panicking on a
/// mix of two.
fn one_generation(pairs: &[(Vec<u8>, Vec<u8>)], context: &str) -> u64 {
    assert_eq!(
        pairs.len(),
        GENERATION_KEYS + 1,
        "keys and one marker ({context})"
    );
    let generation = generation_of(&pairs[0].1);
    for (i, (k, v)) in pairs[..GENERATION_KEYS].iter().enumerate() {
        assert_eq!(k, &generation_key(i), "({context})");
        assert_eq!(
            generation_of(v),
            generation,
            "key {i} is from another batch than key 0 ({context})"
        );
    }
    assert_eq!(
        pairs[GENERATION_KEYS].0,
        marker(generation),
        "the marker ({context})"
    );
    generation
}

/// Every pair a new cursor of `e` shows, walked from the first key (`forward`) or from the
/// last; in ascending order either way.
fn cursor_walk<E: Engine>(e: &E, forward: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut cursor = e.cursor().expect("cursor");
    let mut pairs = Vec::new();
    let (start, step) = match forward {
        true => (Move::First, Move::Next),
        false => (Move::Last, Move::Prev),
    };
    start.make(cursor.as_mut()).expect("seek to an end");
    while cursor.valid() {
        pairs.push((cursor.key().to_vec(), cursor.value().to_vec()));
        step.make(cursor.as_mut()).expect("step");
    }
    if !forward {
        pairs.reverse();
    }
    pairs
}

/// The generation the store shows, by a scan, a reverse scan, a cursor walked from the last
/// key to the first and one walked from the first to the last (each later than the one
/// before, so never an older generation).
fn scanned_generation<E: Engine>(e: &E, context: &str) -> u64 {
    let forwards = scan_vec(e, KeyRange::all());
    let mut backwards = scan_rev_vec(e, KeyRange::all());
    backwards.reverse();
    let mut last = 0;
    for (how, pairs) in [
        ("scan", forwards),
        ("reverse scan", backwards),
        ("cursor walk back", cursor_walk(e, false)),
        ("cursor walk", cursor_walk(e, true)),
    ] {
        let generation = one_generation(&pairs, &format!("{how}, {context}"));
        assert!(
            generation >= last,
            "a {how} went back to generation {generation} from {last} ({context})"
        );
        last = generation;
    }
    last
}

/// Batches survive a close and reopen, a drop without close (what `write` returned is as
/// durable as a `put`), and compactions.
pub fn batches_survive_reopen<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    for generation in 0..=10 {
        e.write(&generation_batch(generation)).unwrap();
    }
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    assert_eq!(scanned_generation(&e, "reopened"), 10);
    for generation in 11..=20 {
        e.write(&generation_batch(generation)).unwrap();
    }
    drop(e);
    let e = open::<E>(&dir, options);
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_eq!(scanned_generation(e, "dropped without close, reopened"), 20);
    });
}

/// Readers never see part of a batch. A writer applies generation batches (every key set
/// to the generation number, the old marker swapped for a new one) while another thread
/// compacts; readers check that every scan shows one generation everywhere, that
/// generations only go forward, and that gets in the batch's key order never see a later
/// key older than an earlier one.
pub fn readers_see_all_of_a_batch_or_none<E: Engine>(options: &Options) {
    let generations = env_u64("KV_CONCURRENCY_ROUNDS", 200);
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    readers_see_whole_batches(&e, generations);
    e.close().unwrap();
    let e = open::<E>(&dir, options);
    assert_eq!(scanned_generation(&e, "reopened"), generations);
    e.close().unwrap();
}

/// The check of [`readers_see_all_of_a_batch_or_none`] on a store the caller opened, empty:
/// `generations` generation batches written while two readers check every read and
/// another thread compacts, then the last generation seen whole.
pub fn readers_see_whole_batches<E: Engine>(e: &E, generations: u64) {
    e.write(&generation_batch(0)).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&done);
        for _ in 0..2 {
            s.spawn(|| {
                let (mut last, mut reads) = (0, 0);
                while !done.load(SeqCst) || reads < 20 {
                    last = check_one_generation(e, last);
                    reads += 1;
                }
            });
        }
        s.spawn(|| compact_until(e, &done));
        for generation in 1..=generations {
            e.write(&generation_batch(generation)).unwrap();
        }
        done.store(true, SeqCst);
    });
    assert_eq!(scanned_generation(e, "after the writer"), generations);
}

/// One reader's round: a scan both ways, then a get of every key in order; returns the
/// generation the scan saw, which must not be older than `last`.
fn check_one_generation<E: Engine>(e: &E, last: u64) -> u64 {
    let seen = scanned_generation(e, "a scan while batches are written");
    assert!(seen >= last, "generations go forward: {seen} after {last}");
    let mut previous = seen;
    for i in 0..GENERATION_KEYS {
        let value = e
            .get(&generation_key(i))
            .unwrap()
            .expect("every key is always set");
        let g = generation_of(&value);
        assert!(
            g >= previous,
            "key {i} at generation {g} after an earlier read at {previous}"
        );
        previous = g;
    }
    seen
}
