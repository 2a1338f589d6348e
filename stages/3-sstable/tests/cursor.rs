//! The store's cursor over this stage's layers: several tables whose key ranges overlap,
//! newer tables hiding older values with tombstones, a frozen memtable (a flush that could
//! not write its table) and the live memtable, all merged. Every move is compared with a
//! cursor over a `BTreeMap` model ([`ModelCursor`]): random walks both ways, and a seek at
//! every boundary followed by a step each way.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kv_shared::{BoxCursor, Engine, KeyRange, Options, WriteBatch};
use kv_testkit::conformance::{ModelCursor, Move, scan_rev_vec, scan_vec};
use kv_testkit::hook_fs::{Action, HookFs, Op, on_path};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sstable::SstableStore;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Keys `k000` to `k059`, so that layers overlap often.
fn key(i: u32) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// A store on a [`HookFs`], with blocks of a few entries and a memtable too large to flush
/// by itself: the test decides when to flush.
fn open(dir: &Path, fs: &HookFs) -> SstableStore {
    let options = Options::new()
        .set("memtable_bytes", "1M")
        .set("block_bytes", "64")
        .with_file_system(Arc::new(fs.clone()));
    SstableStore::open(dir, &options).unwrap()
}

/// Random puts, deletes and batches on the engine and the model alike.
fn write_randomly(e: &SstableStore, model: &mut Model, rng: &mut ChaCha8Rng, writes: u32) {
    write_randomly_while(e, model, rng, writes, false);
}

/// [`write_randomly`]; with `flush_fails`, a frozen memtable is waiting for a flush that
/// cannot write its table: every write tries the flush again and returns its error, having
/// been logged and applied all the same.
fn write_randomly_while(
    e: &SstableStore,
    model: &mut Model,
    rng: &mut ChaCha8Rng,
    writes: u32,
    flush_fails: bool,
) {
    let done = |result: kv_shared::Result<()>| match flush_fails {
        true => assert!(result.is_err(), "the flush is retried, and fails"),
        false => result.unwrap(),
    };
    for round in 0..writes {
        let k = key(rng.random_range(0..60));
        match rng.random_range(0..5) {
            0 => {
                done(e.delete(&k));
                model.remove(&k);
            }
            1 => {
                let mut batch = WriteBatch::new();
                for i in 0..rng.random_range(1..5) {
                    let k = key(rng.random_range(0..60));
                    if rng.random_bool(0.3) {
                        batch.delete(&k).unwrap();
                        model.remove(&k);
                    } else {
                        let v = format!("b{round}.{i}").into_bytes();
                        batch.put(&k, &v).unwrap();
                        model.insert(k, v);
                    }
                }
                done(e.write(&batch));
            }
            _ => {
                let v = format!("p{round}").into_bytes();
                done(e.put(&k, &v));
                model.insert(k, v);
            }
        }
    }
}

/// Builds the layers: three tables, a frozen memtable and the live one, each written
/// over the ones before.
fn layered_store(dir: &Path, fs: &HookFs, rng: &mut ChaCha8Rng) -> (SstableStore, Model) {
    let e = open(dir, fs);
    let mut model = Model::new();
    for _ in 0..3 {
        write_randomly(&e, &mut model, rng, 40);
        e.flush().unwrap();
    }
    write_randomly(&e, &mut model, rng, 40);
    // The table of this flush cannot be created: its memtable stays frozen, where readers
    // still see it, and a new memtable takes the next writes.
    fs.set_hook(on_path(Op::Create, ".sst.tmp", Action::Fail));
    assert!(e.flush().is_err());
    write_randomly_while(&e, &mut model, rng, 30, true);
    fs.clear_hook();
    assert_eq!(e.table_count(), 3);
    let stats = e.stats().unwrap();
    assert!(stats.extra["memtable_bytes"] > 0);
    (e, model)
}

/// Makes `mv` on both cursors and checks that they agree.
fn step(cursor: &mut BoxCursor<'_>, model: &mut ModelCursor, mv: &Move, context: &str) {
    mv.make(cursor.as_mut())
        .unwrap_or_else(|e| panic!("{mv:?}: {e} ({context})"));
    model.make(mv);
    model.assert_agrees(cursor.as_ref(), &|| format!("after {mv:?} ({context})"));
}

