//! The annotated dumps of a small segment, a segment with a batch record, a hint file and a
//! merge commit record, pinned by insta snapshots; and `inspect` on damaged and foreign
//! bytes never panics.

mod common;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use kv_shared::{Engine, WriteBatch};

/// Taken by every test here, so that they run one at a time. The first snapshot compared
/// makes insta start a `cargo metadata` process; a process started while another test
/// holds a store's lock holds a copy of the lock's file descriptor until it runs its
/// program, and that test's next open of its store would fail with `Locked`.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A store written the same way every time: a put, an overwrite, a put with an expiry, a
/// delete. Returns the directory's segment, merged segment and hint bytes.
fn deterministic_store(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let e = open(dir, &quiet("1M"));
    e.put(b"fruit", b"apple").unwrap();
    e.put(b"veg", b"leek").unwrap();
    e.put(b"fruit", b"pear").unwrap();
    e.put_expiring_at(
        b"milk",
        b"1 litre",
        UNIX_EPOCH + Duration::from_millis(4_102_444_800_000),
    )
    .unwrap();
    e.delete(b"veg").unwrap();
    e.close().unwrap();
    let segment = std::fs::read(dir.join("00000001.seg")).unwrap();
    let e = open(dir, &quiet("1M"));
    e.compact().unwrap();
    e.close().unwrap();
    let hints = files_ending(dir, ".hint");
    assert_eq!(hints.len(), 1, "{:?}", files(dir));
    let hint = std::fs::read(&hints[0]).unwrap();
    let merged = std::fs::read(hints[0].with_extension("seg")).unwrap();
    (segment, merged, hint)
}

#[test]
fn dumps_of_a_segment_a_hint_file_and_a_commit_record() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let (segment, merged, hint) = deterministic_store(&tmp.path().join("db"));
    insta::assert_snapshot!("segment", bitcask::inspect(&segment).unwrap());
    insta::assert_snapshot!("merged_segment", bitcask::inspect(&merged).unwrap());
    insta::assert_snapshot!("hint", bitcask::inspect(&hint).unwrap());
    let commit = bitcask::merge_commit::MergeCommit {
        inputs: vec![1, 2],
        outputs: vec![4],
    }
    .encode();
    insta::assert_snapshot!("commit", bitcask::inspect(&commit).unwrap());
}

/// A segment holding a put, then a batch of a put, a delete and an overwrite.
fn batch_segment(dir: &std::path::Path) -> Vec<u8> {
    let e = open(dir, &quiet("1M"));
    e.put(b"fruit", b"apple").unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"veg", b"leek").unwrap();
    batch.delete(b"milk").unwrap();
    batch.put(b"fruit", b"pear").unwrap();
    e.write(&batch).unwrap();
    e.close().unwrap();
    std::fs::read(dir.join("00000001.seg")).unwrap()
}

#[test]
fn dump_of_a_segment_with_a_batch_record() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let segment = batch_segment(&tmp.path().join("db"));
    insta::assert_snapshot!("batch_segment", bitcask::inspect(&segment).unwrap());
}

#[test]
fn inspect_never_panics_and_ignores_foreign_files() {
    let _turn = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let (segment, merged, hint) = deterministic_store(&tmp.path().join("db"));
    let batch = batch_segment(&tmp.path().join("batch"));
    let commit = bitcask::merge_commit::MergeCommit {
        inputs: vec![1],
        outputs: vec![2, 3],
    }
    .encode();
    assert_eq!(bitcask::inspect(b""), None);
    assert_eq!(bitcask::inspect(b"KVMARKER and more"), None);
    assert_eq!(bitcask::inspect(b"BITCASK"), None);
    for file in [&segment, &merged, &hint, &commit, &batch] {
        for cut in 0..=file.len() {
            let dump = bitcask::inspect(&file[..cut]);
            assert_eq!(dump.is_some(), cut >= 8, "cut at {cut}");
        }
        for i in 0..file.len() {
            for bit in [0x01, 0x80] {
                let mut bad = file.clone();
                bad[i] ^= bit;
                let _ = bitcask::inspect(&bad);
            }
        }
    }
}
