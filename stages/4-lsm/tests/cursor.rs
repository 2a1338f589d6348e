//! The engine's cursor against a model: a snapshot of a `BTreeMap` taken when the cursor
//! was, walked both ways, sought at every boundary, and stepped at random, over a tree whose
//! keys have versions in the memtable, in L0 tables and on deeper levels at once, and while
//! writes, flushes and compactions change the tree under it.

mod common;

use std::collections::BTreeMap;

use kv_shared::{Cursor, Engine, Options, WriteBatch};
use kv_testkit::knobs::seed;
use lsm::LsmTree;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Small tables and memtables; L0 compacts at 4 tables, L1 holds a megabyte (fixed level
/// targets: dynamic ones would send L0 straight to the small last level), so data stays on
/// L0, L1 and the last level at once.
fn options() -> Options {
    common::options(
        "memtable_bytes=4K table_bytes=2K block_bytes=256 restart_interval=4 level1_bytes=1M \
         l0_trigger=4 l0_slowdown=12 l0_stop=16 dynamic_levels=false",
    )
}

const KEYS: u32 = 300;

fn key(i: u32) -> Vec<u8> {
    // Keys of several lengths sharing prefixes, so blocks prefix-compress them.
    format!("k{:03}{}", i % KEYS, "x".repeat((i % 3) as usize)).into_bytes()
}

/// One round of writes over the key space: puts with `round` in the value, every
/// `delete_every`-th key deleted, some of them gathered in batches (a batch is written
/// before the next single write, so the store applies the ops in the model's order).
fn write_round(
    e: &LsmTree,
    model: &mut Model,
    rng: &mut ChaCha8Rng,
    round: u32,
    delete_every: u32,
) {
    let mut batch = WriteBatch::new();
    for _ in 0..KEYS {
        let k = key(rng.random_range(0..KEYS));
        let delete = rng.random_range(0..delete_every) == 0;
        let value = format!("r{round}-{}", "v".repeat(rng.random_range(0..40))).into_bytes();
        let batched = rng.random_range(0..4) > 0;
        if !batched || batch.len() >= 8 {
            e.write(&batch).unwrap();
            batch.clear();
        }
        match (delete, batched) {
            (true, true) => batch.delete(&k).unwrap(),
            (true, false) => e.delete(&k).unwrap(),
            (false, true) => batch.put(&k, &value).unwrap(),
            (false, false) => e.put(&k, &value).unwrap(),
        }
        if delete {
            model.remove(&k);
        } else {
            model.insert(k, value);
        }
    }
    e.write(&batch).unwrap();
}

/// A tree whose live keys have versions on the last level, on L1, in L0 tables and in the
/// memtable, with the model of its contents.
fn layered_tree(dir: &std::path::Path, rng: &mut ChaCha8Rng) -> (LsmTree, Model) {
    let e = LsmTree::open(dir, &options()).unwrap();
    let mut model = Model::new();
    write_round(&e, &mut model, rng, 0, 10);
    e.full_compaction().unwrap();
    for round in 1..4 {
        write_round(&e, &mut model, rng, round, 5);
    }
    e.compact().unwrap();
    for round in 4..6 {
        write_round(&e, &mut model, rng, round, 4);
        e.flush().unwrap();
    }
    write_round(&e, &mut model, rng, 6, 3);
    let levels = e.levels_summary();
    let files = |level: usize| levels[level].files;
    assert!(
        files(0) >= 1 && files(1) >= 1 && files(6) >= 1,
        "versions on L0, L1 and L6: {levels:?}"
    );
    assert!(e.stats().unwrap().extra["memtable_bytes"] > 0);
    (e, model)
}

/// The random numbers of test `test` (seeded from `default_seed` or `KV_TEST_SEED`), a
/// temporary directory, and a [`layered_tree`] in it.
fn layered_store(test: &str, default_seed: u64) -> (ChaCha8Rng, tempfile::TempDir, LsmTree, Model) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed(test, default_seed));
    let tmp = tempfile::tempdir().unwrap();
    let (e, model) = layered_tree(tmp.path(), &mut rng);
    (rng, tmp, e, model)
}

