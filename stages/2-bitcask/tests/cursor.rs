//! The cursor: a sorted snapshot of the keydir, walked both ways and checked against a
//! model; a snapshot that merges and writes do not change; expired keys left out.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::{Duration, UNIX_EPOCH};

use bitcask::Bitcask;
use common::*;
use kv_shared::{Cursor, Engine, Error, KeyRange, WriteBatch};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn random_key(rng: &mut ChaCha8Rng) -> Vec<u8> {
    vec![b'a' + rng.random_range(0..26u8); rng.random_range(0..3)]
}

/// Random puts, deletes, batches of both and already expired puts on a small key space,
/// in small segments with merges between them, applied to the engine and the model alike.
/// A store from a random seed (printed, to replay a failure), the model, and the rng.
fn seeded_store() -> (tempfile::TempDir, Bitcask, Model, ChaCha8Rng) {
    let seed = rand::rng().random();
    println!("seed {seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (tmp, e, model) = random_store(&mut rng);
    (tmp, e, model, rng)
}

fn random_store(rng: &mut ChaCha8Rng) -> (tempfile::TempDir, Bitcask, Model) {
    let (tmp, _, e) = new_store(&quiet("256"));
    let mut model = Model::new();
    let past = UNIX_EPOCH + Duration::from_secs(1);
    for round in 0..400 {
        let k = random_key(rng);
        match rng.random_range(0..6) {
            0 => {
                e.delete(&k).unwrap();
                model.remove(&k);
            }
            1 => {
                e.put_expiring_at(&k, b"expired", past).unwrap();
                model.remove(&k);
            }
            2 => {
                let mut batch = WriteBatch::new();
                for i in 0..rng.random_range(0..6) {
                    let k = random_key(rng);
                    if rng.random_bool(0.3) {
                        batch.delete(&k).unwrap();
                        model.remove(&k);
                    } else {
                        let v = format!("b{round}.{i}").into_bytes();
                        batch.put(&k, &v).unwrap();
                        model.insert(k, v);
                    }
                }
                e.write(&batch).unwrap();
            }
            _ => {
                let v = format!("p{round}").into_bytes();
                e.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        if round % 150 == 149 {
            e.compact().unwrap();
        }
    }
    (tmp, e, model)
}

/// Where the cursor is: its pair, or `None` when not valid.
fn at(cursor: &dyn Cursor) -> Option<(Vec<u8>, Vec<u8>)> {
    cursor
        .valid()
        .then(|| (cursor.key().to_vec(), cursor.value().to_vec()))
}

fn pair((k, v): (&Vec<u8>, &Vec<u8>)) -> (Vec<u8>, Vec<u8>) {
    (k.clone(), v.clone())
}

/// Every pair from the first to the last, by `next`.
fn walk(cursor: &mut dyn Cursor) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs = Vec::new();
    cursor.seek_to_first().unwrap();
    while let Some(pair) = at(cursor) {
        pairs.push(pair);
        cursor.next().unwrap();
    }
    pairs
}

#[test]
fn a_cursor_walks_and_seeks_like_a_sorted_map() {
    let (_tmp, e, model, mut rng) = seeded_store();
    let mut cursor = e.cursor().unwrap();
    assert!(!cursor.valid(), "a new cursor is not positioned");
    assert_eq!(
        walk(&mut *cursor),
        model.iter().map(pair).collect::<Vec<_>>()
    );
    cursor.next().unwrap();
    assert!(!cursor.valid(), "next past the end stays not valid");

    let mut backward = Vec::new();
    cursor.seek_to_last().unwrap();
    while let Some(pair) = at(&*cursor) {
        backward.push(pair);
        cursor.prev().unwrap();
    }
    assert_eq!(backward, model.iter().rev().map(pair).collect::<Vec<_>>());

    for _ in 0..200 {
        let target = vec![b'a' + rng.random_range(0..27u8); rng.random_range(0..3)];
        let context = format!("target {target:?}");
        cursor.seek(&target).unwrap();
        let mut after = model.range(target.clone()..);
        assert_eq!(at(&*cursor), after.next().map(pair), "seek, {context}");
        cursor.next().unwrap();
        assert_eq!(at(&*cursor), after.next().map(pair), "then next, {context}");

        cursor.seek_for_prev(&target).unwrap();
        let mut before = model.range(..=target.clone()).rev();
        let want = before.next().map(pair);
        assert_eq!(at(&*cursor), want, "seek_for_prev, {context}");
        cursor.prev().unwrap();
        let want = before.next().map(pair);
        assert_eq!(at(&*cursor), want, "then prev, {context}");
    }
    drop(cursor);
    e.close().unwrap();
}

#[test]
fn scans_both_ways_match_the_model_for_every_kind_of_bound() {
    let (_tmp, e, model, mut rng) = seeded_store();
    let bound = |rng: &mut ChaCha8Rng| {
        let key = vec![b'a' + rng.random_range(0..27u8); rng.random_range(0..3)];
        match rng.random_range(0..3) {
            0 => Bound::Included(key),
            1 => Bound::Excluded(key),
            _ => Bound::Unbounded,
        }
    };
    for _ in 0..200 {
        let range = KeyRange::new(bound(&mut rng), bound(&mut rng));
        let want: Vec<(Vec<u8>, Vec<u8>)> = if range.is_empty() {
            Vec::new()
        } else {
            model.range(range.clone()).map(pair).collect()
        };
        let scan = e.scan(range.clone()).unwrap();
        let got: Vec<_> = scan.map(Result::unwrap).collect();
        assert_eq!(got, want, "scan {range:?}");
        let scan_rev = e.scan_rev(range.clone()).unwrap();
        let got: Vec<_> = scan_rev.map(Result::unwrap).collect();
        let want: Vec<_> = want.into_iter().rev().collect();
        assert_eq!(got, want, "scan_rev {range:?}");
    }
    e.close().unwrap();
}

/// Writes, a batch and a merge that deletes every segment the cursor reads change nothing
/// it shows; the merged-away files go when the cursor lets go of them.
#[test]
fn a_cursor_is_a_snapshot_that_outlives_a_merge() {
    let (_tmp, dir, e) = new_store(&quiet("64"));
    let mut old = Model::new();
    for i in 0..20u32 {
        let (k, v) = (
            format!("k{i:02}").into_bytes(),
            format!("old {i}").into_bytes(),
        );
        e.put(&k, &v).unwrap();
        old.insert(k, v);
    }
    let old_segments = files_ending(&dir, ".seg");
    let mut cursor = e.cursor().unwrap();
    e.put(b"k03", b"new").unwrap();
    e.delete(b"k04").unwrap();
    let mut batch = WriteBatch::new();
    batch.delete(b"k05").unwrap();
    batch.put(b"k99", b"new").unwrap();
    e.write(&batch).unwrap();
    e.compact().unwrap();
    assert!(
        old_segments.iter().all(|s| s.exists()),
        "held by the cursor"
    );
    assert_eq!(walk(&mut *cursor), old.iter().map(pair).collect::<Vec<_>>());
    drop(cursor);
    assert!(!old_segments.iter().any(|s| s.exists()), "released");

    let mut now = e.cursor().unwrap();
    now.seek_to_last().unwrap();
    assert_eq!(at(&*now), Some((b"k99".to_vec(), b"new".to_vec())));
    now.seek(b"k03").unwrap();
    assert_eq!(at(&*now), Some((b"k03".to_vec(), b"new".to_vec())));
    now.next().unwrap();
    assert_eq!(at(&*now), Some((b"k06".to_vec(), b"old 6".to_vec())));
    drop(now);
    e.close().unwrap();
}

#[test]
fn a_cursor_on_an_empty_store_is_never_valid() {
    let (_tmp, _, e) = new_store(&quiet("1K"));
    let mut cursor = e.cursor().unwrap();
    cursor.seek_to_first().unwrap();
    assert!(!cursor.valid());
    cursor.seek_to_last().unwrap();
    assert!(!cursor.valid());
    cursor.seek(b"").unwrap();
    assert!(!cursor.valid());
    cursor.seek_for_prev(b"zzz").unwrap();
    assert!(!cursor.valid());
    cursor.prev().unwrap();
    assert!(!cursor.valid());
    drop(cursor);
    e.close().unwrap();
}

/// A value whose record fails its checksum is an error from the move that reads it, and
/// leaves the cursor not valid; a seek elsewhere places it again.
#[test]
fn a_damaged_value_is_an_error_that_leaves_the_cursor_not_valid() {
    let (_tmp, dir, e) = new_store(&quiet("1M"));
    for k in ["a", "b", "c"] {
        e.put(k.as_bytes(), b"value").unwrap();
    }
    let path = dir.join("00000001.seg");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01; // the last byte of "c"'s value
    std::fs::write(&path, &bytes).unwrap();
    let mut cursor = e.cursor().unwrap();
    cursor.seek(b"b").unwrap();
    assert_eq!(at(&*cursor), Some((b"b".to_vec(), b"value".to_vec())));
    assert!(matches!(cursor.next(), Err(Error::Corruption { .. })));
    assert!(!cursor.valid());
    cursor.seek_to_first().unwrap();
    assert_eq!(at(&*cursor), Some((b"a".to_vec(), b"value".to_vec())));
    drop(cursor);
    drop(e);
}
