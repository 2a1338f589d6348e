//! The model test: random operations against the engine and against a `BTreeMap`, every
//! answer compared; and [`ModelCursor`], the cursor every cursor check compares with.

use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_shared::{Cursor, Engine, KeyRange, Options, WriteBatch};

use super::support::{Model, fresh, model_range, open, scan_vec};
use crate::knobs::{env_u64, seed};

/// A cursor move, to make on an engine's cursor and on a [`ModelCursor`] alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// [`Cursor::seek_to_first`].
    First,
    /// [`Cursor::seek_to_last`].
    Last,
    /// [`Cursor::seek`].
    Seek(Vec<u8>),
    /// [`Cursor::seek_for_prev`].
    SeekForPrev(Vec<u8>),
    /// [`Cursor::next`].
    Next,
    /// [`Cursor::prev`].
    Prev,
}

impl Move {
    /// Makes the move on `cursor`.
    ///
    /// # Errors
    /// Whatever the cursor returns.
    pub fn make(&self, cursor: &mut dyn Cursor) -> kv_shared::Result<()> {
        match self {
            Move::First => cursor.seek_to_first(),
            Move::Last => cursor.seek_to_last(),
            Move::Seek(target) => cursor.seek(target),
            Move::SeekForPrev(target) => cursor.seek_for_prev(target),
            Move::Next => cursor.next(),
            Move::Prev => cursor.prev(),
        }
    }
}

/// The cursor of a model: a copy of the model taken when it was made (a cursor is a
/// snapshot), and the key it is at. What an engine's cursor must agree with, move by move.
#[derive(Debug, Clone)]
pub struct ModelCursor {
    snapshot: Model,
    at: Option<Vec<u8>>,
}

impl ModelCursor {
    /// A cursor over `snapshot`, not yet positioned.
    pub fn new(snapshot: Model) -> Self {
        ModelCursor { snapshot, at: None }
    }

    /// Makes `mv`: the same rules as every engine's cursor.
    pub fn make(&mut self, mv: &Move) {
        // The first key of a range, or its last (`back`).
        let edge = |range: (Bound<&[u8]>, Bound<&[u8]>), back: bool| {
            let mut keys = self
                .snapshot
                .range::<[u8], _>(range)
                .map(|(k, _)| k.clone());
            if back { keys.next_back() } else { keys.next() }
        };
        let first = |range| edge(range, false);
        let last = |range| edge(range, true);
        self.at = match (mv, &self.at) {
            (Move::First, _) => first((Unbounded, Unbounded)),
            (Move::Last, _) => last((Unbounded, Unbounded)),
            (Move::Seek(t), _) => first((Included(t), Unbounded)),
            (Move::SeekForPrev(t), _) => last((Unbounded, Included(t))),
            (Move::Next, Some(at)) => first((Excluded(at), Unbounded)),
            (Move::Prev, Some(at)) => last((Unbounded, Excluded(at))),
            (Move::Next | Move::Prev, None) => None,
        };
    }

    /// The entry the cursor is at, `None` when not valid.
    pub fn entry(&self) -> Option<(&[u8], &[u8])> {
        let key = self.at.as_deref()?;
        Some((key, &self.snapshot[key]))
    }

    /// Makes `mv` on `cursor` and on this cursor, and checks that they agree.
    pub fn step(&mut self, cursor: &mut dyn Cursor, mv: &Move, context: &str) {
        mv.make(cursor)
            .unwrap_or_else(|e| panic!("{mv:?}: {e} ({context})"));
        self.make(mv);
        self.assert_agrees(cursor, &|| format!("after {mv:?} ({context})"));
    }

    /// Panics unless `cursor` is where this cursor is: both not valid, or both at the same
    /// key with the same value.
    pub fn assert_agrees(&self, cursor: &dyn Cursor, context: &dyn Fn() -> String) {
        let got = cursor.valid().then(|| (cursor.key(), cursor.value()));
        assert!(
            got == self.entry(),
            "cursor at {}, model at {} ({})",
            show(got),
            show(self.entry()),
            context()
        );
    }
}