/// The model's pairs in order, and a position among them that moves as a cursor does.
struct ModelCursor {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// `None` when not valid.
    at: Option<usize>,
}

impl ModelCursor {
    fn new(model: &Model) -> ModelCursor {
        let pairs = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        ModelCursor { pairs, at: None }
    }

    fn seek(&mut self, target: &[u8]) {
        let i = self.pairs.partition_point(|(k, _)| k.as_slice() < target);
        self.at = (i < self.pairs.len()).then_some(i);
    }

    fn seek_for_prev(&mut self, target: &[u8]) {
        let i = self.pairs.partition_point(|(k, _)| k.as_slice() <= target);
        self.at = i.checked_sub(1);
    }

    fn next(&mut self) {
        self.at = self.at.map(|i| i + 1).filter(|&i| i < self.pairs.len());
    }

    fn prev(&mut self) {
        self.at = self.at.and_then(|i| i.checked_sub(1));
    }

    fn current(&self) -> Option<(&[u8], &[u8])> {
        self.at
            .map(|i| (self.pairs[i].0.as_slice(), self.pairs[i].1.as_slice()))
    }
}

fn current(c: &dyn Cursor) -> Option<(&[u8], &[u8])> {
    c.valid().then(|| (c.key(), c.value()))
}

/// The pairs from the cursor's position on, moving with `step`: at most `expected + 1` of
/// them, so that a cursor that does not move fails the comparison rather than loop.
fn walk(
    cursor: &mut dyn Cursor,
    expected: usize,
    step: impl Fn(&mut dyn Cursor) -> kv_shared::Result<()>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs = Vec::new();
    while let Some((k, v)) = current(cursor) {
        pairs.push((k.to_vec(), v.to_vec()));
        if pairs.len() > expected {
            break;
        }
        step(cursor).unwrap();
    }
    pairs
}

/// Checks that a walk found the model's pairs, naming the first difference.
fn assert_walk(found: &[(Vec<u8>, Vec<u8>)], model: &[(Vec<u8>, Vec<u8>)], what: &str) {
    let text = |pair: Option<&(Vec<u8>, Vec<u8>)>| {
        pair.map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
    };
    let first = (0..found.len().max(model.len())).find(|&i| found.get(i) != model.get(i));
    if let Some(i) = first {
        panic!(
            "{what}: at pair {i} of {} (model {}): found {:?}, model {:?}",
            found.len(),
            model.len(),
            text(found.get(i)),
            text(model.get(i))
        );
    }
}

/// Every key, and the points just before and after each one, as seek targets.
fn boundaries(model: &ModelCursor) -> Vec<Vec<u8>> {
    let mut targets = vec![Vec::new(), vec![0xff; 8]];
    for (k, _) in &model.pairs {
        targets.push(k.clone());
        let mut after = k.clone();
        after.push(0);
        targets.push(after);
        if let Some((_, shorter)) = k.split_last() {
            targets.push(shorter.to_vec());
        }
    }
    targets
}

/// Checks `cursor` against the model: a full walk each way, a seek and a seek-for-prev to
/// every boundary with a step each way from there, and `steps` random moves.
fn check(cursor: &mut dyn Cursor, model: &Model, rng: &mut ChaCha8Rng, steps: usize) {
    let mut m = ModelCursor::new(model);
    cursor.seek_to_first().unwrap();
    let forward = walk(cursor, m.pairs.len(), |c| c.next());
    assert_walk(&forward, &m.pairs, "a forward walk");
    cursor.seek_to_last().unwrap();
    let mut backward = walk(cursor, m.pairs.len(), |c| c.prev());
    backward.reverse();
    assert_walk(&backward, &m.pairs, "a backward walk");
    for target in boundaries(&m) {
        cursor.seek(&target).unwrap();
        m.seek(&target);
        assert_eq!(current(cursor), m.current(), "seek {target:?}");
        cursor.prev().unwrap();
        m.prev();
        assert_eq!(current(cursor), m.current(), "prev after seek {target:?}");
        cursor.seek_for_prev(&target).unwrap();
        m.seek_for_prev(&target);
        assert_eq!(current(cursor), m.current(), "seek_for_prev {target:?}");
        cursor.next().unwrap();
        m.next();
        assert_eq!(
            current(cursor),
            m.current(),
            "next after seek_for_prev {target:?}"
        );
    }
    random_moves(cursor, &mut m, rng, steps);
}

