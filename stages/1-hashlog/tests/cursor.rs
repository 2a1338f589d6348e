//! The cursor: a sorted snapshot of the index, walked both ways, checked against a model.

mod common;

use std::os::unix::fs::FileExt;

use common::{Log, OPS, apply, batch_of, data_path, model, store_with};
use hashlog::HashLog;
use kv_shared::{Engine, Error, Options};
use kv_testkit::conformance::{
    Model, ModelCursor, Move, check_cursor, check_sorted_map, probes, walk_both_ways,
};
use kv_testkit::fixtures::{Op, model_of, random_write};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A fresh store filled by [`fill_randomly`] from a seed it prints, the model of it, and
/// the random generator for the rest of the test.
fn random_store() -> (tempfile::TempDir, HashLog, Model, ChaCha8Rng) {
    let seed = rand::rng().random();
    println!("seed {seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    let model = fill_randomly(&engine, &mut rng);
    (tmp, engine, model, rng)
}

/// A key of a small key space: the empty key, then one or two of a letter.
fn key(rng: &mut ChaCha8Rng) -> Vec<u8> {
    vec![b'a' + rng.random_range(0..26u8); rng.random_range(0..3)]
}

/// Random puts, deletes and batches of both, on the small key space, applied to the engine
/// and to the model alike.
fn fill_randomly(engine: &HashLog, rng: &mut ChaCha8Rng) -> Model {
    let mut model = Model::new();
    for round in 0..400 {
        random_write(engine, &mut model, rng, round, key);
    }
    model
}

/// Every move of a cursor, and scans of random ranges both ways, agree with a sorted map of
/// what the store holds: both ends, walks end to end both ways, a seek and a
/// `seek_for_prev` at, around and between every key, each followed by a step either way.
/// The same once the index is rebuilt by replaying the log.
#[test]
fn a_cursor_walks_and_seeks_like_a_sorted_map() {
    let (tmp, engine, model, mut rng) = random_store();
    check_sorted_map(&engine, &model, &mut rng);
    engine.close().unwrap();
    let replayed = HashLog::open(tmp.path(), &Options::new()).unwrap();
    check_sorted_map(&replayed, &model, &mut rng);
    replayed.close().unwrap();
}

/// Writes made after a cursor was created change nothing it shows; a cursor made after them
/// shows them all.
#[test]
fn a_cursor_is_a_snapshot() {
    const FIRST: &[Op] = &[(b"a", Some(b"1")), (b"b", Some(b"1")), (b"c", Some(b"1"))];
    const THEN: &[Op] = &[(b"b", Some(b"2")), (b"c", None)];
    const BATCH: &[Op] = &[(b"a", None), (b"bb", Some(b"new"))];
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    apply(&engine, FIRST);
    let mut cursor = engine.cursor().unwrap();
    apply(&engine, THEN);
    engine.write(&batch_of(BATCH)).unwrap();
    walk_both_ways(&mut *cursor, &model_of(&[FIRST]), "made before the writes");
    let mut now = engine.cursor().unwrap();
    let all = model_of(&[FIRST, THEN, BATCH]);
    walk_both_ways(&mut *now, &all, "made after the writes");
    drop((cursor, now));
    engine.close().unwrap();
}

#[test]
fn a_cursor_on_an_empty_store_is_never_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    check_cursor(&engine, &Model::new(), &probes(&[b"zz".to_vec()]), "empty");
    engine.close().unwrap();
}

/// A value whose record fails its checksum is an error from the move that reads it, and
/// leaves the cursor not valid; a seek elsewhere places it again.
#[test]
fn a_damaged_value_is_an_error_that_leaves_the_cursor_not_valid() {
    let log = Log::write(OPS);
    let (_tmp, dir) = store_with(&log.bytes);
    let engine = HashLog::open(&dir, &Options::new()).unwrap();
    let model = model(OPS, OPS.len());
    // The record of the last op, "date" = "d": flip its value.
    let last = OPS.len() - 1;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(data_path(&dir))
        .unwrap();
    let offset = log.ends[last] - 1;
    file.write_all_at(&[log.bytes[offset as usize] ^ 0x01], offset)
        .unwrap();

    let mut cursor = engine.cursor().unwrap();
    let mut expected = ModelCursor::new(model);
    expected.step(&mut *cursor, &Move::Seek(b"banana".to_vec()), "before date");
    match cursor.next() {
        Err(Error::Corruption { offset, .. }) => assert_eq!(offset, log.starts[last]),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(!cursor.valid());
    cursor.next().unwrap();
    assert!(
        !cursor.valid(),
        "a move of a cursor that is not valid does nothing"
    );
    assert!(cursor.seek(b"date").unwrap_err().is_corruption());
    expected.step(&mut *cursor, &Move::First, "placed again");
    drop(cursor);
    engine.close().unwrap();
}
