//! The store's cursor over this stage's layers: several tables whose key ranges overlap,
//! newer tables hiding older values with tombstones, a frozen memtable (a flush that could
//! not write its table) and the live memtable, all merged. Every move is compared with a
//! cursor over a `BTreeMap` model ([`ModelCursor`]): random walks both ways, and a seek at
//! every boundary followed by a step each way.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{Model, key, options, pairs, random_batch, seeded};
use kv_shared::{Engine, KeyRange};
use kv_testkit::conformance::{ModelCursor, Move, scan_rev_vec, scan_vec};
use kv_testkit::hook_fs::{Action, HookFs, Op, on_path};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sstable::SstableStore;

/// Keys `k000` to `k059`, so that layers overlap often.
const KEYS: u32 = 60;

/// A store on a [`HookFs`] holding every layer, its model, and the random generator for
/// the rest of the test (seeded from the name, see [`kv_testkit::knobs::seed`]).
struct Layered {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    e: SstableStore,
    model: Model,
    rng: ChaCha8Rng,
    seed: u64,
}

/// Builds the layers: three tables, a frozen memtable and the live one, each written over
/// the ones before. Blocks hold a few entries; the memtable is too large to flush by
/// itself: the test decides when to flush.
fn layered(name: &str, default_seed: u64) -> Layered {
    let (tmp, dir, seed, mut rng) = seeded(name, default_seed);
    let fs = HookFs::new();
    let settings = options(&[("memtable_bytes", "1M"), ("block_bytes", "64")]);
    let e = SstableStore::open(&dir, &settings.with_file_system(Arc::new(fs.clone()))).unwrap();
    let mut model = Model::new();
    for _ in 0..3 {
        write_randomly(&e, &mut model, &mut rng, 40, false);
        e.flush().unwrap();
    }
    write_randomly(&e, &mut model, &mut rng, 40, false);
    // The table of this flush cannot be created: its memtable stays frozen, where readers
    // still see it, and a new memtable takes the next writes.
    fs.set_hook(on_path(Op::Create, ".sst.tmp", Action::Fail));
    assert!(e.flush().is_err());
    write_randomly(&e, &mut model, &mut rng, 30, true);
    fs.clear_hook();
    assert_eq!(e.table_count(), 3);
    Layered {
        _tmp: tmp,
        dir,
        e,
        model,
        rng,
        seed,
    }
}

/// Random puts, deletes and batches on the engine and the model alike. With
/// `flush_fails`, a frozen memtable is waiting for a flush that cannot write its table:
/// every write tries the flush again and returns its error, having been logged and applied
/// all the same.
fn write_randomly(
    e: &SstableStore,
    model: &mut Model,
    rng: &mut ChaCha8Rng,
    writes: u32,
    flush_fails: bool,
) {
    for round in 0..writes {
        let k = key(rng.random_range(0..KEYS));
        let result = match rng.random_range(0..5) {
            0 => {
                model.remove(&k);
                e.delete(&k)
            }
            1 => e.write(&random_batch(rng, model, KEYS, round)),
            _ => {
                let v = format!("p{round}").into_bytes();
                model.insert(k.clone(), v.clone());
                e.put(&k, &v)
            }
        };
        match flush_fails {
            true => assert!(result.is_err(), "the flush is retried, and fails"),
            false => result.unwrap(),
        }
    }
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
    let mut l = layered("sstable cursor walks", 31);
    let mut cursor = l.e.cursor().unwrap();
    let mut expected = ModelCursor::new(l.model.clone());
    for i in 0..3000 {
        let mv = random_move(&mut l.rng);
        let context = format!("move {i}, seed {}", l.seed);
        expected.step(&mut *cursor, &mv, &context);
    }
    assert_eq!(scan_vec(&l.e, KeyRange::all()), pairs(&l.model));
    let mut reversed = scan_rev_vec(&l.e, KeyRange::all());
    reversed.reverse();
    assert_eq!(reversed, pairs(&l.model));
}

#[test]
fn seeks_at_every_boundary_then_a_step_each_way() {
    let l = layered("sstable cursor seeks", 32);
    let mut targets = vec![Vec::new(), b"k".to_vec(), b"z".to_vec()];
    for i in 0..=KEYS {
        let k = key(i);
        targets.push([k.as_slice(), b"\x00"].concat());
        targets.push(k[..3].to_vec());
        targets.push(k);
    }
    let mut cursor = l.e.cursor().unwrap();
    let mut expected = ModelCursor::new(l.model.clone());
    let context = format!("seed {}", l.seed);
    for target in targets {
        for seek in [Move::Seek(target.clone()), Move::SeekForPrev(target)] {
            for then in [Move::Next, Move::Prev] {
                expected.step(&mut *cursor, &seek, &context);
                expected.step(&mut *cursor, &then, &context);
                expected.step(&mut *cursor, &then, &context);
            }
        }
    }
}

#[test]
fn a_cursor_keeps_its_snapshot_through_writes_flushes_and_compactions() {
    let mut l = layered("sstable cursor snapshot", 33);
    let mut cursor = l.e.cursor().unwrap();
    let mut expected = ModelCursor::new(l.model.clone());
    expected.step(&mut *cursor, &Move::Seek(key(30)), "before");
    // Everything changes under the cursor: new writes, the frozen memtable and the live
    // one flushed, every table compacted into one (the inputs' files are still held).
    write_randomly(&l.e, &mut l.model, &mut l.rng, 50, false);
    l.e.flush().unwrap();
    write_randomly(&l.e, &mut l.model, &mut l.rng, 20, false);
    l.e.compact().unwrap();
    assert_eq!(l.e.table_count(), 1);
    for i in 0..400 {
        let mv = random_move(&mut l.rng);
        let context = format!("after, move {i}, seed {}", l.seed);
        expected.step(&mut *cursor, &mv, &context);
    }
    let mut fresh = l.e.cursor().unwrap();
    let mut now = ModelCursor::new(l.model.clone());
    for mv in [Move::First, Move::Next, Move::Last, Move::Prev] {
        now.step(&mut *fresh, &mv, "a new cursor sees the new state");
    }
    drop((cursor, fresh));
    let tables = std::fs::read_dir(&l.dir)
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
    assert_eq!(scan_vec(&l.e, KeyRange::all()), pairs(&l.model));
}
