//! The annotated dumps (`kv inspect`) of what a wisckey store writes, pinned: a value-log
//! segment, its records grouped by write batch; the tree's WAL, each put's value decoded as
//! an inline value or a value pointer; a pointer and an inline value alone. Any change to a
//! format shows up here as a reviewable diff.

mod common;

use std::path::Path;

use kv_shared::{Engine, Fs, WriteBatch};
use wisckey::Wisckey;
use wisckey::value_pointer::{ValuePointer, encode_inline};

/// A store, in a temporary directory, of four writes: a value in the log, a small value in
/// the tree, a delete, and a batch of a put and a delete; values of 8 bytes or more go to
/// the log. Closed, so both logs hold every write.
fn small_store() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let store = Wisckey::open(tmp.path(), &common::options("value_threshold=8")).unwrap();
    store.put(b"apple", b"a red fruit").unwrap();
    store.put(b"fig", b"green").unwrap();
    store.delete(b"kiwi").unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"banana", b"a yellow fruit").unwrap();
    batch.delete(b"fig").unwrap();
    store.write(&batch).unwrap();
    store.close().unwrap();
    tmp
}

/// The bytes of the one file of `dir` whose name ends with `suffix`.
fn the_file(dir: &Path, suffix: &str) -> Vec<u8> {
    let fs = Fs::default();
    let names: Vec<String> = fs
        .list(dir)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    fs.read_all(&dir.join(&names[0])).unwrap()
}

#[test]
fn value_log_segment_dump() {
    let tmp = small_store();
    let bytes = the_file(&wisckey::file_names::vlog_dir(tmp.path()), ".seg");
    let dump = wisckey::inspect(&bytes).unwrap();
    assert_eq!(dump, wisckey::inspect::dump_segment(&bytes));
    insta::assert_snapshot!(dump);
}

#[test]
fn tree_wal_dump() {
    let tmp = small_store();
    let bytes = the_file(&wisckey::file_names::tree_dir(tmp.path()), ".wal");
    let dump = wisckey::inspect(&bytes).unwrap();
    assert!(dump.contains("tag 1: value pointer") && dump.contains("tag 0: inline value"));
    insta::assert_snapshot!(dump);
}

#[test]
fn tree_value_dumps() {
    let pointer = ValuePointer {
        segment: 3,
        offset: 16,
        len: 60,
    };
    let dump = wisckey::inspect::dump_tree_value(&pointer.encode());
    insta::assert_snapshot!("pointer", dump);
    let dump = wisckey::inspect::dump_tree_value(&encode_inline(b"green"));
    insta::assert_snapshot!("inline", dump);
    let dump = wisckey::inspect::dump_tree_value(&[7, 1, 2]);
    insta::assert_snapshot!("unknown_tag", dump);
}

/// `inspect` claims the files a store holds, refuses other bytes, and never panics on a
/// cut or damaged file.
#[test]
fn inspect_refuses_other_bytes_and_survives_damage() {
    assert_eq!(wisckey::inspect(b""), None);
    assert_eq!(wisckey::inspect(b"KVMARKER and more bytes"), None);
    let tmp = small_store();
    let segment = the_file(&wisckey::file_names::vlog_dir(tmp.path()), ".seg");
    let wal = the_file(&wisckey::file_names::tree_dir(tmp.path()), ".wal");
    for bytes in [segment, wal] {
        for cut in 0..bytes.len() {
            let _ = wisckey::inspect(&bytes[..cut]);
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x41;
            assert!(
                wisckey::inspect(&damaged).is_some() || at < 8,
                "flip at {at}"
            );
        }
    }
}