/// `steps` moves at random (mostly steps, turning around often), each checked.
fn random_moves(cursor: &mut dyn Cursor, m: &mut ModelCursor, rng: &mut ChaCha8Rng, steps: usize) {
    for step in 0..steps {
        let what = match rng.random_range(0..10) {
            0 => {
                let target = key(rng.random_range(0..KEYS));
                cursor.seek(&target).unwrap();
                m.seek(&target);
                "seek"
            }
            1 if !cursor.valid() => {
                cursor.seek_to_last().unwrap();
                m.at = m.pairs.len().checked_sub(1);
                "seek_to_last"
            }
            2..=5 => {
                cursor.next().unwrap();
                m.next();
                "next"
            }
            _ => {
                cursor.prev().unwrap();
                m.prev();
                "prev"
            }
        };
        assert_eq!(current(cursor), m.current(), "step {step}: {what}");
    }
}

/// A cursor over keys whose versions lie in the memtable, L0, L1 and the last level shows
/// exactly the model: newest visible version per key, no tombstone, both ways.
#[test]
fn a_cursor_over_every_layer_matches_the_model() {
    let (mut rng, tmp, e, model) = layered_store("lsm_cursor_layers", 41);
    let mut cursor = e.cursor().unwrap();
    check(cursor.as_mut(), &model, &mut rng, 2000);
    drop(cursor);
    e.close().unwrap();
    // After a restart the WAL's writes are in L0: the same answers.
    let e = LsmTree::open(tmp.path(), &options()).unwrap();
    check(e.cursor().unwrap().as_mut(), &model, &mut rng, 500);
}

/// A cursor is a snapshot: writes, deletes, flushes and compactions that run while it is
/// used (and delete the tables it reads, once it is done) change nothing it returns.
#[test]
fn writes_and_compactions_meanwhile_change_nothing_a_cursor_returns() {
    let (mut rng, _tmp, e, model) = layered_store("lsm_cursor_meanwhile", 43);
    let mut cursor = e.cursor().unwrap();
    let before = e.stats().unwrap().extra["compactions"];
    let mut writer_rng = ChaCha8Rng::seed_from_u64(rng.random());
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut later = model.clone();
            for round in 10..14 {
                write_round(&e, &mut later, &mut writer_rng, round, 2);
                e.flush().unwrap();
            }
            e.full_compaction().unwrap();
            later
        });
        let mut m = ModelCursor::new(&model);
        while !writer.is_finished() {
            random_moves(cursor.as_mut(), &mut m, &mut rng, 200);
        }
        let later = writer.join().unwrap();
        check(cursor.as_mut(), &model, &mut rng, 500);
        check(e.cursor().unwrap().as_mut(), &later, &mut rng, 500);
    });
    assert!(e.stats().unwrap().extra["compactions"] > before);
}

/// Random puts, deletes and batches, with flushes and compactions in between; after every
/// few ops a fresh cursor, stepped at random, agrees with the model.
#[test]
fn random_ops_against_a_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed("lsm_cursor_random", 47));
    let tmp = tempfile::tempdir().unwrap();
    let e = LsmTree::open(tmp.path(), &options()).unwrap();
    let mut model = Model::new();
    for round in 0..30 {
        let delete_every = rng.random_range(2..8);
        write_round(&e, &mut model, &mut rng, round, delete_every);
        match rng.random_range(0..6) {
            0 => e.flush().unwrap(),
            1 => e.compact().unwrap(),
            2 => e.full_compaction().unwrap(),
            _ => {}
        }
        let mut cursor = e.cursor().unwrap();
        let mut m = ModelCursor::new(&model);
        cursor.seek_to_first().unwrap();
        m.at = (!m.pairs.is_empty()).then_some(0);
        random_moves(cursor.as_mut(), &mut m, &mut rng, 300);
    }
    check(e.cursor().unwrap().as_mut(), &model, &mut rng, 1000);
}