fn show(entry: Option<(&[u8], &[u8])>) -> String {
    match entry {
        Some((k, v)) => format!(
            "{} = {}",
            kv_shared::dump::quoted(k, 24),
            kv_shared::dump::quoted(v, 24)
        ),
        None => "nothing (not valid)".to_string(),
    }
}

/// The model test: random operations against the engine and a `BTreeMap`, comparing every
/// answer. Includes batches, cursors walked while writes and compactions go on, syncs,
/// compactions, and closing and reopening the store.
pub fn model<E: Engine>(options: &Options) {
    let seed = seed("model", 0x5eed);
    let ops = env_u64("KV_MODEL_OPS", 2000);
    model_run::<E>(options, seed, ops);
}

/// One model-test run with an explicit seed and length.
pub fn model_run<E: Engine>(options: &Options, seed: u64, ops: u64) {
    let (_tmp, dir) = fresh();
    let mut run = Run::new(seed);
    let mut engine = Some(open::<E>(&dir, options));
    for step in 0..ops {
        run.step = step;
        let e = engine.as_ref().expect("the store is open");
        match run.rng.random_range(0..100) {
            0..36 => run.put(e),
            36..50 => run.delete(e),
            50..56 => run.batch(e),
            56..76 => run.get(e),
            76..86 => run.scan(e),
            86..90 => run.cursor_session(e),
            90..93 => run.ok(e.sync(), "sync"),
            93..95 => run.ok(e.compact(), "compact"),
            95..98 => engine = Some(run.reopen(engine.take(), &dir, options)),
            _ => {
                drop(engine.take());
                engine = Some(open::<E>(&dir, options));
            }
        }
    }
    let e = engine.take().expect("the store is open");
    let all = scan_vec(&e, KeyRange::all());
    let want: Vec<(Vec<u8>, Vec<u8>)> = run.model.into_iter().collect();
    assert!(all == want, "final scan differs (seed {seed})");
    e.close().unwrap();
}

/// The state of a model run: its random numbers, the model, and where it is.
struct Run {
    seed: u64,
    step: u64,
    rng: ChaCha8Rng,
    model: Model,
    keys: Vec<Vec<u8>>,
}

impl Run {
    fn new(seed: u64) -> Run {
        let keys = (0..150u32)
            .map(|i| match i % 10 {
                0 => vec![0x00, i as u8],
                1 => vec![0xff, i as u8, 0x00],
                _ => format!("key{:03}", i).into_bytes(),
            })
            .collect();
        Run {
            seed,
            step: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            model: Model::new(),
            keys,
        }
    }

    fn context(&self) -> String {
        format!("seed {}, step {}", self.seed, self.step)
    }

    /// The value of `result`, or a panic naming `what`, the seed and the step.
    fn ok<T>(&self, result: kv_shared::Result<T>, what: &str) -> T {
        result.unwrap_or_else(|err| panic!("{what}: {err} ({})", self.context()))
    }

    fn key(&mut self) -> Vec<u8> {
        self.keys[self.rng.random_range(0..self.keys.len())].clone()
    }

    fn value(&mut self) -> Vec<u8> {
        let len = if self.rng.random_bool(0.05) {
            self.rng.random_range(1000..9000)
        } else {
            self.rng.random_range(0..120)
        };
        (0..len).map(|_| self.rng.random()).collect()
    }

    fn put<E: Engine>(&mut self, e: &E) {
        let (key, value) = (self.key(), self.value());
        self.ok(e.put(&key, &value), "put");
        self.model.insert(key, value);
    }

    fn delete<E: Engine>(&mut self, e: &E) {
        let key = self.key();
        self.ok(e.delete(&key), "delete");
        self.model.remove(&key);
    }