/// A random move: mostly steps, some seeks to keys that exist or fall between keys.
fn random_move(rng: &mut ChaCha8Rng) -> Move {
    let target = |rng: &mut ChaCha8Rng| {
        let mut t = key(rng.random_range(0..62));
        if rng.random_bool(0.3) {
            t.push(b'!');
        }
        t
    };
    match rng.random_range(0..12) {
        0 => Move::First,
        1 => Move::Last,
        2 => Move::Seek(target(rng)),
        3 => Move::SeekForPrev(target(rng)),
        4..=7 => Move::Next,
        _ => Move::Prev,
    }
}

#[test]
fn random_walks_over_every_layer_agree_with_the_model() {
    let seed = kv_testkit::knobs::seed("sstable cursor walks", 31);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    let (e, model) = layered_store(&tmp.path().join("db"), &fs, &mut rng);
    let mut cursor = e.cursor().unwrap();
    let mut expected = ModelCursor::new(model.clone());
    for i in 0..3000 {
        let mv = random_move(&mut rng);
        step(
            &mut cursor,
            &mut expected,
            &mv,
            &format!("move {i}, seed {seed}"),
        );
    }
    assert_eq!(scan_vec(&e, KeyRange::all()), model_pairs(&model));
    let mut reversed = scan_rev_vec(&e, KeyRange::all());
    reversed.reverse();
    assert_eq!(reversed, model_pairs(&model));
}

#[test]
fn seeks_at_every_boundary_then_a_step_each_way() {
    let seed = kv_testkit::knobs::seed("sstable cursor seeks", 32);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let fs = HookFs::new();
    let (e, model) = layered_store(&tmp.path().join("db"), &fs, &mut rng);
    let mut targets = vec![Vec::new(), b"k".to_vec(), b"z".to_vec()];
    for i in 0..61 {
        let k = key(i);
        targets.push([k.as_slice(), b"\x00"].concat());
        targets.push(k[..3].to_vec());
        targets.push(k);
    }
    let mut cursor = e.cursor().unwrap();
    let mut expected = ModelCursor::new(model);
    for target in targets {
        for seek in [
            Move::Seek(target.clone()),
            Move::SeekForPrev(target.clone()),
        ] {
            for then in [Move::Next, Move::Prev] {
                let context = format!("seed {seed}");
                step(&mut cursor, &mut expected, &seek, &context);
                step(&mut cursor, &mut expected, &then, &context);
                step(&mut cursor, &mut expected, &then, &context);
            }
        }
    }
}

#[test]
fn a_cursor_keeps_its_snapshot_through_writes_flushes_and_compactions() {
    let seed = kv_testkit::knobs::seed("sstable cursor snapshot", 33);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fs = HookFs::new();
    let (e, mut model) = layered_store(&dir, &fs, &mut rng);
    let before = model.clone();
    let mut cursor = e.cursor().unwrap();
    let mut expected = ModelCursor::new(before.clone());
    step(&mut cursor, &mut expected, &Move::Seek(key(30)), "before");
    // Everything changes under the cursor: new writes, the frozen memtable and the live
    // one flushed, every table compacted into one (the inputs' files are still held).
    write_randomly(&e, &mut model, &mut rng, 50);
    e.flush().unwrap();
    write_randomly(&e, &mut model, &mut rng, 20);
    e.compact().unwrap();
    assert_eq!(e.table_count(), 1);
    for i in 0..400 {
        let mv = random_move(&mut rng);
        step(
            &mut cursor,
            &mut expected,
            &mv,
            &format!("after, move {i}, seed {seed}"),
        );
    }
    let mut fresh = e.cursor().unwrap();
    let mut now = ModelCursor::new(model.clone());
    for mv in [Move::First, Move::Next, Move::Last, Move::Prev] {
        step(&mut fresh, &mut now, &mv, "a new cursor sees the new state");
    }
    drop((cursor, fresh));
    let tables = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sst")
        })
        .count();
    assert_eq!(
        tables, 1,
        "the compacted inputs go once no cursor holds them"
    );
    assert_eq!(scan_vec(&e, KeyRange::all()), model_pairs(&model));
}

fn model_pairs(model: &Model) -> Vec<(Vec<u8>, Vec<u8>)> {
    model.clone().into_iter().collect()
}
