//! fjall's key-value separation (feature `peers`), the setting `kvbench` compares stage 5
//! with: the whole conformance suite on `fjall[kv_separation=true]` with a small memtable,
//! so values go to blob files and are garbage-collected many times inside it; then where
//! the values land, and that the blob files count in the statistics.
//!
//! Run with `cargo test -p kvbench --features peers --test peer_blobs`.
#![cfg(feature = "peers")]

use std::path::{Path, PathBuf};

use kv_shared::{Engine, Options};
use kvbench::peers::fjall::Fjall;

mod fjall_kv_separation_suite {
    use super::*;
    kv_testkit::conformance_tests!(
        Fjall,
        Options::new()
            .set("kv_separation", "true")
            .set("memtable_bytes", "64K")
            .set("block_bytes", "1K")
    );
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

/// A value of `len` bytes that says which key it belongs to.
fn value(i: u32, len: usize) -> Vec<u8> {
    let mut value = format!("value {i}:").into_bytes();
    value.resize(len, b'a' + (i % 26) as u8);
    value
}

/// Total length and number of the files in every folder named `folder` under `dir`.
fn files_in(dir: &Path, folder: &str) -> (u64, usize) {
    let (mut bytes, mut count) = (0, 0);
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if current.file_name().is_some_and(|n| n == folder) {
                bytes += std::fs::metadata(&path).unwrap().len();
                count += 1;
            }
        }
    }
    (bytes, count)
}

/// Puts keys `0..n` with `len`-byte values into a fresh store at `dir` opened with
/// `options`, flushes the memtable, and returns the open store.
fn filled(dir: &Path, options: &Options, n: u32, len: impl Fn(u32) -> usize) -> Fjall {
    let engine = Fjall::open(dir, options).unwrap();
    for i in 0..n {
        engine.put(&key(i), &value(i, len(i))).unwrap();
    }
    assert!(engine.flush().unwrap());
    engine
}

#[test]
fn four_kib_values_land_in_blob_files_and_count_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let options = Options::new().set("kv_separation", "true");
    let engine = filled(&dir, &options, 300, |_| 4096);
    let values = 300 * 4096;
    let (blob_bytes, blob_files) = files_in(&dir, "blobs");
    let (table_bytes, tables) = files_in(&dir, "tables");
    assert!(
        blob_files >= 1 && tables >= 1,
        "{blob_files} blobs, {tables} tables"
    );
    // The blob files hold every value; the tables only keys and pointers.
    assert!(blob_bytes >= values, "{blob_bytes} bytes of blob files");
    assert!(table_bytes < values / 20, "{table_bytes} bytes of tables");
    let stats = engine.stats().unwrap();
    assert_eq!(stats.extra["blob_files"], blob_files as u64, "{stats:?}");
    // fjall does not count its blob reads: read amplification is unknown, not understated.
    assert_eq!(stats.extra["read_amp_unknown"], 1, "{stats:?}");
    // The statistics see the blob files: on disk, and written (the process's count).
    assert!(stats.disk_bytes >= blob_bytes + table_bytes, "{stats:?}");
    assert!(
        stats.disk_bytes_written >= 2 * values,
        "journal and blobs: {stats:?}"
    );
    for i in (0..300).step_by(7) {
        assert_eq!(engine.get(&key(i)).unwrap(), Some(value(i, 4096)));
    }
    engine.close().unwrap();
    // Reopened without the setting, the keyspace keeps the separation it was created with.
    let engine = Fjall::open(&dir, &Options::new()).unwrap();
    assert_eq!(engine.get(&key(299)).unwrap(), Some(value(299, 4096)));
    assert!(engine.stats().unwrap().extra.contains_key("blob_files"));
    engine.close().unwrap();
}

#[test]
fn without_separation_the_values_stay_in_the_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let engine = filled(&dir, &Options::new(), 300, |_| 4096);
    assert_eq!(files_in(&dir, "blobs").0, 0);
    assert!(files_in(&dir, "tables").0 >= 300 * 4096);
    let stats = engine.stats().unwrap();
    assert!(
        !stats.extra.contains_key("blob_files") && !stats.extra.contains_key("read_amp_unknown")
    );
    engine.close().unwrap();
}

#[test]
fn min_blob_size_keeps_smaller_values_in_the_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let options = Options::new()
        .set("kv_separation", "true")
        .set("min_blob_size", "1K");
    // Even keys get 4 KiB values, odd keys 100 bytes: only the large ones are separated.
    let len = |i: u32| if i.is_multiple_of(2) { 4096 } else { 100 };
    let engine = filled(&dir, &options, 400, len);
    let (blob_bytes, _) = files_in(&dir, "blobs");
    assert!(blob_bytes >= 200 * 4096, "{blob_bytes}");
    assert!(
        blob_bytes < 200 * 4096 + 200 * 100,
        "{blob_bytes}: small values went too"
    );
    for i in 0..400 {
        assert_eq!(engine.get(&key(i)).unwrap(), Some(value(i, len(i))), "{i}");
    }
    engine.close().unwrap();
}

#[test]
fn separation_settings_are_checked_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("kv_separation", "yes"),
        ("min_blob_size", "-1"),
        ("min_blob_size", "8G"),
        ("blob_file_bytes", "0"),
    ] {
        let dir = tmp.path().join(name);
        let options = Options::new().set(name, value);
        assert!(
            matches!(
                Fjall::open(&dir, &options),
                Err(kv_shared::Error::InvalidArgument(_))
            ),
            "{name}={value}"
        );
        assert!(!dir.exists(), "{name}={value}");
    }
}