    /// A batch of 1 to 8 puts and deletes, the same key now and then more than once.
    fn batch<E: Engine>(&mut self, e: &E) {
        let mut batch = WriteBatch::new();
        let mut after = self.model.clone();
        let mut key = self.key();
        for _ in 0..self.rng.random_range(1..=8) {
            if self.rng.random_bool(0.7) {
                key = self.key();
            }
            if self.rng.random_bool(0.7) {
                let value = self.value();
                self.ok(batch.put(&key, &value), "batch put");
                after.insert(key.clone(), value);
            } else {
                self.ok(batch.delete(&key), "batch delete");
                after.remove(&key);
            }
        }
        self.ok(e.write(&batch), "write");
        self.model = after;
    }

    fn get<E: Engine>(&mut self, e: &E) {
        let key = self.key();
        let got = self.ok(e.get(&key), "get");
        let context = self.context();
        assert_eq!(
            got.as_ref(),
            self.model.get(&key),
            "get {key:?} ({context})"
        );
    }

    /// A scan of a random range, forward or backward.
    fn scan<E: Engine>(&mut self, e: &E) {
        let (mut a, mut b) = (self.key(), self.key());
        if a > b && self.rng.random_bool(0.9) {
            std::mem::swap(&mut a, &mut b);
        }
        let range = KeyRange::new(self.bound(a), self.bound(b));
        let mut want = model_range(&self.model, &range);
        let got = if self.rng.random_bool(0.5) {
            e.scan(range.clone())
        } else {
            want.reverse();
            e.scan_rev(range.clone())
        };
        let got = self.ok(got.and_then(|it| it.collect::<Result<Vec<_>, _>>()), "scan");
        assert!(
            got == want,
            "scan {range:?}: got {} pairs, want {} ({})",
            got.len(),
            want.len(),
            self.context()
        );
    }

    fn bound(&mut self, key: Vec<u8>) -> Bound<Vec<u8>> {
        match self.rng.random_range(0..3) {
            0 => Included(key),
            1 => Excluded(key),
            _ => Unbounded,
        }
    }

    /// A cursor walked for a while, with puts, deletes, batches and compactions between
    /// its moves: it must keep showing the store as it was when it was made.
    fn cursor_session<E: Engine>(&mut self, e: &E) {
        let mut cursor = self.ok(e.cursor(), "cursor");
        let mut expected = ModelCursor::new(self.model.clone());
        for _ in 0..self.rng.random_range(1..40) {
            match self.rng.random_range(0..20) {
                0..14 => {
                    let mv = self.random_move();
                    self.ok(mv.make(cursor.as_mut()), "cursor move");
                    expected.make(&mv);
                    let context = || format!("after {mv:?}, {}", self.context());
                    expected.assert_agrees(cursor.as_ref(), &context);
                }
                14..16 => self.put(e),
                16..18 => self.delete(e),
                18 => self.batch(e),
                _ => self.ok(e.compact(), "compact under a cursor"),
            }
        }
    }

    /// A random move: next and prev most of the time, so walks change direction often.
    fn random_move(&mut self) -> Move {
        match self.rng.random_range(0..12) {
            0..4 => Move::Next,
            4..8 => Move::Prev,
            8 => Move::First,
            9 => Move::Last,
            10 => Move::Seek(self.probe()),
            _ => Move::SeekForPrev(self.probe()),
        }
    }

    /// A key of the key space, or one just after it (with a `0x00` more), or a prefix of it.
    fn probe(&mut self) -> Vec<u8> {
        let mut key = self.key();
        match self.rng.random_range(0..3) {
            0 => key.push(0),
            1 => {
                key.pop();
            }
            _ => {}
        }
        key
    }

    /// Closes the store and opens it again.
    fn reopen<E: Engine>(&self, engine: Option<E>, dir: &Path, options: &Options) -> E {
        let engine = engine.expect("the store is open");
        self.ok(engine.close(), "close");
        open::<E>(dir, options)
    }
}
