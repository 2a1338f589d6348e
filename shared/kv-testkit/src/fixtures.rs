//! Writes the engines' own tests share: a few puts, a write batch over them and a put after
//! it, issued one call at a time or as one batch, with the model of what a store holds after
//! any of them; and random writes and batches, mirrored in a model.
//!
//! A stage's tests write these through its engine and then look at the bytes on disk: the
//! batch's one record, and what a reopen makes of it cut short or damaged
//! ([`crate::damaged_record`]).

use std::ops::Range;

use rand::Rng;

use kv_shared::{Engine, WriteBatch};

use crate::conformance::Model;

/// One write of a fixed sequence: a put of `Some(value)`, or a delete (`None`), of a key.
pub type Op = (&'static [u8], Option<&'static [u8]>);

/// Three puts, one at a time.
pub const BEFORE: &[Op] = &[
    (b"apple", Some(b"red")),
    (b"banana", Some(b"yellow")),
    (b"cherry", Some(b"dark red")),
];

/// A batch over [`BEFORE`]: an overwrite, a delete of a live key, a new key, a second
/// overwrite of the same key (the later op wins), and a delete of a key that is not there.
pub const BATCH: &[Op] = &[
    (b"apple", Some(b"green")),
    (b"banana", None),
    (b"date", Some(b"brown")),
    (b"apple", Some(b"pink")),
    (b"empty", None),
];

/// A put after the batch, so that the batch is not the last record.
pub const AFTER: &[Op] = &[(b"empty", Some(b""))];

/// `ops` as one write batch, in order.
pub fn batch_of(ops: &[Op]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for (key, value) in ops {
        match value {
            Some(value) => batch.put(key, value).expect("an op within the limits"),
            None => batch.delete(key).expect("a key within the limit"),
        }
    }
    batch
}

/// Applies `ops` to `engine` one call at a time.
pub fn apply<E: Engine>(engine: &E, ops: &[Op]) {
    for (key, value) in ops {
        match value {
            Some(value) => engine.put(key, value).expect("put"),
            None => engine.delete(key).expect("delete"),
        }
    }
}

/// The bytes of the keys and values of `ops`: what writing them adds to
/// `Stats::user_bytes_written`.
pub fn user_bytes(ops: &[Op]) -> u64 {
    let bytes: usize = ops
        .iter()
        .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
        .sum();
    bytes as u64
}

/// Applies `ops` to `model` as a store applies them: in order, a later op on a key winning.
pub fn apply_to_model(model: &mut Model, ops: &[Op]) {
    for (key, value) in ops {
        match value {
            Some(value) => model.insert(key.to_vec(), value.to_vec()),
            None => model.remove(*key),
        };
    }
}

/// What a store holds after each sequence of `ops` in turn: `model_of(&[BEFORE, BATCH])`.
pub fn model_of(ops: &[&[Op]]) -> Model {
    let mut model = Model::new();
    for ops in ops {
        apply_to_model(&mut model, ops);
    }
    model
}

/// One random write of a key that `key` draws, made on `engine` and mirrored in `model`: a
/// put half the time (its value naming `round`: `p7`), else a delete or a [`random_batch`]
/// of up to five ops.
pub fn random_write<E: Engine, R: Rng>(
    engine: &E,
    model: &mut Model,
    rng: &mut R,
    round: u32,
    mut key: impl FnMut(&mut R) -> Vec<u8>,
) {
    let k = key(rng);
    match rng.random_range(0..4) {
        0 => {
            engine.delete(&k).expect("delete");
            model.remove(&k);
        }
        1 => {
            let batch = random_batch(rng, model, 0..6, round, key);
            engine.write(&batch).expect("write");
        }
        _ => {
            let v = format!("p{round}").into_bytes();
            engine.put(&k, &v).expect("put");
            model.insert(k, v);
        }
    }
}

/// A batch of random puts and deletes (one op in four a delete), as many as `ops` draws, of
/// keys that `key` draws, each value naming `round` and the op (`b7.2`). Applied to `model`
/// as an engine applies the batch: in order, a later op on a key winning.
pub fn random_batch<R: Rng>(
    rng: &mut R,
    model: &mut Model,
    ops: Range<u32>,
    round: u32,
    mut key: impl FnMut(&mut R) -> Vec<u8>,
) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for i in 0..rng.random_range(ops) {
        let k = key(rng);
        if rng.random_bool(0.25) {
            batch.delete(&k).expect("a key within the limit");
            model.remove(&k);
        } else {
            let v = format!("b{round}.{i}").into_bytes();
            batch.put(&k, &v).expect("an op within the limits");
            model.insert(k, v);
        }
    }
    batch
}
