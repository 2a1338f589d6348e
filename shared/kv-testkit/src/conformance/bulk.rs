//! The bulk-load and flush checks: [`Engine::load`] gives the store the pairs a `put` of
//! each would give (the last of a repeated key wins, over data already there, deletes
//! included), sorted or not, and keeps them through compaction and reopening; an input
//! that fails stops the load with its error and leaves nothing but whole pairs; and
//! [`Engine::flush`] changes what is stored nowhere.
//!
//! Each engine documents how atomic its load is (batches of 1,000 by default, one step for
//! an engine that ingests tables), so the failure check asks only what every engine
//! promises: the load's error, every key holding its old value or its loaded one, and the
//! store working on.

use kv_shared::{Engine, Error, LoadOrder, Options};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::support::{Model, assert_holds, check_through_compact_and_reopen, fresh, open};
use crate::knobs::seed;

/// `key-00042`: the loads' keys, readable and in the order of their numbers.
fn key(n: usize) -> Vec<u8> {
    format!("key-{n:05}").into_bytes()
}

/// A store of `0..400` put one by one, every third one then deleted, with `model` to
/// match.
fn store_with_deletes<E: Engine>(e: &E) -> Model {
    let mut model = Model::new();
    for n in 0..400 {
        e.put(&key(n), b"put").unwrap();
        model.insert(key(n), b"put".to_vec());
    }
    for n in (0..400).step_by(3) {
        e.delete(&key(n)).unwrap();
        model.remove(&key(n));
    }
    model
}

/// An unsorted load over existing data (keys put, deleted, and new; a key given three
/// times, the last one winning) holds what the same pairs `put` in order would, through
/// compaction and reopening; its report counts the input's pairs and bytes.
pub fn unsorted_load_is_put_in_order<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let mut model = store_with_deletes(&e);
    let mut rng = ChaCha8Rng::seed_from_u64(seed("unsorted_load_is_put_in_order", 7));
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = (200..700)
        .map(|n| (key(n), format!("loaded {n}").into_bytes()))
        .collect();
    pairs.shuffle(&mut rng);
    for round in ["first", "second", "last"] {
        let n = rng.random_range(200..700);
        pairs.push((key(n), round.as_bytes().to_vec()));
    }
    let bytes: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    for (k, v) in &pairs {
        model.insert(k.clone(), v.clone());
    }
    let mut input = pairs.iter().cloned().map(Ok);
    let report = e.load(&mut input, LoadOrder::Unsorted).unwrap();
    assert_eq!(report.pairs, pairs.len() as u64, "pairs counted");
    assert_eq!(report.bytes, bytes as u64, "bytes counted");
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_holds(e, &model, &[&key(0), &key(999)], "after an unsorted load");
    });
}

/// A sorted load (equal neighbours allowed: the second wins) into an empty store, then a
/// second one across its middle, hold what puts would; writes after them win over them.
pub fn sorted_loads_are_put_in_order<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let mut model = Model::new();
    let mut load = |range: std::ops::Range<usize>, tag: &str| {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for n in range {
            if n % 50 == 0 {
                pairs.push((key(n), b"replaced by the next pair".to_vec()));
            }
            pairs.push((key(n), format!("{tag} {n}").into_bytes()));
        }
        for (k, v) in &pairs {
            model.insert(k.clone(), v.clone());
        }
        let mut input = pairs.into_iter().map(Ok);
        e.load(&mut input, LoadOrder::Sorted).unwrap();
    };
    load(0..600, "first");
    load(250..350, "second");
    e.put(&key(300), b"a put after the loads").unwrap();
    e.delete(&key(301)).unwrap();
    model.insert(key(300), b"a put after the loads".to_vec());
    model.remove(&key(301));
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_holds(e, &model, &[&key(301), &key(600)], "after sorted loads");
    });
}

/// An input whose 300th pair is an error stops the load with that error; every key then
/// holds its old value or its loaded one (how many of the 299 pairs before the error went
/// in is the engine's own rule), and the store takes writes and loads again.
pub fn a_failed_input_stops_the_load<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let before = store_with_deletes(&e);
    let loaded = |n: usize| format!("loaded {n}").into_bytes();
    let mut input = (100..600).enumerate().map(|(i, n)| {
        if i == 299 {
            Err(Error::InvalidArgument("the input broke".into()))
        } else {
            Ok((key(n), loaded(n)))
        }
    });
    match e.load(&mut input, LoadOrder::Sorted) {
        Err(Error::InvalidArgument(detail)) => assert_eq!(detail, "the input broke"),
        other => panic!("expected the input's error, got {other:?}"),
    }
    for n in 0..700 {
        let got = e.get(&key(n)).unwrap();
        let old = before.get(&key(n)).cloned();
        let new = (100..399).contains(&n).then(|| loaded(n));
        assert!(
            got == old || (new.is_some() && got == new),
            "key {n}: {got:?} is neither its old value nor its loaded one"
        );
    }
    let mut model: Model = (0..700)
        .filter_map(|n| Some((key(n), e.get(&key(n)).unwrap()?)))
        .collect();
    e.put(&key(5), b"after").unwrap();
    model.insert(key(5), b"after".to_vec());
    let mut again = (650..660).map(|n| Ok((key(n), loaded(n))));
    e.load(&mut again, LoadOrder::Sorted).unwrap();
    model.extend((650..660).map(|n| (key(n), loaded(n))));
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_holds(e, &model, &[], "after a failed load and a second one");
    });
}

/// `flush` changes nothing a reader sees, whether the engine has a memtable (`true`) or
/// not (`false`), an empty one included; what it wrote out survives reopening.
pub fn flush_changes_nothing_seen<E: Engine>(options: &Options) {
    let (_tmp, dir) = fresh();
    let e = open::<E>(&dir, options);
    let has_memtable = e.flush().unwrap();
    let model = store_with_deletes(&e);
    assert_eq!(
        e.flush().unwrap(),
        has_memtable,
        "flush answers the same each time"
    );
    assert_holds(&e, &model, &[&key(0)], "after a flush");
    assert_eq!(e.flush().unwrap(), has_memtable, "a flush of nothing");
    check_through_compact_and_reopen(e, &dir, options, |e| {
        assert_holds(
            e,
            &model,
            &[&key(0)],
            "after a flush, compacted and reopened",
        );
    });
}
