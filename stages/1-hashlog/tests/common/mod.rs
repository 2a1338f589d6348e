//! A small deterministic log, written through the engine, with the offset where each
//! record ends, and the model state after any prefix of it; and a log with a write batch.

#![allow(dead_code)] // each test file uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hashlog::HashLog;
use hashlog::data_file::FILE_HEADER_LEN;
use hashlog::file_names::DATA_FILE;
use kv_shared::{Engine, Options};
pub use kv_testkit::fixtures::{Op, apply, batch_of};

/// Puts, overwrites, deletes of live keys (so every op writes one record), an empty value,
/// a binary key, and a key that comes back after its delete.
pub const OPS: &[Op] = &[
    (b"apple", Some(b"red")),
    (b"banana", Some(b"yellow")),
    (b"cherry", Some(b"dark red")),
    (b"apple", Some(b"green")),
    (b"banana", None),
    (b"empty", Some(b"")),
    (b"\x00bin\xff", Some(b"\x01\x02")),
    (b"cherry", None),
    (b"banana", Some(b"back again")),
    (b"date", Some(b"d")),
];

/// Every key the ops touch, plus one they never do.
pub fn keys() -> Vec<&'static [u8]> {
    let mut keys: Vec<&[u8]> = OPS.iter().map(|(k, _)| *k).collect();
    keys.push(b"never written");
    keys.sort();
    keys.dedup();
    keys
}

/// A log written by the engine.
pub struct Log {
    /// The data file's bytes.
    pub bytes: Vec<u8>,
    /// `starts[i]..ends[i]` are the bytes of the record of `OPS[i]`.
    pub starts: Vec<u64>,
    /// See `starts`.
    pub ends: Vec<u64>,
}

impl Log {
    /// Writes `ops` through a fresh engine and reads the file back.
    pub fn write(ops: &[Op]) -> Log {
        let tmp = tempfile::tempdir().unwrap();
        let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
        let path = tmp.path().join(DATA_FILE);
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        for op in ops {
            starts.push(std::fs::metadata(&path).unwrap().len());
            apply(&engine, std::slice::from_ref(op));
            ends.push(std::fs::metadata(&path).unwrap().len());
        }
        engine.close().unwrap();
        assert_eq!(starts[0], FILE_HEADER_LEN);
        let bytes = std::fs::read(&path).unwrap();
        Log {
            bytes,
            starts,
            ends,
        }
    }

    /// The record (index into the ops) that holds byte `offset`, `None` in the header.
    pub fn record_at(&self, offset: u64) -> Option<usize> {
        (0..self.starts.len()).find(|&i| self.starts[i] <= offset && offset < self.ends[i])
    }
}

/// The state after the first `n` ops.
pub fn model(ops: &[Op], n: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    kv_testkit::fixtures::model_of(&[&ops[..n]])
}

/// A store directory (in a new temporary directory) whose data file holds `data`.
pub fn store_with(data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join(kv_shared::store_dir::MARKER_FILE),
        kv_shared::marker::encode(HashLog::NAME, HashLog::FORMAT_VERSION),
    )
    .unwrap();
    std::fs::write(dir.join(DATA_FILE), data).unwrap();
    (tmp, dir)
}

/// Checks that `engine` holds exactly `model`, by `get` of every key, by full scans both
/// ways, and by its statistics.
pub fn assert_holds(engine: &HashLog, model: &BTreeMap<Vec<u8>, Vec<u8>>, context: &str) {
    kv_testkit::conformance::assert_holds(engine, model, &keys(), context);
    let stats = engine.stats().unwrap();
    assert_eq!(stats.live_keys, model.len() as u64, "live keys ({context})");
    let live: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(
        stats.live_data_bytes, live as u64,
        "live data bytes ({context})"
    );
}

/// The data file's path in a store directory.
pub fn data_path(dir: &Path) -> PathBuf {
    dir.join(DATA_FILE)
}

/// The data file's length in a store directory.
pub fn file_len(dir: &Path) -> u64 {
    std::fs::metadata(data_path(dir)).unwrap().len()
}

/// A log written by the engine with a write batch in it.
pub struct BatchLog {
    /// The data file's bytes.
    pub bytes: Vec<u8>,
    /// `start..end` are the bytes of the batch record.
    pub start: u64,
    /// See `start`.
    pub end: u64,
}

impl BatchLog {
    /// Writes `before` one op at a time through a fresh engine, then `batch` as one write
    /// batch, then `after` one op at a time, and reads the file back.
    pub fn write(before: &[Op], batch: &[Op], after: &[Op]) -> BatchLog {
        let tmp = tempfile::tempdir().unwrap();
        let engine = HashLog::open(tmp.path(), &Options::new()).unwrap();
        let path = tmp.path().join(DATA_FILE);
        let len = || std::fs::metadata(&path).unwrap().len();
        apply(&engine, before);
        let start = len();
        engine.write(&batch_of(batch)).unwrap();
        let end = len();
        apply(&engine, after);
        engine.close().unwrap();
        BatchLog {
            bytes: std::fs::read(&path).unwrap(),
            start,
            end,
        }
    }
}
