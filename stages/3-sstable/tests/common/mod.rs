//! Helpers shared by the integration tests: opening a store with a few settings, and random
//! write batches mirrored in a `BTreeMap` model.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kv_shared::{Engine, Options, WriteBatch};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sstable::SstableStore;

/// What a store should hold: key to value.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Options made of `settings`, `(name, value)` pairs.
pub fn options(settings: &[(&str, &str)]) -> Options {
    let mut options = Options::new();
    for (name, value) in settings {
        options.insert(*name, *value);
    }
    options
}

/// Opens the store in `dir` on the real disk with `settings`.
pub fn open_with(dir: &Path, settings: &[(&str, &str)]) -> SstableStore {
    SstableStore::open(dir, &options(settings)).unwrap()
}

/// A random test's start: a temporary directory (kept while the guard lives), the path of
/// a store in it, the seed (printed, and taken from the environment when set, see
/// [`kv_testkit::knobs::seed`]) and a generator seeded with it.
pub fn seeded(name: &str, default_seed: u64) -> (tempfile::TempDir, PathBuf, u64, ChaCha8Rng) {
    let seed = kv_testkit::knobs::seed(name, default_seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    (tmp, dir, seed, ChaCha8Rng::seed_from_u64(seed))
}

/// Key `i`: `k000`, `k001`, ... (sorted as the numbers are).
pub fn key(i: u32) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// A batch of 1 to 7 random puts and deletes of keys below `keys`, the values tagged with
/// `round`, applied to `model` as the store will apply it.
pub fn random_batch(rng: &mut ChaCha8Rng, model: &mut Model, keys: u32, round: u32) -> WriteBatch {
    let key = |rng: &mut ChaCha8Rng| key(rng.random_range(0..keys));
    kv_testkit::fixtures::random_batch(rng, model, 1..8, round, key)
}

/// The model's pairs, in key order: what a full scan returns.
pub fn pairs(model: &Model) -> Vec<(Vec<u8>, Vec<u8>)> {
    model.clone().into_iter().collect()
}
