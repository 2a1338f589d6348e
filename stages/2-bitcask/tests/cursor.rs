//! The cursor: a sorted snapshot of the keydir, walked both ways and checked against a
//! model; a snapshot that merges and writes do not change; expired keys left out.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use bitcask::Bitcask;
use common::*;
use kv_shared::{Engine, Error};
use kv_testkit::conformance::{
    Model, ModelCursor, Move, check_cursor, check_sorted_map, probes, walk_both_ways,
};
use kv_testkit::fixtures::{Op, apply, apply_to_model, batch_of, model_of, random_write};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A key of a small key space: the empty key, then one or two of a letter.
fn random_key(rng: &mut ChaCha8Rng) -> Vec<u8> {
    vec![b'a' + rng.random_range(0..26u8); rng.random_range(0..3)]
}

/// A store from a random seed (printed, to replay a failure), the model, and the rng.
fn seeded_store() -> (tempfile::TempDir, Bitcask, Model, ChaCha8Rng) {
    let seed = rand::rng().random();
    println!("seed {seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (tmp, e, model) = random_store(&mut rng);
    (tmp, e, model, rng)
}

/// Random puts, deletes, batches of both and already expired puts on the small key space,
/// in small segments with merges between them, applied to the engine and the model alike.
fn random_store(rng: &mut ChaCha8Rng) -> (tempfile::TempDir, Bitcask, Model) {
    let (tmp, _, e) = new_store(&quiet("256"));
    let mut model = Model::new();
    let past = UNIX_EPOCH + Duration::from_secs(1);
    for round in 0..400 {
        if rng.random_range(0..6) == 0 {
            let k = random_key(rng);
            e.put_expiring_at(&k, b"expired", past).unwrap();
            model.remove(&k);
        } else {
            random_write(&e, &mut model, rng, round, random_key);
        }
        if round % 150 == 149 {
            e.compact().unwrap();
        }
    }
    (tmp, e, model)
}

/// Every move of a cursor, and scans of random ranges both ways, agree with a sorted map of
/// what the store holds: both ends, walks end to end both ways, a seek and a
/// `seek_for_prev` at, around and between every key, each followed by a step either way.
/// The same once a last merge has rewritten every segment.
#[test]
fn a_cursor_walks_and_seeks_like_a_sorted_map() {
    let (_tmp, e, model, mut rng) = seeded_store();
    check_sorted_map(&e, &model, &mut rng);
    e.compact().unwrap();
    assert_eq!(e.stats().unwrap().extra["dead_bytes"], 0, "all merged");
    check_sorted_map(&e, &model, &mut rng);
    e.close().unwrap();
}

/// Writes, a batch and a merge that deletes every segment the cursor reads change nothing
/// it shows; the merged-away files go when the cursor lets go of them.
#[test]
fn a_cursor_is_a_snapshot_that_outlives_a_merge() {
    let (_tmp, dir, e) = new_store(&quiet("64"));
    let old: Model = (0..20u32)
        .map(|i| (format!("k{i:02}"), format!("old {i}")))
        .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
        .collect();
    for (k, v) in &old {
        e.put(k, v).unwrap();
    }
    let old_segments = files_ending(&dir, ".seg");
    let mut cursor = e.cursor().unwrap();
    const CHANGES: &[Op] = &[(b"k03", Some(b"new")), (b"k04", None)];
    const BATCH: &[Op] = &[(b"k05", None), (b"k99", Some(b"new"))];
    apply(&e, CHANGES);
    e.write(&batch_of(BATCH)).unwrap();
    e.compact().unwrap();
    assert!(
        old_segments.iter().all(|s| s.exists()),
        "held by the cursor"
    );
    walk_both_ways(&mut *cursor, &old, "made before the merge");
    drop(cursor);
    assert!(!old_segments.iter().any(|s| s.exists()), "released");

    let mut now = e.cursor().unwrap();
    let mut new = old;
    apply_to_model(&mut new, &[CHANGES, BATCH].concat());
    walk_both_ways(&mut *now, &new, "made after the merge");
    drop(now);
    e.close().unwrap();
}

#[test]
fn a_cursor_on_an_empty_store_is_never_valid() {
    let (_tmp, _, e) = new_store(&quiet("1K"));
    check_cursor(
        &e,
        &Model::new(),
        &probes(&[b"zzz".to_vec()]),
        "an empty store",
    );
    e.close().unwrap();
}

/// A value whose record fails its checksum is an error from the move that reads it, and
/// leaves the cursor not valid; a seek elsewhere places it again.
#[test]
fn a_damaged_value_is_an_error_that_leaves_the_cursor_not_valid() {
    const WRITES: &[Op] = &[
        (b"a", Some(b"value")),
        (b"b", Some(b"value")),
        (b"c", Some(b"value")),
    ];
    let (_tmp, dir, e) = new_store(&quiet("1M"));
    apply(&e, WRITES);
    let path = dir.join("00000001.seg");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01; // the last byte of "c"'s value
    std::fs::write(&path, &bytes).unwrap();
    let mut cursor = e.cursor().unwrap();
    let mut expected = ModelCursor::new(model_of(&[WRITES]));
    expected.step(&mut *cursor, &Move::Seek(b"b".to_vec()), "before c");
    assert!(matches!(cursor.next(), Err(Error::Corruption { .. })));
    assert!(!cursor.valid());
    expected.step(&mut *cursor, &Move::First, "placed again");
    drop(cursor);
    drop(e);
}
