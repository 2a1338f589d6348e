//! The cursor: a sorted snapshot of the index, walked both ways, checked against a model.

mod common;

use std::os::unix::fs::FileExt;

use common::{Log, OPS, batch_of, data_path, model, store_with};
use hashlog::HashLog;
use kv_shared::{Cursor, Engine, Error, KeyRange, Options};
use kv_testkit::conformance::{Model, check_cursor, check_scans, probes, random_range};
use kv_testkit::fixtures::random_batch;
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
        let k = key(rng);
        match rng.random_range(0..4) {
            0 => {
                engine.delete(&k).unwrap();
                model.remove(&k);
            }
            1 => {
                let batch = random_batch(rng, &mut model, 0..6, round, key);
                engine.write(&batch).unwrap();
            }
            _ => {
                let v = format!("p{round}").into_bytes();
                engine.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
    }
    model
}

/// Where the cursor is: its pair, or `None` when not valid.
fn at(cursor: &dyn Cursor) -> Option<(Vec<u8>, Vec<u8>)> {
    cursor
        .valid()
        .then(|| (cursor.key().to_vec(), cursor.value().to_vec()))
}

/// Every pair from where the cursor is, moving forward until it is not valid.
fn walk(cursor: &mut dyn Cursor) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs = Vec::new();
    while let Some(pair) = at(cursor) {
        pairs.push(pair);
        cursor.next().unwrap();
    }
    pairs
}

/// Every move of a cursor agrees with a cursor over the model: both ends, walks end to end
/// both ways, and a seek and a `seek_for_prev` at, around and between every key, each
/// followed by a step either way.
#[test]
fn a_cursor_walks_and_seeks_like_a_sorted_map() {
    let (_tmp, engine, model, _) = random_store();
    check_cursor(&engine, &model, &probes(model.keys()), "a random store");
    engine.close().unwrap();
}

#[test]
fn scans_both_ways_match_the_model_for_every_kind_of_bound() {
    let (_tmp, engine, model, mut rng) = random_store();
    // Bounds at the keys and at `{`, just after `z`.
    let bound =
        |rng: &mut ChaCha8Rng| vec![b'a' + rng.random_range(0..27u8); rng.random_range(0..3)];
    let ranges: Vec<KeyRange> = (0..200).map(|_| random_range(&mut rng, bound)).collect();
    check_scans(&engine, &model, ranges, "random ranges");
    engine.close().unwrap();
}

#[test]
fn a_cursor_is_a_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    for k in ["a", "b", "c"] {
        engine.put(k.as_bytes(), b"1").unwrap();
    }
    let mut cursor = engine.cursor().unwrap();
    engine.put(b"b", b"2").unwrap();
    engine.delete(b"c").unwrap();
    engine
        .write(&batch_of(&[(b"a", None), (b"bb", Some(b"new"))]))
        .unwrap();
    cursor.seek_to_first().unwrap();
    let seen = walk(&mut *cursor);
    let old = |k: &str| (k.as_bytes().to_vec(), b"1".to_vec());
    assert_eq!(seen, [old("a"), old("b"), old("c")]);

    let mut now = engine.cursor().unwrap();
    now.seek_to_last().unwrap();
    assert_eq!(at(&*now), Some((b"bb".to_vec(), b"new".to_vec())));
    now.prev().unwrap();
    assert_eq!(at(&*now), Some((b"b".to_vec(), b"2".to_vec())));
    now.prev().unwrap();
    assert!(!now.valid());
    drop((cursor, now));
    engine.close().unwrap();
}

#[test]
fn a_cursor_on_an_empty_store_is_never_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
    let mut cursor = engine.cursor().unwrap();
    cursor.seek_to_first().unwrap();
    assert!(!cursor.valid());
    cursor.seek_to_last().unwrap();
    assert!(!cursor.valid());
    cursor.seek(b"").unwrap();
    assert!(!cursor.valid());
    cursor.prev().unwrap();
    assert!(!cursor.valid());
    drop(cursor);
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
    cursor.seek(b"banana").unwrap();
    assert_eq!(
        at(&*cursor),
        Some((b"banana".to_vec(), b"back again".to_vec()))
    );
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
    cursor.seek_to_first().unwrap();
    assert_eq!(at(&*cursor), model.into_iter().next());
    drop(cursor);
    engine.close().unwrap();
}
