//! Helpers shared by the integration tests: a model of the expected contents, and small
//! store helpers. (Tests that fail or crash file calls use [`kv_testkit::hook_fs::HookFs`].)
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bitcask::Bitcask;
use kv_shared::{Engine, KeyRange, Options};

/// Options for deterministic tests: small segments, no background merge.
pub fn quiet(segment_bytes: &str) -> Options {
    Options::new()
        .set("segment_bytes", segment_bytes)
        .set("background_merge", "false")
}

/// Options for tests of the background merge: small segments, and a merge as soon as
/// `dead_ratio` of the store is dead.
pub fn merging(segment_bytes: &str, dead_ratio: &str) -> Options {
    Options::new()
        .set("segment_bytes", segment_bytes)
        .set("merge_dead_ratio", dead_ratio)
}

/// A new store in a temporary directory (kept while the returned guard lives).
pub fn new_store(options: &Options) -> (tempfile::TempDir, PathBuf, Bitcask) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let e = open(&dir, options);
    (tmp, dir, e)
}

/// Opens `dir` or panics with the error.
pub fn open(dir: &Path, options: &Options) -> Bitcask {
    Bitcask::open(dir, options).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// Opens `dir` twice, reading its hint files and then ignoring them (rebuilding the keydir
/// from the segments alone), runs `check` on each store, and closes it.
pub fn reopen_with_and_without_hints(
    dir: &Path,
    options: &Options,
    check: impl Fn(&Bitcask, &str),
) {
    for hints in ["true", "false"] {
        let e = open(dir, &options.clone().set("hint_files", hints));
        check(&e, &format!("reopened, hint_files={hints}"));
        e.close().unwrap();
    }
}

/// The whole store, by a full scan.
pub fn contents(e: &Bitcask) -> BTreeMap<Vec<u8>, Vec<u8>> {
    e.scan(KeyRange::all())
        .unwrap()
        .collect::<Result<BTreeMap<_, _>, _>>()
        .unwrap()
}

/// Checks that `e` holds exactly `model`, by `get` of every key and by full scans both ways.
pub fn assert_holds(e: &Bitcask, model: &BTreeMap<Vec<u8>, Vec<u8>>, context: &str) {
    kv_testkit::conformance::assert_holds(e, model, &[], context);
}

/// A deterministic workload with overwrites and deletes spread over many segments; returns
/// what the store must hold.
pub fn churn(e: &Bitcask, keys: u32, rounds: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    for round in 0..rounds {
        for i in 0..keys {
            let key = format!("key{i:04}").into_bytes();
            if (i + round) % 5 == 0 {
                e.delete(&key).unwrap();
                model.remove(&key);
            } else {
                let value = format!("value {i} round {round} {}", "x".repeat((i % 13) as usize))
                    .into_bytes();
                e.put(&key, &value).unwrap();
                model.insert(key, value);
            }
        }
    }
    model
}

/// Files in `dir` by name.
pub fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Paths of the files in `dir` whose name ends with `suffix`.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| dir.join(n))
        .collect()
}

/// Copies the files of `from` into a new directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in files(from) {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}
